"""The catalogue over HTTP, the peak-day rules of a sale, and peak-day stock that is never oversold."""

from datetime import date
from typing import Any

import pytest

from tests.integration.conftest import Service, hall_sale, number
from tests.integration.test_support import PEAK_DAY, assert_problem, nothing_written, set_capacity, sold_on, stock_of

# (type, price in fen, concession, dated, entries, evening): the Expo's published ticket types.
EXPECTED = [
    ("standard", 16000, False, False, 1, False),
    ("standard_concession", 10000, True, False, 1, False),
    ("peak", 20000, False, True, 1, False),
    ("peak_concession", 12000, True, True, 1, False),
    ("evening", 9000, False, False, 1, True),
    ("pass_3", 40000, False, False, 3, False),
    ("pass_7", 90000, False, False, 7, False),
]


def _sale_of(ticket_type: str, n: int) -> dict[str, Any]:
    changes: dict[str, Any] = {"ticket_type": ticket_type}
    if ticket_type.startswith("peak"):
        changes["visit_day"] = PEAK_DAY.isoformat()
    if ticket_type.endswith("concession"):
        changes["concession"] = {"category": "student", "id_last4": "123X"}
    return hall_sale(number(n), **changes)


async def test_catalogue_lists_every_type_with_its_price(service: Service, clerk: dict[str, str]) -> None:
    reply = await service.client.get("/v1/catalogue", headers=clerk)
    assert reply.status_code == 200, reply.text
    listed = [
        (k["ticket_type"], k["price_fen"], k["concession"], k["dated"], k["entries_allowed"], k["evening"])
        for k in reply.json()
    ]
    assert sorted(listed) == sorted(EXPECTED)


@pytest.mark.parametrize(("ticket_type", "price_fen"), [(t, p) for t, p, *_ in EXPECTED])
async def test_each_type_sells_at_its_catalogue_price(
    service: Service, clerk: dict[str, str], ticket_type: str, price_fen: int
) -> None:
    reply = await service.post("/v1/orders", _sale_of(ticket_type, 1), clerk)
    assert reply.status_code == 201, reply.text
    order = reply.json()
    assert (order["ticket_type"], order["unit_price_fen"], order["amount_fen"]) == (ticket_type, price_fen, price_fen)
    assert [t["ticket_type"] for t in order["tickets"]] == [ticket_type]


async def test_concession_needs_its_category(service: Service, clerk: dict[str, str]) -> None:
    bare = hall_sale(number(1), ticket_type="standard_concession")
    assert_problem(await service.post("/v1/orders", bare, clerk), 422, "concession_proof_required")
    full_price = hall_sale(number(1), concession={"category": "student", "id_last4": "1234"})
    assert_problem(await service.post("/v1/orders", full_price, clerk), 422, "concession_not_applicable")
    await nothing_written(service.db)


@pytest.mark.parametrize(
    ("ticket_type", "visit_day", "code"),
    [
        ("peak", None, "visit_day_required"),
        ("peak", "2010-06-15", "not_a_peak_day"),
        ("peak", "2010-11-01", "outside_expo"),
        ("peak", "2010-05-01", "day_passed"),
        ("standard", "2010-10-01", "visit_day_not_allowed"),
        ("evening", "2010-10-01", "visit_day_not_allowed"),
    ],
)
async def test_peak_tickets_need_a_coming_peak_day(
    service: Service, clerk: dict[str, str], ticket_type: str, visit_day: str | None, code: str
) -> None:
    sale = hall_sale(number(1), ticket_type=ticket_type, visit_day=visit_day)
    assert_problem(await service.post("/v1/orders", sale, clerk), 422, code)
    await nothing_written(service.db)


async def test_peak_sale_takes_its_days_stock(service: Service, clerk: dict[str, str]) -> None:
    before = await stock_of(service, PEAK_DAY)
    reply = await service.post("/v1/orders", _sale_of("peak", 1), clerk)
    assert reply.status_code == 201, reply.text
    after = await stock_of(service, PEAK_DAY)
    assert (after["sold"], after["available"]) == (before["sold"] + 1, before["available"] - 1)


async def test_sold_out_day_refuses_the_next_sale(service: Service, clerk: dict[str, str]) -> None:
    await set_capacity(service, PEAK_DAY, 2)
    for n in (1, 2):
        sold = await service.post("/v1/orders", _sale_of("peak", n), clerk)
        assert sold.status_code == 201, sold.text
    level = await stock_of(service, PEAK_DAY)
    assert (level["capacity"], level["sold"], level["available"]) == (2, 2, 0)

    refused = await service.post("/v1/orders", _sale_of("peak", 3), clerk)
    assert_problem(refused, 409, "sold_out")
    assert refused.json()["day"] == PEAK_DAY.isoformat()
    assert await sold_on(service.db, PEAK_DAY) == (2, 2)
    other_day = hall_sale(number(3), ticket_type="peak", visit_day=date(2010, 10, 2).isoformat())
    assert (await service.post("/v1/orders", other_day, clerk)).status_code == 201


async def test_capacity_is_set_by_the_back_office_only(service: Service, clerk: dict[str, str]) -> None:
    path = f"/v1/stock/{PEAK_DAY.isoformat()}"
    assert_problem(await service.client.put(path, json={"capacity": 5}, headers=clerk), 403, "role_not_allowed")
    admin = service.device("admin")
    standard_day = await service.client.put("/v1/stock/2010-06-15", json={"capacity": 5}, headers=admin)
    assert_problem(standard_day, 422, "not_a_peak_day")
    assert_problem(await service.client.put(path, json={"capacity": -1}, headers=admin), 422, "invalid_capacity")

    await set_capacity(service, PEAK_DAY, 1)
    assert (await service.post("/v1/orders", _sale_of("peak", 1), clerk)).status_code == 201
    below = await service.client.put(path, json={"capacity": 0}, headers=admin)
    assert_problem(below, 409, "capacity_below_sold")
    assert await sold_on(service.db, PEAK_DAY) == (1, 1)
