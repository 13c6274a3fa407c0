"""The month's ticket commission per company, accrued in SQL, against an independent computation with the rules.

A June and a July of mixed sales are sold through the real API (two provinces' halls, cash and bank card;
12580 credit card and cash on delivery; web online banking and wallet) to buyers of six provinces; some are
voided the same day, some refunded in the same month or the next. Each month's rows must equal, to the fen,
what `reconciliation.rules` gives over the payments read back.
"""

from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime

import pytest
from sqlalchemy import BigInteger, Integer, literal, literal_column, select, true, union_all

from expo.clock import EXPO_TZ, expo_local
from expo.db import Database
from expo.provinces import SHANGHAI
from reconciliation.commission import (
    CommissionRow,
    accrue_commission,
    half_up_commission,
    month_window,
    order_commission_parts,
    product_rate_bp,
    shanghai_part,
)
from reconciliation.rules import CommissionRates, Month, commission_fen, split_commission
from tests.integration.conftest import Service, hall_sale
from tests.integration.reconciliation.month_data import Sellers, buyer, sell_two_months
from ticketing.models import Order, Payment
from ticketing.rules import TicketType

JUNE, JULY = Month(2010, 6), Month(2010, 7)
# Odd rates, so that most amounts round; evening tickets carry no commission at all.
RATES = CommissionRates(default_bp=333, by_type={TicketType.PEAK: 275, TicketType.PASS_7: 1, TicketType.EVENING: 0})
PROVINCES = ("31", "11", "44", "51", "65", "15")


@dataclass
class _Expected:
    sales: int = 0
    reversals: int = 0
    sold: int = 0
    reversed: int = 0


async def _expected(db: Database, month: Month) -> tuple[list[CommissionRow], int]:
    """The month's rows from the rules over every payment read back, and the sum of its orders' commissions."""
    async with db.read() as session:
        rows = (await session.execute(select(Payment, Order).join(Order, Order.id == Payment.order_id))).all()
    companies: dict[str, _Expected] = defaultdict(_Expected)
    whole = 0
    for payment, order in rows:
        if payment.status != "confirmed" or payment.settled_at is None:
            continue
        if expo_local(payment.settled_at).date() not in month:
            continue
        sign = {"charge": 1, "void": -1, "refund": -1}[payment.kind]
        commission = commission_fen(sign * order.amount_fen, rate_bp=RATES.rate_bp(TicketType(order.product)))
        whole += commission
        parts = split_commission(commission, home_province=order.home_province)
        for company in {SHANGHAI, order.home_province}:
            entry = companies[company]
            part = parts.get(company, 0)
            if sign > 0:
                entry.sales, entry.sold = entry.sales + 1, entry.sold + part
            else:
                entry.reversals, entry.reversed = entry.reversals + 1, entry.reversed - part
    expected = [
        CommissionRow(company, e.sales, e.reversals, e.sold, e.reversed, e.sold - e.reversed)
        for company, e in sorted(companies.items())
    ]
    return expected, whole


async def _accrue(db: Database, month: Month) -> list[CommissionRow]:
    async with db.read() as session:
        return await accrue_commission(session, window=month_window(month), rates=RATES)


async def _settled_month(db: Database, order_id: int) -> list[tuple[str, str]]:
    async with db.read() as session:
        rows = await session.execute(select(Payment.kind, Payment.settled_at).where(Payment.order_id == order_id))
        return [(kind, str(Month.of(expo_local(at).date()))) for kind, at in rows.all()]


async def test_each_month_matches_the_rules_to_the_fen(service: Service, clerk: dict[str, str]) -> None:
    named = await sell_two_months(service, clerk)
    assert await _settled_month(service.db, named["last_of_june"]) == [("charge", "2010-06")]
    assert await _settled_month(service.db, named["first_of_july"]) == [("charge", "2010-07")]
    assert sorted(await _settled_month(service.db, named["bj_refunded_in_july"])) == [
        ("charge", "2010-06"),
        ("refund", "2010-07"),
    ]

    for month in (JUNE, JULY):
        expected, whole = await _expected(service.db, month)
        accrued = await _accrue(service.db, month)
        assert accrued == expected, month
        assert sum(row.commission_fen for row in accrued) == whole
        assert {row.company for row in accrued} == set(PROVINCES), month
        assert next(row for row in accrued if row.company == SHANGHAI).reversals > 0, month


async def test_a_month_without_sales_has_no_rows(service: Service, clerk: dict[str, str]) -> None:
    s = Sellers(service)
    await s.at(datetime(2010, 6, 1, 10, 0, tzinfo=EXPO_TZ))
    await s.sell("sh", hall_sale(buyer("44", 1)))
    assert await _accrue(service.db, Month(2010, 5)) == []
    assert await _accrue(service.db, Month(2010, 8)) == []
    assert await _accrue(service.db, Month(2011, 3)) == []  # the last month has no "next" month to bound it
    assert [row.company for row in await _accrue(service.db, JUNE)] == [SHANGHAI, "44"]


_SWEEP_RATES = (0, 1, 3, 7, 15, 99, 275, 333, 2500, 3333, 9999, 10_000)
_SWEEP_STEPS = 20_000


async def test_the_sql_rounding_and_split_are_the_rules(db: Database) -> None:
    """Every fen from 0 to 200.00 yuan and every 37 fen up to 7,400 yuan, at odd rates, on this backend."""
    step = select(literal(0, BigInteger).label("x")).cte("step", recursive=True)
    step = step.union_all(select(step.c.x + 1).where(step.c.x < _SWEEP_STEPS))
    amounts = union_all(select(step.c.x.label("amount")), select((step.c.x * 37).label("amount"))).subquery()
    rates = union_all(*(select(literal(bp, Integer).label("bp")) for bp in _SWEEP_RATES)).subquery()
    commission = half_up_commission(amounts.c.amount, rates.c.bp)
    query = select(
        amounts.c.amount,
        rates.c.bp,
        commission,
        shanghai_part(commission, literal_column("'44'")),
        shanghai_part(commission, literal_column("'31'")),
    ).select_from(amounts.join(rates, true()))
    async with db.read() as session:
        rows = (await session.execute(query)).all()
    assert len(rows) == 2 * (_SWEEP_STEPS + 1) * len(_SWEEP_RATES)
    for amount, bp, sql_commission, sql_shanghai, sql_shanghai_own in rows:
        assert sql_commission == commission_fen(amount, rate_bp=bp), (amount, bp)
        assert -sql_commission == commission_fen(-amount, rate_bp=bp), (amount, bp)
        parts = split_commission(sql_commission, home_province="44")
        assert (sql_shanghai, sql_commission - sql_shanghai) == (parts.get(SHANGHAI, 0), parts.get("44", 0))
        assert sql_shanghai_own == split_commission(sql_commission, home_province=SHANGHAI).get(SHANGHAI, 0)


@pytest.mark.parametrize("amount", [0, 1, 9_000, 16_000, 48_000, 90_000, 450_000, -16_000, -450_000])
@pytest.mark.parametrize("home", ["31", "44"])
def test_an_orders_parts_sum_to_its_commission(amount: int, home: str) -> None:
    for product in [*TicketType, "peak_upgrade"]:
        parts = order_commission_parts(amount_fen=amount, product=product, home_province=home, rates=RATES)
        assert sum(parts.values()) == commission_fen(amount, rate_bp=product_rate_bp(product, RATES))
    assert product_rate_bp("peak_upgrade", RATES) == RATES.default_bp
    assert product_rate_bp("peak", RATES) == 275
