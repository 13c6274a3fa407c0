"""A tap end to end in process: the validator, the emulated card (the same applet as behind pcscd) and the journal."""

import json
import stat
import subprocess
import sys
from dataclasses import replace
from datetime import date, timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner

from expo.cli_card import card
from gates.errors import GateError
from gates.rules import ANNUL_WINDOW
from gates.sam import load_sam
from gates.validator import TapResult
from gates.wire import Event
from simcard.applet import CardApplet
from simcard.keys import KEY_TYPES, KEY_VALIDATE, KeySet, card_key, province_key, sam_card_key
from simcard.keystore import KeyFileError, export_sam_keys, generate_root_keys, load_sam_keys, write_sam_keys
from simcard.record import EVENT_ANNULLED, EVENT_ENTRY, LogEntry, day_number
from tests.unit.card_support import ROOT, new_state
from tests.unit.gates.support import OTHER_GATE_ID, Gate, at, card_with, signed_for, slot_record, ticket

JUNE_1 = "2010-06-01"


@pytest.fixture
def gate(tmp_path: Path) -> Gate:
    return Gate(tmp_path, when=at(JUNE_1))


def only_line(gate: Gate, result: TapResult) -> None:
    """The result is the journal's newest line, as stored."""
    stored = gate.journal.line(result.seq or 0)
    assert stored is not None
    assert (stored.event, stored.code, stored.csn, stored.ctr, stored.ticket_id, stored.slot) == (
        result.event,
        result.code,
        result.csn,
        result.ctr,
        result.ticket_id,
        result.slot,
    )


# --- admitted and refused ---------------------------------------------------------------------------------------


def test_a_standard_ticket_enters_once(gate: Gate) -> None:
    card = card_with(ticket("standard"))
    result = gate.validator.entry(gate.channel(card))
    assert (result.event, result.code, result.opens, result.ticket_id, result.slot) == (
        Event.ADMITTED,
        "ok",
        True,
        7,
        1,
    )
    assert (result.csn, result.ctr, result.ticket_type, result.check_id) == (card.state.csn.hex(), 1, "standard", False)
    assert result.record == slot_record(card)
    assert (slot_record(card).entries_used, slot_record(card).last_gate) == (1, 1001)
    stored = gate.journal.line(result.seq or 0)
    assert stored is not None
    assert stored.card_marked
    only_line(gate, result)
    gate.clock.advance(timedelta(hours=3))
    again = gate.validator.entry(gate.channel(card))
    assert (again.event, again.code, again.opens, again.ticket_id) == (Event.REFUSED, "already_used", False, 7)
    only_line(gate, again)
    assert slot_record(card).entries_used == 1
    gate.clock.advance(timedelta(days=1))
    assert gate.validator.entry(gate.channel(card)).code == "already_used"


def test_a_pass_enters_again_the_next_day(gate: Gate) -> None:
    card = card_with(ticket("pass_3"))
    assert gate.validator.entry(gate.channel(card)).code == "ok"
    assert gate.validator.entry(gate.channel(card)).code == "already_entered_today"
    gate.clock.advance(timedelta(days=1))
    assert gate.validator.entry(gate.channel(card)).code == "ok"
    assert slot_record(card).entries_used == 2


def test_a_single_day_ticket_does_not_enter_the_next_day(gate: Gate) -> None:
    card = card_with(ticket("standard_concession"))
    first = gate.validator.entry(gate.channel(card))
    assert (first.code, first.check_id) == ("ok", True)
    gate.clock.advance(timedelta(days=1))
    assert gate.validator.entry(gate.channel(card)).code == "already_used"


@pytest.mark.parametrize(("hhmm", "code"), [("16:59", "evening_not_yet"), ("17:00", "ok")])
def test_evening_ticket(gate: Gate, hhmm: str, code: str) -> None:
    gate.clock.set(at(JUNE_1, hhmm))
    card = card_with(ticket("evening"))
    assert gate.validator.entry(gate.channel(card)).code == code
    assert slot_record(card).entries_used == (code == "ok")


@pytest.mark.parametrize(("day", "code"), [("2010-10-03", "ok"), ("2010-10-04", "peak_day_not_valid")])
def test_peak_day_upgrade(gate: Gate, day: str, code: str) -> None:
    gate.clock.set(at(day))
    card = card_with(ticket("standard", upgrade_day=date(2010, 10, 3)))
    assert gate.validator.entry(gate.channel(card)).code == code


def test_revoked_ticket(gate: Gate) -> None:
    gate.journal.apply_revocations(version=1, ticket_ids=[7])
    card = card_with(ticket("standard"))
    result = gate.validator.entry(gate.channel(card))
    assert (result.code, result.ticket_id) == ("revoked", 7)
    assert slot_record(card).entries_used == 0


def test_no_ticket(gate: Gate) -> None:
    result = gate.validator.entry(gate.channel(card_with()))
    assert (result.event, result.code, result.ticket_id) == (Event.REFUSED, "no_ticket", None)
    only_line(gate, result)


def test_the_best_of_several_tickets_is_marked(gate: Gate) -> None:
    card = card_with(ticket("pass_7", ticket_id=1), ticket("standard", ticket_id=2))
    result = gate.validator.entry(gate.channel(card))
    assert (result.ticket_id, result.slot) == (2, 2)
    assert (slot_record(card, 1).entries_used, slot_record(card, 2).entries_used) == (0, 1)
    assert gate.validator.entry(gate.channel(card)).code == "already_used"  # one visitor, one entry a day


# --- cards and records that cannot be trusted ---------------------------------------------------------------------


@pytest.mark.parametrize("byte", [0, 4, 9, 17])
def test_a_tampered_record_is_refused_and_the_card_unchanged(gate: Gate, byte: int) -> None:
    card = card_with(ticket("standard"))
    raw = bytearray(card.state.slot(1) or b"")
    raw[byte] ^= 0x01
    card = CardApplet(replace(card.state, slots=(bytes(raw), None, None, None)))
    result = gate.validator.entry(gate.channel(card))
    assert (result.code, result.ticket_id, result.slot) == ("tampered_record", None, None)
    assert card.state.slot(1) == bytes(raw)
    only_line(gate, result)


def test_a_record_copied_from_another_card(gate: Gate) -> None:
    other = new_state(serial=43)
    card = card_with(signed_for(other.csn, ticket("standard")))
    assert gate.validator.entry(gate.channel(card)).code == "tampered_record"
    assert slot_record(card).entries_used == 0


def test_a_card_personalised_with_another_provinces_keys_is_not_authentic(gate: Gate) -> None:
    # A Shanghai CSN, but every key diversified from Jiangsu's K_prov: the cryptogram cannot be the SAM's.
    state = new_state()
    jiangsu = {t: province_key(ROOT[t], "32", t) for t in KEY_TYPES}
    keys = KeySet({t: card_key(jiangsu[t], state.csn, t) for t in KEY_TYPES})
    card = card_with(ticket("standard"), state=replace(state, keys=keys))
    result = gate.validator.entry(gate.channel(card))
    assert (result.event, result.code, result.csn, result.ticket_id) == (
        Event.REFUSED,
        "card_not_authentic",
        state.csn.hex(),
        None,
    )
    only_line(gate, result)
    assert slot_record(card).entries_used == 0


def test_a_card_without_the_expo_applet(gate: Gate) -> None:
    card = card_with(ticket("standard"), state=replace(new_state(), aid=bytes(10)))
    result = gate.validator.entry(gate.channel(card))
    assert (result.code, result.csn) == ("unknown_card", None)


def test_a_card_of_no_province(gate: Gate) -> None:
    state = new_state(province="99")
    result = gate.validator.entry(gate.channel(card_with(state=state)))
    assert (result.code, result.csn) == ("unknown_card", state.csn.hex())


def test_a_card_of_another_key_generation(gate: Gate) -> None:
    card = card_with(ticket("standard"), state=replace(new_state(), key_version=2))
    assert gate.validator.entry(gate.channel(card)).code == "unknown_key_version"


def test_a_restored_card_is_refused_by_the_journal(gate: Gate) -> None:
    card = card_with(ticket("standard"))
    before = card.state
    assert gate.validator.entry(gate.channel(card)).code == "ok"
    restored = CardApplet(replace(before, ctr=card.state.ctr))  # the slot as it was before the entry
    result = gate.validator.entry(gate.channel(restored))
    assert (result.code, result.ticket_id) == ("journal_says_entered", 7)


# --- a card pulled away mid-session ---------------------------------------------------------------------------------


class Pulled(Exception):
    """What the reader raises when the card leaves the field (simcard.pcsc.CardRemoved's code)."""

    code = "card_removed"


class PullingChannel:
    """The card leaves after `apdus` commands; `delivered`: the last one reached the card, its answer did not."""

    def __init__(self, applet: CardApplet, *, apdus: int, delivered: bool = False) -> None:
        self.applet = applet
        self.left = apdus
        self.delivered = delivered
        applet.power_on()

    def transmit(self, apdu: bytes) -> bytes:
        if self.left == 0:
            if self.delivered:
                self.applet.process(apdu)
            raise Pulled("the card left the reader")
        self.left -= 1
        return self.applet.process(apdu)


@pytest.mark.parametrize("apdus", [0, 1, 2])  # before SELECT, before OPEN SESSION, before READ TICKET
def test_a_card_pulled_before_marking_is_a_journaled_refusal(gate: Gate, apdus: int) -> None:
    card = card_with(ticket("standard"))
    result = gate.validator.entry(PullingChannel(card, apdus=apdus))
    assert (result.event, result.code, result.opens) == (Event.REFUSED, "card_removed", False)
    only_line(gate, result)
    assert slot_record(card).entries_used == 0
    assert gate.journal.counts()["entries"] == 0
    assert gate.validator.entry(gate.channel(card)).code == "ok"  # the next tap is a fresh start


def test_a_card_pulled_during_mark_entry_is_not_admitted(gate: Gate) -> None:
    card = card_with(ticket("standard"))
    result = gate.validator.entry(PullingChannel(card, apdus=3))
    assert (result.event, result.code, result.ticket_id, result.ctr) == (Event.REFUSED, "card_removed", 7, 1)
    assert slot_record(card).entries_used == 0
    assert gate.journal.counts() == {
        "admitted": 0,
        "forced": 0,
        "annulled": 0,
        "refused": 1,
        "souvenirs": 0,
        "entries": 0,
    }


def test_an_entry_whose_answer_was_lost_is_admitted_on_the_next_tap(gate: Gate) -> None:
    card = card_with(ticket("pass_3"))
    lost = gate.validator.entry(PullingChannel(card, apdus=3, delivered=True))
    assert (lost.opens, lost.code, lost.ctr) == (False, "card_removed", 1)
    assert slot_record(card).entries_used == 1  # the card recorded it, but the gate did not open
    assert gate.journal.counts()["entries"] == 0
    gate.clock.advance(timedelta(minutes=10))
    again = gate.validator.entry(gate.channel(card))
    assert (again.event, again.code, again.ctr, again.ticket_id) == (Event.ADMITTED, "ok", 1, 7)  # that session's entry
    only_line(gate, again)
    assert slot_record(card).entries_used == 1
    assert gate.journal.counts()["entries"] == 1
    assert gate.validator.entry(gate.channel(card)).code == "already_entered_today"


def test_a_lost_answer_is_not_recovered_at_another_gate(gate: Gate, tmp_path: Path) -> None:
    card = card_with(ticket("standard"))
    gate.validator.entry(PullingChannel(card, apdus=3, delivered=True))
    other = Gate(tmp_path, when=gate.clock.now(), gate_id=OTHER_GATE_ID)
    assert other.validator.entry(other.channel(card)).code == "already_used"


def test_a_lost_answer_is_recovered_only_for_that_session(gate: Gate) -> None:
    card = card_with(ticket("pass_3"))
    gate.validator.entry(PullingChannel(card, apdus=3, delivered=True))
    # The card's newest log entry is no longer that session's entry here (another terminal wrote since).
    newer = LogEntry(card.state.ctr + 1, EVENT_ANNULLED, 5, bytes(7)).encode()
    card = CardApplet(replace(card.state, log=(*card.state.log, newer), ctr=card.state.ctr + 1))
    assert gate.validator.entry(gate.channel(card)).code == "already_entered_today"


def test_a_fault_that_is_not_the_cards_is_raised(gate: Gate) -> None:
    class Broken:
        def transmit(self, apdu: bytes) -> bytes:
            raise ZeroDivisionError

    with pytest.raises(ZeroDivisionError):
        gate.validator.entry(Broken())


# --- annulment -----------------------------------------------------------------------------------------------------


def test_annul_then_retap_admits_again_and_the_card_counts_one_entry(gate: Gate) -> None:
    card = card_with(ticket("pass_3"))
    first = gate.validator.entry(gate.channel(card))
    gate.clock.advance(timedelta(seconds=20))
    annul_seq = gate.validator.annul_last()
    annul = gate.journal.line(annul_seq)
    assert annul is not None
    assert (annul.event, annul.annuls_seq, annul.card_marked, annul.ticket_id) == (Event.ANNULLED, first.seq, False, 7)
    gate.clock.advance(timedelta(seconds=30))
    again = gate.validator.entry(gate.channel(card))
    assert (again.event, again.code) == (Event.ADMITTED, "ok")
    on_card = gate.journal.line(annul_seq + 1)
    assert on_card is not None
    assert (on_card.event, on_card.annuls_seq, on_card.card_marked, on_card.ctr) == (
        Event.ANNULLED,
        first.seq,
        True,
        again.ctr,
    )
    assert again.seq == annul_seq + 2
    assert slot_record(card).entries_used == 1
    events = [LogEntry.decode(entry).event for entry in card.state.log[-3:]]
    assert events == [EVENT_ENTRY, EVENT_ANNULLED, EVENT_ENTRY]
    assert gate.journal.counts()["entries"] == 1
    assert gate.journal.counts()["annulled"] == 1


def test_annul_window_and_nothing_to_annul(gate: Gate) -> None:
    with pytest.raises(GateError) as nothing:
        gate.validator.annul_last()
    assert nothing.value.code == "nothing_to_annul"
    card = card_with(ticket("standard"))
    gate.validator.entry(gate.channel(card))
    gate.clock.advance(ANNUL_WINDOW + timedelta(seconds=1))
    with pytest.raises(GateError) as late:
        gate.validator.annul_last()
    assert late.value.code == "annul_window_passed"
    assert gate.journal.counts()["annulled"] == 0


def test_an_admission_is_annulled_once(gate: Gate) -> None:
    gate.validator.entry(gate.channel(card_with(ticket("standard"))))
    gate.validator.annul_last()
    with pytest.raises(GateError) as twice:
        gate.validator.annul_last()
    assert twice.value.code == "nothing_to_annul"


def test_a_retap_after_the_window_is_refused_and_the_card_keeps_its_entry(gate: Gate) -> None:
    card = card_with(ticket("standard"))
    gate.validator.entry(gate.channel(card))
    gate.validator.annul_last()
    gate.clock.advance(ANNUL_WINDOW + timedelta(seconds=1))
    assert gate.validator.entry(gate.channel(card)).code == "already_used"
    assert slot_record(card).entries_used == 1
    assert gate.journal.counts()["entries"] == 0  # the turnstile did not turn: nobody entered


def test_another_gate_does_not_annul_on_the_card(gate: Gate, tmp_path: Path) -> None:
    card = card_with(ticket("standard"))
    gate.validator.entry(gate.channel(card))
    gate.validator.annul_last()
    other = Gate(tmp_path, when=gate.clock.now(), gate_id=OTHER_GATE_ID)
    assert other.validator.entry(other.channel(card)).code == "already_used"
    assert slot_record(card).entries_used == 1


# --- handheld: forced admissions --------------------------------------------------------------------------------------


def test_force_a_used_ticket_is_recorded_with_reason_and_supervisor(gate: Gate) -> None:
    card = card_with(ticket("standard"))
    gate.validator.entry(gate.channel(card))
    forced = gate.validator.force(gate.channel(card), reason="turnstile jammed, let in by hand", supervisor="SH-S007")
    assert (forced.event, forced.code, forced.opens, forced.ticket_id) == (Event.FORCED, "already_used", True, 7)
    stored = gate.journal.line(forced.seq or 0)
    assert stored is not None
    assert (stored.reason, stored.supervisor, stored.card_marked) == (
        "turnstile jammed, let in by hand",
        "SH-S007",
        False,
    )
    assert slot_record(card).entries_used == 1
    assert gate.journal.counts()["forced"] == 1


def test_force_an_admissible_ticket_marks_the_card(gate: Gate) -> None:
    card = card_with(ticket("evening"))
    forced = gate.validator.force(gate.channel(card), reason="group entry before 17:00", supervisor="SH-S007")
    assert (forced.event, forced.code) == (Event.FORCED, "evening_not_yet")
    stored = gate.journal.line(forced.seq or 0)
    assert stored is not None
    assert stored.card_marked
    assert stored.ctr == forced.ctr
    assert slot_record(card).entries_used == 1


def test_no_force_without_a_trustworthy_ticket(gate: Gate) -> None:
    result = gate.validator.force(gate.channel(card_with()), reason="lost phone", supervisor="SH-S007")
    assert (result.event, result.code, result.opens) == (Event.REFUSED, "no_ticket", False)


@pytest.mark.parametrize(
    ("reason", "supervisor", "code"), [(" ", "S1", "reason_required"), ("r", "", "supervisor_required")]
)
def test_force_needs_a_reason_and_a_supervisor(gate: Gate, reason: str, supervisor: str, code: str) -> None:
    with pytest.raises(GateError) as refused:
        gate.validator.force(gate.channel(card_with(ticket("standard"))), reason=reason, supervisor=supervisor)
    assert refused.value.code == code
    assert gate.journal.lines() == []


# --- souvenirs -----------------------------------------------------------------------------------------------------


def test_souvenir_once_per_entered_ticket(gate: Gate) -> None:
    card = card_with(ticket("standard"))
    assert gate.validator.souvenir(gate.channel(card)).code == "not_entered"
    gate.validator.entry(gate.channel(card))
    gate.clock.advance(timedelta(hours=2))
    result = gate.validator.souvenir(gate.channel(card))
    assert (result.event, result.code, result.opens, result.ticket_id) == (Event.SOUVENIR, "ok", False, 7)
    assert slot_record(card).souvenir_collected
    assert result.record == slot_record(card)
    refused = gate.validator.souvenir(gate.channel(card))
    assert (refused.event, refused.code) == (Event.REFUSED, "souvenir_taken")
    assert gate.journal.counts()["souvenirs"] == 1


def test_no_device_module_pulls_in_the_database() -> None:
    code = (
        "import sys, gates.rules, gates.journal, gates.sam, gates.validator, gates.souvenir_ticket\n"
        "bad = [m for m in sys.modules if m.split('.')[0] in ('sqlalchemy', 'litestar', 'asyncpg', 'aiosqlite')]\n"
        "assert not bad, bad\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=Path(__file__).parents[3])


def test_day_number_of_the_tap_is_the_expo_day(gate: Gate) -> None:
    gate.clock.set(at(JUNE_1, "00:30"))  # 16:30 UTC the day before
    card = card_with(ticket("standard"))
    gate.validator.entry(gate.channel(card))
    assert slot_record(card).last_entry_day == day_number(date(2010, 6, 1))


# --- the SAM and its key file ----------------------------------------------------------------------------------------


def test_the_sam_derives_every_provinces_card_keys_from_the_validate_root(tmp_path: Path) -> None:
    write_sam_keys(tmp_path / "sam.json", export_sam_keys(ROOT))
    sam = load_sam(tmp_path / "sam.json")
    for province, serial in (("31", 1), ("31", 2), ("65", 1)):
        csn = new_state(province=province, serial=serial).csn
        assert sam.card_key(csn) == sam_card_key(ROOT, csn, KEY_VALIDATE)
    assert sorted(sam._province_keys) == ["31", "65"]  # K_prov once per province
    with pytest.raises(GateError) as unknown:
        sam.card_key(new_state(province="99").csn)
    assert unknown.value.code == "unknown_card"
    assert "validate_root" not in repr(export_sam_keys(ROOT))
    assert ROOT[KEY_VALIDATE].hex() not in repr(sam) + repr(export_sam_keys(ROOT))


def test_the_sam_key_file_holds_the_validate_root_only_and_is_never_overwritten(tmp_path: Path) -> None:
    root_file, sam_file = tmp_path / "root.json", tmp_path / "sam.json"
    root = generate_root_keys(root_file)
    result = CliRunner().invoke(card, ["keys", "export-sam", "--root", str(root_file), "--out", str(sam_file)])
    assert result.exit_code == 0, result.output
    assert stat.S_IMODE(sam_file.stat().st_mode) == 0o600
    document = json.loads(sam_file.read_text())
    assert document == {"kind": "expo-sam-keys", "key_version": 1, "validate_root": root[KEY_VALIDATE].hex()}
    assert load_sam_keys(sam_file) == export_sam_keys(root)
    again = CliRunner().invoke(card, ["keys", "export-sam", "--root", str(root_file), "--out", str(sam_file)])
    assert again.exit_code != 0
    assert "never overwritten" in again.output
    with pytest.raises(KeyFileError):
        load_sam_keys(root_file)  # a root key file is not a SAM key file
    sam_file.chmod(0o644)
    with pytest.raises(KeyFileError, match="readable by others"):
        load_sam_keys(sam_file)
