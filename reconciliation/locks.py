"""The settlement's serialising lock: closing a month, the final commission settlement and a bank file's upload
take it first, so none of them decides on what another has not committed yet (a close and the final settlement
would each miss the other's commission; an upload during a close would land in a month whose report is final).

On PostgreSQL it is a transaction-level advisory lock, released at commit or rollback; SQLite already runs one
writing transaction at a time.
"""

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

SETTLEMENT_LOCK = 7_000_002  # distinct from the payout run's own lock


async def lock_settlement(session: AsyncSession) -> None:
    """Wait until no other close, final settlement or bank upload is in flight, then hold them off until commit."""
    if session.get_bind().dialect.name == "postgresql":
        await session.execute(select(func.pg_advisory_xact_lock(SETTLEMENT_LOCK)))
