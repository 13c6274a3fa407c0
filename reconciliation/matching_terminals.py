"""Matching hall terminal day closes against the server's sales, in the database.

A close (`ticketing.terminal_batches`) compared the terminal's upload with the server's records of the terminal
at close time and stored both totals and their differences. Matching a month reports the stored differences of
its closes, the hall sales no close covers (the terminal never closed that day), and the closes whose server
totals no longer hold: the records of the closed interval changed, or a closed sale was voided afterwards from
another device. Only the differing closes and sales are read into Python.
"""

from collections.abc import Sequence
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import (
    JSON,
    ColumnElement,
    SQLColumnExpression,
    Subquery,
    and_,
    cast,
    exists,
    func,
    literal,
    or_,
    select,
    type_coerce,
)
from sqlalchemy.ext.asyncio import AsyncSession

from expo.access.models import Credential
from expo.access.rules import Role
from expo.db import UtcDateTime
from reconciliation import matching_rules as rules
from reconciliation.commission import month_bounds
from reconciliation.matching_rules import DiscrepancyFound
from reconciliation.rules import Month
from ticketing.card_models import CardWrite
from ticketing.models import Order, OrderEvent, Payment
from ticketing.sales_rules import OrderStatus
from ticketing.terminal_batch_rules import LineType
from ticketing.terminal_batches import TerminalBatch, discrepancies_of, totals_of_batch

_VOID = OrderStatus.VOID.value
_BEGINNING = datetime(1970, 1, 1, tzinfo=UTC)  # before any record


async def match_terminal_batches(session: AsyncSession, *, month: Month, now: datetime) -> list[DiscrepancyFound]:
    """The lines the day closes of the month disagreed on, the hall sales no close covers, and the closes the
    server's records no longer agree with."""
    start, end = month_bounds(month)
    found: list[DiscrepancyFound] = []
    closes = (
        select(TerminalBatch, Credential.label, Credential.hall, Credential.province_code)
        .join(Credential, Credential.id == TerminalBatch.credential_id)
        .where(TerminalBatch.closed_at >= start, TerminalBatch.closed_at < end, TerminalBatch.matched.is_(False))
        .order_by(TerminalBatch.closed_at, TerminalBatch.id)
    )
    for batch, label, hall, province in await session.execute(closes):
        facts = rules.BatchFacts(label, hall, province, batch.batch_no, batch.closed_at)
        found += [
            rules.terminal_line(
                facts,
                kind=d.kind.value,
                line_type=d.line_type.value,
                ref=d.ref,
                terminal_fen=d.terminal_fen,
                platform_fen=d.platform_fen,
            )
            for d in discrepancies_of(batch)
        ]
    found += await _sales_not_closed(session, start=start, end=end, now=now)
    return found + await _batches_changed(session, start=start, end=end)


async def _sales_not_closed(
    session: AsyncSession, *, start: datetime, end: datetime, now: datetime
) -> list[DiscrepancyFound]:
    covered = exists().where(
        TerminalBatch.credential_id == Order.credential_id, TerminalBatch.closed_at >= Order.created_at
    )
    query = (
        select(Order.id, Credential.label, Order.hall, Order.sale_province, Order.amount_fen, Order.created_at)
        .join(Credential, Credential.id == Order.credential_id)
        .join(Payment, and_(Payment.order_id == Order.id, Payment.kind == "charge"))
        .where(
            Credential.role == Role.HALL_TERMINAL.value,
            Payment.status == "confirmed",
            Payment.settled_at >= start,
            Payment.settled_at < end,
            Order.created_at < rules.close_due_before(now),
            ~covered,
        )
        .order_by(Order.id)
    )
    return [
        rules.sale_not_closed(
            order_id=order_id, terminal=label, hall=hall, province=province, amount_fen=amount, sold_at=sold_at
        )
        for order_id, label, hall, province, amount, sold_at in await session.execute(query)
    ]


def _stored_total(
    session: AsyncSession, raw: SQLColumnExpression[str], line_type: LineType, index: int
) -> ColumnElement[Decimal]:
    """One figure of a close's stored totals ({type: [count, fen]} as JSON), read in the database."""
    document = cast(raw, JSON) if session.get_bind().dialect.name == "postgresql" else type_coerce(raw, JSON)
    figure: ColumnElement[Decimal] = document[(line_type.value, index)].as_numeric(20, 0)
    return figure


def _per_close(
    closes: Subquery, name: str, figures: Sequence[ColumnElement[Any]], *joins: tuple[Any, ColumnElement[bool]]
) -> Subquery:
    """Each close's figures over the records the joins reach from it (closes reaching none are absent)."""
    query = select(closes.c.id.label("close_id"), *figures).select_from(closes)
    for target, on in joins:
        query = query.join(target, on)
    return query.group_by(closes.c.id).subquery(name)


async def _batches_changed(session: AsyncSession, *, start: datetime, end: datetime) -> list[DiscrepancyFound]:
    """The closes of the month whose stored server totals differ from the server's records of their interval now,
    or one of whose sales was voided after the close from another device."""
    # A terminal's first close covers everything before it: its interval starts at the beginning of time, so
    # each interval is one range (since, closed_at] of an index on (credential, time).
    since = func.coalesce(TerminalBatch.since, literal(_BEGINNING, UtcDateTime()))
    closes = (
        select(TerminalBatch.id, TerminalBatch.credential_id, since.label("since"), TerminalBatch.closed_at)
        .where(TerminalBatch.closed_at >= start, TerminalBatch.closed_at < end)
        .subquery("closes")
    )

    def during(at: SQLColumnExpression[datetime | None]) -> ColumnElement[bool]:
        return and_(at > closes.c.since, at <= closes.c.closed_at)

    counted = (func.count().label("n"), func.sum(Order.amount_fen).label("fen"))
    sold = and_(Order.credential_id == closes.c.credential_id, during(Order.created_at))
    is_void = OrderEvent.event == _VOID
    sales = _per_close(closes, "sales", counted, (Order, sold))
    voids = _per_close(
        closes,
        "voids",
        counted,
        (OrderEvent, and_(OrderEvent.credential_id == closes.c.credential_id, is_void, during(OrderEvent.at))),
        (Order, Order.id == OrderEvent.order_id),
    )
    elsewhere = _per_close(
        closes,
        "elsewhere",
        counted,
        (Order, sold),
        (
            OrderEvent,
            and_(
                OrderEvent.order_id == Order.id,
                is_void,
                OrderEvent.at > closes.c.closed_at,
                OrderEvent.credential_id.is_distinct_from(closes.c.credential_id),
            ),
        ),
    )
    writes = _per_close(
        closes,
        "writes",
        (func.count().label("n"),),
        (CardWrite, and_(CardWrite.credential_id == closes.c.credential_id, during(CardWrite.confirmed_at))),
    )
    now = [
        func.coalesce(sales.c.n, 0),
        func.coalesce(sales.c.fen, 0),
        func.coalesce(voids.c.n, 0),
        func.coalesce(voids.c.fen, 0),
        func.coalesce(writes.c.n, 0),
    ]
    stored = [
        _stored_total(session, TerminalBatch.platform_totals, line_type, index)
        for line_type, index in ((LineType.SALE, 0), (LineType.SALE, 1), (LineType.VOID, 0), (LineType.VOID, 1))
    ] + [_stored_total(session, TerminalBatch.platform_totals, LineType.WRITE, 0)]
    query = (
        select(
            TerminalBatch,
            Credential.label,
            Credential.hall,
            Credential.province_code,
            *now,
            func.coalesce(elsewhere.c.n, 0),
            func.coalesce(elsewhere.c.fen, 0),
        )
        .join(closes, closes.c.id == TerminalBatch.id)
        .join(Credential, Credential.id == TerminalBatch.credential_id)
        .outerjoin(sales, sales.c.close_id == TerminalBatch.id)
        .outerjoin(voids, voids.c.close_id == TerminalBatch.id)
        .outerjoin(writes, writes.c.close_id == TerminalBatch.id)
        .outerjoin(elsewhere, elsewhere.c.close_id == TerminalBatch.id)
        .where(or_(func.coalesce(elsewhere.c.n, 0) > 0, *(a != b for a, b in zip(stored, now, strict=True))))
        .order_by(TerminalBatch.closed_at, TerminalBatch.id)
    )
    found = []
    for batch, label, hall, province, *figures in await session.execute(query):
        totals = totals_of_batch(batch.platform_totals)
        closed = rules.Totals(
            totals[LineType.SALE].count,
            totals[LineType.SALE].amount_fen,
            totals[LineType.VOID].count,
            totals[LineType.VOID].amount_fen,
            totals[LineType.WRITE].count,
        )
        sales_n, sales_fen, voids_n, voids_fen, writes_n, later_n, later_fen = (int(f) for f in figures)
        change = rules.batch_changed(
            rules.BatchFacts(label, hall, province, batch.batch_no, batch.closed_at),
            closed=closed,
            now=rules.Totals(sales_n, sales_fen, voids_n, voids_fen, writes_n),
            voided_elsewhere=later_n,
            voided_elsewhere_fen=later_fen,
        )
        if change is not None:
            found.append(change)
    return found
