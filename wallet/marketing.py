"""Marketing: the operator's red packets (红包) and merchants' vouchers (代金券).

The operator funds a marketing budget from its own money; red packets are paid out of that budget into
a user's red-packet account, never beyond it (the budget is a restricted account), and a payment spends
them before the balance. A merchant's voucher is for one of its products and one phone number, deducted
from the price at payment (see `wallet.payments`), once, before it expires.
"""

import secrets
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from expo.clock import expo_local
from expo.errors import ExpoError
from expo.money import format_fen
from expo.provinces import normalize_msisdn
from wallet import ledger
from wallet.accounts import find_user
from wallet.ledger import leg
from wallet.models import Merchant, MerchantVoucher, WalletAccount, WalletTransfer
from wallet.rules import AccountKind, TransferKind, TransferState, check_amount

MAX_FUNDING_FEN = 10**12  # ours: a sanity bound on one funding (10 billion yuan), far inside BIGINT
VOUCHER_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"  # no 0/O or 1/I: the code is read off a text
VOUCHER_CODE_LENGTH = 12  # 60 random bits


async def fund_marketing(
    session: AsyncSession, *, idempotency_key: str, amount_fen: int, now: datetime, credential_id: int | None
) -> WalletTransfer:
    """Move the operator's own money into the marketing budget that red packets are paid from."""
    if amount_fen > MAX_FUNDING_FEN:
        raise ExpoError("amount_too_large", f"one funding is at most {MAX_FUNDING_FEN} fen")
    check_amount(amount_fen, ceiling=MAX_FUNDING_FEN)
    found = await ledger.existing_transfer(session, idempotency_key=idempotency_key)
    if found is not None:
        return ledger.same_request(found, kind=TransferKind.MARKETING_FUNDING.value, amount_fen=amount_fen)
    funds = await ledger.operator_account(session, AccountKind.OPERATOR_FUNDS, now=now)
    budget = await ledger.operator_account(session, AccountKind.MARKETING, now=now)
    return await _post(
        session,
        kind=TransferKind.MARKETING_FUNDING,
        idempotency_key=idempotency_key,
        amount_fen=amount_fen,
        payer=funds,
        payee=budget,
        user_id=None,
        description=None,
        credential_id=credential_id,
        now=now,
    )


async def give_red_packet(
    session: AsyncSession,
    *,
    idempotency_key: str,
    msisdn: str,
    amount_fen: int,
    campaign: str,
    now: datetime,
    credential_id: int | None,
) -> WalletTransfer:
    """Pay a red packet from the marketing budget to a wallet's red-packet account; refused beyond the budget."""
    check_amount(amount_fen)
    found = await ledger.existing_transfer(session, idempotency_key=idempotency_key)
    if found is not None:
        return ledger.same_request(found, kind=TransferKind.RED_PACKET.value, amount_fen=amount_fen)
    user = await find_user(session, msisdn=msisdn)
    red = await session.get(WalletAccount, user.red_packet_account_id)
    assert red is not None
    budget = await ledger.operator_account(session, AccountKind.MARKETING, now=now)
    return await _post(
        session,
        kind=TransferKind.RED_PACKET,
        idempotency_key=idempotency_key,
        amount_fen=amount_fen,
        payer=budget,
        payee=red,
        user_id=user.id,
        description=campaign,
        credential_id=credential_id,
        now=now,
    )


async def _post(
    session: AsyncSession,
    *,
    kind: TransferKind,
    idempotency_key: str,
    amount_fen: int,
    payer: WalletAccount,
    payee: WalletAccount,
    user_id: int | None,
    description: str | None,
    credential_id: int | None,
    now: datetime,
) -> WalletTransfer:
    transfer = WalletTransfer(
        idempotency_key=idempotency_key,
        kind=kind.value,
        state=TransferState.PENDING.value,
        amount_fen=amount_fen,
        user_id=user_id,
        fee_fen=0,
        red_packet_fen=0,
        voucher_fen=0,
        refunded_fen=0,
        description=description,
        credential_id=credential_id,
        created_at=now,
    )
    session.add(transfer)
    await session.flush()
    await ledger.post(session, transfer=transfer, legs=[leg(payer, -amount_fen), leg(payee, amount_fen)], now=now)
    return transfer


def red_packet_text(*, amount_fen: int, campaign: str) -> str:
    """What the user is told of a red packet."""
    return f"You received a {format_fen(amount_fen)} yuan red packet ({campaign}). Your payments spend it first."


async def issue_voucher(
    session: AsyncSession,
    *,
    merchant: Merchant,
    msisdn: str,
    product: str,
    value_fen: int,
    expires_at: datetime,
    now: datetime,
) -> MerchantVoucher:
    """A merchant gives a phone number a voucher for one of its products, with a random code, until it expires."""
    check_amount(value_fen)
    if expires_at <= now:
        raise ExpoError("voucher_expiry_passed", "a voucher must expire in the future")
    voucher = MerchantVoucher(
        code="".join(secrets.choice(VOUCHER_ALPHABET) for _ in range(VOUCHER_CODE_LENGTH)),
        merchant_id=merchant.id,
        product=product,
        msisdn=normalize_msisdn(msisdn),
        value_fen=value_fen,
        expires_at=expires_at,
        created_at=now,
    )
    session.add(voucher)
    await session.flush()
    return voucher


def voucher_text(voucher: MerchantVoucher, *, merchant: Merchant) -> str:
    """What the user is told of a voucher: its value, product, code and last moment (Shanghai time)."""
    until = expo_local(voucher.expires_at).strftime("%Y-%m-%d %H:%M")
    return (
        f"{merchant.name} gives you a {format_fen(voucher.value_fen)} yuan voucher for {voucher.product}: "
        f"code {voucher.code}, valid until {until}. Quote it when you pay."
    )
