"""Reading the frozen settlement documents: the closed months, and one party's statement of a month or of the
final commission settlement. Statements exist only for what is closed; nothing here computes or changes figures.
"""

from dataclasses import dataclass, replace
from datetime import datetime

from sqlalchemy import or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from expo.errors import Conflict, NotFound
from reconciliation import models
from reconciliation.documents import line_of
from reconciliation.rules import Month
from reconciliation.statement_rules import FINAL_DOCUMENT, Line, sort_lines


@dataclass(frozen=True)
class PartyStatement:
    """One party's lines of a closed document, and when and over what it was closed."""

    document: str
    party: str
    closed_at: datetime
    window_start: datetime | None
    window_end: datetime | None
    rates: str | None
    lines: list[Line]


async def closed_months(session: AsyncSession) -> list[models.SettlementMonth]:
    """Every closed month, oldest first."""
    return list((await session.scalars(select(models.SettlementMonth).order_by(models.SettlementMonth.month))).all())


async def read_statement(session: AsyncSession, *, document: str, party: str) -> PartyStatement:
    """A party's statement of a closed month or of the final commission settlement; refused while not closed."""
    if document == FINAL_DOCUMENT:
        final = await session.get(models.CommissionFinal, 1)
        if final is None:
            raise NotFound("commission_not_final", "the commission has not been settled yet (expo settle commission)")
        head = PartyStatement(document, party, final.settled_at, None, None, None, [])
    else:
        month = await session.get(models.SettlementMonth, str(Month.parse(document)))
        if month is None:
            raise Conflict("month_not_closed", f"{document} is not closed: its statements exist once it is")
        head = PartyStatement(document, party, month.closed_at, month.window_start, month.window_end, month.rates, [])
    line = models.StatementLine
    rows = await session.scalars(
        select(line).where(line.document == document, or_(line.payer == party, line.payee == party))
    )
    return replace(head, lines=sort_lines(line_of(row) for row in rows))
