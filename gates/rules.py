"""What a gate decides from a card it has read: which ticket, admit or refuse, and why. Pure.

Inputs are what the tap found (the CSN and the records of the occupied slots), the card's VALIDATE key
from the SAM, the SAM's key version, the revoked ticket ids, what the gate's own journal says of this
card today, and the instant. A record is trusted only under its platform MAC (bound to the CSN, so a
record copied from another card fails). The day, peak-day and evening rules are `ticketing.rules`'s.

A card is one visitor: once any of its tickets entered today (by the card's record, or by this gate's
journal), no other ticket on it gets in the same day, since that would be a re-entry.
"""

from collections.abc import Collection, Container, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from types import MappingProxyType

from expo.clock import expo_local
from gates.wire import Event, GateEntry
from simcard.record import (
    ANNUL_WINDOW_SECONDS,
    FLAG_UPGRADE_PAID,
    TicketRecord,
    day_date,
    day_number,
    mac_is_valid,
)
from ticketing.card_rules import TYPE_CODES
from ticketing.rules import CATALOGUE, TicketType, TicketUse, decide_entry, is_expo_day

OK = "ok"
UNANSWERED_CODES = frozenset({"card_removed", "card_error"})
ANNUL_WINDOW = timedelta(seconds=ANNUL_WINDOW_SECONDS)

TICKET_TYPES: Mapping[int, TicketType] = MappingProxyType({code: kind for kind, code in TYPE_CODES.items()})

# When every ticket is refused the gate shows one code: the first of these that any ticket has (then the
# lowest slot). Security first, then what is about the visit now, then what is about another day.
ENTRY_REFUSALS = (
    "tampered_record",
    "unknown_key_version",
    "unknown_ticket_type",
    "revoked",
    "journal_says_entered",
    "already_entered_today",
    "evening_not_yet",
    "peak_day_not_valid",
    "not_yet_valid",
    "no_entries_left",
    "already_used",
    "expired",
    "outside_expo",
)
SOUVENIR_REFUSALS = (
    "tampered_record",
    "unknown_key_version",
    "unknown_ticket_type",
    "revoked",
    "souvenir_taken",
    "not_entered",
)


@dataclass(frozen=True)
class Verdict:
    """One ticket judged: its slot, its record (None unless its platform MAC holds), the code and the ID check."""

    slot: int
    code: str
    record: TicketRecord | None = None
    ticket_type: TicketType | None = None
    check_id: bool = False

    @property
    def ticket_id(self) -> int | None:
        """The ticket id, only when the record is trusted."""
        return None if self.record is None else self.record.ticket_id


@dataclass(frozen=True)
class GateDecision:
    """The gate's answer for a card: admit (or hand out a souvenir) with `slot`'s ticket, or refuse with `code`.

    On a refusal `ticket` is the ticket the code is about (None when no trusted ticket explains it)."""

    admit: bool
    code: str
    ticket: Verdict | None = None

    @property
    def slot(self) -> int | None:
        """The slot of the ticket decided on."""
        return None if self.ticket is None else self.ticket.slot

    @property
    def record(self) -> TicketRecord | None:
        """The trusted record of the ticket decided on."""
        return None if self.ticket is None else self.ticket.record

    @property
    def check_id(self) -> bool:
        """Concession tickets: staff check the holder's ID."""
        return self.ticket is not None and self.ticket.check_id


def ticket_use(record: TicketRecord, ticket_type: TicketType) -> TicketUse:
    """What `ticketing.rules.decide_entry` needs to know of a card record."""
    kind = CATALOGUE[ticket_type]
    upgraded = record.flags & FLAG_UPGRADE_PAID
    return TicketUse(
        ticket_type=ticket_type,
        visit_day=day_date(record.first_day) if kind.dated else None,
        upgrade_day=day_date(record.upgrade_day) if upgraded else None,
        entries_used=record.entries_used,
        last_entry_day=day_date(record.last_entry_day),
    )


def trusted_ticket(slot: int, raw: bytes, *, csn: bytes, card_key: bytes, key_version: int) -> Verdict:
    """The record if its platform MAC holds under the SAM's key; else a verdict that trusts nothing in it."""
    record = TicketRecord.decode(raw)
    if record.key_version != key_version:
        return Verdict(slot, "unknown_key_version")
    if not mac_is_valid(raw, card_key, csn):
        return Verdict(slot, "tampered_record")
    ticket_type = TICKET_TYPES.get(record.ticket_type)
    if ticket_type is None:
        return Verdict(slot, "unknown_ticket_type", record)
    return Verdict(slot, OK, record, ticket_type, CATALOGUE[ticket_type].concession)


def judge_entry(
    slot: int, raw: bytes, *, csn: bytes, card_key: bytes, key_version: int, revoked: Container[int], at: datetime
) -> Verdict:
    """One ticket at the gate: trusted, not revoked, within its valid days, then `decide_entry` (day, peak, hour)."""
    verdict = trusted_ticket(slot, raw, csn=csn, card_key=card_key, key_version=key_version)
    if verdict.code != OK or verdict.record is None or verdict.ticket_type is None:
        return verdict
    record = verdict.record
    day = expo_local(at).date()
    code = validity_refusal(
        ticket_id=record.ticket_id, first_day=record.first_day, last_day=record.last_day, day=day, revoked=revoked
    )
    if code is None:
        code = decide_entry(use=ticket_use(record, verdict.ticket_type), at=at).code
    return Verdict(slot, code, record, verdict.ticket_type, verdict.check_id)


def validity_refusal(
    *, ticket_id: int, first_day: int, last_day: int, day: date, revoked: Container[int]
) -> str | None:
    """Whether a ticket may be used on an Expo day at all, whatever carries it: `revoked` (voided or refunded),
    `outside_expo`, `not_yet_valid` / `expired` (before its first or after its last valid day, as card day
    numbers); None when it may."""
    if ticket_id in revoked:
        return "revoked"
    if not is_expo_day(day):
        return "outside_expo"
    number = day_number(day)
    if number < first_day:
        return "not_yet_valid"
    if number > last_day:
        return "expired"
    return None


def decide_card_entry(
    *,
    csn: bytes,
    records: Sequence[tuple[int, bytes]],
    card_key: bytes,
    key_version: int,
    revoked: Container[int],
    journal_entered: Collection[int],
    at: datetime,
) -> GateDecision:
    """Admit the admissible ticket whose last valid day is earliest (then the lowest slot); refuse a card that
    entered today (`already_used` / `already_entered_today` by its record, `journal_says_entered` when only this
    gate's journal knows it: a restored card); otherwise refuse with the most telling code (ENTRY_REFUSALS)."""
    if not records:
        return GateDecision(admit=False, code="no_ticket")
    verdicts = [
        judge_entry(slot, raw, csn=csn, card_key=card_key, key_version=key_version, revoked=revoked, at=at)
        for slot, raw in records
    ]
    today = day_number(expo_local(at).date()) if is_expo_day(expo_local(at).date()) else None
    for verdict in verdicts:
        record = verdict.record
        if record is not None and today is not None and record.last_entry_day == today:
            code = "already_entered_today" if record.entries_allowed > 1 else "already_used"
            return GateDecision(admit=False, code=code, ticket=_with_code(verdict, code))
    if journal_entered:
        named = [v for v in verdicts if v.ticket_id in journal_entered]
        ticket = _with_code(named[0], "journal_says_entered") if named else None
        return GateDecision(admit=False, code="journal_says_entered", ticket=ticket)
    admissible = [v for v in verdicts if v.code == OK and v.record is not None]
    if admissible:
        best = min(admissible, key=lambda v: (v.record.last_day if v.record else 0, v.slot))
        return GateDecision(admit=True, code=OK, ticket=best)
    return _most_telling(verdicts, ENTRY_REFUSALS)


def judge_souvenir(
    slot: int, raw: bytes, *, csn: bytes, card_key: bytes, key_version: int, revoked: Container[int]
) -> Verdict:
    """One ticket at the souvenir terminal: trusted, not revoked, entered at least once, souvenir not yet taken."""
    verdict = trusted_ticket(slot, raw, csn=csn, card_key=card_key, key_version=key_version)
    record = verdict.record
    if verdict.code != OK or record is None:
        return verdict
    code = OK
    if record.ticket_id in revoked:
        code = "revoked"
    elif record.entries_used == 0:
        code = "not_entered"
    elif record.souvenir_collected:
        code = "souvenir_taken"
    return _with_code(verdict, code)


def decide_souvenir(
    *, csn: bytes, records: Sequence[tuple[int, bytes]], card_key: bytes, key_version: int, revoked: Container[int]
) -> GateDecision:
    """One souvenir per entered ticket: the eligible ticket that entered last (then the lowest slot), else the most
    telling refusal (SOUVENIR_REFUSALS)."""
    if not records:
        return GateDecision(admit=False, code="no_ticket")
    verdicts = [
        judge_souvenir(slot, raw, csn=csn, card_key=card_key, key_version=key_version, revoked=revoked)
        for slot, raw in records
    ]
    eligible = [v for v in verdicts if v.code == OK and v.record is not None]
    if eligible:
        best = min(eligible, key=lambda v: (-(v.record.last_entry_day if v.record else 0), v.slot))
        return GateDecision(admit=True, code=OK, ticket=best)
    return _most_telling(verdicts, SOUVENIR_REFUSALS)


def _with_code(verdict: Verdict, code: str) -> Verdict:
    return Verdict(verdict.slot, code, verdict.record, verdict.ticket_type, verdict.check_id)


def _most_telling(verdicts: Sequence[Verdict], order: Sequence[str]) -> GateDecision:
    rank = {code: n for n, code in enumerate(order)}
    worst = min(verdicts, key=lambda v: (rank.get(v.code, len(rank)), v.slot))
    return GateDecision(admit=False, code=worst.code, ticket=worst)


# --- what the gate's journal says of a card today -------------------------------------------------------------


def standing_entries(lines: Iterable[GateEntry]) -> list[GateEntry]:
    """The admissions (and forced ones) among a gate's lines that none of those lines annuls, in their order."""
    lines = list(lines)
    annulled = {line.annuls_seq for line in lines if line.event is Event.ANNULLED}
    return [line for line in lines if line.event in (Event.ADMITTED, Event.FORCED) and line.seq not in annulled]


def entered_ticket_ids(lines: Iterable[GateEntry]) -> set[int]:
    """Tickets of one card this gate admitted (or forced) and did not annul, from that card's lines of a day."""
    return {line.ticket_id for line in standing_entries(lines) if line.ticket_id is not None}


def pending_card_annulment(lines: Iterable[GateEntry], *, at: datetime) -> GateEntry | None:
    """The admission this gate annulled in its journal (the turnstile did not turn) that the card has not annulled
    yet, if it is still within the card's window: the gate annuls it on the card at the card's next tap."""
    lines = list(lines)
    by_seq = {line.seq: line for line in lines}
    on_card = {line.annuls_seq for line in lines if line.event is Event.ANNULLED and line.card_marked}
    for line in reversed(lines):
        if line.event is not Event.ANNULLED or line.card_marked or line.annuls_seq in on_card:
            continue
        entry = by_seq.get(line.annuls_seq or 0)
        if entry is not None and entry.card_marked and timedelta(0) <= at - entry.at <= ANNUL_WINDOW:
            return entry
    return None


def annul_refusal(last: GateEntry | None, *, annulled: bool, at: datetime) -> str | None:
    """Whether the gate may annul its last admission: `nothing_to_annul` (none, or annulled already),
    `annul_window_passed` (more than ANNUL_WINDOW_SECONDS ago); None when it may."""
    if last is None or annulled:
        return "nothing_to_annul"
    if not timedelta(0) <= at - last.at <= ANNUL_WINDOW:
        return "annul_window_passed"
    return None


def unanswered_entries(lines: Iterable[GateEntry]) -> list[GateEntry]:
    """Entries this gate sent to a card whose answer never came (the card left during MARK ENTRY), newest first:
    refused `card_removed` / `card_error` lines naming a ticket and a session, with no admission of that session."""
    lines = list(lines)
    answered = {line.ctr for line in lines if line.event is Event.ADMITTED}
    return [
        line
        for line in reversed(lines)
        if line.event is Event.REFUSED
        and line.code in UNANSWERED_CODES
        and line.ticket_id is not None
        and line.ctr is not None
        and line.ctr not in answered
    ]
