"""Conflicts found in the gates' lines: each code, reported once, and the back office's report of a day."""

from datetime import timedelta
from typing import Any

import pytest

from tests.integration.conftest import Service
from tests.integration.gates.support import (
    CSN,
    Gate,
    line,
    minutes_ago,
    order_of,
    sell,
    stored_conflicts,
    uploaded,
)
from tests.integration.test_support import assert_problem


async def report(service: Service, **params: Any) -> dict[str, Any]:
    reply = await service.client.get(
        "/v1/gate-entries/conflicts", params={"day": "2010-06-01", **params}, headers=service.device("admin")
    )
    assert reply.status_code == 200, reply.text
    result: dict[str, Any] = reply.json()
    return result


@pytest.mark.parametrize("reversal", ["void", "refund"])
async def test_entry_of_a_revoked_ticket(service: Service, gate: Gate, clerk: dict[str, str], reversal: str) -> None:
    order = await order_of(service, clerk, 1)
    assert (await service.post(f"/v1/orders/{order['id']}/{reversal}", {}, clerk)).status_code == 200
    ticket_id = order["tickets"][0]["id"]
    at = minutes_ago(service, 1)
    reply = await uploaded(
        service,
        gate,
        [
            line(1, at=at, ticket_id=ticket_id),
            line(2, "refused", at=at, ticket_id=ticket_id, code="revoked"),  # the gate knew: no conflict
            line(3, "souvenir", at=at, ticket_id=ticket_id),
        ],
    )
    assert reply["conflicts"] == [{"seq": 1, "code": "revoked_ticket_entered"}]
    [conflict] = (await report(service))["conflicts"]
    status = "void" if reversal == "void" else "refunded"
    assert conflict == {
        "gate_id": 7,
        "seq": 1,
        "code": "revoked_ticket_entered",
        "ticket_id": ticket_id,
        "csn": CSN,
        "detail": f"ticket {ticket_id} is {status}",
        "at": at.isoformat(),
        "found_at": service.clock.now().isoformat(),
    }


@pytest.mark.parametrize("ticket_id", [999_999, 2**31, 2**32 - 1])
async def test_unknown_ticket(service: Service, gate: Gate, ticket_id: int) -> None:
    at = minutes_ago(service, 1)
    reply = await uploaded(
        service, gate, [line(1, at=at, ticket_id=ticket_id), line(2, "souvenir", at=at, ticket_id=ticket_id)]
    )
    assert reply["conflicts"] == [{"seq": 1, "code": "unknown_ticket"}, {"seq": 2, "code": "unknown_ticket"}]
    assert reply["stored"] == 2


async def test_every_forced_admission(service: Service, gate: Gate, clerk: dict[str, str]) -> None:
    ticket_id = await sell(service, clerk, 1)
    forced = line(
        4,
        "forced",
        at=minutes_ago(service, 1),
        ticket_id=ticket_id,
        code="card_error",
        reason="cracked phone",
        supervisor="SV-007",
    )
    reply = await uploaded(service, gate, [forced])
    assert reply["conflicts"] == [{"seq": 4, "code": "forced_admission"}]
    [conflict] = (await report(service, code="forced_admission"))["conflicts"]
    assert conflict["detail"] == "forced (card_error): cracked phone; by SV-007"


async def test_late_upload(service: Service, gate: Gate) -> None:
    lines = [
        line(1, "refused", at=minutes_ago(service, 29), code="no_ticket"),
        line(2, "refused", at=minutes_ago(service, 31), code="no_ticket"),
        line(3, "refused", at=minutes_ago(service, 30), code="no_ticket"),
    ]
    reply = await uploaded(service, gate, lines)
    assert reply["conflicts"] == [{"seq": 2, "code": "late_upload"}]


async def test_conflicts_are_found_once(service: Service, gate: Gate) -> None:
    lines = [line(1, at=minutes_ago(service, 90), ticket_id=888_888)]
    first = await uploaded(service, gate, lines)
    assert first["conflicts"] == [{"seq": 1, "code": "late_upload"}, {"seq": 1, "code": "unknown_ticket"}]
    assert (await uploaded(service, gate, lines))["conflicts"] == []
    assert await stored_conflicts(service.db) == [(7, 1, "late_upload"), (7, 1, "unknown_ticket")]


async def test_the_report_of_a_day(service: Service, gate: Gate) -> None:
    evening_before = service.clock.now().replace(hour=0, minute=0) - timedelta(minutes=1)  # 31 May, Expo time
    lines = [line(seq, at=minutes_ago(service, 1), ticket_id=700_000 + seq) for seq in range(1, 6)]
    await uploaded(service, gate, [*lines, line(9, at=evening_before, ticket_id=700_009)])
    today = await report(service)
    assert [c["seq"] for c in today["conflicts"]] == [1, 2, 3, 4, 5]
    assert today["more"] is False
    page = await report(service, limit=2)
    assert ([c["seq"] for c in page["conflicts"]], page["more"]) == ([1, 2], True)
    before = await report(service, day="2010-05-31")
    assert sorted(c["code"] for c in before["conflicts"]) == ["late_upload", "unknown_ticket"]
    assert (await report(service, code="late_upload"))["conflicts"] == []
    for bad in ({"day": "June"}, {"day": ""}, {"limit": 0}):
        reply = await service.client.get(
            "/v1/gate-entries/conflicts", params={"day": "2010-06-01", **bad}, headers=service.device("admin")
        )
        assert_problem(reply, 400, "invalid_request")
