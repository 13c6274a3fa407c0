"""A hall terminal's card-write steps (hall_terminals.card) step by step against the service, the applet in process."""

from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from litestar.testing import AsyncTestClient

from expo.app import create_app
from expo.bank import InMemoryBank
from expo.bootstrap import create_demo_principals, load_reference_data
from expo.clock import FixedClock
from expo.db import Database
from expo.settings import Settings
from hall_terminals import card as card_steps
from simcard.applet import CardApplet
from simcard.keys import KeySet
from simcard.keystore import generate_root_keys, load_root_keys
from simcard.session import InProcessReader
from simcard.state import CardState
from tests.integration.conftest import Service, hall_sale
from ticketing.cards import issue_cards


@pytest.fixture
def root_file(tmp_path: Path) -> Path:
    """The platform's national root keys, generated for this test (mode 0600)."""
    path = tmp_path / "root-keys.json"
    generate_root_keys(path)
    return path


@pytest.fixture
async def card_service(
    db: Database, clock: FixedClock, root_file: Path, signing_key_file: Path
) -> AsyncIterator[Service]:
    """The service with its card key file configured (EXPO_KEY_FILE), and its voucher signing keys."""
    await load_reference_data(db, peak_capacity=1000)
    principals = await create_demo_principals(db, now=clock.now())
    settings = Settings(
        database_url=db.url,
        bank_notify_secret="test-bank-secret",
        key_file=str(root_file),
        signing_key_file=str(signing_key_file),
    )
    app = create_app(settings, clock=clock, bank=InMemoryBank(), sweeper=False)
    async with AsyncTestClient(app) as client:
        yield Service(client=client, principals=principals, clock=clock, db=db, settings=settings)


@pytest.fixture
def service(card_service: Service) -> Service:
    """Overrides conftest's: every caller of the card tests (clerk, agent) talks to the service with card keys."""
    return card_service


@pytest.fixture
def root(root_file: Path) -> KeySet:
    """The root keys, as the platform (and a gate's SAM) holds them."""
    return load_root_keys(root_file)


async def issue(service: Service, root: KeySet, *, province: str = "31", count: int = 1) -> list[CardState]:
    """Personalise new cards of a province into the registry's stock; their states are the emulated cards."""
    async with service.db.write() as session:
        return await issue_cards(session, province_code=province, count=count, root_keys=root, now=service.clock.now())


async def register(service: Service, clerk: dict[str, str], card: CardState, msisdn: str) -> httpx.Response:
    body = {"csn": card.csn.hex(), "msisdn": msisdn}
    return await service.client.post("/v1/cards/registrations", json=body, headers=clerk)


async def sell_card_ticket(service: Service, clerk: dict[str, str], msisdn: str, **changes: Any) -> int:
    """A paid hall sale to the Expo card; its ticket id."""
    reply = await service.post("/v1/orders", hall_sale(msisdn, **changes), clerk)
    assert reply.status_code == 201, reply.text
    ticket_id: int = reply.json()["tickets"][0]["id"]
    return ticket_id


@dataclass
class Terminal:
    """A terminal with one card in its reader: it relays the platform's APDUs and reports what the card said."""

    service: Service
    headers: dict[str, str]
    applet: CardApplet
    replies: list[httpx.Response] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.reader = InProcessReader(self.applet)

    def transmit(self, apdu_hex: str) -> bytes:
        return self.reader.transmit(bytes.fromhex(apdu_hex))

    def tap(self) -> card_steps.Tap:
        """A new tap: SELECT, then READ TICKET every slot (the hall terminal's own step)."""
        self.reader.tap()
        return card_steps.tap(self.reader)

    async def call(self, path: str, body: dict[str, Any]) -> httpx.Response:
        reply = await self.service.client.post(path, json=body, headers=self.headers)
        self.replies.append(reply)
        return reply

    async def start(self, ticket_id: int, *, report_records: bool = True) -> httpx.Response:
        """Step 1-2: tap the card, read its slots, ask the platform for a write."""
        body = self.tap().start_body(report_records=report_records)
        return await self.call(f"/v1/tickets/{ticket_id}/card-writes", body)

    async def open_session(self, started: dict[str, Any]) -> httpx.Response:
        """Step 3: relay OPEN SESSION, post the card's answer."""
        answer = self.transmit(started["open_session_apdu"])
        return await self.call(f"/v1/card-writes/{started['write_id']}/session", {"response": answer.hex()})

    def write(self, step: dict[str, Any], *, write_apdu: str | None = None) -> tuple[str, str | None]:
        """Step 4 on the card: WRITE TICKET, then READ TICKET of the slot -> (write SW, record read back)."""
        return card_steps.write_and_read_back(self.reader, write_apdu or step["write_apdu"], step["read_apdu"])

    async def report(self, step: dict[str, Any], sw: str, record: str | None) -> httpx.Response:
        """Step 4 to the platform: the write's SW and the record read back."""
        return await self.call(f"/v1/card-writes/{step['write_id']}/result", {"sw": sw, "record": record})

    async def write_ticket(self, ticket_id: int) -> dict[str, Any]:
        """The whole write, every step checked; the confirmed write."""
        started = await self.start(ticket_id)
        assert started.status_code == 201, started.text
        step = await self.open_session(started.json())
        assert step.status_code == 200, step.text
        sw, record = self.write(step.json())
        result = await self.report(step.json(), sw, record)
        assert result.status_code == 200, result.text
        confirmed: dict[str, Any] = result.json()
        assert confirmed["state"] == "confirmed"
        return confirmed
