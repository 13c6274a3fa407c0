"""Hall terminal day closes: the terminal's journal upload compared with the platform's records of that terminal.

A terminal is its device credential (every order, void and card write carries it). Its batches are numbered
1, 2, ... on the terminal; a close covers what the platform recorded for the terminal after its previous
close up to now, is stored with the comparison, and replays when the same batch is uploaded again (its
reply was lost). Lock order: the terminal's credential first, so two closes of one terminal serialise.
"""

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

import msgspec
from sqlalchemy import ForeignKey, Index, String, Text, UniqueConstraint, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Mapped, mapped_column

from expo.access.models import Credential
from expo.access.rules import Principal
from expo.db import Base
from expo.errors import Conflict
from ticketing.card_models import CardWrite
from ticketing.models import Order, OrderEvent
from ticketing.sales_rules import OrderStatus
from ticketing.terminal_batch_rules import (
    BatchLine,
    Discrepancy,
    LineType,
    TypeTotal,
    check_upload,
    compare_journals,
    totals_of,
)


class TerminalBatch(Base):
    """One day close of a hall terminal: both journals' totals and where they disagree."""

    __tablename__ = "terminal_batches"
    __table_args__ = (
        UniqueConstraint("credential_id", "batch_no"),
        Index("ix_terminal_batches_closed_at", "closed_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    credential_id: Mapped[int] = mapped_column(ForeignKey("credentials.id"))
    batch_no: Mapped[int]
    staff_id: Mapped[int | None] = mapped_column(ForeignKey("staff.id"))
    since: Mapped[datetime | None]  # the previous close (None: the terminal's first batch)
    closed_at: Mapped[datetime]
    # JSON {type: [count, fen]} of each side, and the list of discrepancies (a lost journal has many).
    terminal_totals: Mapped[str] = mapped_column(String(200))
    platform_totals: Mapped[str] = mapped_column(String(200))
    matched: Mapped[bool]
    discrepancies: Mapped[str] = mapped_column(Text)


@dataclass(frozen=True)
class Closed:
    batch: TerminalBatch
    replayed: bool = False


async def close_batch(
    session: AsyncSession, *, clerk: Principal, batch_no: int, lines: Sequence[BatchLine], now: datetime
) -> Closed:
    """Close the terminal's open batch: compare its journal with ours since its last close and store the result;
    the same batch again replays its stored close, any other number is `wrong_batch`."""
    uploaded = check_upload(lines)
    await session.scalar(select(Credential.id).where(Credential.id == clerk.credential_id).with_for_update())
    last = await session.scalar(
        select(TerminalBatch)
        .where(TerminalBatch.credential_id == clerk.credential_id)
        .order_by(TerminalBatch.batch_no.desc())
        .limit(1)
    )
    if last is not None and last.batch_no == batch_no:
        return Closed(last, replayed=True)
    open_no = last.batch_no + 1 if last else 1
    if batch_no != open_no:
        raise Conflict("wrong_batch", f"batch {open_no} is open, not {batch_no}", open_batch_no=open_no)
    since = last.closed_at if last else None
    platform = await platform_lines(session, credential_id=clerk.credential_id, since=since, until=now)
    found = compare_journals(terminal=uploaded, platform=platform)
    batch = TerminalBatch(
        credential_id=clerk.credential_id,
        batch_no=batch_no,
        staff_id=clerk.staff_id,
        since=since,
        closed_at=now,
        terminal_totals=_encode_totals(totals_of(uploaded)),
        platform_totals=_encode_totals(totals_of(platform)),
        matched=not found,
        discrepancies=msgspec.json.encode(found).decode(),
    )
    session.add(batch)
    await session.flush()
    return Closed(batch)


async def platform_lines(
    session: AsyncSession, *, credential_id: int, since: datetime | None, until: datetime
) -> list[BatchLine]:
    """What the platform recorded for a terminal in (since, until]: its sales, its voids, its confirmed writes."""
    sales = select(Order.id, Order.amount_fen).where(Order.credential_id == credential_id, Order.created_at <= until)
    voids = (
        select(Order.id, Order.amount_fen)
        .join(OrderEvent, OrderEvent.order_id == Order.id)
        .where(
            OrderEvent.credential_id == credential_id,
            OrderEvent.event == OrderStatus.VOID.value,
            OrderEvent.at <= until,
        )
    )
    writes = select(CardWrite.ticket_id).where(
        CardWrite.credential_id == credential_id, CardWrite.confirmed_at <= until
    )
    if since is not None:
        sales = sales.where(Order.created_at > since)
        voids = voids.where(OrderEvent.at > since)
        writes = writes.where(CardWrite.confirmed_at > since)
    lines = [BatchLine(LineType.SALE, order_id, amount) for order_id, amount in await session.execute(sales)]
    lines += [BatchLine(LineType.VOID, order_id, amount) for order_id, amount in await session.execute(voids)]
    lines += [BatchLine(LineType.WRITE, ticket_id) for ticket_id in await session.scalars(writes)]
    return lines


def _encode_totals(totals: dict[LineType, TypeTotal]) -> str:
    return msgspec.json.encode({kind.value: [t.count, t.amount_fen] for kind, t in totals.items()}).decode()


def totals_of_batch(raw: str) -> dict[str, TypeTotal]:
    """A stored side's totals by line type."""
    return {kind: TypeTotal(count, fen) for kind, (count, fen) in msgspec.json.decode(raw).items()}


def discrepancies_of(batch: TerminalBatch) -> list[Discrepancy]:
    """The disagreements a close found, as stored with it."""
    return msgspec.json.decode(batch.discrepancies, type=list[Discrepancy])
