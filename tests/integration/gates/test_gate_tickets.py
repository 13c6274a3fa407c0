"""Tickets follow the gates' lines: entries used, last entry day and used, recomputed whatever the upload order."""

from datetime import date, datetime, timedelta

from expo.clock import EXPO_TZ
from tests.integration.conftest import Service
from tests.integration.gates.support import (
    Gate,
    line,
    minutes_ago,
    new_gate,
    order_of,
    sell,
    ticket_state,
    uploaded,
)
from tests.integration.test_support import assert_problem


def on(day: int, hour: int = 10) -> datetime:
    """A June 2010 instant at the gate."""
    return datetime(2010, 6, day, hour, 0, tzinfo=EXPO_TZ)


async def test_a_day_ticket_is_used_by_its_entry(service: Service, gate: Gate, clerk: dict[str, str]) -> None:
    ticket_id = await sell(service, clerk, 1)
    at = minutes_ago(service, 3)
    await uploaded(service, gate, [line(1, "refused", at=at, ticket_id=ticket_id, code="evening_not_yet")])
    assert await ticket_state(service.db, ticket_id) == ("issued", 0, None)
    await uploaded(service, gate, [line(2, at=at, ticket_id=ticket_id)])
    assert await ticket_state(service.db, ticket_id) == ("used", 1, date(2010, 6, 1))
    # A souvenir does not enter anybody.
    await uploaded(service, gate, [line(3, "souvenir", at=at, ticket_id=ticket_id)])
    assert await ticket_state(service.db, ticket_id) == ("used", 1, date(2010, 6, 1))


async def test_a_pass_counts_its_days_in_any_upload_order(service: Service, gate: Gate, clerk: dict[str, str]) -> None:
    ticket_id = await sell(service, clerk, 1, "pass_3")
    service.clock.set(on(20, 12))
    third, first, second = (
        line(30, at=on(20), ticket_id=ticket_id),
        line(10, at=on(2), ticket_id=ticket_id),
        line(
            20,
            "forced",
            at=on(9),
            ticket_id=ticket_id,
            code="journal_says_entered",
            reason="card restored",
            supervisor="S1",
        ),
    )
    await uploaded(service, gate, [third])
    assert await ticket_state(service.db, ticket_id) == ("issued", 1, date(2010, 6, 20))
    await uploaded(service, gate, [first])
    assert await ticket_state(service.db, ticket_id) == ("issued", 2, date(2010, 6, 20))
    await uploaded(service, gate, [second, first])
    assert await ticket_state(service.db, ticket_id) == ("used", 3, date(2010, 6, 20))


async def test_an_annulled_entry_gives_the_entry_back(service: Service, gate: Gate, clerk: dict[str, str]) -> None:
    ticket_id = await sell(service, clerk, 1)
    at = minutes_ago(service, 2)
    await uploaded(service, gate, [line(5, at=at, ticket_id=ticket_id, ctr=100)])
    # The turnstile did not turn: the gate annuls its line, then the card at its next tap (same annulment).
    by_gate = line(6, "annulled", at=at + timedelta(seconds=20), ticket_id=ticket_id, annuls_seq=5, card_marked=False)
    await uploaded(service, gate, [by_gate])
    assert await ticket_state(service.db, ticket_id) == ("issued", 0, None)
    on_card = line(7, "annulled", at=at + timedelta(seconds=40), ticket_id=ticket_id, annuls_seq=5, ctr=101)
    await uploaded(service, gate, [on_card])
    assert await ticket_state(service.db, ticket_id) == ("issued", 0, None)
    await uploaded(service, gate, [line(8, at=at + timedelta(seconds=41), ticket_id=ticket_id, ctr=101)])
    assert await ticket_state(service.db, ticket_id) == ("used", 1, date(2010, 6, 1))


async def test_an_annulment_that_arrives_first_still_counts(
    service: Service, gate: Gate, clerk: dict[str, str]
) -> None:
    ticket_id = await sell(service, clerk, 1, "pass_7")
    at = minutes_ago(service, 2)
    await uploaded(service, gate, [line(2, "annulled", at=at, ticket_id=ticket_id, annuls_seq=1, card_marked=False)])
    await uploaded(service, gate, [line(1, at=at - timedelta(seconds=30), ticket_id=ticket_id)])
    assert await ticket_state(service.db, ticket_id) == ("issued", 0, None)


async def test_an_annulment_of_another_gate_takes_nothing_back(
    service: Service, gate: Gate, clerk: dict[str, str]
) -> None:
    ticket_id = await sell(service, clerk, 1)
    other = await new_gate(service, 22, "U1")
    at = minutes_ago(service, 2)
    await uploaded(service, gate, [line(5, at=at, ticket_id=ticket_id)])
    await uploaded(service, other, [line(6, "annulled", at=at, ticket_id=ticket_id, annuls_seq=5, card_marked=False)])
    assert await ticket_state(service.db, ticket_id) == ("used", 1, date(2010, 6, 1))


async def test_a_revoked_ticket_keeps_its_status(service: Service, gate: Gate, clerk: dict[str, str]) -> None:
    order = await order_of(service, clerk, 1)
    assert (await service.post(f"/v1/orders/{order['id']}/void", {}, clerk)).status_code == 200
    ticket_id = order["tickets"][0]["id"]
    reply = await uploaded(service, gate, [line(1, at=minutes_ago(service, 1), ticket_id=ticket_id)])
    assert reply["conflicts"] == [{"seq": 1, "code": "revoked_ticket_entered"}]
    assert await ticket_state(service.db, ticket_id) == ("void", 0, None)


async def test_an_entered_ticket_can_no_longer_be_voided(service: Service, gate: Gate, clerk: dict[str, str]) -> None:
    order = await order_of(service, clerk, 1)
    await uploaded(service, gate, [line(1, at=minutes_ago(service, 1), ticket_id=order["tickets"][0]["id"])])
    assert_problem(await service.post(f"/v1/orders/{order['id']}/void", {}, clerk), 409, "ticket_used")


async def test_an_annulment_after_the_next_purchase_leaves_the_ticket_used(
    service: Service, gate: Gate, clerk: dict[str, str]
) -> None:
    first = await sell(service, clerk, 1)
    at = minutes_ago(service, 2)
    await uploaded(service, gate, [line(1, at=at, ticket_id=first)])
    second = await sell(service, clerk, 1)  # one unused ticket per number: allowed now the first is used
    await uploaded(service, gate, [line(2, "annulled", at=at, ticket_id=first, annuls_seq=1, card_marked=False)])
    assert await ticket_state(service.db, first) == ("used", 0, None)
    assert await ticket_state(service.db, second) == ("issued", 0, None)
