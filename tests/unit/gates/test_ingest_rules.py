"""The pure rules of a gate upload: which lines are consistent, and the conflicts of stored lines."""

from datetime import datetime, timedelta
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from msgspec.structs import replace

from expo.clock import EXPO_TZ
from expo.errors import ExpoError
from gates.ingest_rules import (
    LATE_UPLOAD,
    ConflictCode,
    Found,
    TicketFacts,
    check_batch,
    conflicts_of,
    duplicate_card_event,
    insert_order,
)
from gates.wire import Event, GateEntry

AT = datetime(2010, 6, 1, 10, 0, tzinfo=EXPO_TZ)
CSN = "0031000000000001"
ISSUED_HERE = TicketFacts("issued", CSN)


def entry(seq: int = 2, event: Event = Event.ADMITTED, **changes: Any) -> GateEntry:
    base = GateEntry(seq=seq, event=event, at=AT, code="ok", csn=CSN, ctr=5, ticket_id=9, slot=1, card_marked=True)
    return replace(base, **changes)


CONSISTENT = [
    entry(),
    entry(event=Event.FORCED, card_marked=False, ctr=None, reason="card_error", supervisor="S1"),
    entry(event=Event.SOUVENIR),
    entry(event=Event.REFUSED, code="no_ticket", csn=None, ctr=None, ticket_id=None, slot=None, card_marked=False),
    entry(event=Event.REFUSED, code="revoked", card_marked=False),
    entry(event=Event.ANNULLED, annuls_seq=1, card_marked=False, ctr=None),
    entry(event=Event.ANNULLED, annuls_seq=1, ticket_id=None, slot=None),
]


@pytest.mark.parametrize("line", CONSISTENT, ids=lambda line: line.event.value)
def test_consistent_lines_pass(line: GateEntry) -> None:
    check_batch([line])


INCONSISTENT = {
    "admitted without csn": entry(csn=None, card_marked=False, ctr=None),
    "admitted without ticket": entry(ticket_id=None),
    "forced without slot": entry(event=Event.FORCED, slot=None),
    "souvenir without csn": entry(event=Event.SOUVENIR, csn=None),
    "card event without ctr": entry(ctr=None),
    "card event without csn": entry(event=Event.REFUSED, csn=None, ticket_id=None, slot=None),
    "annulled without annuls_seq": entry(event=Event.ANNULLED),
    "annuls_seq on an admission": entry(annuls_seq=1),
    "annuls itself": entry(event=Event.ANNULLED, annuls_seq=2),
    "annuls a later line": entry(event=Event.ANNULLED, annuls_seq=3),
    "naive time": entry(at=AT.replace(tzinfo=None)),
}


@pytest.mark.parametrize("line", INCONSISTENT.values(), ids=INCONSISTENT.keys())
def test_an_inconsistent_line_refuses_the_batch(line: GateEntry) -> None:
    with pytest.raises(ExpoError) as refused:
        check_batch([entry(1, Event.REFUSED, code="no_ticket", card_marked=False), line])
    assert (refused.value.code, refused.value.status, refused.value.extra) == ("invalid_entry", 400, {"seq": 2})


def test_a_seq_twice_refuses_the_batch() -> None:
    with pytest.raises(ExpoError) as refused:
        check_batch([entry(4), entry(5, ctr=6), entry(4, ctr=7)])
    assert (refused.value.code, refused.value.extra) == ("invalid_entry", {"seq": 4})


def codes(line: GateEntry, facts: TicketFacts | None = ISSUED_HERE, *, late: timedelta = timedelta(0)) -> list[str]:
    tickets = {} if facts is None else {9: facts}
    return [found.code.value for found in conflicts_of([line], tickets=tickets, received_at=AT + late)]


def test_an_ordinary_entry_has_no_conflict() -> None:
    assert codes(entry()) == []


@pytest.mark.parametrize(
    ("status", "expected"),
    [("void", ["revoked_ticket_entered"]), ("refunded", ["revoked_ticket_entered"]), ("used", [])],
)
def test_entries_of_revoked_tickets(status: str, expected: list[str]) -> None:
    assert codes(entry(), TicketFacts(status, CSN)) == expected
    assert codes(entry(event=Event.FORCED, reason="r", supervisor="s"), TicketFacts(status, CSN)) == [
        "forced_admission",
        *expected,
    ]
    # The gate refused it, or handed a souvenir: nobody entered on a revoked ticket here.
    assert codes(entry(event=Event.REFUSED, code="revoked", card_marked=False), TicketFacts(status, CSN)) == []
    assert codes(entry(event=Event.SOUVENIR), TicketFacts(status, CSN)) == []


def test_unknown_tickets() -> None:
    assert codes(entry(), None) == ["unknown_ticket"]
    assert codes(entry(event=Event.SOUVENIR), None) == ["unknown_ticket"]
    assert codes(entry(event=Event.REFUSED, code="tampered_record", card_marked=False), None) == []


def test_a_ticket_written_to_another_card() -> None:
    assert codes(entry(), TicketFacts("issued", "0031000000000002")) == ["ticket_not_on_card"]
    assert codes(entry(), TicketFacts("issued", None)) == []  # never written to a card (or not yet confirmed)


@pytest.mark.parametrize(
    ("late", "expected"),
    [(LATE_UPLOAD, []), (LATE_UPLOAD + timedelta(seconds=1), ["late_upload"]), (timedelta(minutes=-5), [])],
)
def test_late_uploads(late: timedelta, expected: list[str]) -> None:
    assert codes(entry(event=Event.REFUSED, code="no_ticket", card_marked=False), late=late) == expected


def test_a_duplicate_card_event_names_the_line_that_has_it() -> None:
    found = duplicate_card_event(entry(12), holder_gate_id=3, holder_seq=40)
    assert found == Found(12, ConflictCode.DUPLICATE_CARD_EVENT, f"card {CSN} ctr 5 admitted is already gate 3 seq 40")


lines = st.builds(
    GateEntry,
    seq=st.integers(1, 2**53),
    event=st.sampled_from(Event),
    at=st.just(AT),
    code=st.just("ok"),
    csn=st.none() | st.sampled_from([CSN, "0031000000000002"]),
    ctr=st.none() | st.integers(0, 3),
)


@given(st.lists(lines, max_size=30))
def test_the_insert_order_is_a_total_order_of_card_events(batch: list[GateEntry]) -> None:
    """Two uploads sort their rows alike, so they take their index entries in the same order."""
    ordered = sorted(batch, key=insert_order)
    assert sorted(reversed(batch), key=insert_order) == ordered
    card_events = [(line.csn or "", -1 if line.ctr is None else line.ctr, line.event.value) for line in ordered]
    assert card_events == sorted(card_events)
