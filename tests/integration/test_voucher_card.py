"""Exchanging a QR voucher onto the Expo card of the ticket's number: the ticket moves to the card carrier and
the hall terminal writes it by the card-write steps; a card that is not the number's active one is refused."""

from simcard.applet import CardApplet
from simcard.keys import KeySet
from tests.integration.card_terminal import Terminal, card_service, issue, register, root, root_file, service
from tests.integration.conftest import Service, number
from tests.integration.test_support import assert_problem
from tests.integration.test_voucher_support import exchange, sell_voucher, ticket_state, unexchanged, voucher_code

__all__ = ["card_service", "root", "root_file", "service"]  # fixtures used here


async def test_exchange_onto_the_numbers_card_then_write_it(
    service: Service, clerk: dict[str, str], root: KeySet
) -> None:
    order = await sell_voucher(service, number(1))
    ticket_id = order["tickets"][0]["id"]
    [card] = await issue(service, root)
    assert (await register(service, clerk, card, number(1))).status_code == 201

    done = await exchange(
        service, clerk, await voucher_code(service, order["id"]), into="expo_card", csn=card.csn.hex()
    )
    assert done.status_code == 201, done.text
    assert (done.json()["into"], done.json()["physical"], done.json()["ticket_id"]) == ("expo_card", None, ticket_id)
    state = await ticket_state(service.db, ticket_id)
    assert (state.carrier, state.exchanged_into, state.physical_tickets) == ("expo_card", "expo_card", 0)

    pending = await service.client.get(f"/v1/cards/{card.csn.hex()}/pending-writes", headers=clerk)
    assert [t["ticket_id"] for t in pending.json()] == [ticket_id]
    confirmed = await Terminal(service, clerk, CardApplet(card)).write_ticket(ticket_id)
    assert (confirmed["ticket_id"], confirmed["state"]) == (ticket_id, "confirmed")
    again = await exchange(service, clerk, await voucher_code(service, order["id"]), into="physical")
    assert_problem(again, 409, "already_exchanged")


async def test_a_card_that_is_not_the_numbers_is_refused(service: Service, clerk: dict[str, str], root: KeySet) -> None:
    order = await sell_voucher(service, number(1))
    ticket_id = order["tickets"][0]["id"]
    code = await voucher_code(service, order["id"])
    in_stock, elsewhere = await issue(service, root, count=2)
    assert (await register(service, clerk, elsewhere, number(2))).status_code == 201
    before = await ticket_state(service.db, ticket_id)

    for card in (in_stock, elsewhere):
        refused = await exchange(service, clerk, code, into="expo_card", csn=card.csn.hex())
        assert_problem(refused, 409, "card_not_registered")
    never_issued = await exchange(service, clerk, code, into="expo_card", csn="0031000000009999")
    assert_problem(never_issued, 404, "unknown_card")
    [beijing_card] = await issue(service, root, province="11")
    assert_problem(
        await exchange(service, clerk, code, into="expo_card", csn=beijing_card.csn.hex()),
        403,
        "card_of_other_province",
    )

    after = await ticket_state(service.db, ticket_id)
    assert after == before
    assert unexchanged(after)
