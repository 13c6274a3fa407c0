"""The emulated applet: every CARD.md command with its status words, the session rules and MARK ENTRY's rules."""

from dataclasses import replace
from datetime import datetime, timedelta
from functools import reduce
from operator import xor
from pathlib import Path

import pytest

from simcard.apdu import (
    SW_BAD_CLA,
    SW_BAD_INS,
    SW_BAD_MAC,
    SW_BAD_P1P2,
    SW_COUNTER,
    SW_FILE_NOT_FOUND,
    SW_MEMORY_FAILURE,
    SW_NOT_ALLOWED,
    SW_OK,
    SW_RECORD_NOT_FOUND,
    SW_SECURITY,
    SW_WRONG_DATA,
    SW_WRONG_LENGTH,
    CommandApdu,
)
from simcard.applet import ATR, open_card
from simcard.keys import KEY_AUDIT, KEY_ISSUE, KEY_VALIDATE, SessionKeys
from simcard.messages import (
    INS_MARK_ENTRY,
    P2_SOUVENIR,
    SessionOpening,
    get_challenge_command,
    open_session_command,
    parse_fci,
    read_log_command,
    read_ticket_command,
    select_command,
)
from simcard.record import (
    EVENT_ENTRY,
    EVENT_SOUVENIR,
    EVENT_WRITTEN,
    NO_DAY,
    LogEntry,
    TicketRecord,
    day_number,
    encode_time,
    mac_is_valid,
)
from simcard.session import CardError, mark_entry, open_session, read_log, read_ticket
from simcard.state import CTR_MAX
from simcard.store import CardFile
from tests.unit.card_support import JUNE_1, Card, key, new_state, record, signed

NINE = datetime(2010, 6, 1, 9, 0)
NEXT_DAY = datetime(2010, 6, 2, 9, 0)


@pytest.fixture
def card() -> Card:
    return Card()


def test_atr_is_short_and_its_check_byte_is_right() -> None:
    assert len(ATR) <= 33
    assert ATR[0] == 0x3B
    assert reduce(xor, ATR[1:]) == 0


# --- SELECT, GET CHALLENGE, plain-command errors -----------------------------------------------------------


def test_select_answers_the_fci(card: Card) -> None:
    data, sw = card.send(select_command())
    assert sw == SW_OK
    info = parse_fci(data)
    assert (info.csn.hex(), info.province, info.key_version, info.ctr, info.occupied) == (
        "0031000000000042",
        "31",
        1,
        0,
        (),
    )


def test_wrong_aid_is_6a82_and_deselects(card: Card) -> None:
    card.tap()
    other = CommandApdu(0x00, 0xA4, 0x04, 0x00, bytes.fromhex("A000000003000000"), 256).encode()
    assert card.send(other)[1] == SW_FILE_NOT_FOUND
    assert card.send(read_ticket_command(1))[1] == SW_NOT_ALLOWED


def test_nothing_but_select_before_selection(card: Card) -> None:
    assert card.send(get_challenge_command())[1] == SW_NOT_ALLOWED
    assert card.send(open_session_command(KEY_ISSUE, bytes(8)))[1] == SW_NOT_ALLOWED
    assert card.applet.state.ctr == 0


def test_select_with_other_p1_p2_is_6a86(card: Card) -> None:
    raw = bytearray(select_command())
    raw[3] = 0x0C
    assert card.send(bytes(raw))[1] == SW_BAD_P1P2


def test_get_challenge(card: Card) -> None:
    card.tap()
    first, sw = card.send(get_challenge_command())
    assert sw == SW_OK
    assert len(first) == 8
    assert card.send(get_challenge_command())[0] != first
    assert card.send(bytes.fromhex("0084000004"))[1] == SW_WRONG_LENGTH
    assert card.send(bytes.fromhex("008400000101"))[1] == SW_WRONG_LENGTH
    assert card.send(bytes.fromhex("0084010008"))[1] == SW_BAD_P1P2


@pytest.mark.parametrize(
    ("apdu", "sw"),
    [
        ("90B2010C20", SW_BAD_CLA),
        ("FFA4040000", SW_BAD_CLA),
        ("00CA000000", SW_BAD_INS),
        ("80A4040000", SW_BAD_CLA),
        ("848A010000", SW_BAD_CLA),
        ("00DC010000", SW_SECURITY),
        ("808E010100", SW_SECURITY),
        ("00B2", SW_WRONG_LENGTH),
        ("00B2010C05AABB", SW_WRONG_LENGTH),
        ("00B2011C20", SW_BAD_P1P2),
    ],
)
def test_plain_errors(card: Card, apdu: str, sw: int) -> None:
    card.tap()
    assert card.send(bytes.fromhex(apdu))[1] == sw


# --- OPEN SESSION -------------------------------------------------------------------------------------------


def test_open_session_answers_csn_rnd_c_ctr_version_and_a_genuine_cryptogram(card: Card) -> None:
    card.tap()
    rnd_t = bytes.fromhex("0102030405060708")
    data, sw = card.send(open_session_command(KEY_ISSUE, rnd_t))
    assert sw == SW_OK
    opening = SessionOpening.parse(data)
    assert (opening.csn, opening.ctr, opening.key_version) == (card.csn, 1, 1)
    keys = SessionKeys.derive(key(card.csn, KEY_ISSUE), rnd_t, opening.rnd_c, opening.ctr)
    assert opening.card_cryptogram == keys.card_cryptogram


def test_ctr_is_saved_before_the_session_opens(card: Card) -> None:
    for expected in (1, 2, 3):
        session = card.session(KEY_VALIDATE)
        assert session.ctr == expected
        assert card.commits[-1].ctr == expected


@pytest.mark.parametrize("apdu", ["808A000008" + "00" * 9, "808A040008" + "00" * 9, "808A010108" + "00" * 8])
def test_open_session_bad_key_type_or_p2_is_6a86_and_costs_nothing(card: Card, apdu: str) -> None:
    card.tap()
    assert card.send(bytes.fromhex(apdu))[1] == SW_BAD_P1P2
    assert card.applet.state.ctr == 0
    open_session(card.reader.transmit, KEY_AUDIT, key(card.csn, KEY_AUDIT))  # the tap's session is still free


def test_open_session_needs_an_8_byte_rnd_t(card: Card) -> None:
    card.tap()
    assert card.send(bytes.fromhex("808A010004AABBCCDD00"))[1] == SW_WRONG_LENGTH


def test_one_session_per_tap(card: Card) -> None:
    session = card.session(KEY_ISSUE)
    assert card.send(open_session_command(KEY_VALIDATE, bytes(8)))[1] == SW_NOT_ALLOWED
    assert card.applet.state.ctr == 1
    # ... and the refusal closed the first session too
    assert card.send(session.write_ticket_command(1, signed(card.csn)))[1] == SW_SECURITY


def test_exhausted_counter_is_6983(card: Card) -> None:
    card = Card(state=replace(new_state(), ctr=CTR_MAX))
    card.tap()
    assert card.send(open_session_command(KEY_ISSUE, bytes(8)))[1] == SW_COUNTER
    assert card.applet.state.ctr == CTR_MAX
    assert card.commits == []


def test_failed_ctr_commit_opens_no_session(card: Card) -> None:
    card.tap()
    card.fail_commits = True
    assert card.send(open_session_command(KEY_ISSUE, bytes(8)))[1] == SW_MEMORY_FAILURE
    assert card.applet.state.ctr == 0


def test_a_wrong_card_key_fails_the_cryptogram_check(card: Card) -> None:
    card.tap()
    with pytest.raises(CardError) as caught:
        open_session(card.reader.transmit, KEY_ISSUE, key(card.csn, KEY_VALIDATE))
    assert caught.value.code == "card_not_authentic"


# --- WRITE TICKET -------------------------------------------------------------------------------------------


def test_write_ticket_then_read_it_back_with_its_log_entry(card: Card) -> None:
    raw = signed(card.csn)
    assert card.write(2, raw) == SW_OK
    card.tap()
    assert read_ticket(card.reader.transmit, 2) == raw
    assert read_ticket(card.reader.transmit, 1) is None
    assert read_log(card.reader.transmit, 1) == LogEntry(1, EVENT_WRITTEN, 7)
    assert parse_fci(card.send(select_command())[0]).occupied == (2,)
    assert mac_is_valid(raw, key(card.csn, KEY_VALIDATE), card.csn)


def test_several_writes_chain_in_one_session(card: Card) -> None:
    session = card.session(KEY_ISSUE)
    for slot in (1, 2, 3):
        command = session.write_ticket_command(slot, signed(card.csn, record(slot)))
        assert card.send(command)[1] == SW_OK
    assert card.applet.state.occupied() == (1, 2, 3)


@pytest.mark.parametrize("key_type", [None, KEY_VALIDATE, KEY_AUDIT])
def test_write_ticket_needs_an_issue_session(card: Card, key_type: int | None) -> None:
    if key_type is None:
        card.tap()
        command = CommandApdu(0x84, 0xDC, 1, 0, signed(card.csn) + bytes(8)).encode()
    else:
        command = card.session(key_type).write_ticket_command(1, signed(card.csn))
    assert card.send(command)[1] == SW_SECURITY
    assert card.applet.state.slots == (None,) * 4


def test_tampered_write_is_6988_changes_nothing_and_closes_the_session(card: Card) -> None:
    session = card.session(KEY_ISSUE)
    command = bytearray(session.write_ticket_command(1, signed(card.csn)))
    command[10] ^= 0x01
    before = card.applet.state
    assert card.send(bytes(command))[1] == SW_BAD_MAC
    assert card.applet.state == before
    assert card.send(session.write_ticket_command(1, signed(card.csn)))[1] == SW_SECURITY


def test_replayed_write_in_a_new_session_is_6988(card: Card) -> None:
    command = card.session(KEY_ISSUE).write_ticket_command(1, signed(card.csn))
    card.session(KEY_ISSUE)  # a new tap: new RND_T, RND_C, CTR
    assert card.send(command)[1] == SW_BAD_MAC
    assert card.applet.state.slots == (None,) * 4


def test_the_same_command_twice_in_one_session_is_6988(card: Card) -> None:
    session = card.session(KEY_ISSUE)
    command = session.write_ticket_command(1, signed(card.csn))
    assert card.send(command)[1] == SW_OK
    assert card.send(command)[1] == SW_BAD_MAC


@pytest.mark.parametrize(
    ("slot", "p2", "sw"), [(0, 0, SW_RECORD_NOT_FOUND), (5, 0, SW_RECORD_NOT_FOUND), (1, 1, SW_BAD_P1P2)]
)
def test_write_ticket_slot_and_p2(card: Card, slot: int, p2: int, sw: int) -> None:
    session = card.session(KEY_ISSUE)
    command = session.command(0xDC, slot, p2, signed(card.csn))
    assert card.send(command)[1] == sw
    assert card.applet.state.slots == (None,) * 4


def test_write_ticket_with_a_wrong_length_is_6700(card: Card) -> None:
    session = card.session(KEY_ISSUE)
    assert card.send(session.command(0xDC, 1, 0, signed(card.csn)[:31]))[1] == SW_WRONG_LENGTH


def test_a_record_with_card_bytes_set_is_6a80(card: Card) -> None:
    used = replace(record(), entries_used=1)
    assert card.write(1, signed(card.csn, used)) == SW_WRONG_DATA
    assert card.applet.state.slots == (None,) * 4


def test_full_card_is_6a83(card: Card) -> None:
    for slot in (1, 2, 3, 4):
        assert card.write(slot, signed(card.csn, record(100 + slot))) == SW_OK
    for slot in (1, 2, 3, 4):
        assert card.write(slot, signed(card.csn, record(200))) == SW_RECORD_NOT_FOUND
    assert [TicketRecord.decode(raw or b"").ticket_id for raw in card.applet.state.slots] == [101, 102, 103, 104]


def test_a_retried_write_of_the_same_ticket_succeeds_without_a_change(card: Card) -> None:
    raw = signed(card.csn)
    assert card.write(1, raw) == SW_OK
    logged = card.applet.state.log
    assert card.write(1, raw) == SW_OK
    assert card.applet.state.log == logged
    assert card.applet.state.slot(1) == raw


def test_failed_write_commit_is_6581_and_changes_nothing(card: Card) -> None:
    session = card.session(KEY_ISSUE)
    before = card.applet.state
    card.fail_commits = True
    assert card.send(session.write_ticket_command(1, signed(card.csn)))[1] == SW_MEMORY_FAILURE
    assert card.applet.state == before


# --- READ TICKET, READ LOG ----------------------------------------------------------------------------------


@pytest.mark.parametrize("slot", [0, 1, 4, 5, 0xFF])
def test_read_ticket_empty_or_missing_slot_is_6a83(card: Card, slot: int) -> None:
    card.tap()
    assert card.send(read_ticket_command(slot))[1] == SW_RECORD_NOT_FOUND


def test_read_ticket_with_a_wrong_le_is_6700(card: Card) -> None:
    card.write(1)
    card.tap()
    assert card.send(bytes.fromhex("00B2010C10"))[1] == SW_WRONG_LENGTH
    assert card.send(bytes.fromhex("00B2010C00"))[1] == SW_OK


def test_read_log_reads_newest_first(card: Card) -> None:
    card.write(1, signed(card.csn, record(entries=3, last=datetime(2010, 6, 7).date())))
    for day in (1, 2, 3):
        assert card.mark(1, at=datetime(2010, 6, day, 10), gate=day)[1] == SW_OK
    card.tap()
    entries = [read_log(card.reader.transmit, n) for n in (1, 2, 3, 4, 5)]
    assert [(e.event, e.terminal) for e in entries if e] == [(2, 3), (2, 2), (2, 1), (EVENT_WRITTEN, 7)]
    assert entries[4] is None
    assert [e.ctr for e in entries if e] == [4, 3, 2, 1]


def test_the_log_keeps_the_last_32_entries(card: Card) -> None:
    card.write(1, signed(card.csn, record(entries=255, last=datetime(2010, 10, 31).date())))
    for day in range(40):
        at = datetime(2010, 6, 1, 10) + timedelta(days=day)
        assert card.mark(1, at=at, gate=day)[1] == SW_OK
    card.tap()
    assert len(card.applet.state.log) == 32
    oldest = read_log(card.reader.transmit, 32)
    assert oldest is not None
    assert oldest.terminal == 8
    assert read_log(card.reader.transmit, 33) is None


def test_read_log_beyond_the_log_is_6a83(card: Card) -> None:
    card.tap()
    assert card.send(read_log_command(1))[1] == SW_RECORD_NOT_FOUND
    assert card.send(bytes.fromhex("00B2011420"))[1] == SW_WRONG_LENGTH


# --- MARK ENTRY ---------------------------------------------------------------------------------------------


def test_entry_updates_the_card_part_and_answers_with_a_card_mac(card: Card) -> None:
    raw = signed(card.csn)
    card.write(1, raw)
    session = card.session(KEY_VALIDATE)
    new = mark_entry(card.reader.transmit, session, 1, 0x01020304, NINE)
    after = TicketRecord.decode(new)
    assert (after.entries_used, after.last_entry_day, after.last_gate) == (1, day_number(JUNE_1), 0x01020304)
    assert new[:24] == raw[:24]
    assert mac_is_valid(new, key(card.csn, KEY_VALIDATE), card.csn)
    assert card.applet.state.slot(1) == new
    logged = LogEntry(session.ctr, EVENT_ENTRY, 0x01020304, encode_time(NINE))
    assert LogEntry.decode(card.applet.state.log[-1]) == logged


def test_a_second_entry_the_same_day_is_6985(card: Card) -> None:
    card.write(1, signed(card.csn, record(entries=3, last=datetime(2010, 6, 3).date())))
    assert card.mark(1, at=NINE)[1] == SW_OK
    before = card.applet.state
    assert card.mark(1, at=datetime(2010, 6, 1, 18, 0))[1] == SW_NOT_ALLOWED
    assert card.applet.state.slots == before.slots
    assert card.applet.state.log == before.log
    assert card.mark(1, at=NEXT_DAY)[1] == SW_OK


def test_no_entry_past_the_allowed_count(card: Card) -> None:
    card.write(1, signed(card.csn, record(entries=3, last=datetime(2010, 6, 7).date())))
    for day in (1, 2, 3):
        assert card.mark(1, at=datetime(2010, 6, day, 10))[1] == SW_OK
    assert card.mark(1, at=datetime(2010, 6, 4, 10))[1] == SW_NOT_ALLOWED
    assert TicketRecord.decode(card.applet.state.slot(1) or b"").entries_used == 3


def test_souvenir_only_after_an_entry_and_only_once(card: Card) -> None:
    card.write(1)
    assert card.mark(1, at=NINE, event=P2_SOUVENIR)[1] == SW_NOT_ALLOWED
    assert card.mark(1, at=NINE)[1] == SW_OK
    data, sw = card.mark(1, at=datetime(2010, 6, 1, 15, 0), event=P2_SOUVENIR)
    assert sw == SW_OK
    assert TicketRecord.decode(data[:32]).souvenir_collected
    assert LogEntry.decode(card.applet.state.log[-1]).event == EVENT_SOUVENIR
    assert card.mark(1, at=datetime(2010, 6, 1, 16, 0), event=P2_SOUVENIR)[1] == SW_NOT_ALLOWED


def test_mark_entry_needs_a_validate_session(card: Card) -> None:
    card.write(1)
    session = card.session(KEY_ISSUE)
    assert card.send(session.mark_entry_command(1, 1, NINE))[1] == SW_SECURITY
    assert TicketRecord.decode(card.applet.state.slot(1) or b"").entries_used == 0


def test_tampered_mark_entry_is_6988_and_changes_nothing(card: Card) -> None:
    card.write(1)
    session = card.session(KEY_VALIDATE)
    command = bytearray(session.mark_entry_command(1, 0x01020304, NINE))
    command[8] ^= 0x10  # the gate id: an unauthenticated gate would pick its own
    before = card.applet.state
    assert card.send(bytes(command))[1] == SW_BAD_MAC
    assert card.applet.state == before


def test_replayed_mark_entry_in_a_new_session_is_6988(card: Card) -> None:
    card.write(1, signed(card.csn, record(entries=3, last=datetime(2010, 6, 7).date())))
    session = card.session(KEY_VALIDATE)
    command = session.mark_entry_command(1, 5, NINE)
    assert card.send(command)[1] == SW_OK
    before = card.applet.state
    card.session(KEY_VALIDATE)
    assert card.send(command)[1] == SW_BAD_MAC
    assert card.applet.state.slots == before.slots
    assert card.applet.state.log == before.log


@pytest.mark.parametrize(("slot", "sw"), [(2, SW_RECORD_NOT_FOUND), (0, SW_RECORD_NOT_FOUND), (9, SW_RECORD_NOT_FOUND)])
def test_mark_entry_on_an_empty_slot_is_6a83(card: Card, slot: int, sw: int) -> None:
    card.write(1)
    assert card.mark(slot, at=NINE)[1] == sw


@pytest.mark.parametrize("p2", [0x00, 0x04, 0xFF])
def test_mark_entry_bad_p2_is_6a86(card: Card, p2: int) -> None:
    card.write(1)
    assert card.mark(1, at=NINE, event=p2)[1] == SW_BAD_P1P2


@pytest.mark.parametrize(
    "time", ["20101301090000", "20100230090000", "20100601090A00", "20100430235959", "FFFFFFFFFFFFFF"]
)
def test_a_macd_time_that_is_no_expo_date_is_6a80(card: Card, time: str) -> None:
    card.write(1)
    session = card.session(KEY_VALIDATE)
    command = session.command(INS_MARK_ENTRY, 1, 1, bytes(4) + bytes.fromhex(time), le=256)
    assert card.send(command)[1] == SW_WRONG_DATA
    assert TicketRecord.decode(card.applet.state.slot(1) or b"").last_entry_day == NO_DAY


def test_mark_entry_wrong_length_is_6700(card: Card) -> None:
    card.write(1)
    session = card.session(KEY_VALIDATE)
    assert card.send(session.command(INS_MARK_ENTRY, 1, 1, bytes(10), le=256))[1] == SW_WRONG_LENGTH


# --- taps and sessions --------------------------------------------------------------------------------------


def test_any_error_closes_the_session(card: Card) -> None:
    session = card.session(KEY_ISSUE)
    assert card.send(read_ticket_command(3))[1] == SW_RECORD_NOT_FOUND
    assert card.send(session.write_ticket_command(1, signed(card.csn)))[1] == SW_SECURITY


def test_plain_commands_inside_a_session_keep_it(card: Card) -> None:
    card.write(1)
    session = card.session(KEY_VALIDATE)
    assert card.send(read_ticket_command(1))[1] == SW_OK
    assert card.send(get_challenge_command())[1] == SW_OK
    assert card.send(session.mark_entry_command(1, 1, NINE))[1] == SW_OK


@pytest.mark.parametrize("end", ["power_off", "reset"])
def test_power_off_and_reset_end_the_session(card: Card, end: str) -> None:
    session = card.session(KEY_ISSUE)
    getattr(card.applet, end)()
    card.applet.power_on()
    card.send(select_command())
    assert card.send(session.write_ticket_command(1, signed(card.csn)))[1] == SW_SECURITY


def test_a_failing_hook_of_any_kind_is_a_status_word_not_an_exception(card: Card) -> None:
    def explode(_state: object) -> None:
        raise RuntimeError("boom")

    card.applet._on_commit = explode
    card.tap()
    assert card.send(open_session_command(KEY_ISSUE, bytes(8)))[1] == SW_MEMORY_FAILURE


def test_ctr_never_decreases_across_reloads(tmp_path: Path) -> None:
    path = tmp_path / "card.json"
    CardFile.save(path, new_state())
    seen: list[int] = []
    for _ in range(4):
        card = Card(applet=open_card(path))
        seen.append(card.session(KEY_VALIDATE).ctr)
        seen.append(card.session(KEY_VALIDATE).ctr)
    assert seen == sorted(set(seen))
    assert seen == list(range(1, 9))
    assert CardFile.load(path).ctr == 8
