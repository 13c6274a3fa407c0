"""Races on PostgreSQL with real concurrent connections: the last tickets of a peak day, one key, one number.

SQLite serialises every writer (BEGIN IMMEDIATE), so these races cannot happen there: they run on PostgreSQL.
"""

import asyncio
import uuid
from collections import Counter
from collections.abc import AsyncIterator
from datetime import timedelta

import httpx
import pytest

from expo.access.rules import Principal
from expo.app import create_app
from expo.bank import BankResult, InMemoryBank
from expo.db import Database
from expo.errors import ExpoError
from tests.integration.conftest import Service, hall_sale, number
from tests.integration.test_support import (
    PEAK_DAY,
    paid_orders,
    row_counts,
    set_capacity,
    shanghai_clerk,
    sold_on,
    stock_of,
)
from ticketing.sales import PaymentDetails, SaleTerms, sell_ticket
from ticketing.sales_rules import Carrier, PaymentMethod

BUYERS = 50
LEFT = 10


# SQLite takes one writer at a time (BEGIN IMMEDIATE): concurrent-connection races are PostgreSQL's.
pytestmark = pytest.mark.parametrize("database_url", ["postgres"], indirect=True)


class RecordingBank(InMemoryBank):
    """The in-memory bank, remembering which references it charged and refunded."""

    def __init__(self) -> None:
        super().__init__()
        self.charged: list[str] = []
        self.refunded: list[str] = []

    async def charge(self, *, reference: str, account: str, amount_fen: int) -> BankResult:
        await asyncio.sleep(0)  # the network: let the other buyers move on meanwhile
        result = await super().charge(reference=reference, account=account, amount_fen=amount_fen)
        self.charged.append(reference)
        return result

    async def refund(self, *, reference: str, amount_fen: int) -> BankResult:
        self.refunded.append(reference)
        return await super().refund(reference=reference, amount_fen=amount_fen)


@pytest.fixture
def bank() -> RecordingBank:
    return RecordingBank()


@pytest.fixture
async def racing(service: Service, bank: RecordingBank) -> AsyncIterator[httpx.AsyncClient]:
    """The app in this event loop, so gathered requests really interleave.

    The AsyncTestClient hands each request to its portal thread and waits for it, which serialises them.
    This is a second worker of the same service: same settings, clock and database.
    """
    app = create_app(service.settings, clock=service.clock, bank=bank, sweeper=False)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://racing") as client:
        yield client
    await app.state.db.dispose()


async def _post(
    client: httpx.AsyncClient, body: dict[str, object], headers: dict[str, str], key: str | None = None
) -> httpx.Response:
    return await client.post("/v1/orders", json=body, headers={**headers, "Idempotency-Key": key or uuid.uuid4().hex})


def _outcome(reply: httpx.Response) -> str:
    return "ok" if reply.status_code == 201 else f"{reply.status_code} {reply.json().get('code')}"


async def _last_tickets(service: Service, clerk: dict[str, str]) -> None:
    """Leave exactly LEFT tickets of the peak day: capacity = already sold (by warm-up sales) + LEFT."""
    await set_capacity(service, PEAK_DAY, 5 + LEFT)
    for n in range(5):
        sale = hall_sale(number(9000 + n), ticket_type="peak", visit_day=PEAK_DAY.isoformat())
        assert (await service.post("/v1/orders", sale, clerk)).status_code == 201
    assert (await stock_of(service, PEAK_DAY))["available"] == LEFT


async def test_fifty_http_buyers_race_for_the_last_ten(
    service: Service, clerk: dict[str, str], racing: httpx.AsyncClient
) -> None:
    await _last_tickets(service, clerk)
    sales = [hall_sale(number(n), ticket_type="peak", visit_day=PEAK_DAY.isoformat()) for n in range(BUYERS)]

    replies = await asyncio.gather(*(_post(racing, sale, clerk) for sale in sales))

    assert Counter(_outcome(r) for r in replies) == {"ok": LEFT, "409 sold_out": BUYERS - LEFT}
    assert await sold_on(service.db, PEAK_DAY) == (5 + LEFT, 5 + LEFT)
    assert await paid_orders(service.db) == 5 + LEFT
    assert (await row_counts(service.db))["orders"] == 5 + LEFT


@pytest.fixture
async def many_connections(database_url: str) -> AsyncIterator[Database]:
    """A second engine whose pool lets all the buyers hold their own connection at once."""
    database = Database(database_url, pool_size=BUYERS // 2)
    yield database
    await database.dispose()


async def _sell_directly(db: Database, *, seller: Principal, terms: SaleTerms, n: int, service: Service) -> str:
    try:
        async with db.write() as session:
            await sell_ticket(
                session,
                seller=seller,
                idempotency_key=f"direct-{n}",
                msisdn=number(n),
                ticket_type="peak",
                visit_day=PEAK_DAY,
                quantity=1,
                carrier=Carrier.EXPO_CARD,
                payment=PaymentDetails(method=PaymentMethod.CASH),
                concession_category=None,
                concession_id_last4=None,
                terms=terms,
                now=service.clock.now(),
            )
    except ExpoError as exc:
        return exc.code
    return "ok"


async def test_fifty_service_calls_on_their_own_connections_race_for_the_last_ten(
    service: Service, clerk: dict[str, str], many_connections: Database
) -> None:
    await _last_tickets(service, clerk)
    seller = await shanghai_clerk(service.db)
    terms = SaleTerms(
        bank=InMemoryBank(),
        bank_timeout=timedelta(seconds=10),
        bank_window=timedelta(minutes=30),
        cod_window=timedelta(days=3),
    )

    outcomes = await asyncio.gather(
        *(_sell_directly(many_connections, seller=seller, terms=terms, n=n, service=service) for n in range(BUYERS))
    )

    assert Counter(outcomes) == {"ok": LEFT, "sold_out": BUYERS - LEFT}
    assert await sold_on(service.db, PEAK_DAY) == (5 + LEFT, 5 + LEFT)
    assert await paid_orders(service.db) == 5 + LEFT


async def test_web_buyers_who_lose_the_race_get_their_money_back(
    service: Service, clerk: dict[str, str], racing: httpx.AsyncClient, bank: RecordingBank
) -> None:
    await _last_tickets(service, clerk)
    web = service.device("web")
    sales = [
        {
            "msisdn": number(n),
            "ticket_type": "peak",
            "visit_day": PEAK_DAY.isoformat(),
            "carrier": "expo_card",
            "payment": {"method": "online_banking", "account": "6222000000000001"},
        }
        for n in range(BUYERS)
    ]

    replies = await asyncio.gather(*(_post(racing, sale, web) for sale in sales))

    assert Counter(_outcome(r) for r in replies) == {"ok": LEFT, "409 sold_out": BUYERS - LEFT}
    kept = {r.json()["payments"][0]["reference"] for r in replies if r.status_code == 201}
    assert len(bank.charged) == len(set(bank.charged))
    assert set(bank.charged) - set(bank.refunded) == kept
    assert not set(bank.refunded) & kept
    assert await sold_on(service.db, PEAK_DAY) == (5 + LEFT, 5 + LEFT)


async def test_twenty_requests_with_one_key_make_one_order(
    service: Service, clerk: dict[str, str], racing: httpx.AsyncClient
) -> None:
    sale = hall_sale(number(1), ticket_type="peak", visit_day=PEAK_DAY.isoformat())
    key = uuid.uuid4().hex
    before = await sold_on(service.db, PEAK_DAY)

    replies = await asyncio.gather(*(_post(racing, sale, clerk, key=key) for _ in range(20)))

    outcomes = Counter(_outcome(r) for r in replies)
    assert set(outcomes) <= {"ok", "409 request_in_progress"}, outcomes
    assert outcomes["ok"] >= 1
    created = [r for r in replies if r.status_code == 201]
    assert sum(1 for r in created if "idempotent-replayed" not in r.headers) == 1
    assert len({r.json()["id"] for r in created}) == 1
    counts = await row_counts(service.db)
    assert (counts["orders"], counts["tickets"], counts["payments"]) == (1, 1, 1)
    assert await sold_on(service.db, PEAK_DAY) == (before[0], before[1] + 1)

    replay = await service.post("/v1/orders", sale, clerk, key=key)
    assert replay.status_code == 201
    assert replay.headers["idempotent-replayed"] == "true"


async def test_two_sales_to_one_number_at_once(
    service: Service, clerk: dict[str, str], agent: dict[str, str], racing: httpx.AsyncClient
) -> None:
    hall = _post(racing, hall_sale(number(1)), clerk)
    hotline = _post(
        racing,
        {
            "msisdn": number(1),
            "ticket_type": "standard",
            "carrier": "qr_voucher",
            "payment": {"method": "credit_card", "account": "4000000000000001"},
        },
        agent,
    )

    replies = await asyncio.gather(hall, hotline)

    assert sorted(_outcome(r) for r in replies) == ["409 unused_ticket_exists", "ok"]
    counts = await row_counts(service.db)
    assert (counts["orders"], counts["tickets"]) == (1, 1)


async def test_many_sales_to_one_number_at_once(
    service: Service, clerk: dict[str, str], racing: httpx.AsyncClient
) -> None:
    replies = await asyncio.gather(*(_post(racing, hall_sale(number(1)), clerk) for _ in range(10)))
    assert Counter(_outcome(r) for r in replies) == {"ok": 1, "409 unused_ticket_exists": 9}
    assert (await row_counts(service.db))["tickets"] == 1
