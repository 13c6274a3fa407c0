"""The October peak-day upgrade: +40 yuan for a standard ticket, sold at the hall, reversible."""

from datetime import date, datetime
from typing import Any

from expo.clock import EXPO_TZ
from tests.integration.conftest import Service, hall_sale, number
from tests.integration.test_support import assert_problem, sold_on

PEAK = date(2010, 10, 3)
OCTOBER_MORNING = datetime(2010, 10, 2, 9, 0, tzinfo=EXPO_TZ)


async def _standard_ticket(service: Service, clerk: dict[str, str], serial: int, **changes: Any) -> dict[str, Any]:
    sold = await service.post("/v1/orders", hall_sale(number(serial), **changes), clerk)
    assert sold.status_code == 201, sold.text
    return dict(sold.json())


def _upgrade(msisdn: str, day: date = PEAK, method: str = "cash") -> dict[str, Any]:
    return {"msisdn": msisdn, "day": day.isoformat(), "payment": {"method": method}}


async def test_upgrade_is_sold_for_forty_yuan_and_takes_the_peak_days_stock(
    service: Service, clerk: dict[str, str]
) -> None:
    order = await _standard_ticket(service, clerk, 1)
    ticket_id = order["tickets"][0]["id"]
    before = await sold_on(service.db, PEAK)
    reply = await service.post(f"/v1/tickets/{ticket_id}/upgrade", _upgrade(order["msisdn"]), clerk)
    assert reply.status_code == 201, reply.text
    upgrade = reply.json()
    assert (upgrade["ticket_type"], upgrade["amount_fen"], upgrade["status"]) == ("peak_upgrade", 4000, "paid")
    assert (upgrade["visit_day"], upgrade["upgrade_ticket_id"]) == (PEAK.isoformat(), ticket_id)
    assert await sold_on(service.db, PEAK) == (before[0], before[1] + 1)  # (capacity, sold)
    ticket = (await service.client.get(f"/v1/orders/{order['id']}", headers=clerk)).json()["tickets"][0]
    assert ticket["upgrade_day"] == PEAK.isoformat()

    again = await service.post(f"/v1/tickets/{ticket_id}/upgrade", _upgrade(order["msisdn"]), clerk)
    assert_problem(again, 409, "already_upgraded")


async def test_upgrade_rules_are_enforced(service: Service, clerk: dict[str, str], agent: dict[str, str]) -> None:
    standard = await _standard_ticket(service, clerk, 1)
    ticket_id = standard["tickets"][0]["id"]
    may_first = date(2010, 5, 2)
    assert_problem(
        await service.post(f"/v1/tickets/{ticket_id}/upgrade", _upgrade(standard["msisdn"], may_first), clerk),
        422,
        "upgrade_not_yet_offered",
    )
    assert_problem(
        await service.post(f"/v1/tickets/{ticket_id}/upgrade", _upgrade(standard["msisdn"], date(2010, 10, 10)), clerk),
        422,
        "not_a_peak_day",
    )
    assert_problem(
        await service.post(f"/v1/tickets/{ticket_id}/upgrade", _upgrade(number(99)), clerk), 404, "ticket_not_found"
    )
    assert_problem(
        await service.post(f"/v1/tickets/{ticket_id}/upgrade", _upgrade(standard["msisdn"]), agent),
        403,
        "role_not_allowed",
    )
    evening = await _standard_ticket(service, clerk, 2, ticket_type="evening")
    assert_problem(
        await service.post(f"/v1/tickets/{evening['tickets'][0]['id']}/upgrade", _upgrade(evening["msisdn"]), clerk),
        422,
        "upgrade_not_allowed",
    )


async def test_voiding_the_upgrade_clears_it_and_frees_the_place(service: Service, clerk: dict[str, str]) -> None:
    order = await _standard_ticket(service, clerk, 1)
    ticket_id = order["tickets"][0]["id"]
    before = await sold_on(service.db, PEAK)
    upgrade = (await service.post(f"/v1/tickets/{ticket_id}/upgrade", _upgrade(order["msisdn"]), clerk)).json()

    blocked = await service.post(f"/v1/orders/{order['id']}/void", {}, clerk)
    assert_problem(blocked, 409, "upgrade_outstanding")

    voided = await service.post(f"/v1/orders/{upgrade['id']}/void", {}, clerk)
    assert voided.status_code == 200, voided.text
    assert voided.json()["status"] == "void"
    assert await sold_on(service.db, PEAK) == before
    ticket = (await service.client.get(f"/v1/orders/{order['id']}", headers=clerk)).json()["tickets"][0]
    assert (ticket["upgrade_day"], ticket["status"]) == (None, "issued")
    base_voided = await service.post(f"/v1/orders/{order['id']}/void", {}, clerk)
    assert base_voided.status_code == 200, base_voided.text


async def test_upgrade_in_october_for_a_later_peak_day(service: Service) -> None:
    service.clock.set(OCTOBER_MORNING)
    clerk = await service.login("sh_hall", "SH-C001")
    order = await _standard_ticket(service, clerk, 1)
    ticket_id = order["tickets"][0]["id"]
    passed = await service.post(f"/v1/tickets/{ticket_id}/upgrade", _upgrade(order["msisdn"], date(2010, 10, 1)), clerk)
    assert_problem(passed, 422, "day_passed")
    later = await service.post(
        f"/v1/tickets/{ticket_id}/upgrade", _upgrade(order["msisdn"], date(2010, 10, 26), "bank_card"), clerk
    )
    assert_problem(later, 422, "approval_code_required")
