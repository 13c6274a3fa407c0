"""Withdrawals (提现): money out of a wallet's own balance to a bank card, in 1-3 working days.

Only the main balance is withdrawn, never red packets (they are the operator's gift, spendable only).
The payment password was checked by the caller; the withdrawal limits apply. Under the balance's row
lock the balance is checked, the bank is asked to pay out, and only then is the withdrawal written with
its amount held: a payout declined at once writes nothing. The bank pays within working days, so the
withdrawal stays pending; the bank's confirmation (a signed notification, or the sweep's query after a
working day) captures the held money to the bank-settlement account, a failure voids the hold.
If the write fails after the bank accepted the payout, the retry of the request names the same payout
(the reference comes from its Idempotency-Key) and writes it; the bank's payout file is reconciled daily.
"""

from datetime import datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from expo.bank import BankGateway, BankResult, BankStatus, mask_account
from expo.clock import expo_local
from expo.errors import ExpoError
from wallet import ledger
from wallet.accounts import lock_wallet
from wallet.ledger import InsufficientFunds, Leg, leg
from wallet.limits import check_user_limits
from wallet.models import WalletAccount, WalletTransfer, WalletUser
from wallet.rules import AccountKind, LimitedOperation, RiskLimits, TransferKind, TransferState, check_amount
from wallet.topups import ask_bank, bank_reference, check_bank_account

WITHDRAWAL_CHANNEL = "bank_card"
SATURDAY = 5


def add_working_days(start: datetime, days: int) -> datetime:
    """The same Shanghai wall-clock time `days` working days later; Saturdays and Sundays do not count.

    Public holidays (Spring Festival, the National Day week, the swapped weekend working days) are not
    modelled: a bank's calendar would be needed for them.
    """
    at = expo_local(start)
    left = days
    while left > 0:
        at += timedelta(days=1)
        if at.weekday() < SATURDAY:
            left -= 1
    return at


async def request_withdrawal(
    session: AsyncSession,
    *,
    idempotency_key: str,
    msisdn: str,
    amount_fen: int,
    account: str,
    bank: BankGateway,
    bank_timeout: timedelta,
    limits: RiskLimits,
    now: datetime,
    credential_id: int | None = None,
) -> WalletTransfer:
    """Withdraw from the main balance to a bank card: the amount is held until the bank confirms the payout."""
    check_amount(amount_fen)
    check_bank_account(account)
    # The lock is kept through the bank's answer: the balance checked is still there to hold.
    wallet = await lock_wallet(session, msisdn=msisdn, idempotency_key=idempotency_key)
    user, balance, found = wallet.user, wallet.balance, wallet.replay
    if found is not None:
        return ledger.same_request(found, kind=TransferKind.WITHDRAWAL.value, amount_fen=amount_fen)
    await check_user_limits(
        session, user=user, operation=LimitedOperation.WITHDRAWAL, amount_fen=amount_fen, limits=limits, now=now
    )
    if balance.balance - balance.held < amount_fen:
        raise InsufficientFunds(AccountKind.USER)
    reference = bank_reference(idempotency_key)
    result = await ask_bank(
        bank.payout(reference=reference, account=account, amount_fen=amount_fen), within=bank_timeout
    )
    if result.status == BankStatus.DECLINED:
        raise ExpoError("payout_declined", f"the bank refused the payout ({result.reason})", status=402)
    transfer = WalletTransfer(
        idempotency_key=idempotency_key,
        kind=TransferKind.WITHDRAWAL.value,
        state=TransferState.PENDING.value,
        amount_fen=amount_fen,
        user_id=user.id,
        operation=LimitedOperation.WITHDRAWAL.value,
        channel=WITHDRAWAL_CHANNEL,
        reference=reference,
        description=mask_account(account),
        credential_id=credential_id,
        created_at=now,
    )
    session.add(transfer)
    await session.flush()
    await ledger.hold(session, transfer=transfer, legs=await _legs(session, transfer=transfer, user=user, now=now))
    await settle_withdrawal(session, transfer=transfer, result=result, now=now)
    return transfer


async def settle_withdrawal(
    session: AsyncSession, *, transfer: WalletTransfer, result: BankResult, now: datetime
) -> None:
    """The bank's answer on a pending withdrawal (locked): paid captures the held money, failed releases it."""
    if transfer.state != TransferState.PENDING.value or result.status == BankStatus.PENDING:
        return
    if result.status == BankStatus.DECLINED:
        await ledger.void(session, transfer=transfer, now=now)
        return
    user = await session.get(WalletUser, transfer.user_id)
    assert user is not None
    await ledger.capture(
        session, transfer=transfer, legs=await _legs(session, transfer=transfer, user=user, now=now), now=now
    )


async def _legs(session: AsyncSession, *, transfer: WalletTransfer, user: WalletUser, now: datetime) -> list[Leg]:
    """Out of the user's main balance (never the red packets), into the money leaving through the banks."""
    balance = await session.get(WalletAccount, user.account_id)
    assert balance is not None
    banks = await ledger.operator_account(session, AccountKind.BANK_SETTLEMENT, now=now)
    return [leg(balance, -transfer.amount_fen), leg(banks, transfer.amount_fen)]
