"""Voucher races on PostgreSQL with real concurrent connections: one voucher exchanged at two halls at the same
instant, and several workers delivering the same vouchers at once.

SQLite serialises every writer (BEGIN IMMEDIATE), so these races cannot happen there: they run on PostgreSQL.
"""

import asyncio
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy import func, select, text

from expo.app import create_app
from expo.bank import InMemoryBank
from expo.db import Database
from tests.integration.conftest import Service, number
from tests.integration.test_voucher_support import outbox, sell_voucher, ticket_state, voucher, voucher_code
from ticketing.mms import OutboxMms
from ticketing.signing_keys import load_keyring
from ticketing.voucher_models import Voucher
from ticketing.vouchers import deliver_vouchers

pytestmark = pytest.mark.parametrize("database_url", ["postgres"], indirect=True)

ROUNDS = 5
HALLS = {"sh_hall": ("SH-C001", "Shanghai Xujiahui hall"), "bj_hall": ("BJ-C001", "Beijing Xidan hall")}


@pytest.fixture
async def racing(service: Service) -> AsyncIterator[httpx.AsyncClient]:
    """A second worker of the same service in this event loop, so gathered requests really interleave
    (the AsyncTestClient hands each request to its portal thread and waits for it, which serialises them)."""
    app = create_app(service.settings, clock=service.clock, bank=InMemoryBank(), sweeper=False)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://racing") as client:
        yield client
    await app.state.db.dispose()


async def test_one_voucher_at_two_halls_at_once(service: Service, racing: httpx.AsyncClient) -> None:
    clerks = {hall: await service.login(hall, staff_no) for hall, (staff_no, _) in HALLS.items()}
    for n in range(ROUNDS):
        order = await sell_voucher(service, number(n))
        code = await voucher_code(service, order["id"])

        replies = await asyncio.gather(
            *(
                racing.post(
                    "/v1/vouchers/exchange",
                    json={"code": code, "into": "physical"},
                    headers={**headers, "Idempotency-Key": uuid.uuid4().hex},
                )
                for headers in clerks.values()
            )
        )

        assert sorted(r.status_code for r in replies) == [201, 409], [r.text for r in replies]
        won = next(hall for hall, r in zip(clerks, replies, strict=True) if r.status_code == 201)
        lost = next(r for r in replies if r.status_code == 409).json()
        assert (lost["code"], lost["hall"], lost["into"]) == ("already_exchanged", HALLS[won][1], "physical")
        state = await ticket_state(service.db, order["tickets"][0]["id"])
        assert (state.carrier, state.physical_tickets) == ("physical", 1)
        fetched = (await voucher(service, order["id"])).json()
        assert fetched["exchanged"]["hall"] == HALLS[won][1]


@pytest.fixture
async def workers(database_url: str) -> AsyncIterator[Database]:
    """An engine whose pool lets every worker hold its own connection at once."""
    database = Database(database_url, pool_size=8)
    yield database
    await database.dispose()


async def test_workers_delivering_at_once_issue_and_send_each_voucher_once(
    service: Service, workers: Database, signing_key_file: Path
) -> None:
    orders = [await sell_voucher(service, number(n)) for n in range(3)]
    async with service.db.write() as session:  # as if the process died after the payments' commits
        await session.execute(text("DELETE FROM mms_outbox"))
        await session.execute(text("DELETE FROM vouchers"))
    keyring = load_keyring(signing_key_file)
    now = service.clock.now()

    reports = await asyncio.gather(
        *(deliver_vouchers(workers, keyring=keyring, mms=OutboxMms(workers), now=now) for _ in range(8))
    )

    assert sum(r.issued for r in reports) == 3
    assert sum(r.sent for r in reports) == 3
    async with service.db.read() as session:
        assert await session.scalar(select(func.count()).select_from(Voucher)) == 3
        assert set(await session.scalars(select(Voucher.sends))) == {1}
    for n, order in enumerate(orders):
        assert len(await outbox(service, number(n))) == 1
        assert (await voucher(service, order["id"])).json()["sends"] == 1
