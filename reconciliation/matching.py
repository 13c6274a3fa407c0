"""Matching a month: hall terminal day closes against the server's sales, gate journals against the server's
entries and tickets, and the ledger's bank-side money against the banks' confirmation files.

Every matcher (`matching_terminals`, `matching_gates`, `matching_bank`) is set-based: the database compares the
two sides and returns only the differences, so a month of millions of sales, entries and payments never comes
into Python. A month is Expo-local (`commission.month_bounds`).
The report of a closed month is stored when it closes (`record_discrepancies`) and read back as it was; an
open month's is computed when asked for (`discrepancy_report`).
"""

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import delete, insert, select
from sqlalchemy.ext.asyncio import AsyncSession

from reconciliation.matching_bank import match_bank_confirmations
from reconciliation.matching_gates import match_gate_journals
from reconciliation.matching_rules import DiscrepancyFound, Source
from reconciliation.matching_terminals import match_terminal_batches
from reconciliation.models import Discrepancy, SettlementMonth
from reconciliation.rules import Month

__all__ = ["DiscrepancyFound", "ReportRow", "discrepancy_report", "match_month", "record_discrepancies"]


async def match_month(session: AsyncSession, *, month: Month, now: datetime) -> list[DiscrepancyFound]:
    """Every difference of the month: terminal day closes, then gate journals, then the banks."""
    return [
        *await match_terminal_batches(session, month=month, now=now),
        *await match_gate_journals(session, month=month),
        *await match_bank_confirmations(session, month=month),
    ]


async def record_discrepancies(
    session: AsyncSession, *, month: Month, found: list[DiscrepancyFound], now: datetime
) -> int:
    """Store the month's report in place of any stored before (called by the close, which refuses closed months)."""
    await session.execute(delete(Discrepancy).where(Discrepancy.month == str(month)))
    if found:
        await session.execute(
            insert(Discrepancy),
            [
                {
                    "month": str(month),
                    "source": item.source.value,
                    "code": item.code,
                    "province": item.province,
                    "subject": item.subject,
                    "expected": item.expected,
                    "found": item.found,
                    "cause": item.cause,
                    "found_at": now,
                }
                for item in found
            ],
        )
    return len(found)


@dataclass(frozen=True)
class ReportRow:
    """A line of a month's discrepancy report, with when it was found."""

    month: str
    item: DiscrepancyFound
    found_at: datetime


async def discrepancy_report(
    session: AsyncSession, *, month: Month, province: str | None, now: datetime
) -> tuple[bool, list[ReportRow]]:
    """(closed?, rows): a closed month's stored report, an open month's computed now (not stored); a province
    sees only its own rows, None sees all."""
    if await session.get(SettlementMonth, str(month)) is not None:
        query = select(Discrepancy).where(Discrepancy.month == str(month)).order_by(Discrepancy.id)
        if province is not None:
            query = query.where(Discrepancy.province == province)
        stored = (await session.scalars(query)).all()
        return True, [
            ReportRow(
                row.month,
                DiscrepancyFound(
                    Source(row.source), row.code, row.province, row.subject, row.expected, row.found, row.cause
                ),
                row.found_at,
            )
            for row in stored
        ]
    live = await match_month(session, month=month, now=now)
    return False, [ReportRow(str(month), item, now) for item in live if province is None or item.province == province]
