"""The revocation list: voided and refunded tickets, numbered by a strictly increasing version.

Gates keep a copy and pull what is new with `since` = the last version they hold, so a version must never
become visible after a higher one (a reader would step over it for good). A database sequence does not
give that: numbers are taken in one order and committed in another. Versions come instead from a one-row
counter bumped with `UPDATE ... RETURNING`; its row lock, held until commit, makes the next revoker wait,
so versions are committed in their order. Revokers take it last in their transaction to hold it briefly.
"""

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import BigInteger, ForeignKey, String, insert, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Mapped, mapped_column

from expo.db import Base
from expo.errors import ExpoError
from ticketing.sales_rules import TicketStatus

REVOKING_STATUSES = frozenset({TicketStatus.VOID, TicketStatus.REFUNDED})
COUNTER_ID = 1
MAX_PAGE = 5000


class TicketRevocation(Base):
    """A ticket no gate may admit any more, at the version it was revoked."""

    __tablename__ = "ticket_revocations"

    version: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    ticket_id: Mapped[int] = mapped_column(ForeignKey("tickets.id"), index=True)
    reason: Mapped[str] = mapped_column(String(10))  # void | refunded
    at: Mapped[datetime]


class RevocationCounter(Base):
    """The one row whose `version` is the newest revocation's version."""

    __tablename__ = "revocation_counter"

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=False)
    version: Mapped[int] = mapped_column(BigInteger)


@dataclass(frozen=True)
class RevocationPage:
    """What is new since a version: up to `limit` revocations; `version` is the last one included."""

    version: int
    revocations: list[TicketRevocation]
    more: bool


async def revoke_tickets(
    session: AsyncSession, *, ticket_ids: Sequence[int], reason: TicketStatus, now: datetime
) -> int | None:
    """Put voided or refunded tickets on the revocation list; returns the newest version (None: none given).

    Call it last in the transaction: from here to commit the counter's row lock serialises every revoker.
    """
    if reason not in REVOKING_STATUSES:
        raise ValueError(f"tickets are revoked when void or refunded, not {reason}")
    ids = sorted(set(ticket_ids))
    if not ids:
        return None
    newest = await _bump_counter(session, by=len(ids))
    first = newest - len(ids) + 1
    rows = [
        {"version": first + n, "ticket_id": ticket_id, "reason": reason.value, "at": now}
        for n, ticket_id in enumerate(ids)
    ]
    await session.execute(insert(TicketRevocation), rows)
    return newest


async def _bump_counter(session: AsyncSession, *, by: int) -> int:
    bump = (
        update(RevocationCounter)
        .where(RevocationCounter.id == COUNTER_ID)
        .values(version=RevocationCounter.version + by)
        .returning(RevocationCounter.version)
    )
    newest = await session.scalar(bump)
    if newest is None:
        # The migration creates the row; a database emptied by hand may have lost it.
        dialect = postgresql if session.get_bind().dialect.name == "postgresql" else sqlite
        await session.execute(
            dialect.insert(RevocationCounter).values(id=COUNTER_ID, version=0).on_conflict_do_nothing()
        )
        newest = await session.scalar(bump)
    if newest is None:
        raise ExpoError("revocation_counter_missing", "the revocation counter cannot be created", status=500)
    return int(newest)


async def revocations_since(session: AsyncSession, *, since: int, limit: int) -> RevocationPage:
    """The revocations after version `since`, oldest first, at most `limit` of them (never more than 5000)."""
    limit = max(1, min(limit, MAX_PAGE))
    rows = list(
        await session.scalars(
            select(TicketRevocation)
            .where(TicketRevocation.version > since)
            .order_by(TicketRevocation.version)
            .limit(limit + 1)
        )
    )
    page = rows[:limit]
    return RevocationPage(version=page[-1].version if page else since, revocations=page, more=len(rows) > limit)
