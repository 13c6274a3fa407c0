"""The double-entry ledger: transfers whose postings sum to zero, holds for two-phase transfers.

Every change of a stored balance is one conditional UPDATE beside the posting that explains it, in
the same transaction, so `balance` always equals the sum of an account's postings and `held` the sum
of its open holds. A restricted account's UPDATE carries its own guard (`balance - held` stays >= 0):
under concurrency the database row lock makes check and change one step, so it can never go negative.

Lock order, to keep concurrent transfers from deadlocking: the user side (balances, red packets)
first, then every other account, each group by id. The other accounts (merchants, fee income, the
bureau's receivable) are the hot ones; their row locks come last and are held only until the commit.
"""

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import insert, or_, select, update
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession

from expo.errors import Conflict, ExpoError
from wallet.models import Hold, Posting, WalletAccount, WalletTransfer
from wallet.rules import RESTRICTED_KINDS, AccountKind, TransferState

USER_SIDE = frozenset({AccountKind.USER, AccountKind.RED_PACKET})


@dataclass(frozen=True)
class Leg:
    """One account's part of a transfer: positive credits it, negative debits it."""

    account_id: int
    amount_fen: int
    user_side: bool = False

    @property
    def lock_order(self) -> tuple[int, int]:
        return (0 if self.user_side else 1, self.account_id)


def leg(account: WalletAccount, amount_fen: int) -> Leg:
    """The leg of `amount_fen` on `account`, ordered by the account's kind."""
    return Leg(account.id, amount_fen, user_side=account.kind in USER_SIDE)


def check_balanced(legs: Iterable[Leg]) -> list[Leg]:
    """A transfer's legs sum to zero; zero legs are dropped and legs on one account are merged."""
    merged: dict[int, Leg] = {}
    for item in legs:
        before = merged.get(item.account_id)
        merged[item.account_id] = Leg(
            item.account_id, item.amount_fen + (before.amount_fen if before else 0), item.user_side
        )
    if sum(item.amount_fen for item in merged.values()) != 0:
        raise ValueError(f"unbalanced transfer: {list(merged.values())}")
    return sorted((item for item in merged.values() if item.amount_fen), key=lambda item: item.lock_order)


class InsufficientFunds(ExpoError):
    def __init__(self, account_kind: str) -> None:
        code = "insufficient_funds" if account_kind in USER_SIDE else f"{account_kind}_balance_insufficient"
        super().__init__(code, "the account's available balance does not cover this", status=402)


async def post(session: AsyncSession, *, transfer: WalletTransfer, legs: Iterable[Leg], now: datetime) -> None:
    """Post a balanced transfer: move each balance (restricted ones only while covered), append the postings."""
    ordered = check_balanced(legs)
    for item in ordered:
        guard = [WalletAccount.id == item.account_id]
        if item.amount_fen < 0:
            guard.append(
                or_(
                    WalletAccount.restricted.is_(False),
                    WalletAccount.balance - WalletAccount.held + item.amount_fen >= 0,
                )
            )
        moved = await session.execute(
            update(WalletAccount)
            .where(*guard)
            .values(balance=WalletAccount.balance + item.amount_fen)
            .returning(WalletAccount.id)
        )
        if moved.scalar_one_or_none() is None:
            raise InsufficientFunds(await _kind_of(session, item.account_id))
    if ordered:
        await session.execute(
            insert(Posting),
            [
                {
                    "transfer_id": transfer.id,
                    "account_id": item.account_id,
                    "amount_fen": item.amount_fen,
                    "created_at": now,
                }
                for item in ordered
            ],
        )
    transfer.state = TransferState.POSTED.value
    transfer.finished_at = now


async def hold(session: AsyncSession, *, transfer: WalletTransfer, legs: Iterable[Leg]) -> None:
    """Hold the debit legs of a pending transfer on their (restricted) accounts; refused if not covered."""
    debits = [item for item in check_balanced(legs) if item.amount_fen < 0]
    for item in debits:
        held = await session.execute(
            update(WalletAccount)
            .where(
                WalletAccount.id == item.account_id,
                WalletAccount.balance - WalletAccount.held + item.amount_fen >= 0,
            )
            .values(held=WalletAccount.held - item.amount_fen)
            .returning(WalletAccount.id)
        )
        if held.scalar_one_or_none() is None:
            raise InsufficientFunds(await _kind_of(session, item.account_id))
    if debits:
        await session.execute(
            insert(Hold),
            [
                {"transfer_id": transfer.id, "account_id": item.account_id, "amount_fen": -item.amount_fen}
                for item in debits
            ],
        )
    transfer.state = TransferState.PENDING.value


async def release_holds(session: AsyncSession, *, transfer: WalletTransfer) -> None:
    """Give back what a pending transfer held (before capturing or voiding it)."""
    holds = (
        await session.scalars(
            select(Hold).where(Hold.transfer_id == transfer.id, Hold.released.is_(False)).order_by(Hold.account_id)
        )
    ).all()
    for item in holds:
        await session.execute(
            update(WalletAccount)
            .where(WalletAccount.id == item.account_id)
            .values(held=WalletAccount.held - item.amount_fen)
        )
        item.released = True


async def capture(session: AsyncSession, *, transfer: WalletTransfer, legs: Iterable[Leg], now: datetime) -> None:
    """Second phase: the held money moves; the held amount always covers the debits, so this cannot be refused."""
    if transfer.state != TransferState.PENDING.value:
        raise Conflict("transfer_not_pending", f"transfer {transfer.id} is {transfer.state}", state=transfer.state)
    await release_holds(session, transfer=transfer)
    await post(session, transfer=transfer, legs=legs, now=now)


async def void(session: AsyncSession, *, transfer: WalletTransfer, now: datetime) -> None:
    """Second phase, the other way: the hold is released and nothing moves."""
    if transfer.state != TransferState.PENDING.value:
        raise Conflict("transfer_not_pending", f"transfer {transfer.id} is {transfer.state}", state=transfer.state)
    await release_holds(session, transfer=transfer)
    transfer.state = TransferState.VOIDED.value
    transfer.finished_at = now


async def _kind_of(session: AsyncSession, account_id: int) -> str:
    return str(await session.scalar(select(WalletAccount.kind).where(WalletAccount.id == account_id)))


async def lock_account(session: AsyncSession, account_id: int) -> WalletAccount:
    """Lock one account row (the payer's, before its limits and balance are read) for this transaction."""
    account = await session.get(WalletAccount, account_id, with_for_update=True, populate_existing=True)
    if account is None:
        raise LookupError(account_id)
    return account


async def operator_account(
    session: AsyncSession, kind: AccountKind, *, province_code: str | None = None, now: datetime
) -> WalletAccount:
    """The operator's account of a kind (per province where it has one), opened the first time it is needed."""
    code = f"{kind.value}:{province_code}" if province_code else kind.value
    account = await session.scalar(select(WalletAccount).where(WalletAccount.code == code))
    if account is not None:
        return account
    values = {
        "code": code,
        "kind": kind.value,
        "province_code": province_code,
        "restricted": kind in RESTRICTED_KINDS,
        "balance": 0,
        "held": 0,
        "created_at": now,
    }
    dialect = session.get_bind().dialect.name
    statement = (postgresql_insert if dialect == "postgresql" else sqlite_insert)(WalletAccount).values(values)
    await session.execute(statement.on_conflict_do_nothing(index_elements=["code"]))
    return (await session.scalars(select(WalletAccount).where(WalletAccount.code == code))).one()


async def new_account(
    session: AsyncSession, *, code: str, kind: AccountKind, province_code: str | None, now: datetime
) -> WalletAccount:
    """Open an account with a zero balance."""
    account = WalletAccount(
        code=code,
        kind=kind.value,
        province_code=province_code,
        restricted=kind in RESTRICTED_KINDS,
        balance=0,
        held=0,
        created_at=now,
    )
    session.add(account)
    await session.flush()
    return account


async def existing_transfer(session: AsyncSession, *, idempotency_key: str) -> WalletTransfer | None:
    """The transfer an idempotency key already made, if any: a key applies once."""
    return await session.scalar(select(WalletTransfer).where(WalletTransfer.idempotency_key == idempotency_key))


def same_request(transfer: WalletTransfer, *, kind: str, amount_fen: int) -> WalletTransfer:
    """A replayed key must describe the same transfer; another one under the same key is refused."""
    if transfer.kind != kind or transfer.amount_fen != amount_fen:
        raise ExpoError("idempotency_key_reused", "this idempotency key was used for another transfer", status=422)
    return transfer
