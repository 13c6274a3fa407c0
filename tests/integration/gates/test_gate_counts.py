"""Entries of a day per entrance and per gate: admitted + forced - annulled (each annulment once)."""

from datetime import date, datetime

from expo.clock import EXPO_TZ
from tests.integration.conftest import Service
from tests.integration.gates.support import counts, line, minutes_ago, new_gate, uploaded
from tests.integration.test_support import assert_problem

NO_ENTRIES = {"L1": 0, "L2": 0, "L3": 0, "L4": 0, "L5": 0, "L6": 0, "L7": 0, "L8": 0, "U1": 0, "W1": 0, "W2": 0}


async def test_counts_per_entrance_and_gate(service: Service) -> None:
    land, land_2 = await new_gate(service, 1, "L5"), await new_gate(service, 2, "L5")
    pier = await new_gate(service, 3, "W2", "handheld")
    await new_gate(service, 4, "W2", "souvenir")  # nothing uploaded: not listed
    at = minutes_ago(service, 10)
    early = datetime(2010, 6, 1, 0, 30, tzinfo=EXPO_TZ)  # 31 May in UTC, 1 June at the Expo
    await uploaded(
        service,
        land,
        [
            line(1, at=early, ticket_id=101),
            line(2, at=at, ticket_id=102),
            line(3, at=at, ticket_id=103),
            line(4, "annulled", at=at, ticket_id=103, annuls_seq=3, card_marked=False),
            line(5, "annulled", at=at, ticket_id=103, annuls_seq=3, ctr=50),  # the card's side of the same
            line(6, "refused", at=at, code="already_used", ticket_id=101),
            line(7, "souvenir", at=at, ticket_id=101, ctr=51),
        ],
    )
    await uploaded(
        service, land_2, [line(1, at=at, ticket_id=104, ctr=60), line(2, "refused", at=at, code="no_ticket")]
    )
    await uploaded(
        service,
        pier,
        [
            line(1, "forced", at=at, ticket_id=105, reason="card_error", supervisor="S"),
            line(2, at=datetime(2010, 6, 2, 9, 0, tzinfo=EXPO_TZ), ticket_id=106, ctr=70),  # another day
        ],
    )

    reply = await counts(service)

    assert reply["day"] == "2010-06-01"
    assert reply["total"] == 4
    assert {e["entrance"]: e["entries"] for e in reply["entrances"]} == {
        **NO_ENTRIES,
        "L5": 3,
        "W2": 1,
        "W3": 0,
        "W4": 0,
    }
    assert [e["entrance"] for e in reply["entrances"]][:3] == ["L1", "L2", "L3"]
    assert reply["gates"] == [
        {"gate_id": 1, "entrance": "L5", "kind": "gate", "admitted": 3, "forced": 0, "annulled": 1, "refused": 1,
         "souvenirs": 1, "entries": 2},
        {"gate_id": 2, "entrance": "L5", "kind": "gate", "admitted": 1, "forced": 0, "annulled": 0, "refused": 1,
         "souvenirs": 0, "entries": 1},
        {"gate_id": 3, "entrance": "W2", "kind": "handheld", "admitted": 0, "forced": 1, "annulled": 0, "refused": 0,
         "souvenirs": 0, "entries": 1},
    ]  # fmt: skip
    next_day = await counts(service, date(2010, 6, 2))
    assert (next_day["total"], [g["gate_id"] for g in next_day["gates"]]) == (1, [3])
    empty = await counts(service, date(2010, 5, 31))
    assert (empty["total"], empty["gates"]) == (0, [])


async def test_counts_need_a_day(service: Service) -> None:
    for params in ({}, {"day": "tomorrow"}, {"day": "2010-13-01"}):
        reply = await service.client.get("/v1/gate-entries/counts", params=params, headers=service.device("admin"))
        assert_problem(reply, 400, "invalid_request")
