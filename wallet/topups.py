"""Top-ups: money into a wallet, counted against the user's top-up limits.

Cash at a hall counter posts at once against the province's hall-cash account. A bank top-up (a bank
card bound by SMS, or online banking) charges the bank first, as a ticket sale does, and writes after:
  - approved: the top-up posts at once, from the bank-settlement account;
  - declined: `payment_declined`, and nothing is written;
  - no answer in time, or "pending": the top-up is written pending (a credit, so nothing is held) and
    the bank's signed notification or the sweep's query posts or voids it (see `wallet.sweeps`).
The user's balance row is locked before the bank is asked, so the limits checked then still hold when
the top-up is written; should the write be refused all the same, the charge is given back at the bank.
If the write fails outright (the database went away), nothing is recorded: the reference the bank saw
comes from the request's Idempotency-Key, so the client's retry names the same charge, the bank does
not take the money twice, and the retry credits it; a request never retried is left to the daily
reconciliation with the bank's statement (not modelled here).
Only the last four digits of a card or account are kept (the transfer's description), enough to query.
"""

import asyncio
import hashlib
import re
from collections.abc import Awaitable
from datetime import datetime, timedelta
from enum import StrEnum

from sqlalchemy.ext.asyncio import AsyncSession

from expo.bank import BankGateway, BankResult, BankStatus, BankTimeout, mask_account
from expo.errors import ExpoError
from wallet import ledger
from wallet.accounts import lock_wallet
from wallet.ledger import leg
from wallet.limits import check_user_limits
from wallet.models import WalletAccount, WalletTransfer, WalletUser
from wallet.rules import AccountKind, LimitedOperation, RiskLimits, TransferKind, TransferState, check_amount

BANK_ACCOUNT = re.compile(r"[0-9]{12,19}")  # bank card and account numbers (UnionPay cards are 16-19 digits)


class BankChannel(StrEnum):
    """How a bank top-up reaches the wallet."""

    BANK_CARD_SMS = "bank_card_sms"  # a bank card bound to the wallet; the bank confirms with its cardholder by SMS
    ONLINE_BANKING = "online_banking"  # 网银支付: the user's online banking, through UnionPay


BANK_CHANNELS = frozenset(channel.value for channel in BankChannel)


def bank_reference(idempotency_key: str) -> str:
    """The reference the bank sees: derived from the transfer's ledger key, so a retry never moves money twice."""
    return "WAL" + hashlib.sha256(idempotency_key.encode()).hexdigest()[:29].upper()


def check_bank_account(account: str) -> str:
    """A card or bank account number is 12 to 19 plain digits."""
    if not BANK_ACCOUNT.fullmatch(account):
        raise ExpoError("invalid_bank_account", "a card or bank account number is 12 to 19 digits")
    return account


async def ask_bank(call: Awaitable[BankResult], *, within: timedelta) -> BankResult:
    """The bank's answer; none in time counts as "pending": the money may have moved, a query will tell."""
    try:
        return await asyncio.wait_for(call, timeout=within.total_seconds())
    except (TimeoutError, BankTimeout):
        return BankResult(BankStatus.PENDING, reason="bank_timeout")


async def start_top_up(
    session: AsyncSession,
    *,
    idempotency_key: str,
    msisdn: str,
    amount_fen: int,
    channel: str,
    limits: RiskLimits,
    now: datetime,
    reference: str | None = None,
    description: str | None = None,
    credential_id: int | None = None,
) -> tuple[WalletTransfer, WalletUser, bool]:
    """The top-up's transfer row (pending), after the amount and the user's limits are checked; or the replayed one."""
    check_amount(amount_fen)
    wallet = await lock_wallet(session, msisdn=msisdn, idempotency_key=idempotency_key)
    user, found = wallet.user, wallet.replay
    if found is not None and found.user_id == user.id:
        ledger.same_request(found, kind=TransferKind.TOP_UP.value, amount_fen=amount_fen)
        return found, user, True
    if found is not None:
        raise ExpoError("idempotency_key_reused", "this idempotency key was used for another transfer", status=422)
    await check_user_limits(
        session, user=user, operation=LimitedOperation.TOP_UP, amount_fen=amount_fen, limits=limits, now=now
    )
    transfer = WalletTransfer(
        idempotency_key=idempotency_key,
        kind=TransferKind.TOP_UP.value,
        state=TransferState.PENDING.value,
        amount_fen=amount_fen,
        user_id=user.id,
        operation=LimitedOperation.TOP_UP.value,
        channel=channel,
        reference=reference,
        description=description,
        credential_id=credential_id,
        created_at=now,
    )
    session.add(transfer)
    await session.flush()
    return transfer, user, False


async def credit_top_up(
    session: AsyncSession,
    *,
    transfer: WalletTransfer,
    user: WalletUser,
    source: AccountKind,
    province_code: str | None,
    now: datetime,
) -> None:
    """Post a top-up: the source account (hall cash, bank, recharge cards) pays into the user's balance."""
    source_account = await ledger.operator_account(session, source, province_code=province_code, now=now)
    balance = await session.get(WalletAccount, user.account_id)
    assert balance is not None
    await ledger.post(
        session,
        transfer=transfer,
        legs=[leg(balance, transfer.amount_fen), leg(source_account, -transfer.amount_fen)],
        now=now,
    )


async def top_up_cash(
    session: AsyncSession,
    *,
    idempotency_key: str,
    msisdn: str,
    amount_fen: int,
    hall_province: str,
    limits: RiskLimits,
    now: datetime,
    credential_id: int | None = None,
) -> WalletTransfer:
    """Cash paid in at a hall counter is credited at once; the hall's province holds the cash."""
    transfer, user, replayed = await start_top_up(
        session,
        idempotency_key=idempotency_key,
        msisdn=msisdn,
        amount_fen=amount_fen,
        channel="hall_cash",
        limits=limits,
        now=now,
        credential_id=credential_id,
    )
    if not replayed:
        await credit_top_up(
            session, transfer=transfer, user=user, source=AccountKind.HALL_CASH, province_code=hall_province, now=now
        )
    return transfer


async def top_up_by_bank(
    session: AsyncSession,
    *,
    idempotency_key: str,
    msisdn: str,
    amount_fen: int,
    channel: BankChannel,
    account: str,
    bank: BankGateway,
    bank_timeout: timedelta,
    limits: RiskLimits,
    now: datetime,
    credential_id: int | None = None,
) -> WalletTransfer:
    """Top up from a bank card or online banking: posted if the bank approves, pending until it answers."""
    check_amount(amount_fen)
    check_bank_account(account)
    # The lock is kept through the bank's answer: the limits checked before the bank is asked still hold after.
    wallet = await lock_wallet(session, msisdn=msisdn, idempotency_key=idempotency_key)
    user, found = wallet.user, wallet.replay
    if found is not None:
        return ledger.same_request(found, kind=TransferKind.TOP_UP.value, amount_fen=amount_fen)
    await check_user_limits(
        session, user=user, operation=LimitedOperation.TOP_UP, amount_fen=amount_fen, limits=limits, now=now
    )
    reference = bank_reference(idempotency_key)
    result = await ask_bank(
        bank.charge(reference=reference, account=account, amount_fen=amount_fen), within=bank_timeout
    )
    if result.status == BankStatus.DECLINED:
        raise ExpoError("payment_declined", f"the bank declined the top-up ({result.reason})", status=402)
    try:
        transfer, user, replayed = await start_top_up(
            session,
            idempotency_key=idempotency_key,
            msisdn=user.msisdn,
            amount_fen=amount_fen,
            channel=channel.value,
            limits=limits,
            now=now,
            reference=reference,
            description=mask_account(account),
            credential_id=credential_id,
        )
        if not replayed and result.status == BankStatus.APPROVED:
            await credit_from_bank(session, transfer=transfer, user=user, now=now)
    except ExpoError:
        # The wallet will not credit this charge: give it back (a pending one is cancelled by reference).
        # Not on a duplicate key (IntegrityError): the charge under that reference is the other request's.
        await bank.refund(reference=reference, amount_fen=amount_fen)
        raise
    return transfer


async def credit_from_bank(session: AsyncSession, *, transfer: WalletTransfer, user: WalletUser, now: datetime) -> None:
    """The bank has the money: the top-up posts from the (national) bank-settlement account."""
    await credit_top_up(
        session, transfer=transfer, user=user, source=AccountKind.BANK_SETTLEMENT, province_code=None, now=now
    )


async def settle_bank_top_up(
    session: AsyncSession, *, transfer: WalletTransfer, result: BankResult, now: datetime
) -> None:
    """The bank's late answer on a pending top-up (locked): approved posts it, declined voids it; else it waits."""
    if transfer.state != TransferState.PENDING.value or result.status == BankStatus.PENDING:
        return
    if result.status == BankStatus.APPROVED:
        user = await session.get(WalletUser, transfer.user_id)
        assert user is not None
        await credit_from_bank(session, transfer=transfer, user=user, now=now)
        return
    await ledger.void(session, transfer=transfer, now=now)
