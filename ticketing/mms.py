"""The MMS boundary: vouchers go to the buyer's phone as a text with the QR picture attached.

`MmsGateway` is what the platform sends through; `OutboxMms`, the default, keeps every MMS in the
database's outbox, where tests, the demo and an operator (`GET /v1/mms-outbox`) can read it.
"""

from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from expo.db import Database
from ticketing.orders import MAX_ORDER_ID
from ticketing.voucher_models import MmsMessage

MAX_LIST = 200


class MmsGateway(Protocol):
    """Sends an MMS (a subject, a text and one PNG picture) to a phone."""

    async def send(self, *, msisdn: str, subject: str, text: str, image_png: bytes, now: datetime) -> None: ...


@dataclass(frozen=True)
class SentMms:
    """An MMS in the outbox, without its picture."""

    id: int
    msisdn: str
    subject: str
    text: str
    created_at: datetime


class OutboxMms:
    """The default gateway: MMS go to the outbox table (a real MMS centre would pick them up from there)."""

    def __init__(self, db: Database) -> None:
        self._db = db

    async def send(self, *, msisdn: str, subject: str, text: str, image_png: bytes, now: datetime) -> None:
        async with self._db.write() as session:
            session.add(
                MmsMessage(msisdn=msisdn, subject=subject[:100], text=text[:500], image_png=image_png, created_at=now)
            )


async def messages_for(session: AsyncSession, *, msisdn: str | None, limit: int = 50) -> list[SentMms]:
    """The latest MMS sent (to one phone, or to any), newest first; the pictures are not loaded."""
    query = select(MmsMessage.id, MmsMessage.msisdn, MmsMessage.subject, MmsMessage.text, MmsMessage.created_at)
    if msisdn is not None:
        query = query.where(MmsMessage.msisdn == msisdn)
    rows = await session.execute(query.order_by(MmsMessage.id.desc()).limit(max(1, min(limit, MAX_LIST))))
    return [SentMms(row.id, row.msisdn, row.subject, row.text, row.created_at) for row in rows]


async def message_image(session: AsyncSession, *, message_id: int) -> bytes | None:
    """The PNG picture attached to one MMS (None: no such MMS)."""
    if not 0 < message_id <= MAX_ORDER_ID:  # ids are INTEGER: a larger number names none
        return None
    return await session.scalar(select(MmsMessage.image_png).where(MmsMessage.id == message_id))
