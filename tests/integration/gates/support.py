"""Helpers of the gate server tests: registered gates, journal lines, uploads and ticket state."""

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

import httpx
from sqlalchemy import func, select

from expo.db import Database
from gates.models import EntryConflict, EntryLine, GateDevice
from tests.integration.conftest import Service, hall_sale, number
from ticketing.models import Ticket

CSN = "0031000000000001"  # a Shanghai card (the CSN is 00, the province, then the serial)
TODAY = date(2010, 6, 1)


@dataclass(frozen=True)
class Gate:
    """A registered gate device and the headers of its credential."""

    gate_id: int
    entrance: str
    headers: dict[str, str]


async def register(service: Service, gate_id: int, entrance: str = "L1", kind: str = "gate") -> httpx.Response:
    body = {"gate_id": gate_id, "entrance": entrance, "kind": kind}
    return await service.client.post("/v1/gates", json=body, headers=service.device("admin"))


async def new_gate(service: Service, gate_id: int, entrance: str = "L1", kind: str = "gate") -> Gate:
    reply = await register(service, gate_id, entrance, kind)
    assert reply.status_code == 201, reply.text
    return Gate(gate_id, entrance, service.auth(reply.json()["token"]))


def line(
    seq: int,
    event: str = "admitted",
    *,
    at: datetime,
    ticket_id: int | None = None,
    csn: str | None = CSN,
    ctr: int | None = None,
    card_marked: bool | None = None,
    **more: Any,
) -> dict[str, Any]:
    """A journal line as a gate uploads it: a ticket event names its card and slot; the card marked it."""
    body: dict[str, Any] = {"seq": seq, "event": event, "at": at.isoformat(), "code": more.pop("code", "ok")}
    if csn is not None:
        body["csn"] = csn
    marked = card_marked if card_marked is not None else event != "refused"
    if marked:
        body["card_marked"] = True
        body["ctr"] = ctr if ctr is not None else seq
    elif ctr is not None:
        body["ctr"] = ctr
    if ticket_id is not None:
        body["ticket_id"] = ticket_id
        body["slot"] = more.pop("slot", 1)
    body.update(more)
    return body


async def upload(
    service: Service, gate: Gate, lines: list[dict[str, Any]], gate_id: int | None = None
) -> httpx.Response:
    body = {"gate_id": gate.gate_id if gate_id is None else gate_id, "entries": lines}
    return await service.client.post("/v1/gate-entries", json=body, headers=gate.headers)


async def uploaded(service: Service, gate: Gate, lines: list[dict[str, Any]]) -> dict[str, Any]:
    """Upload and expect 200; the reply."""
    reply = await upload(service, gate, lines)
    assert reply.status_code == 200, reply.text
    result: dict[str, Any] = reply.json()
    return result


async def sell(service: Service, clerk: dict[str, str], n: int, ticket_type: str = "standard", **changes: Any) -> int:
    """A paid hall sale to an Expo card for number n; its ticket id."""
    reply = await service.post("/v1/orders", hall_sale(number(n), ticket_type=ticket_type, **changes), clerk)
    assert reply.status_code == 201, reply.text
    ticket_id: int = reply.json()["tickets"][0]["id"]
    return ticket_id


async def order_of(service: Service, clerk: dict[str, str], n: int, **changes: Any) -> dict[str, Any]:
    reply = await service.post("/v1/orders", hall_sale(number(n), **changes), clerk)
    assert reply.status_code == 201, reply.text
    order: dict[str, Any] = reply.json()
    return order


async def ticket_state(db: Database, ticket_id: int) -> tuple[str, int, date | None]:
    """(status, entries used, last entry day) of a ticket, from the database."""
    async with db.read() as session:
        ticket = await session.get(Ticket, ticket_id)
        assert ticket is not None
        return ticket.status, ticket.entries_used, ticket.last_entry_day


async def stored_lines(db: Database) -> int:
    async with db.read() as session:
        return int(await session.scalar(select(func.count()).select_from(EntryLine)) or 0)


async def stored_conflicts(db: Database) -> list[tuple[int, int, str]]:
    """(gate id, seq, code) of every stored conflict."""
    async with db.read() as session:
        rows = await session.execute(
            select(EntryConflict.gate_id, EntryConflict.seq, EntryConflict.code).order_by(
                EntryConflict.gate_id, EntryConflict.seq, EntryConflict.code
            )
        )
        return [(gate_id, seq, code) for gate_id, seq, code in rows]


async def gate_devices(db: Database) -> int:
    async with db.read() as session:
        return int(await session.scalar(select(func.count()).select_from(GateDevice)) or 0)


async def counts(service: Service, day: date = TODAY) -> dict[str, Any]:
    reply = await service.client.get(
        "/v1/gate-entries/counts", params={"day": day.isoformat()}, headers=service.device("admin")
    )
    assert reply.status_code == 200, reply.text
    result: dict[str, Any] = reply.json()
    return result


def minutes_ago(service: Service, minutes: float) -> datetime:
    return service.clock.now() - timedelta(minutes=minutes)
