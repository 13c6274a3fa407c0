"""Top-ups: money into a wallet, counted against the user's top-up limits.

Cash at a hall counter posts at once against the province's hall-cash account.
"""

from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from wallet import ledger
from wallet.accounts import find_user
from wallet.ledger import leg
from wallet.limits import check_user_limits
from wallet.models import WalletAccount, WalletTransfer, WalletUser
from wallet.rules import AccountKind, LimitedOperation, RiskLimits, TransferKind, TransferState, check_amount


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
    credential_id: int | None = None,
) -> tuple[WalletTransfer, WalletUser, bool]:
    """The top-up's transfer row (pending), after the amount and the user's limits are checked; or the replayed one."""
    check_amount(amount_fen)
    found = await ledger.existing_transfer(session, idempotency_key=idempotency_key)
    if found is not None:
        ledger.same_request(found, kind=TransferKind.TOP_UP.value, amount_fen=amount_fen)
        user = await session.get(WalletUser, found.user_id)
        assert user is not None
        return found, user, True
    user = await find_user(session, msisdn=msisdn)
    await ledger.lock_account(session, user.account_id)
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
