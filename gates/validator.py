"""One tap at a gate, a handheld check terminal or a souvenir terminal: talk to the card, decide, record, answer.

The order of a tap: SELECT, OPEN SESSION under VALIDATE with the SAM's card key (the card's cryptogram
checked), READ TICKET of the occupied slots, decide (`gates.rules`), MARK ENTRY (the response MAC and the
new record checked), journal, return; the caller opens the gate only after that, on `TapResult.opens`.
Every tap is journaled, refusals too, with whatever was known of the card when it stopped: a card pulled
away mid-session is a journaled `card_removed` refusal and nothing is admitted. If it left after the card
recorded the entry (the answer was lost), its next tap at this gate finds that entry on the card (record and
newest log entry, same session counter) and admits it then, journaled under the session that recorded it.

A turnstile that did not turn annuls the gate's last admission (`annul_last`, journal only); the card's next
tap at this gate within the window first annuls the entry on the card too (MARK ENTRY P2=03), then decides
afresh, so the visitor gets in on that tap.
"""

import logging
from dataclasses import dataclass, field
from datetime import datetime

from expo.clock import Clock, expo_local
from gates.errors import GateError
from gates.journal import GateJournal
from gates.rules import (
    OK,
    GateDecision,
    Verdict,
    annul_refusal,
    decide_card_entry,
    decide_souvenir,
    entered_ticket_ids,
    pending_card_annulment,
    trusted_ticket,
    unanswered_entries,
)
from gates.sam import Sam
from gates.wire import Event, GateEntry
from simcard.apdu import MalformedApdu
from simcard.channel import CardChannel
from simcard.keys import KEY_VALIDATE
from simcard.messages import P2_ANNUL, P2_ENTRY, P2_SOUVENIR, MalformedResponse
from simcard.record import EVENT_ENTRY, TicketRecord, after_entry, after_souvenir, day_number, undo_entry
from simcard.session import CardError, Session, mark_entry, open_session, read_log, read_ticket, select

log = logging.getLogger(__name__)

ANNUL_REASON = "turnstile did not turn"
TEXT_MAX = 200

# How the card's and the reader's own errors show at the gate.
_CARD_CODES = {
    "card_no_applet": "unknown_card",
    "card_not_authentic": "card_not_authentic",
    "card_bad_response_mac": "card_not_authentic",
}
_REMOVED = frozenset({"card_removed", "no_card"})


@dataclass(frozen=True)
class TapResult:
    """What a tap came to, as journaled under `seq`; `opens` says whether the visitor may pass."""

    event: Event
    code: str
    seq: int | None
    csn: str | None
    ctr: int | None
    ticket_id: int | None
    slot: int | None
    ticket_type: str | None
    check_id: bool
    record: TicketRecord | None
    at: datetime | None = None
    paper: bool = False  # a physical ticket's code (`gates.paper`): no card, counter or slot

    @property
    def opens(self) -> bool:
        """The gate opens for an admission, forced or not; never for a refusal (a souvenir is not an entry)."""
        return self.event in (Event.ADMITTED, Event.FORCED)


@dataclass
class _Tap:
    """What this tap has learnt so far: journaled as it stands if the tap stops early."""

    at: datetime
    csn: bytes | None = None
    session: Session | None = None
    records: dict[int, bytes] = field(default_factory=dict)
    ticket: Verdict | None = None

    @property
    def csn_hex(self) -> str | None:
        return None if self.csn is None else self.csn.hex()

    @property
    def ctr(self) -> int | None:
        return None if self.session is None else self.session.ctr


def tap_error_code(error: Exception) -> str | None:
    """The gate's code for an error raised during a tap; None for a fault that is not the card's (a bug)."""
    if isinstance(error, GateError):
        return error.code
    if isinstance(error, CardError):
        return _CARD_CODES.get(error.code, "card_error")
    if isinstance(error, MalformedApdu | MalformedResponse):
        return "card_error"
    code = getattr(error, "code", None)  # the reader's errors (simcard.pcsc): card_removed, no_card, pcsc_error
    if isinstance(code, str):
        return "card_removed" if code in _REMOVED else "card_error"
    return None


def _checked_text(value: str, what: str) -> str:
    text = value.strip()
    if not 1 <= len(text) <= TEXT_MAX:
        raise GateError(f"{what}_required", f"a forced admission needs a {what} of 1-{TEXT_MAX} characters")
    return text


class Validator:
    """The decision loop of one gate device, over its SAM, its journal and its clock."""

    def __init__(self, *, gate_id: int, entrance: str, sam: Sam, journal: GateJournal, clock: Clock) -> None:
        self.gate_id = gate_id
        self.entrance = entrance
        self.sam = sam
        self.journal = journal
        self.clock = clock

    def __repr__(self) -> str:
        return f"Validator(gate_id={self.gate_id}, entrance={self.entrance!r})"

    # --- the three kinds of tap ---------------------------------------------------------------------------

    def entry(self, channel: CardChannel) -> TapResult:
        """A gate tap: admit the card's best admissible ticket, marking the entry on the card before answering."""
        tap = _Tap(self.clock.now())
        try:
            self._open(channel, tap)
            lines = self._card_lines(tap)
            recovered = self._recover_unanswered(channel, tap, lines)
            if recovered is not None:
                return recovered
            decision = self._decide_entry(channel, tap, lines)
            return self._carry_out(channel, tap, decision, command=P2_ENTRY, event=Event.ADMITTED)
        except Exception as error:
            return self._refused(tap, error)

    def force(self, channel: CardChannel, *, reason: str, supervisor: str) -> TapResult:
        """A supervisor's admission on a handheld: recorded as forced with the reason, the staff number and the
        refusal it overrides ("ok" if none); MARK ENTRY is tried and `card_marked` says whether the card took it.
        A card with no trustworthy ticket cannot be forced in: that tap is refused."""
        reason, supervisor = _checked_text(reason, "reason"), _checked_text(supervisor, "supervisor")
        tap = _Tap(self.clock.now())
        try:
            self._open(channel, tap)
            decision = self._decide_entry(channel, tap, self._card_lines(tap))
            tap.ticket = decision.ticket
        except Exception as error:
            return self._refused(tap, error)
        if decision.record is None:
            return self._journal(tap, Event.REFUSED, decision.code)
        record = None
        try:
            record = self._mark(channel, tap, P2_ENTRY)
        except Exception as error:
            if tap_error_code(error) is None:
                raise
            log.info("gate %s: forced admission not marked on the card: %s", self.gate_id, error)
        return self._journal(
            tap,
            Event.FORCED,
            decision.code,
            card_marked=record is not None,
            record=record,
            reason=reason,
            supervisor=supervisor,
        )

    def souvenir(self, channel: CardChannel) -> TapResult:
        """A souvenir terminal tap: one souvenir per entered ticket, marked on the card before it is handed out."""
        tap = _Tap(self.clock.now())
        try:
            self._open(channel, tap)
            decision = decide_souvenir(
                csn=tap.csn or b"",
                records=sorted(tap.records.items()),
                card_key=self._card_key(tap),
                key_version=self.sam.version,
                revoked=self.journal.revoked,
            )
            return self._carry_out(channel, tap, decision, command=P2_SOUVENIR, event=Event.SOUVENIR)
        except Exception as error:
            return self._refused(tap, error)

    def annul_last(self) -> int:
        """The turnstile did not turn: annul the gate's last admission in the journal (within the window); the
        card annuls it at its next tap here (a paper ticket has nothing more to annul). The seq of the `annulled`
        line; GateError `nothing_to_annul` / `annul_window_passed`."""
        at = self.clock.now()
        last, annulled = self.journal.last_admission()
        code = annul_refusal(last, annulled=annulled, at=at)
        if code is not None or last is None:
            raise GateError(code or "nothing_to_annul", "the gate's last admission cannot be annulled")
        line = self.journal.append(
            event=Event.ANNULLED,
            at=at,
            code=OK,
            csn=last.csn,
            ticket_id=last.ticket_id,
            slot=last.slot,
            reason=ANNUL_REASON,
            annuls_seq=last.seq,
            paper=last.paper,
        )
        return line.seq

    # --- steps ----------------------------------------------------------------------------------------------

    def _card_key(self, tap: _Tap) -> bytes:
        if tap.csn is None:
            raise GateError("unknown_card", "no card was selected")
        return self.sam.card_key(tap.csn)

    def _open(self, channel: CardChannel, tap: _Tap) -> None:
        """SELECT, OPEN SESSION (VALIDATE, the card's cryptogram checked), READ TICKET of every occupied slot."""
        info = select(channel.transmit)
        tap.csn = info.csn
        card_key = self.sam.card_key(info.csn)
        if info.key_version != self.sam.version:
            raise GateError("unknown_key_version", f"the card's keys are of version {info.key_version}")
        tap.session = open_session(channel.transmit, KEY_VALIDATE, card_key)
        if tap.session.csn != info.csn:
            raise GateError("card_not_authentic", "the card named another CSN in its session")
        for slot in info.occupied:
            raw = read_ticket(channel.transmit, slot)
            if raw is not None:
                tap.records[slot] = raw

    def _card_lines(self, tap: _Tap) -> list[GateEntry]:
        return self.journal.card_lines(tap.csn_hex or "", expo_local(tap.at).date())

    def _carry_out(
        self, channel: CardChannel, tap: _Tap, decision: GateDecision, *, command: int, event: Event
    ) -> TapResult:
        """A refusal is journaled as it is; an admission or souvenir is marked on the card first, then journaled."""
        tap.ticket = decision.ticket
        if not decision.admit:
            return self._journal(tap, Event.REFUSED, decision.code)
        record = self._mark(channel, tap, command)
        return self._journal(tap, event, OK, card_marked=True, record=record)

    def _recover_unanswered(self, channel: CardChannel, tap: _Tap, lines: list[GateEntry]) -> TapResult | None:
        """An entry the card recorded at this gate whose answer was lost (the card left during MARK ENTRY): the gate
        never opened, so it admits now, journaled under the session that recorded it; checked against the card's
        record (today, this gate) and its newest log entry (that session's entry here)."""
        today = day_number(expo_local(tap.at).date())
        for line in unanswered_entries(lines):
            raw = tap.records.get(line.slot or 0)
            if raw is None or line.ticket_id in self.journal.revoked:
                continue
            ticket = trusted_ticket(
                line.slot or 0, raw, csn=tap.csn or b"", card_key=self._card_key(tap), key_version=self.sam.version
            )
            record = ticket.record
            if ticket.code != OK or record is None or record.ticket_id != line.ticket_id:
                continue
            if (record.last_entry_day, record.last_gate) != (today, self.gate_id):
                continue
            newest = read_log(channel.transmit, 1)
            if newest is None or (newest.ctr, newest.event, newest.terminal) != (line.ctr, EVENT_ENTRY, self.gate_id):
                return None
            tap.ticket = ticket
            return self._journal(tap, Event.ADMITTED, OK, card_marked=True, record=record, ctr=line.ctr)
        return None

    def _decide_entry(self, channel: CardChannel, tap: _Tap, lines: list[GateEntry]) -> GateDecision:
        """Annul on the card what this gate annulled in its journal a moment ago, then decide."""
        pending = pending_card_annulment(lines, at=tap.at)
        if pending is not None:
            annulled = self._annul_on_card(channel, tap, pending)
            if annulled is not None:
                lines.append(annulled)
        return decide_card_entry(
            csn=tap.csn or b"",
            records=sorted(tap.records.items()),
            card_key=self._card_key(tap),
            key_version=self.sam.version,
            revoked=self.journal.revoked,
            journal_entered=entered_ticket_ids(lines),
            at=tap.at,
        )

    def _annul_on_card(self, channel: CardChannel, tap: _Tap, entry: GateEntry) -> GateEntry | None:
        """MARK ENTRY P2=03 for an admission annulled in the journal; journaled as annulled with card_marked."""
        slot = entry.slot or 0
        raw = tap.records.get(slot)
        if raw is None or TicketRecord.decode(raw).ticket_id != entry.ticket_id:
            return None
        tap.ticket = Verdict(slot, OK, TicketRecord.decode(raw))
        tap.records[slot] = self._mark(channel, tap, P2_ANNUL).encode()
        return self.journal.append(
            event=Event.ANNULLED,
            at=tap.at,
            code=OK,
            csn=tap.csn_hex,
            ctr=tap.ctr,
            ticket_id=entry.ticket_id,
            slot=slot,
            card_marked=True,
            reason=ANNUL_REASON,
            annuls_seq=entry.seq,
        )

    def _mark(self, channel: CardChannel, tap: _Tap, event: int) -> TicketRecord:
        """MARK ENTRY on the decided ticket; the card's new record, checked against what the card must have done."""
        ticket, session = tap.ticket, tap.session
        if ticket is None or ticket.record is None or session is None:
            raise GateError("card_error", "nothing to mark")
        local = expo_local(tap.at).replace(tzinfo=None)
        raw = mark_entry(channel.transmit, session, ticket.slot, self.gate_id, local, event=event)
        before = ticket.record
        if event == P2_ENTRY:
            expected = after_entry(before, today=day_number(local.date()), gate_id=self.gate_id)
        elif event == P2_SOUVENIR:
            expected = after_souvenir(before)
        else:
            expected = undo_entry(before)  # the card checked the window and its log; the gate checked its journal
        if expected is None or raw != expected.encode():
            raise GateError("card_error", "the card's new record is not what MARK ENTRY should have made")
        return expected

    # --- the journal ----------------------------------------------------------------------------------------

    def _refused(self, tap: _Tap, error: Exception) -> TapResult:
        code = tap_error_code(error)
        if code is None:
            raise error
        log.info("gate %s: tap refused %s: %s", self.gate_id, code, error)
        return self._journal(tap, Event.REFUSED, code)

    def _journal(
        self,
        tap: _Tap,
        event: Event,
        code: str,
        *,
        card_marked: bool = False,
        record: TicketRecord | None = None,
        reason: str | None = None,
        supervisor: str | None = None,
        ctr: int | None = None,
    ) -> TapResult:
        ticket = tap.ticket
        trusted = ticket if ticket is not None and ticket.record is not None else None
        line = self.journal.append(
            event=event,
            at=tap.at,
            code=code,
            csn=tap.csn_hex,
            ctr=tap.ctr if ctr is None else ctr,
            ticket_id=None if trusted is None else trusted.ticket_id,
            slot=None if trusted is None else trusted.slot,
            check_id=trusted is not None and trusted.check_id,
            card_marked=card_marked,
            reason=reason,
            supervisor=supervisor,
        )
        return TapResult(
            event=event,
            code=code,
            seq=line.seq,
            csn=line.csn,
            ctr=line.ctr,
            ticket_id=line.ticket_id,
            slot=line.slot,
            ticket_type=None if trusted is None or trusted.ticket_type is None else trusted.ticket_type.value,
            check_id=line.check_id,
            record=record or (None if trusted is None else trusted.record),
            at=tap.at,
        )
