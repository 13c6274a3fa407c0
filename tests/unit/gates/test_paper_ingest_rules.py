"""The server's pure rules for physical tickets' lines: which paper lines make sense, and a paper ticket reused."""

from datetime import date, datetime, timedelta
from typing import Any

import msgspec
import pytest

from expo.clock import EXPO_TZ
from expo.errors import ExpoError
from gates.ingest_rules import (
    ConflictCode,
    Found,
    StoredEntry,
    TicketFacts,
    check_batch,
    conflicts_of,
    paper_reuse,
)
from gates.wire import Event, GateEntry

AT = datetime(2010, 6, 1, 10, 0, tzinfo=EXPO_TZ)
DAY = date(2010, 6, 1)
GATE, OTHER = 7, 8


def paper(seq: int = 2, event: Event = Event.ADMITTED, *, ticket_id: int | None = 9, **changes: Any) -> GateEntry:
    fields: dict[str, Any] = {"at": AT, "code": "ok", **changes}
    return GateEntry(seq=seq, event=event, ticket_id=ticket_id, paper=True, **fields)


def test_a_card_line_is_sent_as_before() -> None:
    card = GateEntry(seq=1, event=Event.REFUSED, at=AT, code="no_ticket")
    assert b"paper" not in msgspec.json.encode(card)
    assert msgspec.json.decode(msgspec.json.encode(paper()), type=GateEntry).paper


@pytest.mark.parametrize(
    "line",
    [
        paper(),
        paper(event=Event.FORCED, reason="r", supervisor="s"),
        paper(event=Event.REFUSED, code="already_used"),
        paper(event=Event.REFUSED, ticket_id=None, code="no_code"),
        paper(seq=3, event=Event.ANNULLED, annuls_seq=2),
    ],
    ids=lambda line: f"{line.event}-{line.ticket_id}",
)
def test_consistent_paper_lines_pass(line: GateEntry) -> None:
    check_batch([line])


@pytest.mark.parametrize(
    "line",
    [
        paper(csn="0031000000000001"),
        paper(event=Event.REFUSED, ctr=4),
        paper(slot=1),
        paper(card_marked=True),
        paper(event=Event.SOUVENIR),
        paper(ticket_id=None),
        paper(event=Event.FORCED, ticket_id=None),
    ],
)
def test_a_paper_line_naming_a_card_or_no_ticket_refuses_the_batch(line: GateEntry) -> None:
    with pytest.raises(ExpoError) as refused:
        check_batch([paper(seq=1, event=Event.REFUSED, code="no_code", ticket_id=None), line])
    assert (refused.value.code, refused.value.extra) == ("invalid_entry", {"seq": line.seq})


def test_a_paper_line_is_never_on_another_card() -> None:
    written = TicketFacts("issued", "0031000000000001")
    assert conflicts_of([paper()], tickets={9: written}, received_at=AT) == []
    assert [f.code for f in conflicts_of([paper()], tickets={}, received_at=AT)] == [ConflictCode.UNKNOWN_TICKET]
    revoked = TicketFacts("void", None)
    assert [f.code for f in conflicts_of([paper()], tickets={9: revoked}, received_at=AT)] == [
        ConflictCode.REVOKED_TICKET_ENTERED
    ]


def stored(gate_id: int, seq: int, day: date = DAY, ticket_id: int = 9) -> StoredEntry:
    return StoredEntry(gate_id, seq, ticket_id, day)


ONE_DAY = {9: TicketFacts("used", None, entries_allowed=1)}
PASS_3 = {9: TicketFacts("issued", None, entries_allowed=3)}


def test_two_gates_admitting_one_ticket_the_same_day_flag_the_second_upload() -> None:
    first = [stored(OTHER, 4)]
    assert paper_reuse([paper(seq=4)], gate_id=OTHER, standing=first, tickets=ONE_DAY) == []
    both = [stored(OTHER, 4), stored(GATE, 2)]
    assert paper_reuse([paper()], gate_id=GATE, standing=both, tickets=ONE_DAY) == [
        Found(2, ConflictCode.PHYSICAL_TICKET_REUSED, "ticket 9 also entered on 2010-06-01 at gate 8 seq 4")
    ]


def test_both_lines_in_one_upload_are_flagged() -> None:
    lines = [paper(seq=2), paper(seq=3, at=AT + timedelta(hours=1))]
    found = paper_reuse(lines, gate_id=GATE, standing=[stored(GATE, 2), stored(GATE, 3)], tickets=PASS_3)
    assert [(f.seq, f.code) for f in found] == [(2, "physical_ticket_reused"), (3, "physical_ticket_reused")]


def test_a_pass_on_different_days_is_flagged_only_past_its_count() -> None:
    days = [stored(GATE + n, 1, DAY + timedelta(days=n)) for n in range(3)]
    third = paper(seq=1, at=AT + timedelta(days=2))
    assert paper_reuse([third], gate_id=GATE + 2, standing=days, tickets=PASS_3) == []
    fourth = paper(seq=1, at=AT + timedelta(days=3))
    standing = [*days, stored(GATE + 3, 1, DAY + timedelta(days=3))]
    [found] = paper_reuse([fourth], gate_id=GATE + 3, standing=standing, tickets=PASS_3)
    assert found.detail == "ticket 9 entered 4 times, its type allows 3; also gate 9 seq 1 on 2010-06-03"
    # A single-day ticket on two days is one entry too many as well.
    two_days = [stored(OTHER, 4), stored(GATE, 2, DAY + timedelta(days=1))]
    late = paper(at=AT + timedelta(days=1))
    assert [f.seq for f in paper_reuse([late], gate_id=GATE, standing=two_days, tickets=ONE_DAY)] == [2]


def test_what_is_no_paper_entry_or_let_nobody_in_is_not_flagged() -> None:
    both = [stored(OTHER, 4), stored(GATE, 2)]
    card = GateEntry(seq=2, event=Event.ADMITTED, at=AT, code="ok", csn="0031000000000001", ctr=1, ticket_id=9, slot=1)
    refused = paper(event=Event.REFUSED, code="already_used")
    for line in (card, refused):
        assert paper_reuse([line], gate_id=GATE, standing=both, tickets=ONE_DAY) == []
    annulled = [stored(OTHER, 4)]  # this gate's line 2 is annulled: not among the standing entries
    assert paper_reuse([paper()], gate_id=GATE, standing=annulled, tickets=ONE_DAY) == []
    assert paper_reuse([paper()], gate_id=GATE, standing=both, tickets={}) == []  # an unknown ticket
