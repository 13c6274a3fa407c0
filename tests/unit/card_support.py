"""Shared helpers for the card tests: fixed root keys, a personalised card, a signed record, MAC'd commands."""

from datetime import date, datetime

from simcard.applet import CardApplet
from simcard.keys import KEY_ISSUE, KEY_VALIDATE, KeySet, sam_card_key
from simcard.keystore import export_province_keys
from simcard.personalise import new_card_state
from simcard.record import TicketRecord, day_number, sign
from simcard.session import InProcessReader, Session, open_session, select
from simcard.state import CardState

ROOT = KeySet({1: bytes([0x11]) * 16, 2: bytes([0x22]) * 16, 3: bytes([0x33]) * 16})
JUNE_1 = date(2010, 6, 1)


def new_state(province: str = "31", serial: int = 42) -> CardState:
    """A fresh card personalised from the test root keys."""
    return new_card_state(province, serial, export_province_keys(ROOT, province))


def key(csn: bytes, key_type: int) -> bytes:
    """The SAM's card key for this card and type."""
    return sam_card_key(ROOT, csn, key_type)


def record(
    ticket_id: int = 7, *, first: date = JUNE_1, last: date = JUNE_1, entries: int = 1, ticket_type: int = 3
) -> TicketRecord:
    """An unsigned ticket record for the given days."""
    return TicketRecord(
        ticket_id=ticket_id,
        ticket_type=ticket_type,
        first_day=day_number(first),
        last_day=day_number(last),
        entries_allowed=entries,
    )


def signed(csn: bytes, ticket: TicketRecord | None = None) -> bytes:
    """A record signed for this card."""
    return sign(ticket or record(), key(csn, KEY_VALIDATE), csn)


class Card:
    """An applet in an in-process reader; by default with an in-memory store that remembers every commit."""

    def __init__(self, state: CardState | None = None, *, applet: CardApplet | None = None) -> None:
        self.commits: list[CardState] = []
        self.fail_commits = False
        self.applet = applet or CardApplet(state or new_state(), on_commit=self._commit)
        self.reader = InProcessReader(self.applet)

    def _commit(self, state: CardState) -> None:
        if self.fail_commits:
            raise OSError("disk full")
        self.commits.append(state)

    @property
    def csn(self) -> bytes:
        """The card's serial number."""
        return self.applet.state.csn

    def send(self, apdu: bytes) -> tuple[bytes, int]:
        """One APDU; the data and the status word."""
        raw = self.reader.transmit(apdu)
        return raw[:-2], int.from_bytes(raw[-2:], "big")

    def tap(self) -> None:
        """A new tap, selected."""
        self.reader.tap()
        select(self.reader.transmit)

    def session(self, key_type: int = KEY_ISSUE) -> Session:
        """A new tap with a session of key_type open."""
        self.tap()
        return open_session(self.reader.transmit, key_type, key(self.csn, key_type))

    def write(self, slot: int = 1, raw: bytes | None = None) -> int:
        """WRITE TICKET in a fresh ISSUE session; the status word."""
        session = self.session(KEY_ISSUE)
        return self.send(session.write_ticket_command(slot, raw or signed(self.csn)))[1]

    def mark(self, slot: int = 1, *, at: datetime, gate: int = 0x0A0B0C0D, event: int = 1) -> tuple[bytes, int]:
        """MARK ENTRY in a fresh VALIDATE session."""
        session = self.session(KEY_VALIDATE)
        return self.send(session.mark_entry_command(slot, gate, at, event=event))
