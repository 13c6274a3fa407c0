"""Helpers for the gate tests: Expo cards holding signed tickets, a SAM of the test root keys, a gate."""

from dataclasses import replace
from datetime import date, datetime
from pathlib import Path

from expo.clock import EXPO_TZ, FixedClock
from gates.journal import GateJournal
from gates.sam import Sam
from gates.validator import Validator
from simcard.applet import CardApplet
from simcard.channel import AppletChannel
from simcard.keys import KEY_VALIDATE
from simcard.record import TicketRecord, sign
from simcard.state import SLOTS, CardState
from tests.unit.card_support import ROOT, key, new_state
from ticketing.card_rules import ticket_record

GATE_ID = 1001
OTHER_GATE_ID = 1002
SAM = Sam.from_root(ROOT)


def at(year_month_day: str, hhmm: str = "10:00") -> datetime:
    """An aware Expo-local instant, e.g. at("2010-06-01", "17:00")."""
    return datetime.fromisoformat(f"{year_month_day}T{hhmm}").replace(tzinfo=EXPO_TZ)


def ticket(
    ticket_type: str,
    *,
    ticket_id: int = 7,
    visit_day: date | None = None,
    upgrade_day: date | None = None,
    province: str = "31",
) -> TicketRecord:
    """A ticket's unsigned record, as the platform makes it."""
    return ticket_record(
        ticket_id=ticket_id,
        ticket_type=ticket_type,
        visit_day=visit_day,
        upgrade_day=upgrade_day,
        channel="hall",
        province=province,
        key_version=1,
    )


def signed_for(csn: bytes, record: TicketRecord) -> bytes:
    """The record's 32 bytes signed for this card."""
    return sign(record, key(csn, KEY_VALIDATE), csn)


def card_with(*records: TicketRecord | bytes | None, state: CardState | None = None, serial: int = 42) -> CardApplet:
    """A card holding these tickets in slots 1, 2, ... (records are signed for it; raw bytes are kept as given)."""
    state = state or new_state(serial=serial)
    slots: list[bytes | None] = [None] * SLOTS
    for number, item in enumerate(records):
        slots[number] = signed_for(state.csn, item) if isinstance(item, TicketRecord) else item
    return CardApplet(replace(state, slots=tuple(slots)))


def slot_record(applet: CardApplet, slot: int = 1) -> TicketRecord:
    """The card's record in a slot."""
    return TicketRecord.decode(applet.state.slot(slot) or b"")


class Gate:
    """A validator over a journal in a folder, with a clock the test moves, and taps of in-process cards."""

    def __init__(self, folder: Path, *, when: datetime, gate_id: int = GATE_ID, durable: bool = True) -> None:
        self.clock = FixedClock(when)
        self.journal = GateJournal(folder / f"gate-{gate_id}.sqlite3", durable=durable)
        self.validator = Validator(gate_id=gate_id, entrance="L1", sam=SAM, journal=self.journal, clock=self.clock)

    @staticmethod
    def channel(applet: CardApplet) -> AppletChannel:
        """A new tap of this card."""
        applet.power_on()
        return AppletChannel(applet)
