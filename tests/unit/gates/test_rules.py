"""The gate's pure decision: which ticket of a card, admit or refuse, and the code, over the Expo's tickets and days."""

from dataclasses import replace
from datetime import date, datetime, timedelta

import pytest

from gates.rules import (
    ENTRY_REFUSALS,
    annul_refusal,
    decide_card_entry,
    decide_souvenir,
    entered_ticket_ids,
    pending_card_annulment,
    unanswered_entries,
)
from gates.wire import Event, GateEntry
from simcard.keys import KEY_VALIDATE
from simcard.record import CARD_FLAG_SOUVENIR, TicketRecord, day_number
from tests.unit.card_support import key, new_state
from tests.unit.gates.support import at, signed_for, ticket

CSN = new_state().csn
OTHER_CSN = new_state(serial=43).csn
CARD_KEY = key(CSN, KEY_VALIDATE)
STANDARD_DAY = "2010-06-01"
PEAK_DAY = "2010-10-03"


def raw(record: TicketRecord, csn: bytes = CSN) -> bytes:
    return signed_for(csn, record)


def decide(
    *records: TicketRecord | bytes,
    when: datetime,
    revoked: set[int] | None = None,
    journal: set[int] | None = None,
) -> tuple[bool, str, int | None]:
    """(admit, code, slot) for a card holding these records in slots 1, 2, ..."""
    slots = [(n, item if isinstance(item, bytes) else raw(item)) for n, item in enumerate(records, start=1)]
    decision = decide_card_entry(
        csn=CSN,
        records=slots,
        card_key=CARD_KEY,
        key_version=1,
        revoked=revoked or set(),
        journal_entered=journal or set(),
        at=when,
    )
    return decision.admit, decision.code, decision.slot


def entered(record: TicketRecord, day: str, *, times: int = 1) -> TicketRecord:
    return replace(record, entries_used=times, last_entry_day=day_number(date.fromisoformat(day)), last_gate=1001)


# --- single tickets over the days ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("ticket_type", "visit_day", "day", "code"),
    [
        ("standard", None, STANDARD_DAY, "ok"),
        ("standard", None, "2010-10-24", "ok"),
        ("standard", None, PEAK_DAY, "peak_day_not_valid"),
        ("standard", None, "2010-05-02", "not_yet_valid"),  # a peak day before its first standard day
        ("standard_concession", None, STANDARD_DAY, "ok"),
        ("standard_concession", None, "2010-05-01", "not_yet_valid"),
        ("peak", date(2010, 10, 3), PEAK_DAY, "ok"),
        ("peak", date(2010, 10, 3), "2010-10-02", "not_yet_valid"),
        ("peak", date(2010, 10, 3), "2010-10-04", "expired"),
        ("peak_concession", date(2010, 5, 1), "2010-05-01", "ok"),
        ("peak_concession", date(2010, 5, 1), STANDARD_DAY, "expired"),
        ("evening", None, STANDARD_DAY, "evening_not_yet"),
        ("pass_3", None, STANDARD_DAY, "ok"),
        ("pass_7", None, STANDARD_DAY, "ok"),
        ("pass_3", None, PEAK_DAY, "peak_day_not_valid"),
        ("standard", None, "2010-04-30", "outside_expo"),
        ("pass_7", None, "2010-11-01", "outside_expo"),
    ],
)
def test_tickets_by_day(ticket_type: str, visit_day: date | None, day: str, code: str) -> None:
    admit, got, _ = decide(ticket(ticket_type, visit_day=visit_day), when=at(day))
    assert (admit, got) == (code == "ok", code)


@pytest.mark.parametrize(("hhmm", "code"), [("16:59", "evening_not_yet"), ("17:00", "ok"), ("21:30", "ok")])
def test_evening_tickets_from_17_00(hhmm: str, code: str) -> None:
    assert decide(ticket("evening"), when=at(STANDARD_DAY, hhmm))[1] == code


@pytest.mark.parametrize(("ticket_type", "check_id"), [("standard_concession", True), ("standard", False)])
def test_concessions_check_id(ticket_type: str, check_id: bool) -> None:
    decision = decide_card_entry(
        csn=CSN,
        records=[(1, raw(ticket(ticket_type)))],
        card_key=CARD_KEY,
        key_version=1,
        revoked=set(),
        journal_entered=set(),
        at=at(STANDARD_DAY),
    )
    assert (decision.admit, decision.check_id) == (True, check_id)


def test_peak_concession_checks_id_too() -> None:
    decision = decide_card_entry(
        csn=CSN,
        records=[(1, raw(ticket("peak_concession", visit_day=date(2010, 10, 3))))],
        card_key=CARD_KEY,
        key_version=1,
        revoked=set(),
        journal_entered=set(),
        at=at(PEAK_DAY),
    )
    assert decision.admit
    assert decision.check_id


@pytest.mark.parametrize(
    ("day", "code"), [("2010-10-03", "ok"), ("2010-10-04", "peak_day_not_valid"), ("2010-10-08", "ok")]
)
def test_peak_day_upgrade(day: str, code: str) -> None:
    upgraded = ticket("standard", upgrade_day=date(2010, 10, 3))
    assert decide(upgraded, when=at(day))[1] == code


def test_single_day_ticket_used_today_or_before() -> None:
    standard = ticket("standard")
    assert decide(entered(standard, STANDARD_DAY), when=at(STANDARD_DAY, "15:00"))[1] == "already_used"
    assert decide(entered(standard, STANDARD_DAY), when=at("2010-06-02"))[1] == "already_used"


def test_passes_once_a_day_until_used_up() -> None:
    pass_3 = ticket("pass_3")
    assert decide(entered(pass_3, STANDARD_DAY), when=at(STANDARD_DAY, "16:00"))[1] == "already_entered_today"
    assert decide(entered(pass_3, STANDARD_DAY), when=at("2010-06-02"))[1] == "ok"
    assert decide(entered(pass_3, "2010-06-02", times=3), when=at("2010-06-05"))[1] == "no_entries_left"


# --- trust ------------------------------------------------------------------------------------------------------


def test_revoked() -> None:
    assert decide(ticket("standard", ticket_id=9), when=at(STANDARD_DAY), revoked={9})[1] == "revoked"


@pytest.mark.parametrize("byte", [0, 4, 6, 8, 9, 10, 13, 16, 23])
def test_a_flipped_byte_of_the_platform_part_is_tampered(byte: int) -> None:
    signed = bytearray(raw(ticket("standard")))
    signed[byte] ^= 0x01
    assert decide(bytes(signed), when=at(STANDARD_DAY)) == (False, "tampered_record", 1)


def test_a_record_copied_from_another_card_is_tampered() -> None:
    assert decide(raw(ticket("standard"), csn=OTHER_CSN), when=at(STANDARD_DAY))[1] == "tampered_record"


def test_a_record_of_another_key_version() -> None:
    assert decide(replace(ticket("standard"), key_version=2), when=at(STANDARD_DAY))[1] == "unknown_key_version"


def test_a_signed_record_of_no_ticket_type() -> None:
    assert decide(replace(ticket("standard"), ticket_type=0x09), when=at(STANDARD_DAY))[1] == "unknown_ticket_type"


def test_no_ticket() -> None:
    assert decide(when=at(STANDARD_DAY)) == (False, "no_ticket", None)


def test_the_journal_knows_an_entry_the_card_forgot() -> None:
    assert decide(ticket("standard", ticket_id=7), when=at(STANDARD_DAY), journal={7}) == (
        False,
        "journal_says_entered",
        1,
    )


# --- several tickets ---------------------------------------------------------------------------------------------


def test_the_admissible_ticket_ending_first_is_chosen() -> None:
    pass_7 = ticket("pass_7", ticket_id=1)
    standard = ticket("standard", ticket_id=2)
    assert decide(pass_7, standard, when=at(STANDARD_DAY)) == (True, "ok", 2)


def test_equal_last_days_take_the_lowest_slot() -> None:
    assert decide(ticket("standard", ticket_id=1), ticket("standard", ticket_id=2), when=at(STANDARD_DAY)) == (
        True,
        "ok",
        1,
    )


def test_an_admissible_ticket_beside_a_tampered_one_is_admitted() -> None:
    broken = bytearray(raw(ticket("standard", ticket_id=1)))
    broken[0] ^= 0x80
    assert decide(bytes(broken), ticket("pass_3", ticket_id=2), when=at(STANDARD_DAY)) == (True, "ok", 2)


def test_a_card_that_entered_today_admits_no_other_ticket() -> None:
    used = entered(ticket("standard", ticket_id=1), STANDARD_DAY)
    assert decide(used, ticket("pass_3", ticket_id=2), when=at(STANDARD_DAY, "14:00")) == (False, "already_used", 1)


@pytest.mark.parametrize(
    ("records", "day", "code"),
    [
        # a peak ticket for another day and a standard ticket on a peak day: the day's own rule tells more
        (
            (ticket("peak", visit_day=date(2010, 10, 4)), ticket("standard", ticket_id=8)),
            PEAK_DAY,
            "peak_day_not_valid",
        ),
        # a ticket used weeks ago and one for a later day: the later one is what the visitor came with
        (
            (entered(ticket("standard"), "2010-05-20"), ticket("peak", ticket_id=8, visit_day=date(2010, 10, 3))),
            STANDARD_DAY,
            "not_yet_valid",
        ),
        ((ticket("evening"), entered(ticket("standard", ticket_id=8), "2010-05-20")), STANDARD_DAY, "evening_not_yet"),
        (
            (ticket("peak", visit_day=date(2010, 5, 1)), entered(ticket("pass_3", ticket_id=8), "2010-06-03", times=3)),
            "2010-10-08",
            "no_entries_left",
        ),
        ((ticket("peak", visit_day=date(2010, 5, 1)),), "2010-10-08", "expired"),
    ],
)
def test_all_refused_shows_the_most_telling_code(records: tuple[TicketRecord, ...], day: str, code: str) -> None:
    assert decide(*records, when=at(day, "12:00"))[:2] == (False, code)
    assert decide(*reversed(records), when=at(day, "12:00"))[:2] == (False, code)


def test_the_order_of_refusals_is_fixed_and_complete() -> None:
    assert len(set(ENTRY_REFUSALS)) == len(ENTRY_REFUSALS)
    assert ENTRY_REFUSALS[0] == "tampered_record"
    assert ENTRY_REFUSALS.index("revoked") < ENTRY_REFUSALS.index("expired")


# --- souvenirs ---------------------------------------------------------------------------------------------------


def souvenir(*records: TicketRecord | bytes, revoked: set[int] | None = None) -> tuple[bool, str, int | None]:
    slots = [(n, item if isinstance(item, bytes) else raw(item)) for n, item in enumerate(records, start=1)]
    decision = decide_souvenir(csn=CSN, records=slots, card_key=CARD_KEY, key_version=1, revoked=revoked or set())
    return decision.admit, decision.code, decision.slot


def test_souvenir_once_per_entered_ticket() -> None:
    standard = ticket("standard")
    assert souvenir(standard) == (False, "not_entered", 1)
    assert souvenir(entered(standard, STANDARD_DAY)) == (True, "ok", 1)
    taken = replace(entered(standard, STANDARD_DAY), card_flags=CARD_FLAG_SOUVENIR)
    assert souvenir(taken) == (False, "souvenir_taken", 1)


def test_souvenir_refusals() -> None:
    used = entered(ticket("standard", ticket_id=9), STANDARD_DAY)
    assert souvenir(used, revoked={9})[1] == "revoked"
    assert souvenir(raw(used, csn=OTHER_CSN))[1] == "tampered_record"
    assert souvenir() == (False, "no_ticket", None)


def test_souvenir_for_the_ticket_entered_last() -> None:
    older = entered(ticket("pass_3", ticket_id=1), "2010-05-20")
    newer = entered(ticket("standard", ticket_id=2), STANDARD_DAY)
    assert souvenir(older, newer) == (True, "ok", 2)


# --- the journal's facts -----------------------------------------------------------------------------------------


def line(seq: int, event: Event, when: datetime, **fields: object) -> GateEntry:
    return GateEntry(seq=seq, event=event, at=when, code="ok", csn=CSN.hex(), **fields)  # type: ignore[arg-type]


def test_entered_ticket_ids_leave_out_annulled_admissions() -> None:
    when = at(STANDARD_DAY)
    lines = [
        line(1, Event.ADMITTED, when, ticket_id=7, slot=1, card_marked=True, ctr=1),
        line(2, Event.ANNULLED, when, ticket_id=7, slot=1, annuls_seq=1),
        line(3, Event.FORCED, when, ticket_id=8, slot=2),
        line(4, Event.REFUSED, when, ticket_id=9, slot=3),
    ]
    assert entered_ticket_ids(lines) == {8}
    assert entered_ticket_ids(lines[:1]) == {7}


def test_a_journal_annulment_is_carried_to_the_card_within_the_window() -> None:
    when = at(STANDARD_DAY)
    admitted = line(1, Event.ADMITTED, when, ticket_id=7, slot=1, card_marked=True, ctr=1)
    annulled = line(2, Event.ANNULLED, when, ticket_id=7, slot=1, annuls_seq=1)
    assert pending_card_annulment([admitted, annulled], at=when + timedelta(seconds=120)) == admitted
    assert pending_card_annulment([admitted, annulled], at=when + timedelta(seconds=121)) is None
    on_card = line(3, Event.ANNULLED, when, ticket_id=7, slot=1, annuls_seq=1, card_marked=True, ctr=2)
    assert pending_card_annulment([admitted, annulled, on_card], at=when) is None
    assert pending_card_annulment([admitted], at=when) is None


def test_annul_refusals() -> None:
    when = at(STANDARD_DAY)
    last = line(1, Event.ADMITTED, when, ticket_id=7, slot=1, card_marked=True, ctr=1)
    assert annul_refusal(None, annulled=False, at=when) == "nothing_to_annul"
    assert annul_refusal(last, annulled=True, at=when) == "nothing_to_annul"
    assert annul_refusal(last, annulled=False, at=when + timedelta(seconds=121)) == "annul_window_passed"
    assert annul_refusal(last, annulled=False, at=when + timedelta(seconds=120)) is None


def test_unanswered_entries_are_removals_after_the_decision_not_yet_admitted() -> None:
    when = at(STANDARD_DAY)
    lost = GateEntry(
        seq=1, event=Event.REFUSED, at=when, code="card_removed", csn=CSN.hex(), ctr=4, ticket_id=7, slot=1
    )
    early = GateEntry(seq=2, event=Event.REFUSED, at=when, code="card_removed", csn=CSN.hex(), ctr=5)
    plain = GateEntry(
        seq=3, event=Event.REFUSED, at=when, code="already_used", csn=CSN.hex(), ctr=6, ticket_id=7, slot=1
    )
    assert unanswered_entries([lost, early, plain]) == [lost]
    recovered = line(4, Event.ADMITTED, when, ticket_id=7, slot=1, card_marked=True, ctr=4)
    assert unanswered_entries([lost, early, plain, recovered]) == []
