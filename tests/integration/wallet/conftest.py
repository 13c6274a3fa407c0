"""Wallet fixtures: merchants, wallets opened in a hall and topped up with cash, and the SMS outbox."""

import re
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from tests.integration.conftest import Service, number

PASSWORD = "135790"


@dataclass
class Wallet:
    """The wallet API as a hall clerk, the web front, the admin and merchants use it."""

    service: Service
    clerk: dict[str, str]

    @property
    def admin(self) -> dict[str, str]:
        return self.service.device("admin")

    @property
    def web(self) -> dict[str, str]:
        return self.service.device("web")

    async def open(self, msisdn: str, *, top_up_fen: int = 0, password: str = PASSWORD) -> str:
        """A real-name wallet opened in the Shanghai hall, with `top_up_fen` of cash paid in."""
        reply = await self.service.client.post(
            "/v1/wallet/accounts",
            json={"msisdn": msisdn, "password": password, "id_last4": "123X"},
            headers=self.clerk,
        )
        assert reply.status_code == 201, reply.text
        if top_up_fen:
            await self.top_up(msisdn, top_up_fen)
        return msisdn

    async def top_up(self, msisdn: str, amount_fen: int) -> httpx.Response:
        reply = await self.service.post(
            "/v1/wallet/top-ups/cash", {"msisdn": msisdn, "amount_fen": amount_fen}, self.clerk
        )
        assert reply.status_code == 201, reply.text
        return reply

    async def merchant(self, code: str, category: str, province: str = "31", **extra: Any) -> dict[str, str]:
        """Register a merchant and return its own system's headers."""
        body = {"code": code, "name": f"Merchant {code}", "category": category, "province_code": province, **extra}
        reply = await self.service.client.post("/v1/wallet/admin/merchants", json=body, headers=self.admin)
        assert reply.status_code == 201, reply.text
        key = await self.service.client.post(f"/v1/wallet/admin/merchants/{code}/keys", headers=self.admin)
        assert key.status_code == 201, key.text
        return self.service.auth(key.json()["token"])

    async def account(self, msisdn: str) -> dict[str, Any]:
        reply = await self.service.client.get(f"/v1/wallet/accounts/{msisdn}", headers=self.admin)
        assert reply.status_code == 200, reply.text
        return reply.json()  # type: ignore[no-any-return]

    async def texts(self, msisdn: str) -> list[str]:
        reply = await self.service.client.get("/v1/wallet/admin/sms", params={"msisdn": msisdn}, headers=self.admin)
        assert reply.status_code == 200, reply.text
        return [row["text"] for row in reply.json()]

    async def last_code(self, msisdn: str) -> str:
        """The six digits of the latest code texted to a phone."""
        for text in await self.texts(msisdn):
            found = re.search(r"code is (\d{6})", text)
            if found:
                return found.group(1)
        raise AssertionError(f"no code texted to {msisdn}")

    async def ledger_ok(self) -> dict[str, Any]:
        reply = await self.service.client.get("/v1/wallet/admin/ledger", headers=self.admin)
        assert reply.status_code == 200, reply.text
        report = reply.json()
        assert report["ok"], report["problems"]
        return report  # type: ignore[no-any-return]


@pytest.fixture
async def wallet(service: Service, clerk: dict[str, str]) -> Wallet:
    return Wallet(service=service, clerk=clerk)


__all__ = ["PASSWORD", "Wallet", "number"]
