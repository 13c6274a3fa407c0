"""Bad input gets a clear 4xx problem with a code, nothing is half-written, and the server keeps serving."""

import uuid
from typing import Any

import httpx
import pytest

from tests.integration.conftest import Service, hall_sale, number
from tests.integration.test_support import assert_problem, nothing_written, row_counts


async def _still_sells(service: Service, clerk: dict[str, str]) -> None:
    """After a refusal the same server still completes a good sale."""
    before = (await row_counts(service.db))["orders"]
    reply = await service.post("/v1/orders", hall_sale(number(9999)), clerk)
    assert reply.status_code == 201, reply.text
    assert (await row_counts(service.db))["orders"] == before + 1


async def _raw_sale(service: Service, clerk: dict[str, str], content: bytes) -> httpx.Response:
    headers = {**clerk, "Idempotency-Key": uuid.uuid4().hex, "Content-Type": "application/json"}
    return await service.client.post("/v1/orders", content=content, headers=headers)


@pytest.mark.parametrize(
    "content",
    [
        b'{"msisdn": "13800000001", "ticket_type": ',
        b"not json at all",
        b"",
        b"[]",
        b'{"msisdn": 13800000001, "ticket_type": "standard", "carrier": "expo_card", "payment": {"method": "cash"}}',
        b'{"ticket_type": "standard", "carrier": "expo_card", "payment": {"method": "cash"}}',
        b'{"msisdn": "13800000001", "ticket_type": "standard", "carrier": "pigeon", "payment": {"method": "cash"}}',
        b'{"msisdn": "13800000001", "ticket_type": "standard", "carrier": "expo_card", "payment": {"method": "iou"}}',
        b'{"msisdn": "13800000001", "ticket_type": "peak", "visit_day": "1 October", '
        b'"carrier": "expo_card", "payment": {"method": "cash"}}',
    ],
    ids=[
        "truncated",
        "not-json",
        "empty",
        "array",
        "number-msisdn",
        "no-msisdn",
        "bad-carrier",
        "bad-method",
        "bad-day",
    ],
)
async def test_malformed_body_is_400(service: Service, clerk: dict[str, str], content: bytes) -> None:
    assert_problem(await _raw_sale(service, clerk, content), 400, "invalid_request")
    await nothing_written(service.db)
    await _still_sells(service, clerk)


@pytest.mark.parametrize(
    "changes",
    [{"discount": 50}, {"payment": {"method": "cash", "tip_fen": 100}}, {"concession": {"category": "x", "ssn": "1"}}],
    ids=["top-level", "in-payment", "in-concession"],
)
async def test_unknown_field_is_400(service: Service, clerk: dict[str, str], changes: dict[str, Any]) -> None:
    reply = await service.post("/v1/orders", hall_sale(number(1), **changes), clerk)
    assert_problem(reply, 400, "invalid_request")
    await nothing_written(service.db)
    await _still_sells(service, clerk)


@pytest.mark.parametrize(
    ("changes", "code"),
    [
        ({"ticket_type": "vip"}, "unknown_ticket_type"),
        ({"ticket_type": "peak", "visit_day": "2010-04-30"}, "outside_expo"),
        ({"ticket_type": "peak", "visit_day": "2011-10-01"}, "outside_expo"),
        ({"msisdn": "13012345678"}, "unknown_number_segment"),
        ({"msisdn": "12345"}, "invalid_msisdn"),
        ({"msisdn": "10012345678"}, "invalid_msisdn"),
        ({"msisdn": "+1 555 0100"}, "invalid_msisdn"),
        ({"quantity": 2}, "invalid_quantity"),
        ({"carrier": "physical"}, "carrier_not_allowed"),
    ],
)
async def test_refused_sale_is_422_and_writes_nothing(
    service: Service, clerk: dict[str, str], changes: dict[str, Any], code: str
) -> None:
    stock_before = (await service.client.get("/v1/stock", headers=clerk)).json()
    sale = {**hall_sale(number(1)), **changes}
    assert_problem(await service.post("/v1/orders", sale, clerk), 422, code)
    await nothing_written(service.db)
    assert (await service.client.get("/v1/stock", headers=clerk)).json() == stock_before
    await _still_sells(service, clerk)


async def test_oversized_body_is_413(service: Service, clerk: dict[str, str]) -> None:
    padding = "x" * (64 * 1024)
    content = f'{{"msisdn": "13800000001", "ticket_type": "{padding}"}}'.encode()
    assert_problem(await _raw_sale(service, clerk, content), 413, "body_too_large")
    await nothing_written(service.db)
    await _still_sells(service, clerk)


async def test_oversized_body_on_a_public_path_is_413(service: Service, clerk: dict[str, str]) -> None:
    content = b'{"reference": "' + b"x" * (64 * 1024) + b'", "status": "approved"}'
    reply = await service.client.post(
        "/v1/bank/notifications", content=content, headers={"Content-Type": "application/json"}
    )
    assert_problem(reply, 413, "body_too_large")
    await _still_sells(service, clerk)


async def test_unknown_route_is_404(service: Service, clerk: dict[str, str]) -> None:
    assert_problem(await service.client.get("/v1/nowhere", headers=clerk), 404, "not_found")
    assert_problem(await service.client.get("/nowhere"), 404, "not_found")
    assert_problem(await service.client.get("/v1/orders/not-a-number", headers=clerk), 404, "not_found")
    await _still_sells(service, clerk)


async def test_wrong_method_is_405(service: Service, clerk: dict[str, str]) -> None:
    assert_problem(await service.client.delete("/v1/catalogue", headers=clerk), 405, "method_not_allowed")
    await _still_sells(service, clerk)


async def test_bad_query_and_path_parameters_are_400(service: Service, clerk: dict[str, str]) -> None:
    too_many = await service.client.get("/v1/orders", params={"limit": 10_000}, headers=clerk)
    assert_problem(too_many, 400, "invalid_request")
    bad_number = await service.client.get("/v1/orders", params={"msisdn": "12"}, headers=clerk)
    assert_problem(bad_number, 422, "invalid_msisdn")
    bad_day = await service.client.put("/v1/stock/2010-13-01", json={"capacity": 1}, headers=service.device("admin"))
    assert bad_day.status_code in (400, 404), bad_day.text
    assert bad_day.json()["code"] in ("invalid_request", "not_found")
    await _still_sells(service, clerk)


async def test_bad_delivery_body_is_400(service: Service) -> None:
    courier = service.device("courier")
    reply = await service.post("/v1/orders/1/delivery", {"collected_fen": "lots", "receipt": "R"}, courier)
    assert_problem(reply, 400, "invalid_request")
    missing = await service.post("/v1/orders/1/delivery", {"collected_fen": 100, "receipt": "R"}, courier)
    assert_problem(missing, 404, "order_not_found")
