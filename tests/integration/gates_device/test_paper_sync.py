"""Physical tickets at a gate against the real service in process: the sync pulls the public keys of ticket codes
(a rotation reaches the gate, a service without keys is no failure), a voucher exchanged in a hall for a
physical ticket gets in once at the gate, and its line reaches the service and uses the ticket."""

import os
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from litestar.testing import TestClient
from sqlalchemy import select

from expo.app import create_app
from expo.bank import InMemoryBank
from expo.bootstrap import create_demo_principals, load_reference_data
from expo.clock import FixedClock
from expo.db import Database
from expo.settings import Settings
from gates.models import EntryLine
from gates.paper import PaperGate
from gates.sync import GateSync
from gates.wire import Event
from simcard.keystore import generate_root_keys, load_root_keys
from tests.integration.gates_device.conftest import BASE, Gate, GateServer, new_gate
from ticketing.models import Ticket
from ticketing.signed_codes import CodeKind, claim_for
from ticketing.signing_keys import Keyring, load_keyring, rotate_keyring


@pytest.fixture
async def keyed_server(
    db: Database, clock: FixedClock, tmp_path: Path, signing_key_file: Path
) -> AsyncIterator[GateServer]:
    """The service with the platform's signing keyring (`signing_key_file`), as the gates reach it."""
    await load_reference_data(db, peak_capacity=1000)
    principals = await create_demo_principals(db, now=clock.now())
    root_file = tmp_path / "root-keys.json"
    generate_root_keys(root_file)
    settings = Settings(
        database_url=db.url,
        bank_notify_secret="test-bank-secret",
        key_file=str(root_file),
        signing_key_file=str(signing_key_file),
    )
    app = create_app(settings, clock=clock, bank=InMemoryBank(), sweeper=False)
    admin = {"Authorization": "Bearer " + principals.tokens["admin"]}
    with TestClient(app, base_url=BASE) as http:
        yield GateServer(http, db, clock, load_root_keys(root_file), admin, root_file, principals)


def paper_gate(server: GateServer, gate: Gate, gate_id: int) -> PaperGate:
    return PaperGate(gate_id=gate_id, journal=gate.journal, clock=server.clock)


def physical_code(ring: Keyring, ticket_id: int) -> str:
    claim = claim_for(
        CodeKind.PHYSICAL, kid=ring.current.kid, ticket_id=ticket_id, ticket_type="pass_3", visit_day=None,
        upgrade_day=None,
    )  # fmt: skip
    return ring.sign(claim)


def test_the_sync_pulls_the_keys_and_a_rotation_reaches_the_gate(
    keyed_server: GateServer, tmp_path: Path, signing_key_file: Path
) -> None:
    token = keyed_server.register(1001)
    gate = new_gate(keyed_server, tmp_path, 1001)
    sync = GateSync(gate_id=1001, journal=gate.journal, client=keyed_server.client(token))
    paper = paper_gate(keyed_server, gate, 1001)
    assert paper.scan(physical_code(load_keyring(signing_key_file), 7)).code == "unknown_signing_key"

    report = sync.sync_once()
    assert report.ok, report.errors
    assert report.ticket_keys == 1
    assert "ticket_keys 1" in report.summary()
    assert set(gate.journal.ticket_keys()) == {1}
    assert paper.scan(physical_code(load_keyring(signing_key_file), 7)).opens

    rotated = rotate_keyring(signing_key_file, now=keyed_server.clock.now())
    later = signing_key_file.stat().st_mtime_ns + 1_000_000_000  # the service re-reads the file when it changes
    os.utime(signing_key_file, ns=(later, later))
    assert paper.scan(physical_code(rotated, 8)).code == "unknown_signing_key"
    assert sync.sync_once().ticket_keys == 2
    assert set(gate.journal.ticket_keys()) == {1, 2}
    assert paper.scan(physical_code(rotated, 8)).opens
    assert paper.scan(physical_code(load_keyring(signing_key_file), 9)).opens


async def test_a_service_without_signing_keys_is_no_failure_and_the_gate_keeps_its_keys(
    gate_server: GateServer, tmp_path: Path, signing_key_file: Path
) -> None:
    token = gate_server.register(1001)
    gate = new_gate(gate_server, tmp_path, 1001)
    ring = load_keyring(signing_key_file)
    gate.journal.replace_ticket_keys(ring.public_keys())  # synced earlier, from a service that had them
    assert paper_gate(gate_server, gate, 1001).scan(physical_code(ring, 7)).opens
    report = GateSync(gate_id=1001, journal=gate.journal, client=gate_server.client(token)).sync_once()
    assert report.ok, report.errors
    assert (report.stored, report.ticket_keys) == (1, None)
    assert set(gate.journal.ticket_keys()) == {1}
    async with gate_server.db.read() as session:
        assert (await session.scalars(select(EntryLine.paper))).all() == [True]


def _post(server: GateServer, path: str, body: dict[str, Any], headers: dict[str, str]) -> dict[str, Any]:
    reply = server.http.post(path, json=body, headers={**headers, "Idempotency-Key": uuid.uuid4().hex})
    assert reply.status_code == 201, reply.text
    result: dict[str, Any] = reply.json()
    return result


def _exchanged_ticket(server: GateServer) -> tuple[str, dict[str, Any]]:
    """A web sale on a QR voucher, exchanged at the Xujiahui hall for a physical ticket: the voucher code and the
    exchange's reply."""
    web = {"Authorization": "Bearer " + server.principals.tokens["web"]}
    sale = {
        "msisdn": "13800000077",
        "ticket_type": "standard_concession",
        "carrier": "qr_voucher",
        "payment": {"method": "online_banking", "account": "6222000000000001"},
        "concession": {"category": "student", "id_last4": "1234"},
    }
    order = _post(server, "/v1/orders", sale, web)
    voucher = server.http.get(f"/v1/orders/{order['id']}/voucher", headers=web)
    assert voucher.status_code == 200, voucher.text
    code: str = voucher.json()["code"]
    login = {"staff_no": "SH-C001", "password": server.principals.passwords["SH-C001"]}
    device = {"Authorization": "Bearer " + server.principals.tokens["sh_hall"]}
    session = server.http.post("/v1/sessions", json=login, headers=device)
    assert session.status_code == 201, session.text
    clerk = {"Authorization": "Bearer " + session.json()["token"]}
    return code, _post(server, "/v1/vouchers/exchange", {"code": code, "into": "physical", "csn": None}, clerk)


async def test_a_voucher_exchanged_for_a_physical_ticket_enters_once_and_uses_its_ticket(
    keyed_server: GateServer, tmp_path: Path
) -> None:
    voucher_code, exchange = _exchanged_ticket(keyed_server)
    ticket_id = exchange["ticket_id"]
    token = keyed_server.register(1001)
    gate = new_gate(keyed_server, tmp_path, 1001)
    sync = GateSync(gate_id=1001, journal=gate.journal, client=keyed_server.client(token))
    assert sync.sync_once().ok
    paper = paper_gate(keyed_server, gate, 1001)

    refused = paper.scan(voucher_code)  # the voucher itself is no ticket
    assert (refused.event, refused.code, refused.ticket_id) == (Event.REFUSED, "voucher_not_ticket", ticket_id)
    admitted = paper.scan(exchange["physical"]["code_grouped"])  # typed from the printout
    assert (admitted.event, admitted.ticket_id, admitted.ticket_type, admitted.check_id) == (
        Event.ADMITTED,
        ticket_id,
        "standard_concession",
        True,
    )
    assert paper.scan(exchange["physical"]["code"]).code == "already_used"

    report = sync.sync_once()
    assert (report.stored, report.conflicts) == (3, [])
    async with keyed_server.db.read() as session:
        ticket = await session.get(Ticket, ticket_id)
        assert ticket is not None
        assert (ticket.carrier, ticket.status, ticket.entries_used) == ("physical", "used", 1)
    day = keyed_server.clock.now().date().isoformat()
    [row] = keyed_server.counts(day)["gates"]
    assert (row["admitted"], row["refused"], row["entries"]) == (1, 2, 1)
