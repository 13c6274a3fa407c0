"""The service in process for a gate device: the app behind Litestar's (synchronous) TestClient, reached by the
gate's own httpx client through a network that fails by script; emulated cards signed by the platform's keys."""

import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from litestar.testing import TestClient
from litestar.testing.transport import TestClientTransport
from sqlalchemy import select

from expo.app import create_app
from expo.bank import InMemoryBank
from expo.bootstrap import DemoPrincipals, create_demo_principals, load_reference_data
from expo.clock import FixedClock, expo_local
from expo.db import Database
from expo.settings import Settings
from gates.client import GateClient
from gates.emulator import CardFactory
from gates.journal import GateJournal
from gates.models import EntryLine
from gates.sam import Sam
from gates.validator import TapResult, Validator
from gates.wire import Event, GateEntry
from simcard.applet import CardApplet
from simcard.channel import AppletChannel
from simcard.keys import KeySet
from simcard.keystore import export_sam_keys, generate_root_keys, load_root_keys
from ticketing.rules import TicketType

BASE = "http://testserver.local"


class Network(httpx.BaseTransport):
    """Between the gate and the service: each request meets the next step of `script`, then it just works.

    Steps: "refused" (connection refused), "timeout" (no answer), "lost" (the service handles the request,
    the reply never arrives), an HTTP status (a proxy's error page), None (through)."""

    def __init__(self, inner: httpx.BaseTransport, script: list[str | int | None] | None = None) -> None:
        self.inner = inner
        self.script = list(script or [])
        self.delivered: list[tuple[str, int]] = []  # (path, status) of every reply that reached the gate

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        step = self.script.pop(0) if self.script else None
        if step == "refused":
            raise httpx.ConnectError("[Errno 111] Connection refused", request=request)
        if step == "timeout":
            raise httpx.ReadTimeout("timed out", request=request)
        if isinstance(step, int):
            return httpx.Response(step, text="<html>Bad Gateway</html>", request=request)
        reply = self.inner.handle_request(request)
        reply.read()
        if step == "lost":
            raise httpx.ReadError("connection reset by peer", request=request)
        self.delivered.append((request.url.path, reply.status_code))
        return reply


@dataclass
class GateServer:
    """The running service, its admin, the national root keys and the Expo's clock."""

    http: TestClient[Any]
    db: Database
    clock: FixedClock
    root: KeySet
    admin: dict[str, str]
    root_file: Path
    principals: DemoPrincipals
    factory: CardFactory = field(init=False)

    def __post_init__(self) -> None:
        self.factory = CardFactory(self.root)

    def register(self, gate_id: int, entrance: str = "L1", kind: str = "gate") -> str:
        """A new gate device (POST /v1/gates): its token."""
        reply = self.http.post(
            "/v1/gates", json={"gate_id": gate_id, "entrance": entrance, "kind": kind}, headers=self.admin
        )
        assert reply.status_code == 201, reply.text
        token: str = reply.json()["token"]
        return token

    def network(self, script: list[str | int | None] | None = None) -> Network:
        """A network to the service that fails by `script` first."""
        return Network(TestClientTransport(self.http, raise_server_exceptions=False), script)

    def client(self, token: str, network: httpx.BaseTransport | None = None) -> GateClient:
        """The gate's client over `network` (default: a sound one)."""
        return GateClient(BASE, token, transport=network or self.network())

    def sam(self) -> Sam:
        return Sam(export_sam_keys(self.root))

    def card(self, visitor: int, ticket_type: TicketType = TicketType.STANDARD) -> CardApplet:
        """A visitor's card holding ticket `visitor` (a ticket id the platform does not know)."""
        return self.factory.card(visitor, ticket_type)

    def sold_and_voided(self, msisdn: str) -> int:
        """A ticket sold at the Xujiahui hall and voided at once (so revoked): its id."""
        login = {"staff_no": "SH-C001", "password": self.principals.passwords["SH-C001"]}
        device = {"Authorization": "Bearer " + self.principals.tokens["sh_hall"]}
        reply = self.http.post("/v1/sessions", json=login, headers=device)
        assert reply.status_code == 201, reply.text
        clerk = {"Authorization": "Bearer " + reply.json()["token"]}
        sale = {"msisdn": msisdn, "ticket_type": "standard", "carrier": "expo_card", "payment": {"method": "cash"}}
        reply = self.http.post("/v1/orders", json=sale, headers={**clerk, "Idempotency-Key": uuid.uuid4().hex})
        assert reply.status_code == 201, reply.text
        order = reply.json()
        void = self.http.post(
            f"/v1/orders/{order['id']}/void", json={}, headers={**clerk, "Idempotency-Key": uuid.uuid4().hex}
        )
        assert void.status_code == 200, void.text
        ticket_id: int = order["tickets"][0]["id"]
        return ticket_id

    def counts(self, day: str) -> dict[str, Any]:
        reply = self.http.get(f"/v1/gate-entries/counts?day={day}", headers=self.admin)
        assert reply.status_code == 200, reply.text
        counts: dict[str, Any] = reply.json()
        return counts

    async def stored(self, gate_id: int) -> list[GateEntry]:
        """The gate's lines as the service stored them, by seq."""
        async with self.db.read() as session:
            rows = (await session.scalars(select(EntryLine).where(EntryLine.gate_id == gate_id))).all()
        return sorted((as_entry(row) for row in rows), key=lambda e: e.seq)


def as_entry(row: EntryLine) -> GateEntry:
    return GateEntry(
        seq=row.seq, event=Event(row.event), at=expo_local(row.at), code=row.code, csn=row.csn, ctr=row.ctr,
        ticket_id=row.ticket_id, slot=row.slot, check_id=row.check_id, card_marked=row.card_marked,
        reason=row.reason, supervisor=row.supervisor, annuls_seq=row.annuls_seq,
    )  # fmt: skip


def same_lines(journal: list[GateEntry]) -> list[GateEntry]:
    """The journal's lines with their times on the Expo's clock, for comparing with the stored ones."""
    return [GateEntry(**{**{f: getattr(e, f) for f in e.__struct_fields__}, "at": expo_local(e.at)}) for e in journal]


@dataclass
class Gate:
    """A gate device in process: its validator over its journal; cards are tapped straight on the applet."""

    validator: Validator
    journal: GateJournal

    def tap(self, card: CardApplet) -> TapResult:
        card.power_on()
        return self.validator.entry(AppletChannel(card))


@pytest.fixture
async def gate_server(db: Database, clock: FixedClock, tmp_path: Path) -> AsyncIterator[GateServer]:
    await load_reference_data(db, peak_capacity=1000)
    principals = await create_demo_principals(db, now=clock.now())
    root_file = tmp_path / "root-keys.json"
    generate_root_keys(root_file)
    settings = Settings(database_url=db.url, bank_notify_secret="test-bank-secret", key_file=str(root_file))
    app = create_app(settings, clock=clock, bank=InMemoryBank(), sweeper=False)
    admin = {"Authorization": "Bearer " + principals.tokens["admin"]}
    with TestClient(app, base_url=BASE) as http:
        yield GateServer(http, db, clock, load_root_keys(root_file), admin, root_file, principals)


def new_gate(server: GateServer, folder: Path, gate_id: int, entrance: str = "L1") -> Gate:
    journal = GateJournal(folder / f"gate-{gate_id}.sqlite3", durable=False)
    validator = Validator(gate_id=gate_id, entrance=entrance, sam=server.sam(), journal=journal, clock=server.clock)
    return Gate(validator, journal)
