"""Pure rules of taking in a gate's upload: which lines make sense, and what in them needs a person's look.

A batch is all or nothing: one inconsistent line refuses it (`invalid_entry` with its `seq`), because a
gate that wrote it has a fault to fix, and storing the rest would hide it. Conflicts do not refuse
anything: the entry happened at the gate whatever the server thinks of it, so it is stored and reported.
"""

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from enum import StrEnum

from expo.clock import expo_local
from expo.errors import ExpoError
from gates.wire import Event, GateEntry
from ticketing.sales_rules import TicketStatus

# An upload this long after the decision means the gate was cut off (or its clock is wrong).
LATE_UPLOAD = timedelta(minutes=30)

# Lines that let a visitor in; an `annulled` line takes one of them back.
ENTRY_EVENTS = frozenset({Event.ADMITTED, Event.FORCED})
# Lines that used a ticket from a card (so they name the card, the ticket and its slot).
TICKET_EVENTS = frozenset({Event.ADMITTED, Event.FORCED, Event.SOUVENIR})
REVOKED = frozenset({TicketStatus.VOID.value, TicketStatus.REFUNDED.value})


class ConflictCode(StrEnum):
    """What an uploaded line shows that the platform did not expect."""

    REVOKED_TICKET_ENTERED = "revoked_ticket_entered"  # admitted or forced with a void or refunded ticket
    UNKNOWN_TICKET = "unknown_ticket"  # the card names a ticket id the platform never sold
    TICKET_NOT_ON_CARD = "ticket_not_on_card"  # the ticket's confirmed write went to another card
    FORCED_ADMISSION = "forced_admission"  # every forced admission, for the supervisor's review
    LATE_UPLOAD = "late_upload"  # received more than LATE_UPLOAD after the decision
    DUPLICATE_CARD_EVENT = "duplicate_card_event"  # the same card event (csn, ctr, event) under another line
    PHYSICAL_TICKET_REUSED = "physical_ticket_reused"  # a paper ticket entered twice a day, or beyond its count


@dataclass(frozen=True)
class TicketFacts:
    """What the platform knows of a ticket a line names: its status, the card its write was confirmed on and
    the entries its type allows."""

    status: str
    card_csn: str | None
    entries_allowed: int = 1


@dataclass(frozen=True)
class StoredEntry:
    """An entry line as stored (any gate): which line, which ticket, which Expo day."""

    gate_id: int
    seq: int
    ticket_id: int
    day: date


@dataclass(frozen=True)
class Found:
    """One conflict of one line."""

    seq: int
    code: ConflictCode
    detail: str


def check_batch(entries: Sequence[GateEntry]) -> None:
    """Refuse the whole batch at its first inconsistent line: a seq twice, a time without a zone, a ticket event
    without its card, ticket and slot (a paper one without its ticket), a paper line naming a card or a souvenir,
    a card event without its counter, an annulment without what it annuls."""
    seen: set[int] = set()
    for entry in entries:
        problem = _problem_of(entry, seen)
        if problem is not None:
            raise ExpoError("invalid_entry", f"seq {entry.seq}: {problem}", status=400, seq=entry.seq)
        seen.add(entry.seq)


def _problem_of(entry: GateEntry, seen: set[int]) -> str | None:
    if entry.seq in seen:
        return "seq twice in one batch"
    if entry.at.tzinfo is None or entry.at.utcoffset() is None:
        return "`at` has no time zone"
    if entry.paper:
        problem = _paper_problem(entry)
        if problem is not None:
            return problem
    elif entry.event in TICKET_EVENTS and (entry.csn is None or entry.ticket_id is None or entry.slot is None):
        return f"a {entry.event} line names its csn, ticket_id and slot"
    if entry.card_marked and (entry.csn is None or entry.ctr is None):
        return "a line the card recorded names its csn and ctr"
    if (entry.event == Event.ANNULLED) != (entry.annuls_seq is not None):
        return "annuls_seq belongs to, and only to, an annulled line"
    if entry.annuls_seq is not None and entry.annuls_seq >= entry.seq:
        return "an annulment comes after the line it annuls"
    return None


def _paper_problem(entry: GateEntry) -> str | None:
    if entry.event == Event.SOUVENIR:
        return "a souvenir is handed out for a card's ticket, never on paper"
    if entry.csn is not None or entry.ctr is not None or entry.slot is not None or entry.card_marked:
        return "a paper line names no card: no csn, ctr, slot or card_marked"
    if entry.event in TICKET_EVENTS and entry.ticket_id is None:
        return f"a paper {entry.event} line names its ticket_id"
    return None


def conflicts_of(
    entries: Iterable[GateEntry], *, tickets: Mapping[int, TicketFacts], received_at: datetime
) -> list[Found]:
    """The conflicts of newly stored lines, given the platform's facts of the tickets they name."""
    found: list[Found] = []
    for entry in entries:
        found.extend(_line_conflicts(entry, tickets=tickets, received_at=received_at))
    return found


def _line_conflicts(entry: GateEntry, *, tickets: Mapping[int, TicketFacts], received_at: datetime) -> list[Found]:
    found: list[Found] = []

    def add(code: ConflictCode, detail: str) -> None:
        found.append(Found(entry.seq, code, detail))

    if entry.event == Event.FORCED:
        add(
            ConflictCode.FORCED_ADMISSION, f"forced ({entry.code}): {entry.reason or '-'}; by {entry.supervisor or '-'}"
        )
    delay = received_at - entry.at
    if delay > LATE_UPLOAD:
        add(ConflictCode.LATE_UPLOAD, f"received {int(delay.total_seconds() // 60)} min after the decision")
    if entry.event not in TICKET_EVENTS or entry.ticket_id is None:
        return found
    facts = tickets.get(entry.ticket_id)
    if facts is None:
        add(ConflictCode.UNKNOWN_TICKET, f"no ticket {entry.ticket_id}")
        return found
    if entry.event in ENTRY_EVENTS and facts.status in REVOKED:
        add(ConflictCode.REVOKED_TICKET_ENTERED, f"ticket {entry.ticket_id} is {facts.status}")
    if not entry.paper and facts.card_csn is not None and facts.card_csn != entry.csn:
        add(ConflictCode.TICKET_NOT_ON_CARD, f"ticket {entry.ticket_id} was written to card {facts.card_csn}")
    return found


def duplicate_card_event(entry: GateEntry, *, holder_gate_id: int, holder_seq: int) -> Found:
    """A card event another line already recorded: the card did it once, so it is counted once."""
    return Found(
        entry.seq,
        ConflictCode.DUPLICATE_CARD_EVENT,
        f"card {entry.csn} ctr {entry.ctr} {entry.event} is already gate {holder_gate_id} seq {holder_seq}",
    )


def paper_reuse(
    new: Iterable[GateEntry], *, gate_id: int, standing: Sequence[StoredEntry], tickets: Mapping[int, TicketFacts]
) -> list[Found]:
    """New paper entries of a ticket that entered elsewhere the same day, or past the entries its type allows:
    `standing` is every stored entry line of those tickets (this upload's too) that no line annuls.

    Only this upload's lines are flagged, against all stored ones, so whichever of two gates uploads second
    is flagged (both, when they come in one upload), and a re-upload (nothing new) flags nothing."""
    by_ticket: dict[int, list[StoredEntry]] = {}
    for line in sorted(standing, key=lambda line: (line.day, line.gate_id, line.seq)):
        by_ticket.setdefault(line.ticket_id, []).append(line)
    found = []
    for entry in new:
        facts = tickets.get(entry.ticket_id or 0)
        entries = by_ticket.get(entry.ticket_id or 0, [])
        if not entry.paper or entry.event not in ENTRY_EVENTS or facts is None:
            continue
        if not any((line.gate_id, line.seq) == (gate_id, entry.seq) for line in entries):
            continue  # annulled already: it let nobody in
        others = [line for line in entries if (line.gate_id, line.seq) != (gate_id, entry.seq)]
        day = expo_local(entry.at).date()
        same_day = [line for line in others if line.day == day]
        if same_day:
            other = same_day[0]
            detail = f"ticket {entry.ticket_id} also entered on {day} at gate {other.gate_id} seq {other.seq}"
        elif others and len(entries) > facts.entries_allowed:
            other = others[-1]
            detail = (
                f"ticket {entry.ticket_id} entered {len(entries)} times, its type allows {facts.entries_allowed};"
                f" also gate {other.gate_id} seq {other.seq} on {other.day}"
            )
        else:
            continue
        found.append(Found(entry.seq, ConflictCode.PHYSICAL_TICKET_REUSED, detail))
    return found


def insert_order(entry: GateEntry) -> tuple[str, int, str, int]:
    """Rows go in ordered by the card event, then seq: two uploads that collide wait on each other's index
    entries in the same order, so they cannot deadlock."""
    return (entry.csn or "", entry.ctr if entry.ctr is not None else -1, entry.event.value, entry.seq)
