"""Each sales channel end to end over HTTP: hall counter, 12580 hotline (card and COD), web/OTA online banking."""

from datetime import timedelta

import msgspec

from expo.bank import BankResult, BankStatus, InMemoryBank, sign_notification
from tests.integration.conftest import Service, hall_sale, number
from tests.integration.test_support import (
    BANK_SECRET,
    PEAK_DAY,
    agent_sale,
    assert_problem,
    cod_sale,
    nothing_written,
    row_counts,
    sold_on,
    stock_of,
    web_sale,
)
from ticketing.sweeps import sweep_unpaid


async def test_hall_cash_sale(service: Service, clerk: dict[str, str]) -> None:
    reply = await service.post("/v1/orders", hall_sale(number(1)), clerk)
    assert reply.status_code == 201, reply.text
    order = reply.json()
    assert (order["status"], order["channel"], order["payment_method"]) == ("paid", "hall", "cash")
    assert order["payments"][0]["kind"] == "charge"
    assert order["payments"][0]["status"] == "confirmed"


async def test_hall_bank_card_needs_the_pos_approval_code(service: Service, clerk: dict[str, str]) -> None:
    refused = await service.post("/v1/orders", hall_sale(number(1), payment={"method": "bank_card"}), clerk)
    assert_problem(refused, 422, "approval_code_required")
    await nothing_written(service.db)

    sale = hall_sale(number(1), payment={"method": "bank_card", "approval_code": "A12345"})
    reply = await service.post("/v1/orders", sale, clerk)
    assert reply.status_code == 201, reply.text
    order = reply.json()
    assert order["status"] == "paid"
    assert order["payments"][0]["external_ref"] == "A12345"


async def test_hall_refuses_another_channels_payment(service: Service, clerk: dict[str, str]) -> None:
    sale = hall_sale(number(1), payment={"method": "credit_card", "account": "4000000000000001"})
    assert_problem(await service.post("/v1/orders", sale, clerk), 422, "payment_method_not_allowed")
    await nothing_written(service.db)


async def test_agent_credit_card_approved(service: Service, agent: dict[str, str]) -> None:
    reply = await service.post("/v1/orders", agent_sale(number(1)), agent)
    assert reply.status_code == 201, reply.text
    order = reply.json()
    assert (order["status"], order["channel"]) == ("paid", "hotline")
    charge = order["payments"][0]
    assert charge["masked_account"] == "****0001"
    assert charge["external_ref"].startswith("B")
    assert [t["status"] for t in order["tickets"]] == ["issued"]


async def test_agent_credit_card_declined_writes_nothing(service: Service, agent: dict[str, str]) -> None:
    before = await sold_on(service.db, PEAK_DAY)
    sale = agent_sale(number(1), account="4000000000000002", ticket_type="peak", visit_day=PEAK_DAY.isoformat())
    assert_problem(await service.post("/v1/orders", sale, agent), 402, "payment_declined")
    await nothing_written(service.db)
    assert await sold_on(service.db, PEAK_DAY) == before


async def test_agent_credit_card_timeout_is_resolved_by_the_sweep(service: Service, agent: dict[str, str]) -> None:
    reply = await service.post("/v1/orders", agent_sale(number(1), account="4000000000000003"), agent)
    assert reply.status_code == 202, reply.text
    order = reply.json()
    assert order["status"] == "awaiting_payment"
    assert [t["status"] for t in order["tickets"]] == ["pending"]

    service.clock.advance(timedelta(minutes=2))
    report = await sweep_unpaid(service.db, bank=InMemoryBank(), now=service.clock.now())
    assert (report.paid, report.expired) == (1, 0)

    settled = (await service.client.get(f"/v1/orders/{order['id']}", headers=agent)).json()
    assert settled["status"] == "paid"
    assert [t["status"] for t in settled["tickets"]] == ["issued"]
    assert settled["payments"][0]["status"] == "confirmed"


async def test_pending_bank_payment_confirmed_by_signed_notification(service: Service, agent: dict[str, str]) -> None:
    reply = await service.post("/v1/orders", agent_sale(number(1), account="4000000000000004"), agent)
    assert reply.status_code == 202, reply.text
    order = reply.json()
    assert order["status"] == "awaiting_payment"
    reference = order["payments"][0]["reference"]
    body = msgspec.json.encode({"reference": reference, "status": "approved", "bank_ref": "BANK42"})

    forged = await service.client.post(
        "/v1/bank/notifications",
        content=body,
        headers={"Content-Type": "application/json", "X-Bank-Signature": sign_notification("wrong", body)},
    )
    assert_problem(forged, 401, "bad_signature")

    genuine = await service.client.post(
        "/v1/bank/notifications",
        content=body,
        headers={"Content-Type": "application/json", "X-Bank-Signature": sign_notification(BANK_SECRET, body)},
    )
    assert genuine.status_code == 200, genuine.text
    assert genuine.json() == {"reference": reference, "order_status": "paid"}
    settled = (await service.client.get(f"/v1/orders/{order['id']}", headers=agent)).json()
    assert settled["status"] == "paid"
    assert settled["payments"][0]["external_ref"] == "BANK42"


async def test_unknown_reference_in_notification(service: Service) -> None:
    body = msgspec.json.encode({"reference": "EXPNOSUCH", "status": "approved"})
    reply = await service.client.post(
        "/v1/bank/notifications",
        content=body,
        headers={"Content-Type": "application/json", "X-Bank-Signature": sign_notification(BANK_SECRET, body)},
    )
    assert_problem(reply, 404, "unknown_reference")


async def test_cod_is_paid_when_the_courier_collects(service: Service, agent: dict[str, str]) -> None:
    reply = await service.post("/v1/orders", cod_sale(number(1), quantity=5), agent)
    assert reply.status_code == 202, reply.text
    order = reply.json()
    assert (order["status"], order["amount_fen"], len(order["tickets"])) == ("awaiting_delivery", 80000, 5)
    courier = service.device("courier")

    short = await service.post(f"/v1/orders/{order['id']}/delivery", {"collected_fen": 79999, "receipt": "R1"}, courier)
    assert_problem(short, 422, "amount_mismatch")
    still = (await service.client.get(f"/v1/orders/{order['id']}", headers=courier)).json()
    assert still["status"] == "awaiting_delivery"

    done = await service.post(f"/v1/orders/{order['id']}/delivery", {"collected_fen": 80000, "receipt": "R2"}, courier)
    assert done.status_code == 200, done.text
    paid = done.json()
    assert paid["status"] == "paid"
    assert {t["status"] for t in paid["tickets"]} == {"issued"}
    assert paid["payments"][0]["external_ref"] == "R2"

    again = await service.post(f"/v1/orders/{order['id']}/delivery", {"collected_fen": 80000, "receipt": "R3"}, courier)
    assert_problem(again, 409, "not_awaiting_delivery")


async def test_cod_quantity_is_one_to_five_physical_tickets(service: Service, agent: dict[str, str]) -> None:
    assert_problem(await service.post("/v1/orders", cod_sale(number(1), quantity=6), agent), 422, "invalid_quantity")
    assert_problem(await service.post("/v1/orders", cod_sale(number(1), quantity=0), agent), 422, "invalid_quantity")
    mobile = agent_sale(number(1), quantity=2)
    assert_problem(await service.post("/v1/orders", mobile, agent), 422, "invalid_quantity")
    await nothing_written(service.db)


async def test_undelivered_cod_expires_and_releases_peak_stock(service: Service, agent: dict[str, str]) -> None:
    sale = cod_sale(number(1), quantity=5, ticket_type="peak", visit_day=PEAK_DAY.isoformat())
    reply = await service.post("/v1/orders", sale, agent)
    assert reply.status_code == 202, reply.text
    order = reply.json()
    assert (await stock_of(service, PEAK_DAY))["sold"] == 5

    service.clock.advance(timedelta(hours=71))
    early = await sweep_unpaid(service.db, bank=InMemoryBank(), now=service.clock.now())
    assert early.expired == 0

    service.clock.advance(timedelta(hours=1, seconds=1))
    report = await sweep_unpaid(service.db, bank=InMemoryBank(), now=service.clock.now())
    assert (report.paid, report.expired) == (0, 1)

    courier = service.device("courier")
    expired = (await service.client.get(f"/v1/orders/{order['id']}", headers=courier)).json()
    assert expired["status"] == "expired"
    assert {t["status"] for t in expired["tickets"]} == {"cancelled"}
    assert expired["payments"][0]["status"] == "cancelled"
    level = await stock_of(service, PEAK_DAY)
    assert (level["sold"], level["available"]) == (0, level["capacity"])

    late = await service.post(f"/v1/orders/{order['id']}/delivery", {"collected_fen": 100000, "receipt": "R"}, courier)
    assert_problem(late, 409, "not_awaiting_delivery")


async def test_web_online_banking(service: Service) -> None:
    web = service.device("web")
    reply = await service.post("/v1/orders", web_sale(number(1)), web)
    assert reply.status_code == 201, reply.text
    order = reply.json()
    assert (order["status"], order["channel"], order["payment_method"]) == ("paid", "web", "online_banking")
    assert order["payments"][0]["masked_account"] == "****0001"

    declined = await service.post("/v1/orders", web_sale(number(2), account="6222000000000002"), web)
    assert_problem(declined, 402, "payment_declined")
    assert (await row_counts(service.db))["orders"] == 1


async def test_web_refuses_counter_payments_and_physical_tickets(service: Service) -> None:
    web = service.device("web")
    cash = web_sale(number(1), payment={"method": "cash"})
    assert_problem(await service.post("/v1/orders", cash, web), 422, "payment_method_not_allowed")
    physical = web_sale(number(1), carrier="physical")
    assert_problem(await service.post("/v1/orders", physical, web), 422, "carrier_not_allowed")
    no_account = web_sale(number(1), payment={"method": "online_banking"})
    assert_problem(await service.post("/v1/orders", no_account, web), 422, "account_required")
    await nothing_written(service.db)


async def _notify(service: Service, **fields: str) -> dict[str, str]:
    body = msgspec.json.encode(fields)
    reply = await service.client.post(
        "/v1/bank/notifications",
        content=body,
        headers={"Content-Type": "application/json", "X-Bank-Signature": sign_notification(BANK_SECRET, body)},
    )
    assert reply.status_code == 200, reply.text
    answer: dict[str, str] = reply.json()
    return answer


async def test_declined_notification_expires_the_order_and_frees_its_day(
    service: Service, agent: dict[str, str]
) -> None:
    before = await sold_on(service.db, PEAK_DAY)
    sale = agent_sale(number(1), account="4000000000000004", ticket_type="peak", visit_day=PEAK_DAY.isoformat())
    order = (await service.post("/v1/orders", sale, agent)).json()
    assert (await sold_on(service.db, PEAK_DAY))[1] == before[1] + 1

    answer = await _notify(service, reference=order["payments"][0]["reference"], status="declined")
    assert answer["order_status"] == "expired"
    closed = (await service.client.get(f"/v1/orders/{order['id']}", headers=agent)).json()
    assert [t["status"] for t in closed["tickets"]] == ["cancelled"]
    assert closed["payments"][0]["status"] == "declined"
    assert await sold_on(service.db, PEAK_DAY) == before


class SilentBank(InMemoryBank):
    """A bank that never gives an answer to a status query."""

    async def query(self, *, reference: str, account: str) -> BankResult:
        return BankResult(BankStatus.PENDING)


async def test_silent_bank_order_expires_and_a_late_approval_is_refunded(
    service: Service, agent: dict[str, str]
) -> None:
    before = await sold_on(service.db, PEAK_DAY)
    sale = agent_sale(number(1), account="4000000000000004", ticket_type="peak", visit_day=PEAK_DAY.isoformat())
    order = (await service.post("/v1/orders", sale, agent)).json()

    service.clock.advance(timedelta(minutes=10))
    waiting = await sweep_unpaid(service.db, bank=SilentBank(), now=service.clock.now())
    assert (waiting.paid, waiting.expired) == (0, 0)
    service.clock.advance(timedelta(minutes=21))
    report = await sweep_unpaid(service.db, bank=SilentBank(), now=service.clock.now())
    assert (report.paid, report.expired) == (0, 1)
    assert await sold_on(service.db, PEAK_DAY) == before

    answer = await _notify(service, reference=order["payments"][0]["reference"], status="approved", bank_ref="LATE")
    assert answer["order_status"] == "expired"
    late = (await service.client.get(f"/v1/orders/{order['id']}", headers=agent)).json()
    assert [(p["kind"], p["status"]) for p in late["payments"]] == [("charge", "confirmed"), ("refund", "confirmed")]
    events = (await service.client.get(f"/v1/orders/{order['id']}/events", headers=agent)).json()
    assert events[-1]["event"] == "late_payment_refunded"
    # The same notification again changes nothing.
    again = await _notify(service, reference=order["payments"][0]["reference"], status="approved", bank_ref="LATE")
    assert again["order_status"] == "expired"
    assert (await row_counts(service.db))["payments"] == 2
