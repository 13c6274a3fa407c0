"""Matching gate journals against the server's entries and tickets, in the database.

Each gate numbers its journal lines 1, 2, ... and uploads them (`gates.ingest`), which stores each line once,
records the conflicts it shows and recounts the tickets' entries. Matching a month reports the seq numbers a
gate skipped (lines journaled and never uploaded), the conflicts of the month's lines, and the tickets whose
entries used differ from the admissions the journals hold for them (admitted or forced, not annulled).
"""

from sqlalchemy import ColumnElement, and_, func, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from gates.ingest import standing_entry
from gates.models import EntryConflict, EntryLine
from reconciliation import matching_rules as rules
from reconciliation.commission import month_bounds
from reconciliation.matching_rules import DiscrepancyFound
from reconciliation.rules import Month
from ticketing.models import Order, Ticket
from ticketing.sales_rules import TicketStatus


async def match_gate_journals(session: AsyncSession, *, month: Month) -> list[DiscrepancyFound]:
    """Gaps in each gate's journal among its lines of the month, the conflicts of the month's lines, and the
    tickets entered in the month whose entries used differ from their standing admissions."""
    in_month = and_(EntryLine.day >= month.first_day, EntryLine.day <= month.last_day)
    numbered = (
        select(
            EntryLine.gate_id,
            EntryLine.seq,
            func.lag(EntryLine.seq).over(partition_by=EntryLine.gate_id, order_by=EntryLine.seq).label("previous"),
        )
        .where(in_month)
        .subquery("numbered")
    )
    earlier = aliased(EntryLine)
    # The month's first line of a gate follows the last one it uploaded before (0: its journal starts at 1).
    before = (
        select(func.coalesce(func.max(earlier.seq), 0))
        .where(earlier.gate_id == numbered.c.gate_id, earlier.seq < numbered.c.seq)
        .scalar_subquery()
    )
    previous = func.coalesce(numbered.c.previous, before)
    gaps = (
        select(numbered.c.gate_id, previous, numbered.c.seq)
        .where(numbered.c.seq - previous > 1)
        .order_by(numbered.c.gate_id, numbered.c.seq)
    )
    found = [
        rules.journal_gap(gate_id=gate_id, after_seq=int(after), next_seq=seq)
        for gate_id, after, seq in await session.execute(gaps)
    ]
    start, end = month_bounds(month)
    conflicts = (
        select(
            EntryConflict.gate_id,
            EntryConflict.seq,
            EntryConflict.code,
            EntryConflict.detail,
            EntryConflict.ticket_id,
            Order.sale_province,
        )
        .outerjoin(Ticket, Ticket.id == EntryConflict.ticket_id)
        .outerjoin(Order, Order.id == Ticket.order_id)
        .where(EntryConflict.at >= start, EntryConflict.at < end)
        .order_by(EntryConflict.gate_id, EntryConflict.seq, EntryConflict.code)
    )
    found += [
        rules.gate_conflict(gate_id=gate_id, seq=seq, code=code, detail=detail, ticket_id=ticket_id, province=province)
        for gate_id, seq, code, detail, ticket_id, province in await session.execute(conflicts)
    ]
    return found + await _entry_counts(session, in_month=in_month)


async def _entry_counts(session: AsyncSession, *, in_month: ColumnElement[bool]) -> list[DiscrepancyFound]:
    """Issued and used tickets (the ones the gates' uploads keep counted; a revoked ticket that entered is a
    conflict) named by a line of the month, whose entries used differ from their standing lines.

    Driven from the month's lines (by day), never from the tickets: a ticket last entered in the month is named by
    one of them, since its entries used and last entry day are only ever the count and latest day of its standing
    lines (`gates.ingest` recounts them at each upload). Each ticket's lines are counted by an index probe on the
    line's ticket id, whatever month they are of."""
    touched = (
        select(EntryLine.ticket_id.label("ticket_id"))
        .where(in_month, EntryLine.ticket_id.is_not(None))
        .distinct()
        .subquery("touched")
    )
    entries = (
        select(func.count())
        .select_from(EntryLine)
        .where(EntryLine.ticket_id == Ticket.id, standing_entry())
        .scalar_subquery()
    )
    counted = (
        select(Ticket.id.label("ticket_id"), Ticket.entries_used.label("used"), entries.label("n"), Order.sale_province)
        .join(touched, touched.c.ticket_id == Ticket.id)
        .join(Order, Order.id == Ticket.order_id)
        .where(Ticket.status.in_((TicketStatus.ISSUED.value, TicketStatus.USED.value)))
        .subquery("counted")
    )
    query = select(counted).where(counted.c.used != counted.c.n).order_by(counted.c.ticket_id)
    return [
        rules.entry_count_mismatch(ticket_id=ticket_id, entries_used=used, entry_lines=int(n), province=province)
        for ticket_id, used, n, province in await session.execute(query)
    ]
