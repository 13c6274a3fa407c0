"""The month's ticket commission (销售酬金) accrued per company, computed in the database.

A sale counts in the month its charge was settled; a void or refund counts, negated, in the month its money
went back. Each order's commission is its rate applied to the order amount, rounded half up to the fen, and
split 15 : 85 between Shanghai and the buyer's home province exactly as `reconciliation.rules` does it: the
arithmetic is done per order in SQL (integers only, on the positive amount, the reversal negated) and summed
with one GROUP BY, so a month of ten million tickets never comes into Python. `order_commission_parts` is the
same rule in pure Python, for checks and tests.

Months are Expo-local: a month runs from its first day 00:00 to the next month's first day 00:00, Asia/Shanghai.
"""

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, time, timedelta

from sqlalchemy import (
    BigInteger,
    ColumnElement,
    ColumnExpressionArgument,
    and_,
    case,
    cast,
    func,
    literal,
    select,
    union_all,
)
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from expo.clock import EXPO_TZ
from expo.provinces import SHANGHAI
from reconciliation.rules import (
    BASIS_POINTS,
    HOME_COMMISSION_WEIGHT,
    SHANGHAI_COMMISSION_WEIGHT,
    CommissionRates,
    Month,
    commission_fen,
    split_commission,
)
from reconciliation.statement_rules import Window
from ticketing.models import Order, Payment
from ticketing.rules import TicketType

CHARGE = "charge"
REVERSALS = ("void", "refund")  # the kinds ticketing.aftersales pays money back with
CONFIRMED = "confirmed"
_WEIGHTS = SHANGHAI_COMMISSION_WEIGHT + HOME_COMMISSION_WEIGHT


@dataclass(frozen=True)
class CommissionRow:
    """One company's commission for a month: the sales and reversals it takes a part of, and their parts.

    `commission_fen` is what it invoices the bureau for: `sales_commission_fen - reversed_commission_fen`;
    both gross figures are positive. Shanghai takes a part of every sale, a province of its own customers'.
    """

    company: str
    sales: int
    reversals: int
    sales_commission_fen: int
    reversed_commission_fen: int
    commission_fen: int


def product_rate_bp(product: str, rates: CommissionRates) -> int:
    """Ours: an order's rate is its ticket type's; a peak-day upgrade (no ticket type of its own) takes the default."""
    try:
        return rates.rate_bp(TicketType(product))
    except ValueError:
        return rates.default_bp


def order_commission_parts(
    *, amount_fen: int, product: str, home_province: str, rates: CommissionRates
) -> dict[str, int]:
    """One order's commission split among the companies; a reversal passes the negative amount."""
    commission = commission_fen(amount_fen, rate_bp=product_rate_bp(product, rates))
    return split_commission(commission, home_province=home_province)


def half_up_commission(amount_fen: ColumnExpressionArgument[int], rate_bp: ColumnElement[int]) -> ColumnElement[int]:
    """SQL for `rules.commission_fen` on a non-negative amount: integer half-up, in 64 bits (fen x bp overflows 32)."""
    return (cast(amount_fen, BigInteger) * rate_bp + BASIS_POINTS // 2) // BASIS_POINTS


def shanghai_part(commission: ColumnElement[int], home_province: ColumnElement[str]) -> ColumnElement[int]:
    """SQL for Shanghai's part of a non-negative commission in `rules.split_commission`: all of it for its own
    customers, else 15% rounded half up (largest remainder gives the odd fen to Shanghai exactly when 15% has
    a remainder of at least a half); the home province has the rest."""
    fifteen_percent = (commission * SHANGHAI_COMMISSION_WEIGHT + _WEIGHTS // 2) // _WEIGHTS
    return case((home_province == SHANGHAI, commission), else_=fifteen_percent)


def month_bounds(month: Month) -> tuple[datetime, datetime]:
    """The Expo-local instants a month starts at and ends before."""
    start = datetime.combine(month.first_day, time(0), tzinfo=EXPO_TZ)
    end = datetime.combine(month.last_day + timedelta(days=1), time(0), tzinfo=EXPO_TZ)
    return start, end


def month_window(month: Month) -> Window:
    """The window of exactly one month's records."""
    start, end = month_bounds(month)
    return Window(start, end)


def _rate_of(product: ColumnExpressionArgument[str], rates: CommissionRates) -> ColumnElement[int]:
    by_product = {t.value: rates.rate_bp(t) for t in TicketType if rates.rate_bp(t) != rates.default_bp}
    if not by_product:
        return literal(rates.default_bp, BigInteger)
    return case(by_product, value=product, else_=literal(rates.default_bp, BigInteger))


def settled_in(window: Window) -> list[ColumnElement[bool]]:
    """Confirmed charges, voids and refunds whose money moved inside the window."""
    conditions = [Payment.kind.in_((CHARGE, *REVERSALS)), Payment.status == CONFIRMED, Payment.settled_at < window.end]
    if window.start is not None:
        conditions.append(Payment.settled_at >= window.start)
    if window.recorded is not None:
        conditions.append(Payment.id <= window.recorded.payments_through)
        if window.recorded.payments_after is not None:
            conditions.append(Payment.id > window.recorded.payments_after)
    return conditions


def _movement_rate(rates: CommissionRates, closed: Sequence[tuple[Window, CommissionRates]]) -> ColumnElement[int]:
    """A sale's rate is the window's; a void or refund reverses its sale's commission exactly, so it takes the
    rate of the closed month its charge settled in, where that month's rates differ."""
    current = _rate_of(Order.product, rates)
    differing = [(window, then) for window, then in closed if then != rates]
    if not differing:
        return current
    charge = aliased(Payment)
    charged_at = (
        select(charge.settled_at).where(charge.order_id == Payment.order_id, charge.kind == CHARGE).scalar_subquery()
    )
    whens = [
        (
            charged_at < window.end
            if window.start is None
            else and_(charged_at >= window.start, charged_at < window.end),
            _rate_of(Order.product, then),
        )
        for window, then in differing
    ]
    # Nested, so the charge is looked up for reversals only.
    return case((Payment.kind == CHARGE, current), else_=case(*whens, else_=current))


async def accrue_commission(
    session: AsyncSession,
    *,
    window: Window,
    rates: CommissionRates,
    closed: Sequence[tuple[Window, CommissionRates]] = (),
) -> list[CommissionRow]:
    """The ticket commission per company of the payments settled in the window (a month's), sales and reversals
    netted; companies with none are left out. `closed` are the closed months' windows and rates, for reversals."""
    is_sale = Payment.kind == CHARGE
    movements = (
        select(
            Order.home_province.label("home"),
            case((is_sale, 1), else_=-1).label("sign"),
            half_up_commission(Order.amount_fen, _movement_rate(rates, closed)).label("commission"),
        )
        .join(Order, Order.id == Payment.order_id)
        .where(*settled_in(window))
        .cte("movements")
    )
    split = select(
        movements.c.home,
        movements.c.sign,
        movements.c.commission,
        shanghai_part(movements.c.commission, movements.c.home).label("shanghai"),
    ).cte("split")
    parts = union_all(
        select(literal(SHANGHAI).label("company"), split.c.sign, split.c.shanghai.label("part")),
        select(split.c.home, split.c.sign, (split.c.commission - split.c.shanghai).label("part")).where(
            split.c.home != SHANGHAI
        ),
    ).subquery("parts")
    is_sale_part = parts.c.sign == 1
    query = (
        select(
            parts.c.company,
            func.sum(case((is_sale_part, 1), else_=0)),
            func.sum(case((is_sale_part, 0), else_=1)),
            func.sum(case((is_sale_part, parts.c.part), else_=0)),
            func.sum(case((is_sale_part, 0), else_=parts.c.part)),
        )
        .group_by(parts.c.company)
        .order_by(parts.c.company)
    )
    rows = (await session.execute(query)).all()
    return [
        CommissionRow(
            company=str(company),
            sales=int(sales),
            reversals=int(reversals),
            sales_commission_fen=int(sold),
            reversed_commission_fen=int(reversed_),
            commission_fen=int(sold) - int(reversed_),
        )
        for company, sales, reversals, sold, reversed_ in rows
    ]
