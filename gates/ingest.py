"""Taking in a gate's journal upload: store each line once, report conflicts, bring the tickets up to date.

Set-based, so that a batch costs a handful of statements whatever its size: one multi-row
`INSERT .. ON CONFLICT DO NOTHING RETURNING seq` (a line already stored, under its (gate, seq) or as the
same card event of another line, is a duplicate, not an error), one `SELECT .. FOR UPDATE` of the tickets
the new lines name (with what the conflicts need), then one `UPDATE` that recomputes those tickets from
every stored line of theirs. Recomputing instead of adding makes the order in which batches (and gates)
arrive irrelevant: an annulment that comes before its entry, or a re-upload, gives the same tickets.
Physical tickets are counted the same way (their lines name the ticket, not a card); when new paper entries
come in, one more SELECT reads the stored entries of their tickets, to report a paper ticket that two gates
let in (`physical_ticket_reused`).

Lock order: the new lines' index entries (sorted by card event), then the named tickets in id order.
The tickets are locked before the recomputing UPDATE and the paper entries' SELECT, so that on PostgreSQL
both already see the lines of a concurrent upload that locked them first.
"""

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, and_, case, exists, func, select, tuple_, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from expo.access.rules import Principal
from expo.clock import expo_local
from gates.devices import device_of
from gates.ingest_rules import (
    ENTRY_EVENTS,
    TICKET_EVENTS,
    Found,
    StoredEntry,
    TicketFacts,
    check_batch,
    conflicts_of,
    duplicate_card_event,
    insert_order,
    paper_reuse,
)
from gates.models import EntryConflict, EntryLine
from gates.wire import Event, GateBatch, GateEntry
from ticketing.card_models import CardWrite
from ticketing.card_writes import WriteState
from ticketing.models import Ticket
from ticketing.rules import CATALOGUE, ticket_kind
from ticketing.sales_rules import Carrier, TicketStatus

TICKET_ID_MAX = 2**31 - 1  # tickets.id is a 32-bit signed integer: a larger id on a card names no ticket
DETAIL_MAX = 300


@dataclass(frozen=True)
class Ingested:
    """The outcome of one upload: lines stored now, lines stored before, conflicts this upload found."""

    gate_id: int
    stored: int
    duplicates: int
    conflicts: list[Found]


async def ingest_batch(session: AsyncSession, *, caller: Principal, batch: GateBatch, now: datetime) -> Ingested:
    """Store a gate's batch idempotently (nothing of a refused batch), record its conflicts and recompute the
    entries of the tickets it names."""
    await device_of(session, caller=caller, gate_id=batch.gate_id)
    check_batch(batch.entries)
    entries = sorted(batch.entries, key=insert_order)
    stored = await _insert_lines(session, gate_id=batch.gate_id, entries=entries, now=now)
    new = [entry for entry in entries if entry.seq in stored]
    found = await _card_event_duplicates(
        session, gate_id=batch.gate_id, skipped=[entry for entry in entries if entry.seq not in stored]
    )
    if new:
        recompute = await _tickets_to_recompute(session, gate_id=batch.gate_id, new=new)
        facts = await _lock_tickets(session, ids=recompute | _ticket_ids(new, TICKET_EVENTS))
        found += conflicts_of(new, tickets=facts, received_at=now)
        found += await _paper_reuse(session, gate_id=batch.gate_id, new=new, tickets=facts)
        if recompute:
            await session.execute(_recompute_statement(recompute), execution_options={"synchronize_session": False})
    recorded = await _record_conflicts(session, gate_id=batch.gate_id, entries=entries, found=found, now=now)
    return Ingested(gate_id=batch.gate_id, stored=len(new), duplicates=len(entries) - len(new), conflicts=recorded)


def _dialect_insert(session: AsyncSession) -> Any:
    """INSERT with ON CONFLICT: each dialect has its own construct."""
    return postgresql.insert if session.get_bind().dialect.name == "postgresql" else sqlite.insert


async def _insert_lines(
    session: AsyncSession, *, gate_id: int, entries: Sequence[GateEntry], now: datetime
) -> set[int]:
    """Insert every line that is not stored yet; the seqs stored by this statement."""
    rows = [
        {
            "gate_id": gate_id,
            "seq": entry.seq,
            "event": entry.event.value,
            "at": entry.at,
            "day": expo_local(entry.at).date(),
            "code": entry.code,
            "csn": entry.csn,
            "ctr": entry.ctr,
            "ticket_id": entry.ticket_id,
            "slot": entry.slot,
            "check_id": entry.check_id,
            "card_marked": entry.card_marked,
            "reason": entry.reason,
            "supervisor": entry.supervisor,
            "annuls_seq": entry.annuls_seq,
            "paper": entry.paper,
            "received_at": now,
        }
        for entry in entries
    ]
    table = EntryLine.__table__
    statement = _dialect_insert(session)(table).on_conflict_do_nothing().returning(table.c.seq)
    result = await session.execute(statement, rows)
    return set(result.scalars())


async def _card_event_duplicates(session: AsyncSession, *, gate_id: int, skipped: Sequence[GateEntry]) -> list[Found]:
    """Of the lines not stored, those this gate never stored under their seq: the card event is another line's."""
    if not skipped:
        return []
    seqs = [entry.seq for entry in skipped]
    known = set(
        await session.scalars(select(EntryLine.seq).where(EntryLine.gate_id == gate_id, EntryLine.seq.in_(seqs)))
    )
    suspects = [entry for entry in skipped if entry.seq not in known and entry.card_marked]
    if not suspects:
        return []
    card_event = tuple_(EntryLine.csn, EntryLine.ctr, EntryLine.event)
    rows = await session.execute(
        select(EntryLine.gate_id, EntryLine.seq, EntryLine.csn, EntryLine.ctr, EntryLine.event).where(
            EntryLine.card_marked, card_event.in_([(e.csn, e.ctr, e.event.value) for e in suspects])
        )
    )
    holders = {(csn, ctr, event): (holder_gate, holder_seq) for holder_gate, holder_seq, csn, ctr, event in rows}
    found = []
    for entry in suspects:
        holder = holders.get((entry.csn, entry.ctr, entry.event.value))
        if holder is not None:
            found.append(duplicate_card_event(entry, holder_gate_id=holder[0], holder_seq=holder[1]))
    return found


def _ticket_ids(entries: Collection[GateEntry], events: Collection[Event]) -> set[int]:
    return {
        entry.ticket_id
        for entry in entries
        if entry.event in events and entry.ticket_id is not None and entry.ticket_id <= TICKET_ID_MAX
    }


async def _tickets_to_recompute(session: AsyncSession, *, gate_id: int, new: Sequence[GateEntry]) -> set[int]:
    """The tickets whose entries the new lines change: those they admit or annul, and those of annulled lines."""
    ids = _ticket_ids(new, (*ENTRY_EVENTS, Event.ANNULLED))
    annulled = [entry.annuls_seq for entry in new if entry.annuls_seq is not None]
    if annulled:
        taken_back = await session.scalars(
            select(EntryLine.ticket_id).where(
                EntryLine.gate_id == gate_id, EntryLine.seq.in_(annulled), EntryLine.ticket_id <= TICKET_ID_MAX
            )
        )
        ids |= {ticket_id for ticket_id in taken_back if ticket_id is not None}
    return ids


async def _lock_tickets(session: AsyncSession, *, ids: Collection[int]) -> dict[int, TicketFacts]:
    """Lock the tickets in id order and read their status and confirmed card (unknown ids are absent).

    The lock waits for concurrent uploads naming these tickets to commit, so the recomputing UPDATE that
    follows sees their lines too (under READ COMMITTED each statement sees what was committed before it).
    """
    if not ids:
        return {}
    confirmed = and_(CardWrite.ticket_id == Ticket.id, CardWrite.state == WriteState.CONFIRMED.value)
    rows = await session.execute(
        select(Ticket.id, Ticket.status, CardWrite.csn, Ticket.ticket_type)
        .outerjoin(CardWrite, confirmed)
        .where(Ticket.id.in_(ids))
        .order_by(Ticket.id)
        .with_for_update(of=Ticket)
    )
    return {
        ticket_id: TicketFacts(status, csn, ticket_kind(ticket_type).entries_allowed)
        for ticket_id, status, csn, ticket_type in rows
    }


async def _paper_reuse(
    session: AsyncSession, *, gate_id: int, new: Sequence[GateEntry], tickets: Mapping[int, TicketFacts]
) -> list[Found]:
    """The new paper entries that make their ticket enter twice a day or past its count, against every stored
    entry of those tickets not annulled (one SELECT, after the tickets' lock: a concurrent upload of the same
    ticket has committed its lines by then)."""
    ids = {entry.ticket_id for entry in new if entry.paper and entry.event in ENTRY_EVENTS} & tickets.keys()
    if not ids:
        return []
    rows = await session.execute(
        select(EntryLine.gate_id, EntryLine.seq, EntryLine.ticket_id, EntryLine.day).where(
            EntryLine.paper, EntryLine.ticket_id.in_(ids), standing_entry()
        )
    )
    standing = [StoredEntry(gate, seq, ticket, day) for gate, seq, ticket, day in rows if ticket is not None]
    return paper_reuse(new, gate_id=gate_id, standing=standing, tickets=tickets)


def standing_entry() -> ColumnElement[bool]:
    """An entry line (admitted or forced) that no annulled line of its own gate takes back."""
    annulment = aliased(EntryLine)
    return and_(
        EntryLine.event.in_([event.value for event in ENTRY_EVENTS]),
        ~exists().where(
            annulment.gate_id == EntryLine.gate_id,
            annulment.annuls_seq == EntryLine.seq,
            annulment.event == Event.ANNULLED.value,
        ),
    )


def _recompute_statement(ids: Collection[int]) -> Any:
    """One UPDATE .. FROM (each ticket's entry lines not annulled, counted) for the given tickets.

    The lines are looked up per ticket by correlated subqueries, so every lookup is an index probe on the
    line's ticket id whatever the table's statistics say (right after a bulk of uploads they are stale,
    and a set-wise `ticket_id IN (...)` was then planned as a scan of the whole table).
    Only issued and used tickets change: a void or refunded ticket that entered anyway keeps its status
    (the conflict report shows it).
    """
    source = aliased(Ticket)
    counted = select().select_from(EntryLine).where(EntryLine.ticket_id == source.id, standing_entry())
    counts = (
        select(
            source.id.label("ticket_id"),
            counted.add_columns(func.count()).scalar_subquery().label("entries"),
            counted.add_columns(func.max(EntryLine.day)).scalar_subquery().label("last_day"),
        )
        .where(source.id.in_(ids))
        .subquery()
    )
    allowed = case(
        {kind.ticket_type.value: kind.entries_allowed for kind in CATALOGUE.values()},
        value=Ticket.ticket_type,
        else_=1,
    )
    other = aliased(Ticket)
    # An annulment can make a used ticket unused again, unless the number bought its next unused ticket
    # meanwhile (one at a time): then it stays used rather than break that rule; the card still has the entry.
    other_unused = exists().where(
        other.msisdn == Ticket.msisdn,
        other.id != Ticket.id,
        other.status.in_((TicketStatus.PENDING.value, TicketStatus.ISSUED.value)),
        other.carrier != Carrier.PHYSICAL.value,
    )
    status = case(
        (counts.c.entries >= allowed, TicketStatus.USED.value),
        (and_(Ticket.status == TicketStatus.USED.value, other_unused), TicketStatus.USED.value),
        else_=TicketStatus.ISSUED.value,
    )
    return (
        update(Ticket)
        .where(
            Ticket.id == counts.c.ticket_id,
            Ticket.status.in_((TicketStatus.ISSUED.value, TicketStatus.USED.value)),
        )
        .values(entries_used=counts.c.entries, last_entry_day=counts.c.last_day, status=status)
    )


async def _record_conflicts(
    session: AsyncSession, *, gate_id: int, entries: Sequence[GateEntry], found: Sequence[Found], now: datetime
) -> list[Found]:
    """Store the conflicts not stored before (a re-upload finds a card event's duplicate again); those stored."""
    if not found:
        return []
    by_seq = {entry.seq: entry for entry in entries}
    rows = [
        {
            "gate_id": gate_id,
            "seq": conflict.seq,
            "code": conflict.code.value,
            "ticket_id": by_seq[conflict.seq].ticket_id,
            "csn": by_seq[conflict.seq].csn,
            "detail": conflict.detail[:DETAIL_MAX],
            "at": by_seq[conflict.seq].at,
            "found_at": now,
        }
        for conflict in found
    ]
    table = EntryConflict.__table__
    statement = _dialect_insert(session)(table).on_conflict_do_nothing().returning(table.c.seq, table.c.code)
    recorded = {(seq, code) for seq, code in await session.execute(statement, rows)}
    return sorted(
        (conflict for conflict in found if (conflict.seq, conflict.code.value) in recorded),
        key=lambda conflict: (conflict.seq, conflict.code.value),
    )
