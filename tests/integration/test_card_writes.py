"""Writing tickets to Expo cards over HTTP, relayed to the real applet in process: exactly once, keys never out."""

import dataclasses
import logging
import os
from pathlib import Path

import pytest
from sqlalchemy import select

from simcard.applet import CardApplet
from simcard.keys import KEY_TYPES, KEY_VALIDATE, KeySet, SessionKeys, province_key, sam_card_key
from simcard.messages import SessionOpening
from simcard.record import EVENT_WRITTEN, TicketRecord, mac_is_valid
from simcard.session import read_log
from simcard.state import CardState
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
from tests.integration.conftest import Service, hall_sale, number
from tests.integration.test_support import agent_sale, assert_problem
from ticketing.card_models import CardWrite

__all__ = ["card_service", "root", "root_file", "service"]  # fixtures used here


@pytest.fixture
async def card(service: Service, root: KeySet, clerk: dict[str, str]) -> CardState:
    """A Shanghai card, registered at a SIM swap to number(1)."""
    [state] = await issue(service, root)
    reply = await register(service, clerk, state, number(1))
    assert reply.status_code == 201, reply.text
    return state


@pytest.fixture
def terminal(service: Service, clerk: dict[str, str], card: CardState) -> Terminal:
    """The Xujiahui hall terminal with the customer's card in its reader."""
    return Terminal(service, clerk, CardApplet(card))


async def writes_of(service: Service, ticket_id: int) -> list[tuple[int, str, str | None]]:
    async with service.db.read() as session:
        rows = await session.scalars(select(CardWrite).where(CardWrite.ticket_id == ticket_id).order_by(CardWrite.id))
        return [(w.attempt, w.state, w.failure) for w in rows]


async def test_write_and_read_back(service: Service, clerk: dict[str, str], terminal: Terminal, root: KeySet) -> None:
    ticket_id = await sell_card_ticket(service, clerk, number(1), ticket_type="pass_3")
    pending = await service.client.get(f"/v1/cards/{terminal.applet.state.csn.hex()}/pending-writes", headers=clerk)
    assert [t["ticket_id"] for t in pending.json()] == [ticket_id]

    confirmed = await terminal.write_ticket(ticket_id)
    assert (confirmed["ticket_id"], confirmed["slot"], confirmed["attempt"]) == (ticket_id, 1, 1)

    state = terminal.applet.state
    raw = state.slot(1)
    assert raw is not None
    assert mac_is_valid(raw, sam_card_key(root, state.csn, KEY_VALIDATE), state.csn)  # what a gate's SAM checks
    record = TicketRecord.decode(raw)
    assert (record.ticket_id, record.ticket_type, record.entries_allowed, record.channel) == (ticket_id, 6, 3, 1)
    assert (record.province, record.key_version, record.is_fresh()) == ("31", 1, True)
    entry = read_log(terminal.reader.transmit, 1)
    assert entry is not None
    assert (entry.event, entry.terminal) == (EVENT_WRITTEN, ticket_id)

    assert await writes_of(service, ticket_id) == [(1, "confirmed", None)]
    pending = await service.client.get(f"/v1/cards/{state.csn.hex()}/pending-writes", headers=clerk)
    assert pending.json() == []
    again = assert_problem(await terminal.start(ticket_id), 409, "already_written")
    assert (again["csn"], again["slot"]) == (state.csn.hex(), 1)


async def test_replayed_session_is_refused_by_the_card_and_the_write_stays_retryable(
    service: Service, clerk: dict[str, str], terminal: Terminal
) -> None:
    ticket_id = await sell_card_ticket(service, clerk, number(1))
    started = (await terminal.start(ticket_id)).json()
    step = (await terminal.open_session(started)).json()

    # The session is lost (card taken away); the old OPEN SESSION replayed gives the card a new session,
    # so the old WRITE TICKET's MAC no longer verifies.
    terminal.tap()
    replayed_answer = terminal.transmit(started["open_session_apdu"])
    assert replayed_answer[-2:] == b"\x90\x00"
    sw, record = terminal.write(step)
    assert (sw, record) == ("6988", None)
    refused = assert_problem(await terminal.report(step, sw, record), 409, "write_not_confirmed")
    assert refused["reason"] == "card_refused"
    # The card's answer to the replay is no good to the platform either: the attempt is over.
    session_path = f"/v1/card-writes/{started['write_id']}/session"
    again = await terminal.call(session_path, {"response": replayed_answer.hex()})
    assert_problem(again, 409, "write_not_pending")

    await terminal.write_ticket(ticket_id)
    assert await writes_of(service, ticket_id) == [(1, "failed", "card_refused"), (2, "confirmed", None)]


async def test_a_stale_card_answer_fails_the_cryptogram(
    service: Service, clerk: dict[str, str], terminal: Terminal
) -> None:
    ticket_id = await sell_card_ticket(service, clerk, number(1))
    first = (await terminal.start(ticket_id)).json()
    stale_answer = terminal.transmit(first["open_session_apdu"])
    second = (await terminal.start(ticket_id)).json()  # a new tap: a new attempt with a new RND_T
    reply = await terminal.call(f"/v1/card-writes/{second['write_id']}/session", {"response": stale_answer.hex()})
    assert_problem(reply, 422, "card_cryptogram_invalid")
    assert await writes_of(service, ticket_id) == [
        (1, "failed", "superseded"),
        (2, "failed", "card_cryptogram_invalid"),
    ]
    await terminal.write_ticket(ticket_id)


async def test_card_answers_that_are_not_a_session(service: Service, clerk: dict[str, str], terminal: Terminal) -> None:
    ticket_id = await sell_card_ticket(service, clerk, number(1))
    for answer, status, code in (("6983", 409, "card_refused"), ("01029000", 422, "card_response_invalid")):
        started = (await terminal.start(ticket_id)).json()
        reply = await terminal.call(f"/v1/card-writes/{started['write_id']}/session", {"response": answer})
        assert_problem(reply, status, code)
    other_card = bytearray(terminal.transmit((await terminal.start(ticket_id)).json()["open_session_apdu"]))
    other_card[7] ^= 1  # the last CSN byte: another card's answer
    reply = await terminal.call(f"/v1/card-writes/{terminal.replies[-1].json()['write_id']}/session", {})
    assert_problem(reply, 400, "invalid_request")
    reply = await terminal.call(
        f"/v1/card-writes/{terminal.replies[-2].json()['write_id']}/session", {"response": other_card.hex()}
    )
    assert_problem(reply, 422, "card_response_invalid")
    assert [w[2] for w in await writes_of(service, ticket_id)] == [
        "card_refused",
        "card_response_invalid",
        "card_response_invalid",
    ]


async def test_no_readable_key_file_no_write(
    service: Service, clerk: dict[str, str], terminal: Terminal, root_file: Path
) -> None:
    os.chmod(root_file, 0o644)  # a key file others can read is refused
    ticket_id = await sell_card_ticket(service, clerk, number(1))
    started = (await terminal.start(ticket_id)).json()
    answer = terminal.transmit(started["open_session_apdu"])
    reply = await terminal.call(f"/v1/card-writes/{started['write_id']}/session", {"response": answer.hex()})
    assert_problem(reply, 503, "card_keys_unavailable")


async def test_a_tampered_record_is_refused_by_the_card_or_not_confirmed(
    service: Service, clerk: dict[str, str], terminal: Terminal
) -> None:
    ticket_id = await sell_card_ticket(service, clerk, number(1))
    step = (await terminal.open_session((await terminal.start(ticket_id)).json())).json()
    apdu = bytearray.fromhex(step["write_apdu"])
    apdu[5 + 7] ^= 0x01  # the last valid day, one day later
    sw, record = terminal.write(step, write_apdu=apdu.hex())
    assert (sw, record) == ("6988", None)
    assert terminal.applet.state.occupied() == ()
    assert_problem(await terminal.report(step, sw, record), 409, "write_not_confirmed")

    # A terminal claiming success with a record that is not the one sent gets no confirmation either.
    step = (await terminal.open_session((await terminal.start(ticket_id)).json())).json()
    forged = bytearray(bytes.fromhex(step["write_apdu"])[5:37])
    forged[4] = 0x07  # a 7-visit pass instead
    refused = assert_problem(await terminal.report(step, "9000", forged.hex()), 409, "write_not_confirmed")
    assert refused["reason"] == "record_mismatch"
    assert await writes_of(service, ticket_id) == [(1, "failed", "card_refused"), (2, "failed", "record_mismatch")]
    await terminal.write_ticket(ticket_id)


async def test_an_interrupted_write_is_confirmed_once_by_the_next_try(
    service: Service, clerk: dict[str, str], terminal: Terminal
) -> None:
    ticket_id = await sell_card_ticket(service, clerk, number(1))
    step = (await terminal.open_session((await terminal.start(ticket_id)).json())).json()
    terminal.transmit(step["write_apdu"])  # the card took it; the terminal crashed before reporting

    unresolved = assert_problem(await terminal.start(ticket_id, report_records=False), 409, "write_unresolved")
    assert unresolved["slot"] == 1
    found = await terminal.start(ticket_id)  # slot 1 read and reported: the record is the platform's
    assert found.status_code == 200, found.text
    assert (found.json()["state"], found.json()["attempt"], found.json()["slot"]) == ("confirmed", 1, 1)
    assert "open_session_apdu" not in {k for k, v in found.json().items() if v is not None}

    on_card = terminal.applet.state.slot(1)
    assert on_card is not None
    late = await terminal.report(step, "9000", on_card.hex())
    assert late.status_code == 200
    assert late.json()["state"] == "confirmed"
    assert await writes_of(service, ticket_id) == [(1, "confirmed", None)]
    assert terminal.applet.state.occupied() == (1,)
    assert_problem(await terminal.start(ticket_id), 409, "already_written")


async def test_a_write_that_never_reached_the_card_is_simply_retried(
    service: Service, clerk: dict[str, str], terminal: Terminal
) -> None:
    ticket_id = await sell_card_ticket(service, clerk, number(1))
    await terminal.open_session((await terminal.start(ticket_id)).json())  # WRITE TICKET never sent
    await terminal.write_ticket(ticket_id)
    assert await writes_of(service, ticket_id) == [(1, "failed", "not_on_card"), (2, "confirmed", None)]
    assert terminal.applet.state.occupied() == (1,)


async def test_card_of_another_province(service: Service, clerk: dict[str, str], terminal: Terminal) -> None:
    ticket_id = await sell_card_ticket(service, clerk, number(1))
    beijing_clerk = await service.login("bj_hall", "BJ-C001")
    other = Terminal(service, beijing_clerk, terminal.applet)
    assert_problem(await other.start(ticket_id), 403, "card_of_other_province")
    assert_problem(
        await register(service, beijing_clerk, terminal.applet.state, number(2)), 403, "card_of_other_province"
    )
    assert await writes_of(service, ticket_id) == []


async def test_unregistered_card(service: Service, clerk: dict[str, str], root: KeySet) -> None:
    [stock_card, other_card] = await issue(service, root, count=2)
    ticket_id = await sell_card_ticket(service, clerk, number(1))
    assert_problem(await Terminal(service, clerk, CardApplet(stock_card)).start(ticket_id), 409, "card_not_registered")
    assert (await register(service, clerk, other_card, number(2))).status_code == 201  # someone else's card
    assert_problem(await Terminal(service, clerk, CardApplet(other_card)).start(ticket_id), 409, "card_not_registered")


async def test_card_full(service: Service, clerk: dict[str, str], card: CardState) -> None:
    junk = bytes(range(24)) + bytes(8)
    full = dataclasses.replace(card, slots=(junk,) * 4)
    ticket_id = await sell_card_ticket(service, clerk, number(1))
    assert_problem(await Terminal(service, clerk, CardApplet(full)).start(ticket_id), 409, "card_full")


async def test_tickets_that_are_not_for_a_card(
    service: Service, clerk: dict[str, str], agent: dict[str, str], terminal: Terminal
) -> None:
    voucher = await service.post("/v1/orders", agent_sale(number(1)), agent)
    assert voucher.status_code == 201, voucher.text
    assert_problem(await terminal.start(voucher.json()["tickets"][0]["id"]), 422, "not_a_card_ticket")
    assert_problem(await terminal.start(999_999), 404, "ticket_not_found")


async def test_a_voided_ticket_is_not_written(service: Service, clerk: dict[str, str], card: CardState) -> None:
    reply = await service.post("/v1/orders", hall_sale(number(1)), clerk)
    order = reply.json()
    voided = await service.post(f"/v1/orders/{order['id']}/void", {}, clerk)
    assert voided.status_code == 200, voided.text
    refused = await Terminal(service, clerk, CardApplet(card)).start(order["tickets"][0]["id"])
    assert_problem(refused, 409, "ticket_voided")


async def test_over_the_air(service: Service, clerk: dict[str, str], card: CardState) -> None:
    """The phone's agent (the web/OTA front) finds the paid ticket for its card and runs the same steps."""
    ticket_id = await sell_card_ticket(service, clerk, number(1))
    ota = Terminal(service, service.device("web"), CardApplet(card))
    pending = await service.client.get(f"/v1/cards/{card.csn.hex()}/pending-writes", headers=ota.headers)
    assert [t["ticket_id"] for t in pending.json()] == [ticket_id]
    confirmed = await ota.write_ticket(ticket_id)
    # Another caller cannot drive that write's steps.
    stranger = Terminal(service, clerk, CardApplet(card))
    assert_problem(await stranger.report(confirmed, "9000", None), 404, "write_not_found")


async def test_key_material_is_in_no_reply_and_no_log(
    service: Service,
    clerk: dict[str, str],
    terminal: Terminal,
    root: KeySet,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    ticket_id = await sell_card_ticket(service, clerk, number(1))
    started = await terminal.start(ticket_id)
    answer = terminal.transmit(started.json()["open_session_apdu"])
    step = await terminal.call(f"/v1/card-writes/{started.json()['write_id']}/session", {"response": answer.hex()})
    sw, record = terminal.write(step.json())
    await terminal.report(step.json(), sw, record)
    assert terminal.replies[-1].json()["state"] == "confirmed"
    assert_problem(await terminal.start(ticket_id), 409, "already_written")

    csn = terminal.applet.state.csn
    opening = SessionOpening.parse(answer[:-2])
    secrets_hex = set()
    for t in KEY_TYPES:
        secrets_hex |= {root[t].hex(), province_key(root[t], "31", t).hex(), sam_card_key(root, csn, t).hex()}
    session_keys = SessionKeys.derive(
        sam_card_key(root, csn, 1), bytes.fromhex(started.json()["open_session_apdu"])[5:13], opening.rnd_c, opening.ctr
    )
    secrets_hex |= {session_keys.s_mac.hex(), session_keys.s_enc.hex()}
    seen = "\n".join([r.text for r in terminal.replies] + [caplog.text, *(repr(r.__dict__) for r in caplog.records)])
    assert caplog.records, "the write logs what it did"
    for secret in secrets_hex:
        assert secret not in seen.lower()
