"""Voids (same day, same hall) and refunds (in full, before the ticket's day) over HTTP."""

from datetime import datetime, timedelta

from sqlalchemy import select

from expo.clock import EXPO_TZ
from tests.integration.conftest import Service, hall_sale, number
from tests.integration.test_support import (
    PEAK_DAY,
    agent_sale,
    assert_problem,
    row_counts,
    sold_on,
    stock_of,
)
from ticketing.models import Payment


def _peak_sale(n: int) -> dict[str, object]:
    return hall_sale(number(n), ticket_type="peak", visit_day=PEAK_DAY.isoformat())


async def _payments(service: Service, order_id: int) -> list[Payment]:
    async with service.db.read() as session:
        rows = await session.scalars(select(Payment).where(Payment.order_id == order_id).order_by(Payment.id))
        return list(rows.all())


async def test_void_on_the_same_day_releases_stock(service: Service, clerk: dict[str, str]) -> None:
    before = await stock_of(service, PEAK_DAY)
    order = (await service.post("/v1/orders", _peak_sale(1), clerk)).json()
    assert (await stock_of(service, PEAK_DAY))["sold"] == before["sold"] + 1

    service.clock.advance(timedelta(hours=8))  # still 1 June, 18:00
    reply = await service.post(f"/v1/orders/{order['id']}/void", {}, clerk)
    assert reply.status_code == 200, reply.text
    voided = reply.json()
    assert voided["status"] == "void"
    assert [t["status"] for t in voided["tickets"]] == ["void"]
    assert [(p["kind"], p["amount_fen"], p["status"]) for p in voided["payments"]] == [
        ("charge", 20000, "confirmed"),
        ("void", 20000, "confirmed"),
    ]
    assert (await stock_of(service, PEAK_DAY))["sold"] == before["sold"]


async def test_void_the_next_day_is_refused(service: Service, clerk: dict[str, str]) -> None:
    order = (await service.post("/v1/orders", _peak_sale(1), clerk)).json()
    sold = await sold_on(service.db, PEAK_DAY)
    service.clock.set(datetime(2010, 6, 2, 9, 0, tzinfo=EXPO_TZ))
    next_day_clerk = await service.login("sh_hall", "SH-C001")  # yesterday's session has expired

    reply = await service.post(f"/v1/orders/{order['id']}/void", {}, next_day_clerk)
    assert_problem(reply, 409, "void_window_passed")
    assert await sold_on(service.db, PEAK_DAY) == sold
    assert len(await _payments(service, order["id"])) == 1


async def test_another_provinces_clerk_cannot_see_the_order(service: Service, clerk: dict[str, str]) -> None:
    order = (await service.post("/v1/orders", hall_sale(number(1)), clerk)).json()
    beijing = await service.login("bj_hall", "BJ-C001")
    assert_problem(await service.post(f"/v1/orders/{order['id']}/void", {}, beijing), 404, "order_not_found")
    assert_problem(await service.post(f"/v1/orders/{order['id']}/refund", {}, beijing), 404, "order_not_found")
    assert_problem(await service.client.get(f"/v1/orders/{order['id']}", headers=beijing), 404, "order_not_found")
    listed = await service.client.get("/v1/orders", headers=beijing)
    assert listed.json() == []
    # An order that does not exist looks exactly the same.
    assert_problem(await service.post("/v1/orders/999999/void", {}, beijing), 404, "order_not_found")
    state = (await service.client.get(f"/v1/orders/{order['id']}", headers=clerk)).json()
    assert state["status"] == "paid"


async def test_another_channel_of_the_same_province_may_not_void(
    service: Service, clerk: dict[str, str], agent: dict[str, str]
) -> None:
    order = (await service.post("/v1/orders", hall_sale(number(1)), clerk)).json()
    assert_problem(await service.post(f"/v1/orders/{order['id']}/void", {}, agent), 403, "not_your_sale")
    admin = await service.post(f"/v1/orders/{order['id']}/void", {}, service.device("admin"))
    assert admin.status_code == 200, admin.text


async def test_refund_in_full_releases_stock(service: Service, clerk: dict[str, str]) -> None:
    before = await sold_on(service.db, PEAK_DAY)
    order = (await service.post("/v1/orders", _peak_sale(1), clerk)).json()
    service.clock.set(datetime(2010, 9, 30, 12, 0, tzinfo=EXPO_TZ))  # the day before its peak day
    later_clerk = await service.login("sh_hall", "SH-C001")

    reply = await service.post(f"/v1/orders/{order['id']}/refund", {}, later_clerk)
    assert reply.status_code == 200, reply.text
    refunded = reply.json()
    assert refunded["status"] == "refunded"
    assert [t["status"] for t in refunded["tickets"]] == ["refunded"]
    payments = await _payments(service, order["id"])
    assert [(p.kind, p.amount_fen, p.status) for p in payments] == [
        ("charge", 20000, "confirmed"),
        ("refund", 20000, "confirmed"),
    ]
    assert await sold_on(service.db, PEAK_DAY) == before

    again = await service.post(f"/v1/orders/{order['id']}/refund", {}, later_clerk)
    assert_problem(again, 409, "not_refundable")
    assert len(await _payments(service, order["id"])) == 2


async def test_card_refund_goes_back_through_the_bank(service: Service, agent: dict[str, str]) -> None:
    order = (await service.post("/v1/orders", agent_sale(number(1)), agent)).json()
    reply = await service.post(f"/v1/orders/{order['id']}/refund", {}, agent)
    assert reply.status_code == 200, reply.text
    refund = reply.json()["payments"][-1]
    assert (refund["kind"], refund["method"], refund["masked_account"]) == ("refund", "credit_card", "****0001")
    assert refund["external_ref"].startswith("B")


async def test_refund_on_or_after_the_tickets_day_is_refused(service: Service, clerk: dict[str, str]) -> None:
    order = (await service.post("/v1/orders", _peak_sale(1), clerk)).json()
    sold = await sold_on(service.db, PEAK_DAY)
    for at in (datetime(2010, 10, 1, 8, 0, tzinfo=EXPO_TZ), datetime(2010, 10, 2, 8, 0, tzinfo=EXPO_TZ)):
        service.clock.set(at)
        on_the_day = await service.login("sh_hall", "SH-C001")
        reply = await service.post(f"/v1/orders/{order['id']}/refund", {}, on_the_day)
        assert_problem(reply, 409, "refund_window_passed")
    assert await sold_on(service.db, PEAK_DAY) == sold
    assert (await row_counts(service.db))["payments"] == 1


async def test_unpaid_orders_are_neither_voided_nor_refunded(service: Service, agent: dict[str, str]) -> None:
    waiting = (await service.post("/v1/orders", agent_sale(number(1), account="4000000000000004"), agent)).json()
    assert_problem(await service.post(f"/v1/orders/{waiting['id']}/void", {}, agent), 409, "not_voidable")
    assert_problem(await service.post(f"/v1/orders/{waiting['id']}/refund", {}, agent), 409, "not_refundable")


async def test_the_void_day_is_the_expo_day_not_the_utc_day(service: Service) -> None:
    service.clock.set(datetime(2010, 6, 2, 0, 30, tzinfo=EXPO_TZ))  # still 1 June in UTC
    early = await service.login("sh_hall", "SH-C001")
    first = (await service.post("/v1/orders", hall_sale(number(1)), early)).json()
    second = (await service.post("/v1/orders", hall_sale(number(2)), early)).json()

    service.clock.set(datetime(2010, 6, 2, 23, 30, tzinfo=EXPO_TZ))  # 3 June in UTC, same Expo day
    late = await service.login("sh_hall", "SH-C001")
    assert (await service.post(f"/v1/orders/{first['id']}/void", {}, late)).status_code == 200

    service.clock.advance(timedelta(hours=1))  # 00:30 on 3 June in Shanghai
    next_day = await service.login("sh_hall", "SH-C001")
    assert_problem(await service.post(f"/v1/orders/{second['id']}/void", {}, next_day), 409, "void_window_passed")
