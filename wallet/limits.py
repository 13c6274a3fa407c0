"""Risk limits in real time: what a user has done today and this month, read under the user's row lock."""

import json
from datetime import datetime, time
from pathlib import Path

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from expo.clock import EXPO_TZ, expo_local
from wallet.models import WalletTransfer, WalletUser
from wallet.rules import (
    DEFAULT_LIMITS,
    AccountClass,
    LimitedOperation,
    RiskLimits,
    TransferState,
    Usage,
    check_limits,
    parse_limits,
)


def period_starts(now: datetime) -> tuple[datetime, datetime]:
    """The starts of the Shanghai day and month that `now` falls in."""
    local = expo_local(now)
    day = datetime.combine(local.date(), time(), tzinfo=EXPO_TZ)
    return day, day.replace(day=1)


async def usage_of(session: AsyncSession, *, user_id: int, operation: LimitedOperation, now: datetime) -> Usage:
    """Amount and count of the user's non-voided transfers of one operation this day and this month."""
    day_start, month_start = period_starts(now)
    in_day = WalletTransfer.created_at >= day_start
    row = (
        await session.execute(
            select(
                func.coalesce(func.sum(WalletTransfer.amount_fen).filter(in_day), 0),
                func.count().filter(in_day),
                func.coalesce(func.sum(WalletTransfer.amount_fen), 0),
                func.count(),
            ).where(
                WalletTransfer.user_id == user_id,
                WalletTransfer.operation == operation.value,
                WalletTransfer.created_at >= month_start,
                WalletTransfer.state != TransferState.VOIDED.value,
            )
        )
    ).one()
    return Usage(day_fen=int(row[0]), day_count=int(row[1]), month_fen=int(row[2]), month_count=int(row[3]))


async def check_user_limits(
    session: AsyncSession,
    *,
    user: WalletUser,
    operation: LimitedOperation,
    amount_fen: int,
    limits: RiskLimits,
    now: datetime,
) -> None:
    """Refuse what would pass the user's class limits; call it with the user's balance row locked."""
    usage = await usage_of(session, user_id=user.id, operation=operation, now=now)
    check_limits(
        limits.of(AccountClass(user.account_class), operation), usage, amount_fen=amount_fen, operation=operation
    )


def load_limits(path: str) -> RiskLimits:
    """The limits in a JSON file, or the defaults when no file is named."""
    if not path:
        return DEFAULT_LIMITS
    return parse_limits(json.loads(Path(path).read_text(encoding="utf-8")))
