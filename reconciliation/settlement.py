"""Closing a settlement month, and the final commission settlement after ticket sales ended.

Months close in order, each covering the records dated from the previous close's end to its own end (the first from
the beginning), so no record is settled twice or left out. A close counts the records inserted up to the last
payment and posting ids it sees, and stores those ids: a record inserted later but dated into a closed month (a
clock behind, a late upload) is a late record, carried into the next close as an adjustment that names the month it
corrects. A closed month's lines never change.

Settling a month (`settle_month`, what `expo settle month` runs) first runs the month's T+1 payouts in their own
transaction, so the long close never holds the merchants' account rows, then closes it: its ticket and wallet lines,
the late records of the closed months, the matching report, all frozen in one transaction.

Lock order: the settlement lock (`reconciliation.locks`) first, then the month's row, so a close, the final
commission settlement and a bank file's upload never overlap.
"""

from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from sqlalchemy import func, select, text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import InstrumentedAttribute

from expo.clock import EXPO_TZ
from expo.db import Database
from expo.errors import Conflict
from reconciliation import models
from reconciliation.calendar import is_working_day
from reconciliation.commission import month_bounds
from reconciliation.documents import line_of, store_lines
from reconciliation.locks import lock_settlement
from reconciliation.matching import match_month, record_discrepancies
from reconciliation.payouts import payout_lines, run_payouts
from reconciliation.rules import FIRST_MONTH_KEY, CommissionRates, Month, parse_rates, rates_text
from reconciliation.statement_rules import FINAL_DOCUMENT, Line, Recorded, Section, Window, sort_lines
from reconciliation.ticket_lines import commission_lines, final_commission_lines, proceeds_lines
from reconciliation.wallet_lines import wallet_lines
from ticketing.models import Payment
from wallet.models import Posting

# The steps of a close, for a progress bar; the payouts add one step per payout day.
STEPS = ("commission", "proceeds", "wallet", "adjustments", "matching", "store")
LAST_SALES_MONTH = Month(2010, 10)  # domain: the Expo closed on 2010-10-31; ticket sales ended with it
# Ours: a month can be closed this long after it ended, once every request begun inside it has committed.
CLOSE_GRACE = timedelta(minutes=10)
FIRST_DAY = Month(*FIRST_MONTH_KEY).first_day
BATCH_WORK_MEM = "256MB"  # per sort or hash of a close's queries, on PostgreSQL

Progress = Callable[[str], None]


@dataclass(frozen=True)
class ClosedMonth:
    """What a close did: its window, its lines (adjustments included), its payout days and discrepancies."""

    month: Month
    window: Window
    lines: list[Line]
    payout_days: int
    discrepancies: int


def progress_steps(month: Month) -> int:
    """How many progress steps settling a month takes: its working days (payouts) and the fixed steps."""
    days = (month.last_day - month.first_day).days + 1
    return sum(is_working_day(month.first_day + timedelta(days=n)) for n in range(days)) + len(STEPS)


async def settle_month(
    database: Database,
    *,
    month: Month,
    rates: CommissionRates,
    now: datetime,
    by: str,
    progress: Progress | None = None,
) -> ClosedMonth:
    """Pay the month's T+1 payout days (committed on their own), then close the month."""
    step = progress or (lambda _name: None)
    async with database.write() as session:
        await _batch_memory(session)
        await _check_closable(session, month=month, now=now)  # refused before anything is paid
        runs = await run_payouts(
            session, from_day=month.first_day, through=month.last_day, now=now, on_day=lambda d: step(f"payouts {d}")
        )
    async with database.write() as session:
        closed = await close_month(session, month=month, rates=rates, now=now, by=by, progress=step)
    return replace(closed, payout_days=len(runs))


async def close_month(
    session: AsyncSession,
    *,
    month: Month,
    rates: CommissionRates,
    now: datetime,
    by: str,
    progress: Progress | None = None,
) -> ClosedMonth:
    """Close a month once it is over and its payout days have run: refused if it is closed, not over, not the
    month after the last closed, or its payouts are not done."""
    step = progress or (lambda _name: None)
    await lock_settlement(session)
    await _batch_memory(session)
    last = await _check_closable(session, month=month, now=now)
    await _check_payouts_run(session, month=month)
    _, end = month_bounds(month)
    through = Recorded(
        payments_after=None,
        payments_through=await _last_id(session, Payment.id),
        postings_after=None,
        postings_through=await _last_id(session, Posting.id),
    )
    window = Window(last.window_end if last is not None else None, end, through)
    row = models.SettlementMonth(
        month=str(month),
        window_start=window.start,
        window_end=window.end,
        rates=rates_text(rates),
        payments_through=through.payments_through,
        postings_through=through.postings_through,
        lines=0,
        closed_at=now,
        closed_by=by,
    )
    session.add(row)
    try:
        await session.flush()  # a second close of the month that got past the lock (SQLite) is refused here
    except IntegrityError:
        raise Conflict("month_closed", f"{month} is already closed") from None
    closed = await _closed_rates(session, but=str(month))
    lines = await commission_lines(session, window=window, rates=rates, closed=closed)
    step("commission")
    lines += await proceeds_lines(session, window=window)
    step("proceeds")
    lines += await wallet_lines(session, window=window)
    # The first close covers everything before it, payouts too.
    first_day = month.first_day if window.start is not None else FIRST_DAY
    lines += await payout_lines(session, first_day=first_day, last_day=month.last_day)
    step("wallet")
    if last is not None:
        lines += await _late_records(session, since=last, through=through, closed=closed, closing=str(month))
    lines += await _after_final(session, lines)
    step("adjustments")
    found = await match_month(session, month=month, now=now)
    await record_discrepancies(session, month=month, found=found, now=now)
    step("matching")
    lines = sort_lines(lines)
    await store_lines(session, document=str(month), lines=lines)
    row.lines = len(lines)
    step("store")
    return ClosedMonth(month, window, lines, 0, len(found))


async def _batch_memory(session: AsyncSession) -> None:
    """PostgreSQL, for this transaction only: month-sized joins and aggregates hash in memory instead of spilling to
    disk (the default work_mem is sized for many small queries); index lookups priced as on SSD, so a month is read
    through its indexes rather than whole history tables; no JIT, whose start-up costs seconds per large query."""
    if session.get_bind().dialect.name == "postgresql":
        await session.execute(text(f"SET LOCAL work_mem = '{BATCH_WORK_MEM}'"))
        await session.execute(text("SET LOCAL random_page_cost = 1.1"))
        await session.execute(text("SET LOCAL jit = off"))


async def _check_closable(session: AsyncSession, *, month: Month, now: datetime) -> models.SettlementMonth | None:
    """The month is over and is the next to close; the last closed month, if any."""
    _, end = month_bounds(month)
    if now < end + CLOSE_GRACE:
        opens = end + CLOSE_GRACE
        raise Conflict("month_not_over", f"{month} can be closed from {opens.astimezone(EXPO_TZ):%Y-%m-%d %H:%M}")
    last = await _last_closed(session)
    if last is None:
        return None
    closed = Month.parse(last.month)
    if month <= closed:
        first = await session.scalar(select(func.min(models.SettlementMonth.month)))
        raise Conflict(
            "month_closed",
            f"{month} is settled: the months through {closed} are closed (the first, {first}, from the beginning)",
            last_closed=str(closed),
        )
    if month != closed.next():
        raise Conflict(
            "month_out_of_order",
            f"months close in order: the next to close is {closed.next()}",
            next_month=str(closed.next()),
        )
    return last


async def _check_payouts_run(session: AsyncSession, *, month: Month) -> None:
    days = [month.first_day + timedelta(days=n) for n in range((month.last_day - month.first_day).days + 1)]
    last_working = max((day for day in days if is_working_day(day)), default=None)
    done = await session.scalar(select(func.max(models.PayoutRun.payout_day)))
    if last_working is not None and (done is None or done < last_working):
        raise Conflict(
            "payouts_not_run",
            f"run the payouts through {last_working} first (expo settle payouts)",
            through=last_working.isoformat(),
        )


async def _last_id(session: AsyncSession, column: InstrumentedAttribute[int]) -> int:
    return int(await session.scalar(select(func.coalesce(func.max(column), 0))) or 0)


async def _last_closed(session: AsyncSession) -> models.SettlementMonth | None:
    return await session.scalar(select(models.SettlementMonth).order_by(models.SettlementMonth.month.desc()).limit(1))


async def _closed_rates(session: AsyncSession, *, but: str) -> list[tuple[Window, CommissionRates]]:
    rows = await session.scalars(select(models.SettlementMonth).where(models.SettlementMonth.month != but))
    return [(Window(row.window_start, row.window_end), parse_rates(row.rates)) for row in rows]


async def _late_records(
    session: AsyncSession,
    *,
    since: models.SettlementMonth,
    through: Recorded,
    closed: list[tuple[Window, CommissionRates]],
    closing: str,
) -> list[Line]:
    """The records inserted since the last close but dated into a closed month, as lines correcting that month,
    each with that month's own rates. Each is carried once: the next close starts after this one's last ids."""
    late = replace(through, payments_after=since.payments_through, postings_after=since.postings_through)
    months = select(models.SettlementMonth).where(models.SettlementMonth.month != closing)
    carried: list[Line] = []
    for row in (await session.scalars(months.order_by(models.SettlementMonth.month))).all():
        window = Window(row.window_start, row.window_end, late)
        found = await commission_lines(session, window=window, rates=parse_rates(row.rates), closed=closed)
        found += await proceeds_lines(session, window=window)
        found += await wallet_lines(session, window=window)
        carried += [replace(line, adjusts=row.month) for line in found]
    return carried


async def _after_final(session: AsyncSession, lines: list[Line]) -> list[Line]:
    """Commission accrued after the final settlement (late refunds, adjustments) is settled directly in its month."""
    final = await session.get(models.CommissionFinal, 1)
    if final is None:
        return []
    return final_commission_lines(lines, through=f"{final.through_month}; settled in the month it accrued")


async def settle_commission_final(session: AsyncSession, *, now: datetime, by: str) -> list[Line]:
    """domain: the commission is settled once, after ticket sales ended, over every closed month; refused before
    the Expo's last month is closed, and a second time."""
    await lock_settlement(session)
    sales_end = datetime.combine(LAST_SALES_MONTH.next().first_day, datetime.min.time(), tzinfo=EXPO_TZ)
    if now < sales_end:
        raise Conflict("ticket_sales_not_ended", f"ticket sales end with {LAST_SALES_MONTH}; settle after it")
    last = await _last_closed(session)
    if last is None or Month.parse(last.month) < LAST_SALES_MONTH:
        raise Conflict(
            "months_not_closed",
            f"close every month through {LAST_SALES_MONTH} first",
            last_closed=last.month if last is not None else None,
        )
    session.add(models.CommissionFinal(id=1, through_month=last.month, settled_at=now, settled_by=by))
    try:
        await session.flush()
    except IntegrityError:
        raise Conflict("commission_already_final", "the commission has already been settled") from None
    lines = final_commission_lines(await _accrued(session), through=last.month)
    await store_lines(session, document=FINAL_DOCUMENT, lines=lines)
    return lines


async def accrued_commission(session: AsyncSession) -> list[Line]:
    """What the final settlement would pay, from the commission of the months closed so far (nothing is stored)."""
    last = await _last_closed(session)
    return final_commission_lines(await _accrued(session), through=last.month if last else "no closed month")


async def _accrued(session: AsyncSession) -> list[Line]:
    rows = await session.scalars(
        select(models.StatementLine).where(models.StatementLine.section == Section.COMMISSION.value)
    )
    return [line_of(row) for row in rows]
