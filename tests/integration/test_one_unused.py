"""The operator's rule: one unused mobile ticket per phone number at a time; physical COD tickets do not count."""

from tests.integration.conftest import Service, hall_sale, number
from tests.integration.test_support import agent_sale, assert_problem, cod_sale, row_counts, web_sale


async def test_second_unused_mobile_ticket_is_refused_on_every_channel(
    service: Service, clerk: dict[str, str], agent: dict[str, str]
) -> None:
    first = await service.post("/v1/orders", hall_sale(number(1)), clerk)
    assert first.status_code == 201, first.text
    before = await row_counts(service.db)

    again = await service.post("/v1/orders", hall_sale(number(1)), clerk)
    assert_problem(again, 409, "unused_ticket_exists")
    assert_problem(await service.post("/v1/orders", agent_sale(number(1)), agent), 409, "unused_ticket_exists")
    web = service.device("web")
    assert_problem(await service.post("/v1/orders", web_sale(number(1)), web), 409, "unused_ticket_exists")
    # The same number written another way is the same number.
    spelled = await service.post("/v1/orders", hall_sale("+86 138-0000-0001"), clerk)
    assert_problem(spelled, 409, "unused_ticket_exists")
    assert await row_counts(service.db) == before


async def test_a_pending_bank_payment_holds_the_number(service: Service, agent: dict[str, str]) -> None:
    waiting = await service.post("/v1/orders", agent_sale(number(1), account="4000000000000004"), agent)
    assert waiting.status_code == 202, waiting.text
    assert_problem(await service.post("/v1/orders", agent_sale(number(1)), agent), 409, "unused_ticket_exists")


async def test_allowed_again_after_void(service: Service, clerk: dict[str, str]) -> None:
    first = (await service.post("/v1/orders", hall_sale(number(1)), clerk)).json()
    voided = await service.post(f"/v1/orders/{first['id']}/void", {}, clerk)
    assert voided.status_code == 200, voided.text
    again = await service.post("/v1/orders", hall_sale(number(1)), clerk)
    assert again.status_code == 201, again.text


async def test_allowed_again_after_refund(service: Service, clerk: dict[str, str]) -> None:
    first = (await service.post("/v1/orders", hall_sale(number(1)), clerk)).json()
    refunded = await service.post(f"/v1/orders/{first['id']}/refund", {}, clerk)
    assert refunded.status_code == 200, refunded.text
    again = await service.post("/v1/orders", hall_sale(number(1)), clerk)
    assert again.status_code == 201, again.text


async def test_allowed_again_after_a_declined_sale(service: Service, agent: dict[str, str]) -> None:
    declined = await service.post("/v1/orders", agent_sale(number(1), account="4000000000000002"), agent)
    assert_problem(declined, 402, "payment_declined")
    assert (await service.post("/v1/orders", agent_sale(number(1)), agent)).status_code == 201


async def test_physical_cod_tickets_do_not_count(
    service: Service, clerk: dict[str, str], agent: dict[str, str]
) -> None:
    cod = await service.post("/v1/orders", cod_sale(number(1), quantity=3), agent)
    assert cod.status_code == 202, cod.text
    second_cod = await service.post("/v1/orders", cod_sale(number(1), quantity=2), agent)
    assert second_cod.status_code == 202, second_cod.text
    mobile = await service.post("/v1/orders", hall_sale(number(1)), clerk)
    assert mobile.status_code == 201, mobile.text
    third_cod = await service.post("/v1/orders", cod_sale(number(1)), agent)
    assert third_cod.status_code == 202, third_cod.text
    assert (await row_counts(service.db))["tickets"] == 3 + 2 + 1 + 1


async def test_other_numbers_are_unaffected(service: Service, clerk: dict[str, str]) -> None:
    for n in range(1, 4):
        reply = await service.post("/v1/orders", hall_sale(number(n)), clerk)
        assert reply.status_code == 201, reply.text
