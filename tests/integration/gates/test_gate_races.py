"""Races on PostgreSQL with real concurrent connections: the same batch twice at once, one ticket at many gates,
one card event at two gates, voids while a gate follows the revocation list.

SQLite serialises every writer (BEGIN IMMEDIATE), so these races cannot happen there.
"""

import asyncio
import random
from collections import Counter
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from expo.app import create_app
from expo.bank import InMemoryBank
from expo.db import Database
from tests.integration.conftest import Service
from tests.integration.gates.support import (
    Gate,
    line,
    minutes_ago,
    new_gate,
    order_of,
    register,
    sell,
    stored_conflicts,
    stored_lines,
    ticket_state,
)
from tests.integration.test_support import shanghai_clerk
from ticketing import aftersales
from ticketing.revocations import revocations_since

pytestmark = pytest.mark.parametrize("database_url", ["postgres"], indirect=True)

UPLOADERS = 10
VOIDS = 40


@pytest.fixture
async def racing(service: Service) -> AsyncIterator[httpx.AsyncClient]:
    """A second worker of the service in this event loop, so gathered requests really interleave."""
    app = create_app(service.settings, clock=service.clock, bank=InMemoryBank(), sweeper=False)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://racing") as client:
        yield client
    await app.state.db.dispose()


async def _upload(client: httpx.AsyncClient, gate: Gate, lines: list[dict[str, Any]]) -> dict[str, Any]:
    reply = await client.post(
        "/v1/gate-entries", json={"gate_id": gate.gate_id, "entries": lines}, headers=gate.headers
    )
    assert reply.status_code == 200, reply.text
    result: dict[str, Any] = reply.json()
    return result


async def test_the_same_batch_at_once_is_stored_once(
    service: Service, clerk: dict[str, str], racing: httpx.AsyncClient
) -> None:
    tickets = [await sell(service, clerk, n) for n in range(5)]
    gate = await new_gate(service, 1, "L1")
    at = minutes_ago(service, 2)
    batch = [line(seq, "refused", at=at, code="no_ticket") for seq in range(1, 401)]
    batch += [line(400 + n, at=at, ticket_id=ticket_id, ctr=400 + n) for n, ticket_id in enumerate(tickets, 1)]

    replies = await asyncio.gather(*(_upload(racing, gate, batch) for _ in range(UPLOADERS)))

    assert sum(r["stored"] for r in replies) == len(batch)
    assert sum(r["duplicates"] for r in replies) == len(batch) * (UPLOADERS - 1)
    assert await stored_lines(service.db) == len(batch)
    for ticket_id in tickets:
        assert (await ticket_state(service.db, ticket_id))[:2] == ("used", 1)


async def test_one_pass_at_many_gates_at_once_counts_every_entry(
    service: Service, clerk: dict[str, str], racing: httpx.AsyncClient
) -> None:
    """Each upload recomputes the ticket: the last one must see the others' lines (no lost update)."""
    passes = [await sell(service, clerk, n, "pass_7") for n in range(3)]
    gates = [await new_gate(service, gate_id, "L2") for gate_id in range(1, 8)]
    at = minutes_ago(service, 2)

    def lines_of(gate: Gate) -> list[dict[str, Any]]:
        return [
            line(n, at=at, ticket_id=ticket_id, csn=f"{n:016x}", ctr=gate.gate_id)
            for n, ticket_id in enumerate(passes, 1)
        ]

    await asyncio.gather(*(_upload(racing, gate, lines_of(gate)) for gate in gates))

    for ticket_id in passes:
        assert await ticket_state(service.db, ticket_id) == ("used", 7, at.date())


async def test_one_card_event_from_two_gates_at_once_is_stored_once(
    service: Service, clerk: dict[str, str], racing: httpx.AsyncClient
) -> None:
    ticket_id = await sell(service, clerk, 1)
    gates = [await new_gate(service, gate_id, "W1") for gate_id in range(1, 5)]
    at = minutes_ago(service, 2)

    replies = await asyncio.gather(
        *(_upload(racing, gate, [line(gate.gate_id * 10, at=at, ticket_id=ticket_id, ctr=77)]) for gate in gates)
    )

    assert sorted(r["stored"] for r in replies) == [0, 0, 0, 1]
    assert Counter(c["code"] for r in replies for c in r["conflicts"]) == {"duplicate_card_event": 3}
    assert await stored_lines(service.db) == 1
    assert len(await stored_conflicts(service.db)) == 3
    assert await ticket_state(service.db, ticket_id) == ("used", 1, at.date())


async def test_one_gate_id_registered_at_once(service: Service, racing: httpx.AsyncClient) -> None:
    body = {"gate_id": 99, "entrance": "L4", "kind": "gate"}
    replies = await asyncio.gather(
        *(racing.post("/v1/gates", json=body, headers=service.device("admin")) for _ in range(UPLOADERS))
    )
    outcomes = Counter(r.status_code if r.status_code == 201 else r.json()["code"] for r in replies)
    assert outcomes == {201: 1, "gate_exists": UPLOADERS - 1}
    assert (await register(service, 100, "L4")).status_code == 201


@pytest.fixture
async def many_connections(database_url: str) -> AsyncIterator[Database]:
    """An engine whose pool lets every voider hold its own connection at once."""
    database = Database(database_url, pool_size=VOIDS // 2)
    yield database
    await database.dispose()


async def test_a_gate_following_the_list_never_skips_a_revocation(
    service: Service, clerk: dict[str, str], many_connections: Database
) -> None:
    """Voids commit in random order and after random delays; a reader polling with `since` must still see all.

    Were versions taken from a sequence, a void could commit a lower version after a reader had already
    moved past it, and that ticket would never reach the gate.
    """
    orders = [await order_of(service, clerk, n) for n in range(VOIDS)]
    actor = await shanghai_clerk(service.db)
    bank = InMemoryBank()
    reader = Database(service.db.url, pool_size=1)
    done = asyncio.Event()

    async def void(order_id: int) -> None:
        await asyncio.sleep(random.uniform(0, 0.05))
        async with many_connections.write() as session:
            await aftersales.void_sale(session, actor=actor, order_id=order_id, bank=bank, now=service.clock.now())
            await asyncio.sleep(random.uniform(0, 0.05))  # hold the transaction open before it commits

    async def follow() -> list[tuple[int, int]]:
        seen: list[tuple[int, int]] = []
        since = 0
        while True:
            finished = done.is_set()
            async with reader.read() as session:
                page = await revocations_since(session, since=since, limit=3)
            seen += [(r.version, r.ticket_id) for r in page.revocations]
            since = page.version
            if finished and not page.more:
                return seen
            await asyncio.sleep(0 if page.more else 0.002)

    async def void_all() -> None:
        await asyncio.gather(*(void(order["id"]) for order in orders))
        done.set()

    try:
        seen, _ = await asyncio.gather(follow(), void_all())
    finally:
        await reader.dispose()

    versions = [version for version, _ in seen]
    assert versions == sorted(set(versions)) == list(range(1, VOIDS + 1))
    assert {ticket_id for _, ticket_id in seen} == {order["tickets"][0]["id"] for order in orders}
