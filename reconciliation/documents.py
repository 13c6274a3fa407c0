"""The frozen settlement documents: storing a document's lines once, and reading them back as the rules see them."""

from sqlalchemy import insert, select
from sqlalchemy.ext.asyncio import AsyncSession

from reconciliation import models
from reconciliation.statement_rules import Line, Section, sort_lines


async def store_lines(session: AsyncSession, *, document: str, lines: list[Line]) -> None:
    """Freeze a document's lines (one multi-row INSERT)."""
    if not lines:
        return
    await session.execute(
        insert(models.StatementLine),
        [
            {
                "document": document,
                "section": line.section.value,
                "item": line.item,
                "payer": line.payer,
                "payee": line.payee,
                "count": line.count,
                "amount_fen": line.amount_fen,
                "adjusts": line.adjusts,
                "basis": line.basis[:300],
            }
            for line in lines
        ],
    )


async def stored_lines(session: AsyncSession, *, document: str) -> list[Line]:
    """A frozen document's lines, in print order."""
    rows = await session.scalars(select(models.StatementLine).where(models.StatementLine.document == document))
    return sort_lines(line_of(row) for row in rows)


def line_of(row: models.StatementLine) -> Line:
    """A stored line as the rules see it."""
    return Line(Section(row.section), row.item, row.payer, row.payee, row.count, row.amount_fen, row.basis, row.adjusts)
