"""Closing a settlement month, and the final commission settlement after ticket sales ended.

Months close in order, each covering the records from the previous close's end to its own end (the first from the
beginning), so no record is settled twice or left out. Closing a month runs the T+1 payouts of its days, computes
its ticket and wallet lines, carries any later change to an already closed month into it as adjustments, records
the matching report, and freezes it all: a closed month is never computed again, only compared.

Lock order: the month's row is inserted first, so two closes of one month serialise and the second is refused.
"""

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from expo.clock import EXPO_TZ
from expo.errors import Conflict
from reconciliation import models
from reconciliation.calendar import is_working_day
from reconciliation.commission import month_bounds
from reconciliation.documents import adjustment_lines, line_of, store_lines, stored_lines
from reconciliation.matching import match_month, record_discrepancies
from reconciliation.payouts import payout_lines, run_payouts
from reconciliation.rules import CommissionRates, Month, parse_rates, rates_text
from reconciliation.statement_rules import FINAL_DOCUMENT, Line, Section, Window, adjustments, sort_lines
from reconciliation.ticket_lines import commission_lines, final_commission_lines, proceeds_lines
from reconciliation.wallet_lines import wallet_lines

# The steps of a close, for a progress bar; the payouts add one step per payout day.
STEPS = ("commission", "proceeds", "wallet", "adjustments", "matching", "store")
LAST_SALES_MONTH = Month(2010, 10)  # domain: the Expo closed on 2010-10-31; ticket sales ended with it

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
    """How many progress steps closing a month takes: its working days (payouts) and the fixed steps."""
    days = (month.last_day - month.first_day).days + 1
    return sum(is_working_day(month.first_day + timedelta(days=n)) for n in range(days)) + len(STEPS)


async def close_month(
    session: AsyncSession,
    *,
    month: Month,
    rates: CommissionRates,
    now: datetime,
    by: str,
    progress: Progress | None = None,
) -> ClosedMonth:
    """Settle a month once it is over: refused if it is closed, not over, or not the month after the last closed."""
    step = progress or (lambda _name: None)
    _, end = month_bounds(month)
    if now < end:
        raise Conflict("month_not_over", f"{month} is not over yet: it can be closed from {end:%Y-%m-%d %H:%M}")
    last = await _last_closed(session)
    if last is not None:
        await _check_order(session, month=month, last=last)
    window = Window(last.window_end if last is not None else None, end)
    row = models.SettlementMonth(
        month=str(month),
        window_start=window.start,
        window_end=window.end,
        rates=rates_text(rates),
        lines=0,
        closed_at=now,
        closed_by=by,
    )
    session.add(row)
    try:
        await session.flush()  # the month's row first: a second close of it waits here, then is refused
    except IntegrityError:
        raise Conflict("month_closed", f"{month} is already closed") from None
    runs = await run_payouts(
        session, from_day=month.first_day, through=month.last_day, now=now, on_day=lambda day: step(f"payouts {day}")
    )
    lines = await commission_lines(session, window=window, rates=rates)
    step("commission")
    lines += await proceeds_lines(session, window=window)
    step("proceeds")
    lines += await wallet_lines(session, window=window)
    lines += await payout_lines(session, first_day=month.first_day, last_day=month.last_day)
    step("wallet")
    lines += await _adjustments(session, month=month)
    lines += await _after_final(session, lines)
    step("adjustments")
    found = await match_month(session, month=month, now=now)
    await record_discrepancies(session, month=month, found=found, now=now)
    step("matching")
    lines = sort_lines(lines)
    await store_lines(session, document=str(month), lines=lines)
    row.lines = len(lines)
    step("store")
    return ClosedMonth(month, window, lines, len(runs), len(found))


async def _last_closed(session: AsyncSession) -> models.SettlementMonth | None:
    return await session.scalar(select(models.SettlementMonth).order_by(models.SettlementMonth.month.desc()).limit(1))


async def _check_order(session: AsyncSession, *, month: Month, last: models.SettlementMonth) -> None:
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


async def live_lines(session: AsyncSession, *, window: Window, rates: CommissionRates) -> list[Line]:
    """What a window's records give now: the lines a close computes, but the payouts (facts once made)."""
    lines = await commission_lines(session, window=window, rates=rates)
    lines += await proceeds_lines(session, window=window)
    return lines + await wallet_lines(session, window=window)


async def _adjustments(session: AsyncSession, *, month: Month) -> list[Line]:
    """Each closed month's records computed again with its own rates; what changed since is carried into `month`."""
    carried: list[Line] = []
    for closed in (await session.scalars(select(models.SettlementMonth).order_by(models.SettlementMonth.month))).all():
        if closed.month == str(month):
            continue
        window = Window(closed.window_start, closed.window_end)
        live = await live_lines(session, window=window, rates=parse_rates(closed.rates))
        frozen = [line for line in await stored_lines(session, document=closed.month) if line.adjusts is None]
        frozen = [line for line in frozen if line.section not in _FACTS]
        adjusted = await adjustment_lines(session, of=closed.month)
        basis = f"records of {closed.month} ({window}) that changed after it closed on {closed.closed_at:%Y-%m-%d}"
        carried += adjustments(month=closed.month, live=live, frozen=frozen, adjusted=adjusted, basis=basis)
    return carried


# Lines that record what was done (payouts made, the final settlement) rather than what the records say.
_FACTS = frozenset({Section.MERCHANT_PAYOUTS, Section.COMMISSION_SETTLEMENT})


async def _after_final(session: AsyncSession, lines: list[Line]) -> list[Line]:
    """Commission accrued after the final settlement (late refunds, adjustments) is settled directly in its month."""
    final = await session.get(models.CommissionFinal, 1)
    if final is None:
        return []
    return final_commission_lines(lines, through=f"{final.through_month}; settled in the month it accrued")


async def settle_commission_final(session: AsyncSession, *, now: datetime, by: str) -> list[Line]:
    """domain: the commission is settled once, after ticket sales ended, over every closed month; refused before
    the Expo's last month is closed, and a second time."""
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
