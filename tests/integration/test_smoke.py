from tests.integration.conftest import Service, hall_sale, number


async def test_hall_cash_sale_is_paid_and_issued(service: Service, clerk: dict[str, str]) -> None:
    reply = await service.post("/v1/orders", hall_sale(number(1)), clerk)
    assert reply.status_code == 201, reply.text
    order = reply.json()
    assert order["status"] == "paid"
    assert order["amount_fen"] == 16000
    assert [t["status"] for t in order["tickets"]] == ["issued"]
