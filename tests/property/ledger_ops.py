"""Operations the state machine needs that have no service of their own yet, built on the ledger primitives.

Withdrawals are a hold on the user's balance captured into (or voided from) the bank-settlement account;
red packets are granted from the marketing budget, which the operator's own funds pay into.
"""

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from wallet import ledger
from wallet.accounts import find_user
from wallet.ledger import Leg, leg
from wallet.models import WalletAccount, WalletTransfer, WalletUser
from wallet.rules import AccountKind, LimitedOperation, TransferKind, TransferState, check_amount


async def _new_transfer(
    session: AsyncSession, *, key: str, kind: TransferKind, amount_fen: int, user_id: int | None, now: datetime
) -> WalletTransfer:
    transfer = WalletTransfer(
        idempotency_key=key,
        kind=kind.value,
        state=TransferState.PENDING.value,
        amount_fen=amount_fen,
        user_id=user_id,
        operation=LimitedOperation.WITHDRAWAL.value if kind == TransferKind.WITHDRAWAL else None,
        created_at=now,
    )
    session.add(transfer)
    await session.flush()
    return transfer


async def _withdrawal_legs(session: AsyncSession, *, user: WalletUser, amount_fen: int, now: datetime) -> list[Leg]:
    balance = await session.get(WalletAccount, user.account_id)
    assert balance is not None
    bank = await ledger.operator_account(session, AccountKind.BANK_SETTLEMENT, now=now)
    return [leg(balance, -amount_fen), leg(bank, amount_fen)]


async def hold_withdrawal(session: AsyncSession, *, key: str, msisdn: str, amount_fen: int, now: datetime) -> int:
    """Hold a withdrawal on the user's balance (red packets cannot be withdrawn); a replayed key finds it again."""
    check_amount(amount_fen)
    found = await ledger.existing_transfer(session, idempotency_key=key)
    if found is not None:
        return ledger.same_request(found, kind=TransferKind.WITHDRAWAL.value, amount_fen=amount_fen).id
    user = await find_user(session, msisdn=msisdn)
    await ledger.lock_account(session, user.account_id)
    transfer = await _new_transfer(
        session, key=key, kind=TransferKind.WITHDRAWAL, amount_fen=amount_fen, user_id=user.id, now=now
    )
    legs = await _withdrawal_legs(session, user=user, amount_fen=amount_fen, now=now)
    await ledger.hold(session, transfer=transfer, legs=legs)
    return transfer.id


async def finish_withdrawal(session: AsyncSession, *, transfer_id: int, paid: bool, now: datetime) -> None:
    """The bank paid the withdrawal out (capture) or refused it (void)."""
    transfer = await session.get(WalletTransfer, transfer_id, with_for_update=True, populate_existing=True)
    assert transfer is not None
    assert transfer.user_id is not None
    if not paid:
        await ledger.void(session, transfer=transfer, now=now)
        return
    user = await session.get(WalletUser, transfer.user_id)
    assert user is not None
    legs = await _withdrawal_legs(session, user=user, amount_fen=transfer.amount_fen, now=now)
    await ledger.capture(session, transfer=transfer, legs=legs, now=now)


async def fund_marketing(session: AsyncSession, *, key: str, amount_fen: int, now: datetime) -> int:
    """The operator's own funds pay into the red-packet budget."""
    return await _move(
        session,
        key=key,
        kind=TransferKind.MARKETING_FUNDING,
        amount_fen=amount_fen,
        source=await ledger.operator_account(session, AccountKind.OPERATOR_FUNDS, now=now),
        target=await ledger.operator_account(session, AccountKind.MARKETING, now=now),
        user_id=None,
        now=now,
    )


async def grant_red_packet(session: AsyncSession, *, key: str, msisdn: str, amount_fen: int, now: datetime) -> int:
    """A red packet from the marketing budget into the user's red-packet account; refused past the budget."""
    found = await ledger.existing_transfer(session, idempotency_key=key)
    if found is not None:
        return ledger.same_request(found, kind=TransferKind.RED_PACKET.value, amount_fen=amount_fen).id
    user = await find_user(session, msisdn=msisdn)
    red = await session.scalar(select(WalletAccount).where(WalletAccount.id == user.red_packet_account_id))
    assert red is not None
    return await _move(
        session,
        key=key,
        kind=TransferKind.RED_PACKET,
        amount_fen=amount_fen,
        source=await ledger.operator_account(session, AccountKind.MARKETING, now=now),
        target=red,
        user_id=user.id,
        now=now,
    )


async def _move(
    session: AsyncSession,
    *,
    key: str,
    kind: TransferKind,
    amount_fen: int,
    source: WalletAccount,
    target: WalletAccount,
    user_id: int | None,
    now: datetime,
) -> int:
    check_amount(amount_fen)
    found = await ledger.existing_transfer(session, idempotency_key=key)
    if found is not None:
        return ledger.same_request(found, kind=kind.value, amount_fen=amount_fen).id
    transfer = await _new_transfer(session, key=key, kind=kind, amount_fen=amount_fen, user_id=user_id, now=now)
    await ledger.post(session, transfer=transfer, legs=[leg(source, -amount_fen), leg(target, amount_fen)], now=now)
    return transfer.id
