"""Helpers shared by the integration test modules (this module holds no tests of its own)."""

from datetime import date
from typing import Any

import httpx
from sqlalchemy import func, select

from expo.access.models import Credential, Staff
from expo.access.rules import Principal, Role
from expo.db import Database
from tests.integration.conftest import Service
from ticketing.models import DayStock, Order, OrderEvent, Payment, Ticket

PEAK_DAY = date(2010, 10, 1)
BANK_SECRET = "test-bank-secret"  # what the `service` fixture configures


def assert_problem(reply: httpx.Response, status: int, code: str) -> dict[str, Any]:
    """The reply is a problem document with this status and stable code."""
    assert reply.status_code == status, reply.text
    assert reply.headers["content-type"].startswith("application/problem+json"), reply.headers
    document: dict[str, Any] = reply.json()
    assert document["code"] == code, document
    assert document["status"] == status
    return document


async def row_counts(db: Database) -> dict[str, int]:
    """How many orders, tickets, payments and journal lines the database holds."""
    async with db.read() as session:
        return {
            model.__tablename__: int(await session.scalar(select(func.count()).select_from(model)) or 0)
            for model in (Order, Ticket, Payment, OrderEvent)
        }


async def nothing_written(db: Database) -> None:
    """No sale left anything behind."""
    assert await row_counts(db) == {"orders": 0, "tickets": 0, "payments": 0, "order_events": 0}


async def sold_on(db: Database, day: date) -> tuple[int, int]:
    """(capacity, sold) of a peak day, read straight from the database."""
    async with db.read() as session:
        row = await session.get(DayStock, day)
        assert row is not None
        return row.capacity, row.sold


async def stock_of(service: Service, day: date) -> dict[str, Any]:
    """A peak day's stock as GET /v1/stock reports it to the back office."""
    reply = await service.client.get("/v1/stock", headers=service.device("admin"))
    assert reply.status_code == 200, reply.text
    rows: list[dict[str, Any]] = reply.json()
    return next(r for r in rows if r["day"] == day.isoformat())


async def set_capacity(service: Service, day: date, capacity: int) -> None:
    reply = await service.client.put(
        f"/v1/stock/{day.isoformat()}", json={"capacity": capacity}, headers=service.device("admin")
    )
    assert reply.status_code == 200, reply.text


async def credential_id(db: Database, label: str) -> int:
    async with db.read() as session:
        found = await session.scalar(select(Credential.id).where(Credential.label == label))
    assert found is not None
    return found


async def staff_id(db: Database, staff_no: str) -> int:
    async with db.read() as session:
        found = await session.scalar(select(Staff.id).where(Staff.staff_no == staff_no))
    assert found is not None
    return found


async def shanghai_clerk(db: Database) -> Principal:
    """The demo's Shanghai clerk at the Xujiahui terminal, as the service would authenticate them."""
    return Principal(
        role=Role.HALL_CLERK,
        credential_id=await credential_id(db, "sh_hall"),
        label="Wang Fang at sh_hall",
        province_code="31",
        hall="Shanghai Xujiahui hall",
        staff_id=await staff_id(db, "SH-C001"),
        staff_no="SH-C001",
    )


async def paid_orders(db: Database) -> int:
    async with db.read() as session:
        return int(await session.scalar(select(func.count()).select_from(Order).where(Order.status == "paid")) or 0)


def agent_sale(msisdn: str, *, account: str = "4000000000000001", **changes: Any) -> dict[str, Any]:
    """A 12580 credit-card sale of a standard ticket to a QR voucher."""
    body: dict[str, Any] = {
        "msisdn": msisdn,
        "ticket_type": "standard",
        "carrier": "qr_voucher",
        "payment": {"method": "credit_card", "account": account},
    }
    body.update(changes)
    return body


def cod_sale(msisdn: str, *, quantity: int = 1, **changes: Any) -> dict[str, Any]:
    """A 12580 physical-ticket sale, cash on delivery."""
    body: dict[str, Any] = {
        "msisdn": msisdn,
        "ticket_type": "standard",
        "carrier": "physical",
        "quantity": quantity,
        "payment": {"method": "cod"},
    }
    body.update(changes)
    return body


def web_sale(msisdn: str, *, account: str = "6222000000000001", **changes: Any) -> dict[str, Any]:
    """A web/OTA online-banking sale of a standard ticket to the Expo card."""
    body: dict[str, Any] = {
        "msisdn": msisdn,
        "ticket_type": "standard",
        "carrier": "expo_card",
        "payment": {"method": "online_banking", "account": account},
    }
    body.update(changes)
    return body
