"""A ticket entered with a card it was never written to: the platform knows which card holds each ticket."""

from simcard.applet import CardApplet
from simcard.keys import KeySet
from tests.integration.card_terminal import (
    Terminal,
    card_service,
    issue,
    register,
    root,
    root_file,
    sell_card_ticket,
    service,
)
from tests.integration.conftest import Service, number
from tests.integration.gates.support import line, minutes_ago, new_gate, ticket_state, uploaded

__all__ = ["card_service", "root", "root_file", "service"]  # fixtures used here


async def test_ticket_not_on_card(service: Service, clerk: dict[str, str], root: KeySet) -> None:
    card, other_card = await issue(service, root, count=2)
    assert (await register(service, clerk, card, number(1))).status_code == 201
    ticket_id = await sell_card_ticket(service, clerk, number(1), ticket_type="pass_3")
    await Terminal(service, clerk, CardApplet(card)).write_ticket(ticket_id)
    gate = await new_gate(service, 41, "L8")
    at = minutes_ago(service, 1)

    right = line(1, at=at, ticket_id=ticket_id, csn=card.csn.hex())
    wrong = line(2, at=at, ticket_id=ticket_id, csn=other_card.csn.hex())
    reply = await uploaded(service, gate, [right, wrong])

    assert reply["conflicts"] == [{"seq": 2, "code": "ticket_not_on_card"}]
    assert await ticket_state(service.db, ticket_id) == ("issued", 2, at.date())  # entries happened all the same
