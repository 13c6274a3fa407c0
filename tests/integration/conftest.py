"""The service in-process over its real HTTP interface, on a migrated database, with the demo's callers."""

import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from litestar.testing import AsyncTestClient

from expo.app import create_app
from expo.bank import InMemoryBank
from expo.bootstrap import DemoPrincipals, create_demo_principals, load_reference_data
from expo.clock import FixedClock
from expo.db import Database
from expo.settings import Settings
from ticketing.signing_keys import generate_keyring

SHANGHAI_NUMBER = "13800000001"  # segment 1380000: the shipped table assigns it to a province


@dataclass
class Service:
    """A running service and its demo callers."""

    client: AsyncTestClient[Any]
    principals: DemoPrincipals
    clock: FixedClock
    db: Database
    settings: Settings

    def auth(self, token: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {token}"}

    def device(self, name: str) -> dict[str, str]:
        return self.auth(self.principals.tokens[name])

    async def login(self, device: str, staff_no: str) -> dict[str, str]:
        reply = await self.client.post(
            "/v1/sessions",
            json={"staff_no": staff_no, "password": self.principals.passwords[staff_no]},
            headers=self.device(device),
        )
        assert reply.status_code == 201, reply.text
        return self.auth(reply.json()["token"])

    async def post(
        self, path: str, body: dict[str, Any], headers: dict[str, str], key: str | None = None
    ) -> httpx.Response:
        sent = {**headers, "Idempotency-Key": key or uuid.uuid4().hex}
        return await self.client.post(path, json=body, headers=sent)


@pytest.fixture
def signing_key_file(tmp_path: Path, clock: FixedClock) -> Path:
    """The platform's voucher signing keyring, generated for this test (mode 0600)."""
    path = tmp_path / "signing-keys.json"
    generate_keyring(path, now=clock.now())
    return path


@pytest.fixture
async def service(db: Database, clock: FixedClock, signing_key_file: Path) -> AsyncIterator[Service]:
    await load_reference_data(db, peak_capacity=1000)
    principals = await create_demo_principals(db, now=clock.now())
    settings = Settings(
        database_url=db.url, bank_notify_secret="test-bank-secret", signing_key_file=str(signing_key_file)
    )
    app = create_app(settings, clock=clock, bank=InMemoryBank(), sweeper=False)
    async with AsyncTestClient(app) as client:
        yield Service(client=client, principals=principals, clock=clock, db=db, settings=settings)


@pytest.fixture
async def clerk(service: Service) -> dict[str, str]:
    """A Shanghai hall clerk logged in at the Xujiahui hall terminal."""
    return await service.login("sh_hall", "SH-C001")


@pytest.fixture
async def agent(service: Service) -> dict[str, str]:
    """A Shanghai 12580 agent logged in at the hotline desk."""
    return await service.login("sh_12580", "SH-A001")


def number(n: int, segment: str = "1380000") -> str:
    """A phone number in a known segment, distinct per n."""
    return f"{segment}{n:04d}"


def hall_sale(msisdn: str, **changes: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "msisdn": msisdn,
        "ticket_type": "standard",
        "carrier": "expo_card",
        "payment": {"method": "cash"},
    }
    body.update(changes)
    return body
