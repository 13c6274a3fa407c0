"""Every sale records who sold it, where, and to whom; every state change is journalled with who and from where."""

from datetime import timedelta
from typing import Any

from expo.bank import InMemoryBank
from tests.integration.conftest import Service, hall_sale, number
from tests.integration.test_support import agent_sale, cod_sale, credential_id, staff_id, web_sale
from ticketing.models import Order
from ticketing.sweeps import sweep_unpaid

INNER_MONGOLIA = "15"  # the shipped segment table gives segment 1380000 to province 15


async def _stored(service: Service, order_id: int) -> Order:
    async with service.db.read() as session:
        order = await session.get(Order, order_id)
    assert order is not None
    return order


async def _events(service: Service, order_id: int, headers: dict[str, str]) -> list[dict[str, Any]]:
    reply = await service.client.get(f"/v1/orders/{order_id}/events", headers=headers)
    assert reply.status_code == 200, reply.text
    events: list[dict[str, Any]] = reply.json()
    return events


async def test_hall_sale_records_channel_places_and_clerk(service: Service, clerk: dict[str, str]) -> None:
    reply = await service.post("/v1/orders", hall_sale(number(1)), clerk)
    assert reply.status_code == 201, reply.text
    order = reply.json()
    assert order["channel"] == "hall"
    assert order["sale_province"] == "31"
    assert order["hall"] == "Shanghai Xujiahui hall"
    assert order["home_province"] == INNER_MONGOLIA
    stored = await _stored(service, order["id"])
    assert stored.credential_id == await credential_id(service.db, "sh_hall")
    assert stored.staff_id == await staff_id(service.db, "SH-C001")

    events = await _events(service, order["id"], clerk)
    assert [(e["event"], e["status_from"], e["status_to"]) for e in events] == [
        ("created", None, "paid"),
    ]
    clerk_id = await staff_id(service.db, "SH-C001")
    terminal = await credential_id(service.db, "sh_hall")
    assert {(e["staff_id"], e["credential_id"], e["province"]) for e in events} == {(clerk_id, terminal, "31")}


async def test_hotline_sale_records_agent_and_desk(service: Service, agent: dict[str, str]) -> None:
    reply = await service.post("/v1/orders", agent_sale(number(1)), agent)
    assert reply.status_code == 201, reply.text
    order = reply.json()
    assert (order["channel"], order["sale_province"], order["hall"]) == ("hotline", "31", None)
    assert order["home_province"] == INNER_MONGOLIA
    stored = await _stored(service, order["id"])
    assert stored.credential_id == await credential_id(service.db, "sh_12580")
    assert stored.staff_id == await staff_id(service.db, "SH-A001")


async def test_web_sale_records_the_web_front_and_the_buyers_province(service: Service) -> None:
    web = service.device("web")
    reply = await service.post("/v1/orders", web_sale(number(1)), web)
    assert reply.status_code == 201, reply.text
    order = reply.json()
    assert (order["channel"], order["hall"], order["home_province"]) == ("web", None, INNER_MONGOLIA)
    # A national channel sells into the buyer's own province.
    assert order["sale_province"] == INNER_MONGOLIA
    stored = await _stored(service, order["id"])
    assert (stored.credential_id, stored.staff_id) == (await credential_id(service.db, "web"), None)
    events = await _events(service, order["id"], web)
    assert [(e["event"], e["status_to"]) for e in events] == [("created", "paid")]
    assert {e["credential_id"] for e in events} == {stored.credential_id}


async def test_cod_journal_shows_agent_then_courier(service: Service, agent: dict[str, str]) -> None:
    reply = await service.post("/v1/orders", cod_sale(number(1), quantity=2), agent)
    order_id = reply.json()["id"]
    courier = service.device("courier")
    done = await service.post(f"/v1/orders/{order_id}/delivery", {"collected_fen": 32000, "receipt": "R9"}, courier)
    assert done.status_code == 200, done.text

    events = await _events(service, order_id, agent)
    assert [(e["event"], e["status_to"]) for e in events] == [
        ("created", "awaiting_delivery"),
        ("paid", "paid"),
    ]
    agent_id = await staff_id(service.db, "SH-A001")
    assert (events[0]["staff_id"], events[0]["province"]) == (agent_id, "31")
    assert events[1]["credential_id"] == await credential_id(service.db, "courier")
    assert events[1]["staff_id"] is None


async def test_void_and_system_expiry_are_journalled(
    service: Service, clerk: dict[str, str], agent: dict[str, str]
) -> None:
    sold = await service.post("/v1/orders", hall_sale(number(1)), clerk)
    order_id = sold.json()["id"]
    voided = await service.post(f"/v1/orders/{order_id}/void", {}, clerk)
    assert voided.status_code == 200, voided.text
    events = await _events(service, order_id, clerk)
    assert [(e["event"], e["status_from"], e["status_to"]) for e in events][-1] == ("void", "paid", "void")
    assert events[-1]["staff_id"] == await staff_id(service.db, "SH-C001")

    cod = await service.post("/v1/orders", cod_sale(number(2)), agent)
    service.clock.advance(timedelta(days=3, seconds=1))
    await sweep_unpaid(service.db, bank=InMemoryBank(), now=service.clock.now())
    admin_view = await _events(service, cod.json()["id"], service.device("admin"))
    last = admin_view[-1]
    assert (last["event"], last["status_from"], last["status_to"]) == ("expired", "awaiting_delivery", "expired")
    assert (last["credential_id"], last["staff_id"], last["province"]) == (None, None, None)
    assert last["detail"] == "not paid within its window"
