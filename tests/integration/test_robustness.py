"""Input that used to reach the database or the driver and come back as a 500: now a clear 4xx, and still serving."""

import uuid

import pytest

from expo.bank import BankResult, BankStatus, InMemoryBank
from tests.integration.conftest import Service, hall_sale, number
from tests.integration.test_support import PEAK_DAY, agent_sale, assert_problem, cod_sale, nothing_written, row_counts

TOO_BIG = 2**63  # beyond every INTEGER column


async def _still_sells(service: Service, clerk: dict[str, str]) -> None:
    reply = await service.post("/v1/orders", hall_sale(number(9999)), clerk)
    assert reply.status_code == 201, reply.text


async def test_non_ascii_bank_signature_is_refused_not_a_crash(service: Service, clerk: dict[str, str]) -> None:
    reply = await service.client.post(
        "/v1/bank/notifications",
        content=b'{"reference": "EXP1", "status": "approved"}',
        headers={"Content-Type": "application/json", "X-Bank-Signature": "sig\u00e9".encode("latin-1")},
    )
    assert_problem(reply, 401, "bad_signature")
    await _still_sells(service, clerk)


async def test_capacity_beyond_the_column_is_400(service: Service, clerk: dict[str, str]) -> None:
    path = f"/v1/stock/{PEAK_DAY.isoformat()}"
    reply = await service.client.put(path, json={"capacity": TOO_BIG}, headers=service.device("admin"))
    assert_problem(reply, 400, "invalid_request")
    await _still_sells(service, clerk)


@pytest.mark.parametrize("order_id", [TOO_BIG, 2**31, 0])
async def test_order_ids_beyond_the_column_name_no_order(
    service: Service, clerk: dict[str, str], order_id: int
) -> None:
    assert_problem(await service.client.get(f"/v1/orders/{order_id}", headers=clerk), 404, "order_not_found")
    events = await service.client.get(f"/v1/orders/{order_id}/events", headers=clerk)
    assert_problem(events, 404, "order_not_found")
    assert_problem(await service.post(f"/v1/orders/{order_id}/void", {}, clerk), 404, "order_not_found")
    assert_problem(await service.post(f"/v1/orders/{order_id}/refund", {}, clerk), 404, "order_not_found")
    delivery = await service.post(
        f"/v1/orders/{order_id}/delivery", {"collected_fen": 100, "receipt": "R"}, service.device("courier")
    )
    assert_problem(delivery, 404, "order_not_found")
    await _still_sells(service, clerk)


async def test_control_characters_in_sale_text_are_400(service: Service, clerk: dict[str, str]) -> None:
    sale = hall_sale(number(1), payment={"method": "bank_card", "approval_code": "A1\u0000"})
    assert_problem(await service.post("/v1/orders", sale, clerk), 400, "invalid_request")
    await nothing_written(service.db)
    await _still_sells(service, clerk)


async def test_control_characters_in_a_delivery_receipt_are_400(service: Service, agent: dict[str, str]) -> None:
    order = (await service.post("/v1/orders", cod_sale(number(1)), agent)).json()
    courier = service.device("courier")
    bad = await service.post(
        f"/v1/orders/{order['id']}/delivery", {"collected_fen": 16000, "receipt": "R\u0000"}, courier
    )
    assert_problem(bad, 400, "invalid_request")
    good = await service.post(f"/v1/orders/{order['id']}/delivery", {"collected_fen": 16000, "receipt": "R1"}, courier)
    assert good.status_code == 200, good.text


async def test_control_characters_in_login_and_staff_are_400(service: Service) -> None:
    login = await service.client.post(
        "/v1/sessions", json={"staff_no": "SH-C001\u0000", "password": "whatever1"}, headers=service.device("sh_hall")
    )
    assert_problem(login, 400, "invalid_request")
    staff = {
        "staff_no": "SH-C\u00009",
        "name": "Nul",
        "role": "hall_clerk",
        "province_code": "31",
        "hall": "Shanghai Xujiahui hall",
        "password": "long enough",
    }
    registered = await service.client.post("/v1/admin/staff", json=staff, headers=service.device("admin"))
    assert_problem(registered, 400, "invalid_request")
    assert (await service.login("sh_hall", "SH-C001"))["Authorization"].startswith("Bearer ")


async def test_deeply_nested_json_is_400(service: Service, clerk: dict[str, str]) -> None:
    content = b'{"msisdn": ' + b"[" * 20_000 + b"]" * 20_000 + b"}"
    headers = {**clerk, "Idempotency-Key": uuid.uuid4().hex, "Content-Type": "application/json"}
    reply = await service.client.post("/v1/orders", content=content, headers=headers)
    assert_problem(reply, 400, "invalid_request")
    await nothing_written(service.db)
    await _still_sells(service, clerk)


async def test_since_without_a_zone_is_expo_time(service: Service, clerk: dict[str, str]) -> None:
    assert (await service.post("/v1/orders", hall_sale(number(1)), clerk)).status_code == 201  # 10:00 Shanghai
    before = await service.client.get("/v1/orders", params={"since": "2010-06-01T09:00:00"}, headers=clerk)
    assert before.status_code == 200, before.text
    assert len(before.json()) == 1
    after = await service.client.get("/v1/orders", params={"since": "2010-06-01T11:00:00"}, headers=clerk)
    assert after.json() == []
    aware = await service.client.get("/v1/orders", params={"since": "2010-06-01T01:00:00Z"}, headers=clerk)
    assert len(aware.json()) == 1


class RefundOutage(InMemoryBank):
    """A bank whose refunds fail until it comes back."""

    def __init__(self) -> None:
        super().__init__()
        self.up = False

    async def refund(self, *, reference: str, amount_fen: int) -> BankResult:
        if not self.up:
            return BankResult(BankStatus.DECLINED, reason="system_unavailable")
        return await super().refund(reference=reference, amount_fen=amount_fen)


async def test_a_bank_failure_is_not_stored_as_the_keys_answer(service: Service, agent: dict[str, str]) -> None:
    order = (await service.post("/v1/orders", agent_sale(number(1)), agent)).json()
    bank = RefundOutage()
    service.client.app.state.bank = bank

    failed = await service.post(f"/v1/orders/{order['id']}/refund", {}, agent, key="refund-1")
    assert_problem(failed, 502, "bank_refund_failed")
    assert (await row_counts(service.db))["payments"] == 1

    bank.up = True
    retried = await service.post(f"/v1/orders/{order['id']}/refund", {}, agent, key="refund-1")
    assert retried.status_code == 200, retried.text
    assert "idempotent-replayed" not in retried.headers
    assert retried.json()["status"] == "refunded"
    assert (await row_counts(service.db))["payments"] == 2
