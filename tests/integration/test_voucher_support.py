"""Helpers shared by the voucher test modules (this module holds no tests of its own)."""

import uuid
from dataclasses import dataclass
from datetime import date
from typing import Any

import httpx
from sqlalchemy import func, select

from expo.db import Database
from tests.integration.conftest import Service
from ticketing.models import OrderEvent, Ticket
from ticketing.qr import read_qr
from ticketing.signed_codes import TicketClaim, verify_code
from ticketing.signing_keys import public_keys_from
from ticketing.voucher_models import PhysicalTicket, Voucher

APPROVED = "6222000000000001"
PENDING = "6222000000000004"  # the in-memory bank answers "pending" and confirms by notification


def voucher_sale(msisdn: str, *, account: str = APPROVED, **changes: Any) -> dict[str, Any]:
    """A web sale of a standard ticket on a QR voucher, paid by online banking."""
    body: dict[str, Any] = {
        "msisdn": msisdn,
        "ticket_type": "standard",
        "carrier": "qr_voucher",
        "payment": {"method": "online_banking", "account": account},
    }
    body.update(changes)
    return body


async def sell(service: Service, body: dict[str, Any], headers: dict[str, str], *, status: int = 201) -> dict[str, Any]:
    """A sale that must succeed with `status`; its order."""
    reply = await service.post("/v1/orders", body, headers)
    assert reply.status_code == status, reply.text
    order: dict[str, Any] = reply.json()
    return order


async def sell_voucher(service: Service, msisdn: str, **changes: Any) -> dict[str, Any]:
    """A paid web QR-voucher sale; its order."""
    return await sell(service, voucher_sale(msisdn, **changes), service.device("web"))


async def voucher(service: Service, order_id: int, headers: dict[str, str] | None = None) -> httpx.Response:
    return await service.client.get(f"/v1/orders/{order_id}/voucher", headers=headers or service.device("web"))


async def voucher_code(service: Service, order_id: int) -> str:
    """The code of a paid order's voucher, as the web front reads it."""
    reply = await voucher(service, order_id)
    assert reply.status_code == 200, reply.text
    code: str = reply.json()["code"]
    return code


async def outbox(service: Service, msisdn: str) -> list[dict[str, Any]]:
    """The MMS sent to a phone, newest first, as the back office reads them."""
    reply = await service.client.get("/v1/mms-outbox", params={"msisdn": msisdn}, headers=service.device("admin"))
    assert reply.status_code == 200, reply.text
    rows: list[dict[str, Any]] = reply.json()
    return rows


async def mms_picture(service: Service, message_id: int) -> bytes:
    reply = await service.client.get(f"/v1/mms-outbox/{message_id}/image", headers=service.device("admin"))
    assert reply.status_code == 200, reply.text
    assert reply.headers["content-type"] == "image/png"
    return reply.content


async def published_claim(service: Service, code: str) -> TicketClaim:
    """What a code says, verified offline with the public keys the platform publishes (no auth needed)."""
    keys = await service.client.get("/v1/ticket-keys")
    assert keys.status_code == 200, keys.text
    return verify_code(code, public_keys_from(keys.json()))


async def mms_claim(service: Service, msisdn: str) -> TicketClaim:
    """The claim of the QR code in the newest MMS sent to a phone."""
    [newest, *_] = await outbox(service, msisdn)
    return await published_claim(service, read_qr(await mms_picture(service, newest["id"])))


async def exchange(
    service: Service,
    clerk: dict[str, str],
    code: str,
    *,
    into: str = "physical",
    csn: str | None = None,
    key: str | None = None,
) -> httpx.Response:
    body: dict[str, Any] = {"code": code, "into": into}
    if csn is not None:
        body["csn"] = csn
    headers = {**clerk, "Idempotency-Key": key or uuid.uuid4().hex}
    return await service.client.post("/v1/vouchers/exchange", json=body, headers=headers)


@dataclass(frozen=True)
class TicketState:
    """A ticket's carrier and status, its voucher's exchange, and what else an exchange would have written."""

    carrier: str
    status: str
    exchanged_into: str | None
    physical_tickets: int
    journal_lines: int


async def ticket_state(db: Database, ticket_id: int) -> TicketState:
    async with db.read() as session:
        ticket = await session.get_one(Ticket, ticket_id)
        exchanged = await session.scalar(select(Voucher.exchanged_into).where(Voucher.ticket_id == ticket_id))
        physical = await session.scalar(
            select(func.count()).select_from(PhysicalTicket).where(PhysicalTicket.ticket_id == ticket_id)
        )
        lines = await session.scalar(
            select(func.count()).select_from(OrderEvent).where(OrderEvent.order_id == ticket.order_id)
        )
        return TicketState(ticket.carrier, ticket.status, exchanged, int(physical or 0), int(lines or 0))


def unexchanged(state: TicketState) -> bool:
    """Nothing of an exchange happened to the ticket."""
    return (state.carrier, state.exchanged_into, state.physical_tickets) == ("qr_voucher", None, 0)


def day(text: str) -> date:
    return date.fromisoformat(text)
