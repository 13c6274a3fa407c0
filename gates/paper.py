"""A physical (paper) ticket at a gate or handheld: its code typed, scanned or read from a picture, decided
offline (`gates.paper_rules`), journaled, answered.

The line is committed before the answer is returned, so before the gate opens, like a card's tap; it is a
`paper` line: it names the ticket (when the code is genuine) but no card, counter or slot. A picture that
cannot be read, or holds no code or several (`ticketing.qr.read_qr`), is a refused line naming nothing.
Before each code the journal takes in what the device's other program (the gate loop's sync) stored meanwhile:
new revocations and ticket-code keys.
"""

import logging
from datetime import datetime
from pathlib import Path

from expo.clock import Clock
from gates.journal import GateJournal
from gates.paper_rules import PaperDecision, decide_paper_entry
from gates.rules import OK
from gates.validator import TapResult
from gates.wire import Event
from ticketing.qr import read_qr
from ticketing.signed_codes import CodeRefused

log = logging.getLogger(__name__)


class PaperGate:
    """A gate device's decisions on physical tickets, over its journal and its clock."""

    def __init__(self, *, gate_id: int, journal: GateJournal, clock: Clock) -> None:
        self.gate_id = gate_id
        self.journal = journal
        self.clock = clock

    def __repr__(self) -> str:
        return f"PaperGate(gate_id={self.gate_id})"

    def scan(self, text: str) -> TapResult:
        """A code as typed or sent by a scanner: admit or refuse, journaled before the answer."""
        return self._decide(text, at=self.clock.now())

    def scan_picture(self, source: bytes | Path) -> TapResult:
        """The one QR code in a picture (a file or its bytes); a picture without exactly one code is refused."""
        at = self.clock.now()
        try:
            text = read_qr(source)
        except CodeRefused as refused:
            log.info("gate %s: picture refused %s: %s", self.gate_id, refused.code, refused.message)
            return self._journal(PaperDecision(admit=False, code=refused.code), at=at)
        return self._decide(text, at=at)

    def _decide(self, text: str, *, at: datetime) -> TapResult:
        self.journal.refresh()
        decision = decide_paper_entry(
            text=text,
            public_keys=self.journal.ticket_keys(),
            revoked=self.journal.revoked,
            lines_of=self.journal.paper_lines,
            at=at,
        )
        return self._journal(decision, at=at)

    def _journal(self, decision: PaperDecision, *, at: datetime) -> TapResult:
        event = Event.ADMITTED if decision.admit else Event.REFUSED
        line = self.journal.append(
            event=event,
            at=at,
            code=OK if decision.admit else decision.code,
            ticket_id=decision.ticket_id,
            check_id=decision.check_id,
            paper=True,
        )
        claim = decision.claim
        return TapResult(
            event=event,
            code=line.code,
            seq=line.seq,
            csn=None,
            ctr=None,
            ticket_id=line.ticket_id,
            slot=None,
            ticket_type=None if claim is None else claim.ticket_type.value,
            check_id=line.check_id,
            record=None,
            at=at,
            paper=True,
        )
