"""Payments from a user's wallet to a merchant or to the bureau's ticket receivable, and their refunds.

A payment spends the user's red packets first, then the balance; the merchant is credited net of its
transaction-service fee, and the fee goes to the provinces' fee-income accounts as the documents split
it. A web or proximity payment posts at once (the password was checked before); an SMS payment holds
the money and posts when the user confirms the texted code, or is voided when the hold lapses.
One key makes one transfer: a replay returns the transfer it made.
"""

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from expo.errors import Conflict, ExpoError, NotFound
from wallet import ledger
from wallet.accounts import lock_wallet
from wallet.ledger import Leg, leg
from wallet.limits import check_user_limits
from wallet.models import Merchant, MerchantVoucher, WalletAccount, WalletTransfer, WalletUser
from wallet.rules import (
    AccountKind,
    LimitedOperation,
    PaymentChannel,
    RiskLimits,
    TransferKind,
    TransferState,
    check_amount,
    fee_category,
    fee_for,
    fee_shares,
    part_refunded,
)
from wallet.sms import CodePurpose, IssuedCode, issue_code

PAYMENT_KINDS = (TransferKind.PAYMENT.value, TransferKind.TICKET_PAYMENT.value)


@dataclass(frozen=True)
class PaymentTerms:
    """The limits a payment runs under and how long an SMS-confirmed payment holds its money."""

    limits: RiskLimits
    hold_window: timedelta


@dataclass(frozen=True)
class PaymentOutcome:
    """The transfer made (or found again), and the code to text when it waits for the user."""

    transfer: WalletTransfer
    code: IssuedCode | None = None
    replayed: bool = False


async def find_merchant(session: AsyncSession, *, code: str) -> Merchant:
    """A merchant by its code; an unknown one is `unknown_merchant`."""
    merchant = await session.scalar(select(Merchant).where(Merchant.code == code))
    if merchant is None:
        raise NotFound("unknown_merchant", f"no merchant {code!r}")
    return merchant


async def pay(
    session: AsyncSession,
    *,
    idempotency_key: str,
    msisdn: str,
    merchant: Merchant | None,
    amount_fen: int,
    channel: PaymentChannel,
    terms: PaymentTerms,
    now: datetime,
    voucher_code: str | None = None,
    product: str | None = None,
    description: str | None = None,
    reference: str | None = None,
    credential_id: int | None = None,
) -> PaymentOutcome:
    """Pay `amount_fen` to a merchant (or, with no merchant, for Expo tickets) from a phone number's wallet."""
    check_amount(amount_fen)
    kind = TransferKind.PAYMENT if merchant is not None else TransferKind.TICKET_PAYMENT
    wallet = await lock_wallet(session, msisdn=msisdn, idempotency_key=idempotency_key)
    user, found = wallet.user, wallet.replay
    if found is not None:
        # The transfer moved the price less its voucher; the replay names the price.
        asked = amount_fen - found.voucher_fen
        return PaymentOutcome(ledger.same_request(found, kind=kind.value, amount_fen=asked), replayed=True)
    if merchant is not None and fee_category(merchant.category).proximity != (channel == PaymentChannel.PROXIMITY):
        where = "at a terminal" if fee_category(merchant.category).proximity else "remotely"
        raise ExpoError("wrong_channel", f"merchant {merchant.code} takes payments {where}")
    voucher = await _take_voucher(
        session, code=voucher_code, merchant=merchant, msisdn=user.msisdn, product=product, now=now
    )
    voucher_fen = min(voucher.value_fen, amount_fen) if voucher else 0
    payable = amount_fen - voucher_fen
    red = await ledger.lock_account(session, user.red_packet_account_id)
    await check_user_limits(
        session, user=user, operation=LimitedOperation.PAYMENT, amount_fen=payable, limits=terms.limits, now=now
    )
    red_part = min(max(red.balance - red.held, 0), payable)
    transfer = WalletTransfer(
        idempotency_key=idempotency_key,
        kind=kind.value,
        state=TransferState.PENDING.value,
        amount_fen=payable,
        user_id=user.id,
        operation=LimitedOperation.PAYMENT.value,
        merchant_id=merchant.id if merchant else None,
        channel=channel.value,
        fee_fen=fee_for(payable, merchant.fee_rate_bp) if merchant else 0,
        red_packet_fen=red_part,
        voucher_fen=voucher_fen,
        refunded_fen=0,
        reference=reference,
        description=description,
        credential_id=credential_id,
        created_at=now,
    )
    session.add(transfer)
    await session.flush()
    if voucher is not None:
        voucher.used_transfer_id = transfer.id
    legs = await payment_legs(session, transfer=transfer, user=user, merchant=merchant, now=now)
    if channel != PaymentChannel.SMS:
        await ledger.post(session, transfer=transfer, legs=legs, now=now)
        return PaymentOutcome(transfer)
    await ledger.hold(session, transfer=transfer, legs=legs)
    transfer.expires_at = now + terms.hold_window
    code = await issue_code(session, msisdn=user.msisdn, purpose=CodePurpose.PAYMENT, transfer_id=transfer.id, now=now)
    return PaymentOutcome(transfer, code=code)


async def payment_legs(
    session: AsyncSession, *, transfer: WalletTransfer, user: WalletUser, merchant: Merchant | None, now: datetime
) -> list[Leg]:
    """The legs of a payment: red packets and balance out; the payee's net and each province's fee share in."""
    accounts = await _accounts(session, user.account_id, user.red_packet_account_id)
    payee = await payee_account(session, merchant=merchant, now=now)
    legs = [
        leg(accounts[user.red_packet_account_id], -transfer.red_packet_fen),
        leg(accounts[user.account_id], -(transfer.amount_fen - transfer.red_packet_fen)),
        leg(payee, transfer.amount_fen - transfer.fee_fen),
    ]
    for province, share in _fee_shares(transfer, transfer.fee_fen, user=user, merchant=merchant).items():
        fee_account = await ledger.operator_account(session, AccountKind.FEE_INCOME, province_code=province, now=now)
        legs.append(leg(fee_account, share))
    return legs


def _fee_shares(
    transfer: WalletTransfer, fee_fen: int, *, user: WalletUser, merchant: Merchant | None
) -> dict[str, int]:
    if merchant is None:
        return {}
    return fee_shares(
        fee_fen,
        proximity=transfer.channel == PaymentChannel.PROXIMITY.value,
        user_province=user.province_code,
        merchant_province=merchant.province_code,
    )


async def payee_account(session: AsyncSession, *, merchant: Merchant | None, now: datetime) -> WalletAccount:
    """The merchant's account, or for Expo tickets the bureau's receivable."""
    if merchant is None:
        return await ledger.operator_account(session, AccountKind.BUREAU_RECEIVABLE, now=now)
    account = await session.get(WalletAccount, merchant.account_id)
    assert account is not None
    return account


async def _accounts(session: AsyncSession, *ids: int) -> dict[int, WalletAccount]:
    rows = await session.scalars(select(WalletAccount).where(WalletAccount.id.in_(ids)))
    return {account.id: account for account in rows}


async def _take_voucher(
    session: AsyncSession,
    *,
    code: str | None,
    merchant: Merchant | None,
    msisdn: str,
    product: str | None,
    now: datetime,
) -> MerchantVoucher | None:
    if code is None:
        return None
    voucher = await session.scalar(select(MerchantVoucher).where(MerchantVoucher.code == code).with_for_update())
    if voucher is None or merchant is None or voucher.merchant_id != merchant.id or voucher.msisdn != msisdn:
        raise NotFound("unknown_voucher", "no such voucher of this merchant for this phone number")
    if voucher.used_transfer_id is not None:
        raise Conflict("voucher_used", "this voucher was already used")
    if voucher.expires_at <= now:
        raise ExpoError("voucher_expired", "this voucher has expired")
    if product != voucher.product:
        raise ExpoError("voucher_wrong_product", f"this voucher is for {voucher.product!r} only")
    return voucher


async def lock_payment(session: AsyncSession, *, transfer_id: int) -> WalletTransfer:
    """Lock a payment (merchant or ticket) for a state change."""
    transfer = await session.get(WalletTransfer, transfer_id, with_for_update=True, populate_existing=True)
    if transfer is None or transfer.kind not in PAYMENT_KINDS:
        raise NotFound("unknown_payment", f"no payment {transfer_id}")
    return transfer


async def confirm_payment(session: AsyncSession, *, transfer: WalletTransfer, now: datetime) -> WalletTransfer:
    """The user confirmed a held payment (its code was spent): the held money moves."""
    if transfer.state == TransferState.POSTED.value:
        return transfer
    if transfer.state != TransferState.PENDING.value or (transfer.expires_at and transfer.expires_at <= now):
        raise Conflict("payment_not_pending", "this payment is no longer waiting for confirmation")
    user, merchant = await _parties(session, transfer)
    legs = await payment_legs(session, transfer=transfer, user=user, merchant=merchant, now=now)
    await ledger.capture(session, transfer=transfer, legs=legs, now=now)
    return transfer


async def cancel_payment(session: AsyncSession, *, transfer: WalletTransfer, now: datetime) -> WalletTransfer:
    """A held payment lapsed or was abandoned: its hold is released and its voucher is free again."""
    await ledger.void(session, transfer=transfer, now=now)
    voucher = await session.scalar(select(MerchantVoucher).where(MerchantVoucher.used_transfer_id == transfer.id))
    if voucher is not None:
        voucher.used_transfer_id = None
    return transfer


async def refund_payment(
    session: AsyncSession,
    *,
    idempotency_key: str,
    payment: WalletTransfer,
    amount_fen: int,
    now: datetime,
    reason: str | None = None,
    credential_id: int | None = None,
) -> WalletTransfer:
    """Return part or all of a posted payment, never more than is left; red packets and fees go back pro rata."""
    check_amount(amount_fen)
    found = await ledger.existing_transfer(session, idempotency_key=idempotency_key)
    if found is not None:
        return ledger.same_request(found, kind=TransferKind.REFUND.value, amount_fen=amount_fen)
    if payment.state != TransferState.POSTED.value:
        raise Conflict("payment_not_posted", f"only a completed payment can be refunded; this one is {payment.state}")
    left = payment.amount_fen - payment.refunded_fen
    if amount_fen > left:
        raise Conflict("refund_exceeds_payment", f"only {left} fen of this payment is left to refund", left_fen=left)
    user, merchant = await _parties(session, payment)
    await ledger.lock_account(session, user.account_id)
    accounts = await _accounts(session, user.account_id, user.red_packet_account_id)
    payee = await payee_account(session, merchant=merchant, now=now)

    def back(part: int) -> int:
        return part_refunded(
            part, whole_fen=payment.amount_fen, refunded_before=payment.refunded_fen, refunding=amount_fen
        )

    red_back = back(payment.red_packet_fen)
    legs = [leg(accounts[user.red_packet_account_id], red_back), leg(accounts[user.account_id], amount_fen - red_back)]
    # The fee comes back pro rata as a whole, split between the provinces as the fee was: rounding each
    # province's share on its own could take more from the payee than it was paid for this payment.
    fee_before = part_refunded(
        payment.fee_fen, whole_fen=payment.amount_fen, refunded_before=0, refunding=payment.refunded_fen
    )
    fee_back = back(payment.fee_fen)
    shares_before = _fee_shares(payment, fee_before, user=user, merchant=merchant)
    for province, share in _fee_shares(payment, fee_before + fee_back, user=user, merchant=merchant).items():
        fee_account = await ledger.operator_account(session, AccountKind.FEE_INCOME, province_code=province, now=now)
        legs.append(leg(fee_account, -(share - shares_before.get(province, 0))))
    legs.append(leg(payee, -(amount_fen - fee_back)))
    refund = WalletTransfer(
        idempotency_key=idempotency_key,
        kind=TransferKind.REFUND.value,
        state=TransferState.PENDING.value,
        amount_fen=amount_fen,
        user_id=user.id,
        merchant_id=payment.merchant_id,
        channel=payment.channel,
        fee_fen=fee_back,
        red_packet_fen=red_back,
        original_id=payment.id,
        description=reason,
        credential_id=credential_id,
        created_at=now,
    )
    session.add(refund)
    await session.flush()
    await ledger.post(session, transfer=refund, legs=legs, now=now)
    payment.refunded_fen += amount_fen
    return refund


async def _parties(session: AsyncSession, transfer: WalletTransfer) -> tuple[WalletUser, Merchant | None]:
    user = await session.get(WalletUser, transfer.user_id)
    assert user is not None
    merchant = await session.get(Merchant, transfer.merchant_id) if transfer.merchant_id is not None else None
    return user, merchant


async def lapsed_holds(session: AsyncSession, *, now: datetime, limit: int = 500) -> list[int]:
    """Held payments whose confirmation window has passed."""
    rows = await session.scalars(
        select(WalletTransfer.id)
        .where(
            WalletTransfer.state == TransferState.PENDING.value,
            WalletTransfer.kind.in_(PAYMENT_KINDS),
            WalletTransfer.expires_at <= now,
        )
        .limit(limit)
    )
    return list(rows.all())
