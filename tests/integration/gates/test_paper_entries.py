"""Physical (paper) tickets' lines at the server: stored, counted, using their ticket, and a paper ticket that two
gates let in reported as `physical_ticket_reused`, whatever order the uploads arrive in."""

import asyncio
from collections.abc import AsyncIterator
from datetime import date, datetime, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import select, update

from expo.app import create_app
from expo.bank import InMemoryBank
from gates.models import EntryConflict, EntryLine
from tests.integration.conftest import Service
from tests.integration.gates.support import (
    TODAY,
    Gate,
    counts,
    minutes_ago,
    new_gate,
    sell,
    stored_conflicts,
    stored_lines,
    ticket_state,
    upload,
    uploaded,
)
from tests.integration.test_support import assert_problem
from ticketing.models import Ticket
from ticketing.sales_rules import Carrier

REUSED = "physical_ticket_reused"


def paper_line(
    seq: int, event: str = "admitted", *, at: datetime, ticket_id: int | None, **more: Any
) -> dict[str, Any]:
    """A gate's journal line of a scanned physical ticket: the ticket (when the code was genuine), no card."""
    body: dict[str, Any] = {"seq": seq, "event": event, "at": at.isoformat(), "code": "ok", "paper": True, **more}
    if ticket_id is not None:
        body["ticket_id"] = ticket_id
    return body


async def paper_ticket(service: Service, clerk: dict[str, str], n: int, ticket_type: str = "standard") -> int:
    """A paid ticket of number n carried on paper (exchanged from a voucher in a hall)."""
    concession = {"concession": {"category": "student", "id_last4": "1234"}} if "concession" in ticket_type else {}
    ticket_id = await sell(service, clerk, n, ticket_type, **concession)
    async with service.db.write() as session:
        await session.execute(update(Ticket).where(Ticket.id == ticket_id).values(carrier=Carrier.PHYSICAL.value))
    return ticket_id


async def conflict_details(service: Service) -> list[tuple[int, int, str, str]]:
    async with service.db.read() as session:
        rows = await session.execute(
            select(EntryConflict.gate_id, EntryConflict.seq, EntryConflict.code, EntryConflict.detail).order_by(
                EntryConflict.gate_id, EntryConflict.seq
            )
        )
        return [(gate_id, seq, code, detail) for gate_id, seq, code, detail in rows]


async def test_paper_lines_are_stored_counted_and_use_their_ticket(
    service: Service, gate: Gate, clerk: dict[str, str]
) -> None:
    ticket_id = await paper_ticket(service, clerk, 1, "standard_concession")
    at = minutes_ago(service, 3)
    lines = [
        paper_line(1, "refused", at=at, ticket_id=None, code="no_code"),
        paper_line(2, at=at, ticket_id=ticket_id, check_id=True),
        paper_line(3, "refused", at=at, ticket_id=ticket_id, code="already_used", check_id=True),
    ]
    reply = await uploaded(service, gate, lines)
    assert (reply["stored"], reply["duplicates"], reply["conflicts"]) == (3, 0, [])
    async with service.db.read() as session:
        stored = (await session.scalars(select(EntryLine).order_by(EntryLine.seq))).all()
    assert [(s.seq, s.paper, s.csn, s.ctr, s.slot, s.card_marked, s.ticket_id) for s in stored] == [
        (1, True, None, None, None, False, None),
        (2, True, None, None, None, False, ticket_id),
        (3, True, None, None, None, False, ticket_id),
    ]
    assert await ticket_state(service.db, ticket_id) == ("used", 1, TODAY)
    [row] = (await counts(service))["gates"]
    assert (row["admitted"], row["refused"], row["entries"]) == (1, 2, 1)
    again = await uploaded(service, gate, lines)
    assert (again["stored"], again["duplicates"], again["conflicts"]) == (0, 3, [])


async def test_an_annulled_paper_admission_gives_the_entry_back(
    service: Service, gate: Gate, clerk: dict[str, str]
) -> None:
    ticket_id = await paper_ticket(service, clerk, 1)
    at = minutes_ago(service, 3)
    await uploaded(service, gate, [paper_line(1, at=at, ticket_id=ticket_id)])
    assert await ticket_state(service.db, ticket_id) == ("used", 1, TODAY)
    annulment = paper_line(2, "annulled", at=at + timedelta(seconds=20), ticket_id=ticket_id, annuls_seq=1)
    await uploaded(service, gate, [annulment])
    assert await ticket_state(service.db, ticket_id) == ("issued", 0, None)
    [row] = (await counts(service))["gates"]
    assert (row["admitted"], row["annulled"], row["entries"]) == (1, 1, 0)
    # Another gate lets the visitor in after all: one entry, nothing reused.
    other = await new_gate(service, 8, "W1")
    reply = await uploaded(service, other, [paper_line(1, at=at + timedelta(minutes=1), ticket_id=ticket_id)])
    assert reply["conflicts"] == []
    assert await ticket_state(service.db, ticket_id) == ("used", 1, TODAY)


@pytest.mark.parametrize("first", ["L3", "W1"])
async def test_two_gates_admitting_one_paper_ticket_offline_are_reported(
    service: Service, gate: Gate, clerk: dict[str, str], first: str
) -> None:
    ticket_id = await paper_ticket(service, clerk, 1)
    other = await new_gate(service, 8, "W1")
    batches = {
        "L3": (gate, [paper_line(10, at=minutes_ago(service, 5), ticket_id=ticket_id)]),
        "W1": (other, [paper_line(40, at=minutes_ago(service, 4), ticket_id=ticket_id)]),
    }
    (first_gate, first_lines), (second_gate, second_lines) = (
        batches[first],
        batches["W1" if first == "L3" else "L3"],
    )
    assert (await uploaded(service, first_gate, first_lines))["conflicts"] == []
    reply = await uploaded(service, second_gate, second_lines)
    seq, other_seq = second_lines[0]["seq"], first_lines[0]["seq"]
    assert reply["conflicts"] == [{"seq": seq, "code": REUSED}]
    detail = f"ticket {ticket_id} also entered on {TODAY} at gate {first_gate.gate_id} seq {other_seq}"
    assert await conflict_details(service) == [(second_gate.gate_id, seq, REUSED, detail)]
    assert await ticket_state(service.db, ticket_id) == ("used", 2, TODAY)
    for again in ((first_gate, first_lines), (second_gate, second_lines)):  # re-uploads add nothing
        assert (await uploaded(service, *again))["conflicts"] == []
    assert len(await stored_conflicts(service.db)) == 1


def on(day: int) -> datetime:
    return datetime.fromisoformat(f"2010-06-{day:02d}T10:00:00+08:00")


async def test_a_pass_on_three_days_at_three_gates_is_no_reuse_a_fourth_entry_is(
    service: Service, clerk: dict[str, str]
) -> None:
    ticket_id = await paper_ticket(service, clerk, 1, "pass_3")
    gates = [await new_gate(service, gate_id, "L1") for gate_id in (21, 22, 23, 24)]
    for n, device in enumerate(gates[:3]):
        service.clock.set(on(2 + n) + timedelta(minutes=5))
        reply = await uploaded(service, device, [paper_line(1, at=on(2 + n), ticket_id=ticket_id)])
        assert reply["conflicts"] == []
    assert await ticket_state(service.db, ticket_id) == ("used", 3, date(2010, 6, 4))
    service.clock.set(on(9) + timedelta(minutes=5))
    reply = await uploaded(service, gates[3], [paper_line(1, at=on(9), ticket_id=ticket_id)])
    assert reply["conflicts"] == [{"seq": 1, "code": REUSED}]
    [(_, _, _, detail)] = await conflict_details(service)
    assert detail == f"ticket {ticket_id} entered 4 times, its type allows 3; also gate 23 seq 1 on 2010-06-04"


async def test_a_paper_line_naming_a_card_refuses_the_batch(
    service: Service, gate: Gate, clerk: dict[str, str]
) -> None:
    ticket_id = await paper_ticket(service, clerk, 1)
    at = minutes_ago(service, 3)
    lines = [
        paper_line(1, at=at, ticket_id=ticket_id),
        paper_line(2, "refused", at=at, ticket_id=ticket_id, code="already_used", csn="0031000000000001"),
    ]
    reply = await upload(service, gate, lines)
    assert_problem(reply, 400, "invalid_entry")
    assert reply.json()["seq"] == 2
    souvenir = [paper_line(3, "souvenir", at=at, ticket_id=ticket_id)]
    assert_problem(await upload(service, gate, souvenir), 400, "invalid_entry")
    assert await stored_lines(service.db) == 0
    assert await ticket_state(service.db, ticket_id) == ("issued", 0, None)


@pytest.fixture
async def racing(service: Service) -> AsyncIterator[httpx.AsyncClient]:
    """A second worker of the service in this event loop, so gathered uploads really interleave."""
    app = create_app(service.settings, clock=service.clock, bank=InMemoryBank(), sweeper=False)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://racing") as client:
        yield client
    await app.state.db.dispose()


@pytest.mark.parametrize("database_url", ["postgres"], indirect=True)
async def test_two_gates_uploading_one_paper_ticket_at_once_are_reported(
    service: Service, clerk: dict[str, str], racing: httpx.AsyncClient
) -> None:
    """Each upload locks the ticket before it reads its entries, so the later one sees the other's line."""
    tickets = [await paper_ticket(service, clerk, n) for n in range(8)]
    gates = [await new_gate(service, gate_id, "L5") for gate_id in (31, 32)]
    at = minutes_ago(service, 2)

    async def send(device: Gate) -> dict[str, Any]:
        lines = [paper_line(n, at=at, ticket_id=ticket_id) for n, ticket_id in enumerate(tickets, 1)]
        reply = await racing.post(
            "/v1/gate-entries", json={"gate_id": device.gate_id, "entries": lines}, headers=device.headers
        )
        assert reply.status_code == 200, reply.text
        result: dict[str, Any] = reply.json()
        return result

    await asyncio.gather(*(send(device) for device in gates))

    flagged = {seq for _, seq, code in await stored_conflicts(service.db) if code == REUSED}
    assert flagged == set(range(1, len(tickets) + 1))  # every ticket: at least one of its two lines
    for ticket_id in tickets:
        assert await ticket_state(service.db, ticket_id) == ("used", 2, at.date())
