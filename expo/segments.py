"""The number-segment table in the database: a phone number's home province, and loading the table."""

from sqlalchemy import String, delete, insert, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Mapped, mapped_column

from expo.db import Base
from expo.errors import ExpoError
from expo.provinces import SegmentRange, number_segment


class NumberSegment(Base):
    """A range of seven-digit number segments (号段) and the province the numbers belong to."""

    __tablename__ = "number_segments"

    first: Mapped[str] = mapped_column(String(7), primary_key=True)
    last: Mapped[str] = mapped_column(String(7))
    province_code: Mapped[str] = mapped_column(String(2))


async def home_province(session: AsyncSession, *, msisdn: str) -> str:
    """The province a normalized number belongs to, from its seven-digit segment; unknown ones are refused."""
    segment = number_segment(msisdn)
    row = (
        await session.execute(
            select(NumberSegment.last, NumberSegment.province_code)
            .where(NumberSegment.first <= segment)
            .order_by(NumberSegment.first.desc())
            .limit(1)
        )
    ).one_or_none()
    if row is None or row.last < segment:
        raise ExpoError("unknown_number_segment", f"no province is known for numbers starting {segment}")
    return str(row.province_code)


async def replace_segments(session: AsyncSession, *, ranges: list[SegmentRange]) -> int:
    """Replace the whole segment table with a validated list of ranges; returns how many were loaded."""
    await session.execute(delete(NumberSegment))
    if ranges:
        await session.execute(
            insert(NumberSegment),
            [{"first": r.first, "last": r.last, "province_code": r.province_code} for r in ranges],
        )
    return len(ranges)
