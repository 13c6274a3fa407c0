"""The revocation list the gates keep offline: voids and refunds as versions, read as deltas since a version."""

from typing import Any

import pytest

from tests.integration.conftest import Service
from tests.integration.gates.support import new_gate, order_of
from tests.integration.test_support import assert_problem, cod_sale


async def deltas(service: Service, headers: dict[str, str] | None = None, **params: Any) -> dict[str, Any]:
    reply = await service.client.get("/v1/gate-revocations", params=params, headers=headers or service.device("admin"))
    assert reply.status_code == 200, reply.text
    result: dict[str, Any] = reply.json()
    return result


async def test_voids_and_refunds_are_versions(service: Service, clerk: dict[str, str]) -> None:
    assert await deltas(service) == {"version": 0, "revocations": [], "more": False}
    voided, refunded, kept = [await order_of(service, clerk, n) for n in range(1, 4)]
    assert (await service.post(f"/v1/orders/{voided['id']}/void", {}, clerk)).status_code == 200
    assert (await service.post(f"/v1/orders/{refunded['id']}/refund", {}, clerk)).status_code == 200
    gate = await new_gate(service, 5, "L1")

    everything = await deltas(service, gate.headers, since=0)

    assert everything["more"] is False
    revoked = [(r["ticket_id"], r["reason"]) for r in everything["revocations"]]
    assert revoked == [(voided["tickets"][0]["id"], "void"), (refunded["tickets"][0]["id"], "refunded")]
    first, second = (r["version"] for r in everything["revocations"])
    assert first < second == everything["version"]
    assert kept["tickets"][0]["id"] not in {ticket for ticket, _ in revoked}

    page = await deltas(service, gate.headers, since=0, limit=1)
    assert (page["version"], len(page["revocations"]), page["more"]) == (first, 1, True)
    rest = await deltas(service, gate.headers, since=page["version"], limit=1)
    assert (rest["version"], [r["reason"] for r in rest["revocations"]], rest["more"]) == (second, ["refunded"], False)
    assert await deltas(service, gate.headers, since=second) == {"version": second, "revocations": [], "more": False}
    # A gate that holds a version from the future (another database) gets nothing and keeps its number.
    assert (await deltas(service, since=10**12))["version"] == 10**12
    assert (await deltas(service, limit=10**6))["revocations"] == everything["revocations"]  # at most 5000


async def test_an_order_of_several_tickets_revokes_each(service: Service, agent: dict[str, str]) -> None:
    order = (await service.post("/v1/orders", cod_sale("13800000077", quantity=3), agent)).json()
    courier = service.device("courier")
    delivered = await service.post(
        f"/v1/orders/{order['id']}/delivery", {"collected_fen": order["amount_fen"], "receipt": "R-1"}, courier
    )
    assert delivered.status_code == 200, delivered.text
    assert (await service.post(f"/v1/orders/{order['id']}/refund", {}, agent)).status_code == 200
    reply = await deltas(service)
    assert sorted(r["ticket_id"] for r in reply["revocations"]) == sorted(t["id"] for t in order["tickets"])
    assert [r["version"] for r in reply["revocations"]] == [1, 2, 3]


async def test_who_may_read_the_list(service: Service, clerk: dict[str, str]) -> None:
    assert_problem(await service.client.get("/v1/gate-revocations", headers=clerk), 403, "role_not_allowed")
    assert_problem(await service.client.get("/v1/gate-revocations"), 401, "unauthorized")


@pytest.mark.parametrize("params", [{"since": -1}, {"since": "latest"}, {"limit": 0}])
async def test_bad_deltas_are_refused(service: Service, params: dict[str, Any]) -> None:
    reply = await service.client.get("/v1/gate-revocations", params=params, headers=service.device("admin"))
    assert_problem(reply, 400, "invalid_request")
