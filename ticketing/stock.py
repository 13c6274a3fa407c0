"""Day stock of dated (peak-day) tickets: reserved with one conditional update, so never oversold."""

from datetime import date

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from expo.errors import Conflict, ExpoError
from ticketing.models import DayStock
from ticketing.rules import PEAK_DAYS


async def ensure_available(session: AsyncSession, *, day: date, quantity: int) -> None:
    """Refuse early (without locking) when a day is already sold out, before any money moves."""
    row = await session.get(DayStock, day)
    if row is None or row.capacity - row.sold < quantity:
        raise Conflict("sold_out", f"no tickets left for {day.isoformat()}", day=day.isoformat())


async def reserve(session: AsyncSession, *, day: date, quantity: int) -> None:
    """Take `quantity` from the day's stock atomically; refused when fewer are left.

    The update holds the day's row lock until commit, so callers run it last in their transaction.
    """
    taken = await session.scalar(
        update(DayStock)
        .where(DayStock.day == day, DayStock.sold + quantity <= DayStock.capacity)
        .values(sold=DayStock.sold + quantity)
        .returning(DayStock.sold)
    )
    if taken is None:
        raise Conflict("sold_out", f"no tickets left for {day.isoformat()}", day=day.isoformat())


async def release(session: AsyncSession, *, day: date, quantity: int) -> None:
    """Give stock back when a sale is voided, refunded or expires unpaid."""
    await session.execute(update(DayStock).where(DayStock.day == day).values(sold=DayStock.sold - quantity))


async def stock_levels(session: AsyncSession) -> list[DayStock]:
    """The capacity and sales of every stocked day, in date order."""
    return list((await session.scalars(select(DayStock).order_by(DayStock.day))).all())


async def set_capacity(session: AsyncSession, *, day: date, capacity: int) -> DayStock:
    """Set a peak day's capacity; it can never drop below what is already sold."""
    if day not in PEAK_DAYS:
        raise ExpoError("not_a_peak_day", f"{day.isoformat()} is not a peak day; only peak days are stocked")
    if capacity < 0:
        raise ExpoError("invalid_capacity", "capacity cannot be negative")
    row = await session.get(DayStock, day, with_for_update=True)
    if row is None:
        row = DayStock(day=day, capacity=capacity, sold=0)
        session.add(row)
    elif capacity < row.sold:
        raise Conflict("capacity_below_sold", f"{row.sold} tickets are already sold for {day.isoformat()}")
    else:
        row.capacity = capacity
    await session.flush()
    return row
