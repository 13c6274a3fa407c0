"""Gate journal uploads: stored once, duplicates on re-upload, any order, one card event once, garbage refused."""

from datetime import timedelta
from typing import Any

import pytest

from tests.integration.conftest import Service
from tests.integration.gates.support import (
    CSN,
    Gate,
    line,
    minutes_ago,
    new_gate,
    sell,
    stored_conflicts,
    stored_lines,
    ticket_state,
    upload,
    uploaded,
)
from tests.integration.test_support import assert_problem


def refusals(service: Service, first: int, count: int) -> list[dict[str, Any]]:
    """Lines of cards refused at the gate (no ticket): nothing on the card, nothing on a ticket."""
    at = minutes_ago(service, 5)
    return [line(seq, "refused", at=at, code="no_ticket") for seq in range(first, first + count)]


async def test_a_batch_is_stored_once_and_a_reupload_counts_duplicates(service: Service, gate: Gate) -> None:
    batch = refusals(service, 1, 5)
    assert await uploaded(service, gate, batch) == {"gate_id": 7, "stored": 5, "duplicates": 0, "conflicts": []}
    assert await uploaded(service, gate, batch) == {"gate_id": 7, "stored": 0, "duplicates": 5, "conflicts": []}
    # The gate lost the reply of the first batch and sends it again with more lines.
    assert (await uploaded(service, gate, batch + refusals(service, 6, 3)))["stored"] == 3
    assert await stored_lines(service.db) == 8


async def test_batches_may_arrive_in_any_order(service: Service, gate: Gate) -> None:
    later, earlier = refusals(service, 501, 500), refusals(service, 1, 500)
    assert (await uploaded(service, gate, later))["stored"] == 500
    assert (await uploaded(service, gate, earlier))["stored"] == 500
    assert (await uploaded(service, gate, list(reversed(earlier))))["duplicates"] == 500
    assert await stored_lines(service.db) == 1000


async def test_a_full_batch_fits_the_request_size(service: Service, gate: Gate) -> None:
    at = minutes_ago(service, 1)
    batch = [
        line(seq, "forced", at=at, ticket_id=10**9 + seq, ctr=seq, reason="r" * 200, supervisor="s" * 200)
        for seq in range(1, 1001)
    ]
    reply = await uploaded(service, gate, batch)
    assert (reply["stored"], reply["duplicates"]) == (1000, 0)


async def test_one_card_event_is_stored_once_across_gates(service: Service, gate: Gate, clerk: dict[str, str]) -> None:
    ticket_id = await sell(service, clerk, 1)
    other = await new_gate(service, 8, "L3")
    at = minutes_ago(service, 2)
    entry = line(3, at=at, ticket_id=ticket_id, ctr=41)
    assert (await uploaded(service, gate, [entry]))["stored"] == 1

    # Another gate reports the same card event (csn, ctr, event) under its own seq: counted once.
    again = line(12, at=at, ticket_id=ticket_id, ctr=41)
    reply = await uploaded(service, other, [again])
    assert reply == {
        "gate_id": 8,
        "stored": 0,
        "duplicates": 1,
        "conflicts": [{"seq": 12, "code": "duplicate_card_event"}],
    }
    assert (await uploaded(service, other, [again]))["conflicts"] == []  # found once
    assert await ticket_state(service.db, ticket_id) == ("used", 1, at.date())
    assert await stored_conflicts(service.db) == [(8, 12, "duplicate_card_event")]
    # A line the card did not record (no counter of its own) is no card event: stored.
    refused = line(13, "refused", at=at, ctr=41, card_marked=False, code="already_used", ticket_id=ticket_id)
    assert (await uploaded(service, other, [refused]))["stored"] == 1


async def test_the_same_card_event_twice_in_one_batch_is_stored_once(service: Service, gate: Gate) -> None:
    at = minutes_ago(service, 1)
    reply = await uploaded(
        service, gate, [line(1, "souvenir", at=at, ticket_id=5, ctr=9), line(2, "souvenir", at=at, ticket_id=5, ctr=9)]
    )
    assert (reply["stored"], reply["duplicates"]) == (1, 1)
    assert {"seq": 2, "code": "duplicate_card_event"} in reply["conflicts"]


def _admitted(service: Service, **changes: Any) -> dict[str, Any]:
    body = line(2, at=minutes_ago(service, 1), ticket_id=1, ctr=7)
    body.update(changes)
    return {key: value for key, value in body.items() if value is not None}


INCONSISTENT = {
    "admitted without csn": {"csn": None, "card_marked": None, "ctr": None},
    "admitted without ticket": {"ticket_id": None},
    "forced without slot": {"event": "forced", "slot": None},
    "souvenir without ticket": {"event": "souvenir", "ticket_id": None, "slot": None},
    "card event without counter": {"ctr": None},
    "annulled without what it annuls": {"event": "annulled"},
    "annuls_seq on an admission": {"annuls_seq": 1},
    "annulment before its entry": {"event": "annulled", "annuls_seq": 2},
    "time without a zone": {"at": "2010-06-01T09:59:00"},
}


@pytest.mark.parametrize("changes", INCONSISTENT.values(), ids=INCONSISTENT.keys())
async def test_an_inconsistent_line_refuses_the_whole_batch(
    service: Service, gate: Gate, changes: dict[str, Any]
) -> None:
    good = refusals(service, 3, 4)
    reply = await upload(service, gate, [*good[:2], _admitted(service, **changes), *good[2:]])
    assert assert_problem(reply, 400, "invalid_entry")["seq"] == 2
    assert await stored_lines(service.db) == 0


async def test_a_seq_twice_in_one_batch_is_refused(service: Service, gate: Gate) -> None:
    reply = await upload(service, gate, [*refusals(service, 1, 3), *refusals(service, 2, 1)])
    assert assert_problem(reply, 400, "invalid_entry")["seq"] == 2
    assert await stored_lines(service.db) == 0


GARBAGE: dict[str, Any] = {
    "unknown event": {"event": "teleported"},
    "unknown field": {"mood": "happy"},
    "csn not hex": {"csn": "not-a-card-at-all"},
    "seq 0": {"seq": 0},
    "seq too large": {"seq": 2**53 + 1},
    "slot 5": {"slot": 5},
    "ticket id beyond 32 bits": {"ticket_id": 2**32},
    "code with spaces": {"code": "drop table"},
    "time not a time": {"at": "yesterday"},
    "reason too long": {"event": "forced", "reason": "x" * 201},
}


@pytest.mark.parametrize("changes", GARBAGE.values(), ids=GARBAGE.keys())
async def test_a_garbage_line_is_a_validation_problem(service: Service, gate: Gate, changes: dict[str, Any]) -> None:
    reply = await upload(service, gate, [*refusals(service, 3, 2), _admitted(service, **changes)])
    assert_problem(reply, 400, "invalid_request")
    assert await stored_lines(service.db) == 0


@pytest.mark.parametrize(
    "body",
    [
        {"gate_id": 7, "entries": []},
        {"gate_id": 7},
        {"gate_id": 0, "entries": [{"seq": 1}]},
        {"gate_id": 7, "entries": "lines"},
        [1, 2, 3],
        "null",
    ],
    ids=["no lines", "no entries", "gate 0", "entries not a list", "a list", "null"],
)
async def test_garbage_batches_are_refused(service: Service, gate: Gate, body: Any) -> None:
    reply = await service.client.post("/v1/gate-entries", json=body, headers=gate.headers)
    assert_problem(reply, 400, "invalid_request")


async def test_more_than_a_batch_is_refused(service: Service, gate: Gate) -> None:
    reply = await upload(service, gate, refusals(service, 1, 1001))
    assert_problem(reply, 400, "invalid_request")
    assert await stored_lines(service.db) == 0


async def test_not_json_is_refused(service: Service, gate: Gate) -> None:
    headers = {**gate.headers, "Content-Type": "application/json"}
    reply = await service.client.post("/v1/gate-entries", content=b'{"gate_id": 7, "entr', headers=headers)
    assert_problem(reply, 400, "invalid_request")


async def test_a_gate_uploads_only_its_own_lines(service: Service, gate: Gate) -> None:
    other = await new_gate(service, 8, "W2")
    assert_problem(await upload(service, other, refusals(service, 1, 2), gate_id=7), 403, "not_this_gate")
    assert_problem(await upload(service, other, refusals(service, 1, 2), gate_id=99), 403, "not_this_gate")
    assert await stored_lines(service.db) == 0


async def test_a_gate_credential_without_a_registered_gate_uploads_nothing(service: Service, gate: Gate) -> None:
    issued = await service.client.post(
        "/v1/admin/credentials", json={"role": "gate", "label": "spare gate"}, headers=service.device("admin")
    )
    assert issued.status_code == 201, issued.text
    stray = Gate(7, "L3", service.auth(issued.json()["token"]))
    assert_problem(await upload(service, stray, refusals(service, 1, 1)), 403, "not_this_gate")
    assert await stored_lines(service.db) == 0


async def test_only_gates_upload(service: Service, gate: Gate, clerk: dict[str, str]) -> None:
    batch = {"gate_id": 7, "entries": refusals(service, 1, 1)}
    for headers in (clerk, service.device("admin"), service.device("sh_hall")):
        reply = await service.client.post("/v1/gate-entries", json=batch, headers=headers)
        assert_problem(reply, 403, "role_not_allowed")
    assert_problem(await service.client.post("/v1/gate-entries", json=batch), 401, "unauthorized")
    for path in ("/v1/gate-entries/counts?day=2010-06-01", "/v1/gate-entries/conflicts?day=2010-06-01"):
        assert_problem(await service.client.get(path, headers=gate.headers), 403, "role_not_allowed")
    assert await stored_lines(service.db) == 0


async def test_a_line_stored_before_is_a_duplicate_even_if_it_reads_differently(service: Service, gate: Gate) -> None:
    at = minutes_ago(service, 1)
    await uploaded(service, gate, [line(1, "refused", at=at, code="no_ticket")])
    changed = line(1, "refused", at=at + timedelta(seconds=5), code="expired", csn=CSN)
    assert (await uploaded(service, gate, [changed]))["duplicates"] == 1
