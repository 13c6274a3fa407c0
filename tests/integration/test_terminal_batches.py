"""Hall terminal day closes: the terminal's journal upload against the platform's sales, voids and card writes."""

from datetime import timedelta
from typing import Any

import httpx
import pytest

from simcard.applet import CardApplet
from simcard.keys import KeySet
from tests.integration.card_terminal import (
    Terminal,
    card_service,
    issue,
    register,
    root,
    root_file,
    service,
)
from tests.integration.conftest import Service, hall_sale, number
from tests.integration.test_support import agent_sale, assert_problem

__all__ = ["card_service", "root", "root_file", "service"]  # fixtures used here


async def close(
    service: Service, clerk: dict[str, str], batch_no: int, entries: list[dict[str, Any]]
) -> httpx.Response:
    return await service.client.post(
        "/v1/terminal-batches", json={"batch_no": batch_no, "entries": entries}, headers=clerk
    )


@pytest.fixture
async def day(service: Service, clerk: dict[str, str], root: KeySet) -> list[dict[str, Any]]:
    """A counter's day as its journal has it: a sale written to a card, a second sale, voided."""
    [card] = await issue(service, root)
    assert (await register(service, clerk, card, number(1))).status_code == 201
    first = (await service.post("/v1/orders", hall_sale(number(1), ticket_type="pass_3"), clerk)).json()
    ticket_id = first["tickets"][0]["id"]
    await Terminal(service, clerk, CardApplet(card)).write_ticket(ticket_id)
    second = (await service.post("/v1/orders", hall_sale(number(2)), clerk)).json()
    assert (await service.post(f"/v1/orders/{second['id']}/void", {}, clerk)).status_code == 200
    return [
        {"serial": 1, "type": "sale", "order_id": first["id"], "amount_fen": 40000},
        {"serial": 2, "type": "write", "ticket_id": ticket_id},
        {"serial": 3, "type": "sale", "order_id": second["id"], "amount_fen": 16000},
        {"serial": 4, "type": "void", "order_id": second["id"], "amount_fen": 16000},
    ]


async def test_a_matching_day_closes_once(service: Service, clerk: dict[str, str], day: list[dict[str, Any]]) -> None:
    service.clock.advance(timedelta(hours=1))
    closed = await close(service, clerk, 1, day)
    assert closed.status_code == 201, closed.text
    reply = closed.json()
    assert (reply["batch_no"], reply["matched"], reply["discrepancies"], reply["since"]) == (1, True, [], None)
    expected = {"sale": {"count": 2, "amount_fen": 56000}, "void": {"count": 1, "amount_fen": 16000}}
    assert reply["platform"] == reply["terminal"] == {**expected, "write": {"count": 1, "amount_fen": 0}}

    replay = await close(service, clerk, 1, [])  # the reply was lost: the stored close comes back
    assert replay.status_code == 200
    assert {**replay.json(), "replayed": False} == reply
    assert assert_problem(await close(service, clerk, 3, []), 409, "wrong_batch")["open_batch_no"] == 2

    service.clock.advance(timedelta(hours=2))
    later = (await service.post("/v1/orders", hall_sale(number(3)), clerk)).json()
    entries = [{"serial": 5, "type": "sale", "order_id": later["id"], "amount_fen": 16000}]
    second = await close(service, clerk, 2, entries)
    assert second.status_code == 201, second.text
    assert (second.json()["matched"], second.json()["since"]) == (True, reply["closed_at"])


async def test_discrepancies(
    service: Service, clerk: dict[str, str], agent: dict[str, str], day: list[dict[str, Any]]
) -> None:
    assert (await service.post("/v1/orders", agent_sale(number(5)), agent)).status_code == 201  # not this terminal's
    journal = [
        day[1],
        day[2],
        {**day[3], "amount_fen": 100},
        {"serial": 9, "type": "sale", "order_id": 999, "amount_fen": 16000},
    ]
    reply = (await close(service, clerk, 1, journal)).json()
    assert reply["matched"] is False
    assert [
        (d["kind"], d["line_type"], d["serial"], d["terminal_fen"], d["platform_fen"]) for d in reply["discrepancies"]
    ] == [
        ("missing_on_terminal", "sale", None, None, 40000),
        ("missing_on_platform", "sale", 9, 16000, None),
        ("amount_differs", "void", 4, 100, 16000),
    ]


async def test_bad_uploads(service: Service, clerk: dict[str, str], agent: dict[str, str]) -> None:
    sale = {"serial": 1, "type": "sale", "order_id": 1, "amount_fen": 100}
    for entries, code in (
        ([sale, {**sale, "order_id": 2}], "duplicate_entry"),
        ([sale, {**sale, "serial": 2}], "duplicate_entry"),
        ([{"serial": 1, "type": "write", "ticket_id": 1, "amount_fen": 5}], "invalid_entry"),
        ([{"serial": 1, "type": "sale", "amount_fen": 5}], "invalid_entry"),
        ([{"serial": 1, "type": "write", "ticket_id": 1, "order_id": 1}], "invalid_entry"),
        ([{**sale, "serial": 0}], "invalid_request"),
        ([{**sale, "type": "refund"}], "invalid_request"),
    ):
        assert_problem(await close(service, clerk, 1, entries), 400, code)
    assert_problem(await close(service, agent, 1, []), 403, "role_not_allowed")
    assert (await close(service, clerk, 1, [])).status_code == 201  # nothing was stored by the refusals
