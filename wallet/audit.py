"""Ledger audit: the stored balances against the postings and holds they summarise.

It holds when: every transfer's postings sum to zero; all balances together sum to zero; each
account's `balance` equals the sum of its postings and its `held` the sum of its open holds; no
restricted account's available balance is negative; and only posted transfers have postings.
"""

from dataclasses import dataclass, field

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from wallet.models import Hold, Posting, WalletAccount, WalletTransfer
from wallet.rules import TransferState


@dataclass
class LedgerReport:
    """What the audit found; `ok` when there is nothing to report."""

    accounts: int = 0
    transfers: int = 0
    postings: int = 0
    total_balance_fen: int = 0
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems and self.total_balance_fen == 0


async def audit_ledger(session: AsyncSession, *, limit: int = 100) -> LedgerReport:
    """Check every invariant of the ledger with set-based queries; report at most `limit` problems per check."""
    report = LedgerReport()
    report.accounts = int(await session.scalar(select(func.count()).select_from(WalletAccount)) or 0)
    report.transfers = int(await session.scalar(select(func.count()).select_from(WalletTransfer)) or 0)
    report.postings = int(await session.scalar(select(func.count()).select_from(Posting)) or 0)
    report.total_balance_fen = int(await session.scalar(select(func.coalesce(func.sum(WalletAccount.balance), 0))) or 0)
    if report.total_balance_fen != 0:
        report.problems.append(f"the balances sum to {report.total_balance_fen} fen, not 0")

    unbalanced = await session.execute(
        select(Posting.transfer_id, func.sum(Posting.amount_fen))
        .group_by(Posting.transfer_id)
        .having(func.sum(Posting.amount_fen) != 0)
        .limit(limit)
    )
    report.problems += [f"transfer {row[0]}: postings sum to {row[1]} fen" for row in unbalanced]

    posted = (
        select(Posting.account_id, func.sum(Posting.amount_fen).label("total")).group_by(Posting.account_id).subquery()
    )
    open_holds = (
        select(Hold.account_id, func.sum(Hold.amount_fen).label("total"))
        .where(Hold.released.is_(False))
        .group_by(Hold.account_id)
        .subquery()
    )
    posted_total = func.coalesce(posted.c.total, 0)
    held_total = func.coalesce(open_holds.c.total, 0)
    drifted = await session.execute(
        select(WalletAccount.code, WalletAccount.balance, posted_total, WalletAccount.held, held_total)
        .outerjoin(posted, posted.c.account_id == WalletAccount.id)
        .outerjoin(open_holds, open_holds.c.account_id == WalletAccount.id)
        .where((WalletAccount.balance != posted_total) | (WalletAccount.held != held_total))
        .limit(limit)
    )
    report.problems += [
        f"account {row[0]}: stored balance {row[1]} / held {row[3]}, postings say {row[2]} / holds say {row[4]}"
        for row in drifted
    ]

    negative = await session.execute(
        select(WalletAccount.code, WalletAccount.balance - WalletAccount.held)
        .where(WalletAccount.restricted.is_(True), WalletAccount.balance - WalletAccount.held < 0)
        .limit(limit)
    )
    report.problems += [f"restricted account {row[0]} is at {row[1]} fen" for row in negative]

    stray = await session.execute(
        select(WalletTransfer.id, WalletTransfer.state)
        .join(Posting, Posting.transfer_id == WalletTransfer.id)
        .where(WalletTransfer.state != TransferState.POSTED.value)
        .distinct()
        .limit(limit)
    )
    report.problems += [f"transfer {row[0]} is {row[1]} but has postings" for row in stray]
    return report
