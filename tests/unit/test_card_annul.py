"""MARK ENTRY P2=03 on the emulated card: a gate annuls its own entry of a moment ago, and nothing else."""

from datetime import date, datetime, timedelta

import pytest

from simcard.apdu import SW_MEMORY_FAILURE, SW_NOT_ALLOWED, SW_OK, SW_SECURITY
from simcard.keys import KEY_ISSUE, KEY_VALIDATE
from simcard.messages import P2_ANNUL, P2_SOUVENIR
from simcard.record import (
    ANNUL_WINDOW_SECONDS,
    EVENT_ANNULLED,
    EVENT_ENTRY,
    NO_DAY,
    LogEntry,
    TicketRecord,
    day_number,
    encode_time,
    mac_is_valid,
)
from simcard.session import mark_entry
from tests.unit.card_support import JUNE_1, Card, key, record, signed

GATE = 1001
OTHER_GATE = 1002
NINE = datetime(2010, 6, 1, 9, 0, 0)
PASS_LAST_DAY = date(2010, 6, 7)


@pytest.fixture
def card() -> Card:
    card = Card()
    card.write(1, signed(card.csn, record(entries=3, last=PASS_LAST_DAY)))
    return card


def slot_record(card: Card, slot: int = 1) -> TicketRecord:
    return TicketRecord.decode(card.applet.state.slot(slot) or b"")


def test_annul_undoes_the_entry_logs_event_04_and_answers_with_a_card_mac(card: Card) -> None:
    assert card.mark(1, at=NINE, gate=GATE)[1] == SW_OK
    entered = card.applet.state.slot(1) or b""
    session = card.session(KEY_VALIDATE)
    at = NINE + timedelta(seconds=30)
    new = mark_entry(card.reader.transmit, session, 1, GATE, at, event=P2_ANNUL)
    after = TicketRecord.decode(new)
    assert (after.entries_used, after.last_entry_day, after.last_gate) == (0, NO_DAY, 0)
    assert new[:24] == entered[:24]
    assert mac_is_valid(new, key(card.csn, KEY_VALIDATE), card.csn)
    assert card.applet.state.slot(1) == new
    assert LogEntry.decode(card.applet.state.log[-1]) == LogEntry(session.ctr, EVENT_ANNULLED, GATE, encode_time(at))


def test_after_an_annulment_the_ticket_enters_again_the_same_day(card: Card) -> None:
    assert card.mark(1, at=NINE, gate=GATE)[1] == SW_OK
    assert card.mark(1, at=NINE + timedelta(seconds=10), gate=GATE, event=P2_ANNUL)[1] == SW_OK
    assert card.mark(1, at=NINE + timedelta(seconds=20), gate=GATE)[1] == SW_OK
    after = slot_record(card)
    assert (after.entries_used, after.last_entry_day, after.last_gate) == (1, day_number(JUNE_1), GATE)


def test_a_pass_annulled_gives_its_entry_back() -> None:
    card = Card()
    card.write(1, signed(card.csn, record(entries=3, last=PASS_LAST_DAY)))
    assert card.mark(1, at=NINE, gate=GATE)[1] == SW_OK
    assert card.mark(1, at=datetime(2010, 6, 2, 9), gate=GATE)[1] == SW_OK
    assert card.mark(1, at=datetime(2010, 6, 2, 9, 1), gate=GATE, event=P2_ANNUL)[1] == SW_OK
    assert slot_record(card).entries_used == 1


@pytest.mark.parametrize("seconds", [0, 1, ANNUL_WINDOW_SECONDS])
def test_the_window_includes_its_ends(card: Card, seconds: int) -> None:
    assert card.mark(1, at=NINE, gate=GATE)[1] == SW_OK
    assert card.mark(1, at=NINE + timedelta(seconds=seconds), gate=GATE, event=P2_ANNUL)[1] == SW_OK


def _refused_without_a_change(card: Card, *, at: datetime, gate: int = GATE) -> None:
    before = card.applet.state
    data, sw = card.mark(1, at=at, gate=gate, event=P2_ANNUL)
    assert (data, sw) == (b"", SW_NOT_ALLOWED)
    assert card.applet.state.slots == before.slots
    assert card.applet.state.log == before.log


def test_never_entered_is_refused(card: Card) -> None:
    _refused_without_a_change(card, at=NINE)


@pytest.mark.parametrize("seconds", [ANNUL_WINDOW_SECONDS + 1, 3600, -1])
def test_outside_the_window_is_refused(card: Card, seconds: int) -> None:
    assert card.mark(1, at=NINE, gate=GATE)[1] == SW_OK
    _refused_without_a_change(card, at=NINE + timedelta(seconds=seconds))


def test_another_gate_cannot_annul(card: Card) -> None:
    assert card.mark(1, at=NINE, gate=GATE)[1] == SW_OK
    _refused_without_a_change(card, at=NINE + timedelta(seconds=5), gate=OTHER_GATE)


def test_an_entry_of_another_day_cannot_be_annulled(card: Card) -> None:
    # 23:59:30 then 00:00:30: within 120 s, but the entry's day is not today.
    assert card.mark(1, at=datetime(2010, 6, 1, 23, 59, 30), gate=GATE)[1] == SW_OK
    _refused_without_a_change(card, at=datetime(2010, 6, 2, 0, 0, 30))


def test_no_annulment_after_the_souvenir(card: Card) -> None:
    assert card.mark(1, at=NINE, gate=GATE)[1] == SW_OK
    assert card.mark(1, at=NINE + timedelta(seconds=5), gate=GATE, event=P2_SOUVENIR)[1] == SW_OK
    _refused_without_a_change(card, at=NINE + timedelta(seconds=10))


def test_the_entry_must_be_the_cards_newest_log_entry(card: Card) -> None:
    assert card.mark(1, at=NINE, gate=GATE)[1] == SW_OK
    assert card.write(2, signed(card.csn, record(ticket_id=8))) == SW_OK  # a newer log entry: the write
    _refused_without_a_change(card, at=NINE + timedelta(seconds=10))


def test_the_newest_entry_must_be_of_the_annulled_slot_gate() -> None:
    card = Card()
    card.write(1, signed(card.csn, record(entries=3, last=PASS_LAST_DAY)))
    card.write(2, signed(card.csn, record(ticket_id=8, entries=3, last=PASS_LAST_DAY)))
    assert card.mark(1, at=NINE, gate=GATE)[1] == SW_OK
    assert card.mark(2, at=NINE + timedelta(seconds=5), gate=OTHER_GATE)[1] == SW_OK
    _refused_without_a_change(card, at=NINE + timedelta(seconds=10))


def test_an_annulment_is_done_once(card: Card) -> None:
    assert card.mark(1, at=NINE, gate=GATE)[1] == SW_OK
    assert card.mark(1, at=NINE + timedelta(seconds=5), gate=GATE, event=P2_ANNUL)[1] == SW_OK
    _refused_without_a_change(card, at=NINE + timedelta(seconds=10))
    assert LogEntry.decode(card.applet.state.log[-1]).event == EVENT_ANNULLED
    assert LogEntry.decode(card.applet.state.log[-2]).event == EVENT_ENTRY


def test_annulment_needs_a_validate_session(card: Card) -> None:
    assert card.mark(1, at=NINE, gate=GATE)[1] == SW_OK
    session = card.session(KEY_ISSUE)
    before = card.applet.state.slots
    assert card.send(session.mark_entry_command(1, GATE, NINE, event=P2_ANNUL))[1] == SW_SECURITY
    assert card.applet.state.slots == before


def test_a_failed_commit_is_6581_and_changes_nothing(card: Card) -> None:
    assert card.mark(1, at=NINE, gate=GATE)[1] == SW_OK
    session = card.session(KEY_VALIDATE)
    before = card.applet.state
    card.fail_commits = True
    assert card.send(session.mark_entry_command(1, GATE, NINE, event=P2_ANNUL))[1] == SW_MEMORY_FAILURE
    assert card.applet.state == before
