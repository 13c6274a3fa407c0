"""Registering gate devices: one credential per gate id, at one of the 13 entrances; refusals leave nothing."""

from typing import Any

import pytest
from sqlalchemy import func, select

from expo.access.models import Credential
from expo.db import Database
from tests.integration.conftest import Service
from tests.integration.gates.support import gate_devices, register
from tests.integration.test_support import assert_problem


async def credentials(db: Database) -> int:
    async with db.read() as session:
        return int(await session.scalar(select(func.count()).select_from(Credential)) or 0)


@pytest.mark.parametrize(("entrance", "kind"), [("L1", "gate"), ("U1", "handheld"), ("W4", "souvenir")])
async def test_a_registered_gate_calls_with_its_own_token(service: Service, entrance: str, kind: str) -> None:
    reply = await register(service, 4_294_967_295, entrance, kind)
    assert reply.status_code == 201, reply.text
    body = reply.json()
    assert {k: v for k, v in body.items() if k != "token"} == {
        "gate_id": 4_294_967_295,
        "entrance": entrance,
        "kind": kind,
    }
    me = await service.client.get("/v1/me", headers=service.auth(body["token"]))
    assert me.status_code == 200
    assert (me.json()["role"], me.json()["label"]) == ("gate", "gate 4294967295")


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        ({"gate_id": 9, "entrance": "L9", "kind": "gate"}, 400, "unknown_entrance"),
        ({"gate_id": 9, "entrance": "l1", "kind": "gate"}, 400, "unknown_entrance"),
        ({"gate_id": 0, "entrance": "L1", "kind": "gate"}, 400, "invalid_gate_id"),
        ({"gate_id": -5, "entrance": "L1", "kind": "gate"}, 400, "invalid_gate_id"),
        ({"gate_id": 2**32, "entrance": "L1", "kind": "gate"}, 400, "invalid_gate_id"),
        ({"gate_id": 9, "entrance": "L1", "kind": "turnstile"}, 400, "invalid_request"),
        ({"gate_id": "nine", "entrance": "L1", "kind": "gate"}, 400, "invalid_request"),
        ({"gate_id": 9, "entrance": "L1"}, 400, "invalid_request"),
        ({"gate_id": 9, "entrance": "L1", "kind": "gate", "token": "mine"}, 400, "invalid_request"),
    ],
)
async def test_registration_refusals_leave_nothing(service: Service, body: Any, status: int, code: str) -> None:
    before = await credentials(service.db)
    reply = await service.client.post("/v1/gates", json=body, headers=service.device("admin"))
    assert_problem(reply, status, code)
    assert (await gate_devices(service.db), await credentials(service.db)) == (0, before)


async def test_a_gate_id_is_registered_once(service: Service) -> None:
    assert (await register(service, 12, "L2")).status_code == 201
    before = await credentials(service.db)
    assert_problem(await register(service, 12, "W3", "handheld"), 409, "gate_exists")
    assert (await gate_devices(service.db), await credentials(service.db)) == (1, before)


async def test_only_the_back_office_registers_gates(service: Service, clerk: dict[str, str]) -> None:
    gate = (await register(service, 12, "L2")).json()
    body = {"gate_id": 13, "entrance": "L2", "kind": "gate"}
    for headers in (clerk, service.device("sh_hall"), service.auth(gate["token"])):
        assert_problem(await service.client.post("/v1/gates", json=body, headers=headers), 403, "role_not_allowed")
    assert await gate_devices(service.db) == 1
