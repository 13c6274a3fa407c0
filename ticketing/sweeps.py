"""Resolution of unpaid orders: ask the bank about silent payments, expire what is overdue, and apply the
late answers that arrive by themselves (the bank's notifications, the buyer's wallet code).

Each order is handled in its own short transaction under its row lock, so several workers (or the
`expo orders sweep` command) can sweep at once without doing anything twice.
"""

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from expo.access.rules import Principal
from expo.bank import BankGateway, BankResult, BankStatus, BankTimeout
from expo.db import Database
from expo.errors import Conflict, ExpoError
from ticketing import wallet_payments
from ticketing.aftersales import (
    charge_of,
    confirm_wallet_payment,
    expire_order,
    orders_due,
    settle_bank_answer,
    wallet_order,
)
from ticketing.models import Order, Payment
from ticketing.orders import OrderView, lock_order
from ticketing.sales_rules import GATEWAY_METHODS, OrderStatus, PaymentMethod

log = logging.getLogger("expo.sweeps")

# A payment the bank has not confirmed after this long is asked about.
QUERY_AFTER = timedelta(minutes=1)


@dataclass
class SweepReport:
    """What one sweep did."""

    paid: int = 0
    expired: int = 0


async def sweep_unpaid(db: Database, *, bank: BankGateway, now: datetime, batch: int = 200) -> SweepReport:
    """Resolve waiting bank payments by query and expire orders past their window."""
    report = SweepReport()
    async with db.read() as session:
        waiting = list(
            (
                await session.scalars(
                    select(Order.id)
                    .where(
                        Order.status == OrderStatus.AWAITING_PAYMENT.value,
                        Order.created_at <= now - QUERY_AFTER,
                    )
                    .order_by(Order.id)
                    .limit(batch)
                )
            ).all()
        )
        due = await orders_due(session, now=now, limit=batch)
    for order_id in sorted(set(waiting) | set(due)):
        try:
            await _resolve(db, order_id=order_id, bank=bank, now=now, report=report)
        except Exception:
            # One order's trouble (a bank fault, say) must not stop the others; it is retried next sweep.
            log.exception("could not resolve unpaid order %s", order_id)
    return report


async def _resolve(db: Database, *, order_id: int, bank: BankGateway, now: datetime, report: SweepReport) -> None:
    async with db.write() as session:
        order = await lock_order(session, actor=None, order_id=order_id)
        if order.status not in (OrderStatus.AWAITING_PAYMENT, OrderStatus.AWAITING_DELIVERY):
            return
        if PaymentMethod(order.payment_method) in GATEWAY_METHODS:
            result = await _ask_bank(session, bank=bank, order=order)
            await settle_bank_answer(session, order=order, result=result, bank=bank, now=now)
            if order.status == OrderStatus.PAID:
                report.paid += 1
                return
            if order.status != OrderStatus.AWAITING_PAYMENT:
                report.expired += 1
                return
        if order.expires_at is not None and order.expires_at <= now:
            await expire_order(session, order=order, now=now, reason="not paid within its window")
            report.expired += 1


async def _ask_bank(session: AsyncSession, *, bank: BankGateway, order: Order) -> BankResult:
    charge = await session.scalar(select(Payment).where(Payment.order_id == order.id, Payment.kind == "charge"))
    if charge is None or charge.masked_account is None:
        return BankResult(BankStatus.PENDING)
    try:
        return await bank.query(reference=charge.reference, account=charge.masked_account)
    except BankTimeout:
        return BankResult(BankStatus.PENDING)


async def apply_bank_notification(
    db: Database,
    *,
    reference: str,
    status: BankStatus,
    bank_ref: str | None,
    bank: BankGateway,
    now: datetime,
) -> str:
    """A bank's signed notification about one charge; returns the order's status afterwards."""
    async with db.write() as session:
        order_id = await session.scalar(
            select(Payment.order_id).where(Payment.reference == reference, Payment.kind == "charge")
        )
        if order_id is None:
            raise ExpoError("unknown_reference", f"no charge with reference {reference}", status=404)
        order = await lock_order(session, actor=None, order_id=order_id)
        await settle_bank_answer(session, order=order, result=BankResult(status, bank_ref=bank_ref), bank=bank, now=now)
        return order.status


async def apply_wallet_code(db: Database, *, actor: Principal, order_id: int, code: str, now: datetime) -> OrderView:
    """The buyer's texted code for a held wallet payment: right, the order is paid; wrong, the try counts;
    too late (the code or the hold expired), the order expires and its hold and stock are released."""
    async with db.read() as session:
        view = await wallet_order(session, actor=actor, order_id=order_id)
    order = view.order
    if order.status == OrderStatus.AWAITING_PAYMENT:
        late = order.expires_at is not None and order.expires_at <= now
        if not late:
            try:
                await wallet_payments.use_order_code(
                    db, charge=charge_of(view), msisdn=order.msisdn, digits=code, now=now
                )
            except ExpoError as exc:
                if exc.code != "code_expired":
                    raise  # a wrong code (counted), a used or exhausted one: the order keeps waiting
                late = True
        if late:
            await _expire_unconfirmed(db, order_id=order.id, now=now)
            raise Conflict("order_expired", f"order {order.id} was not confirmed in time; it has expired")
    async with db.write() as session:
        return await confirm_wallet_payment(session, actor=actor, order_id=order.id, now=now)


async def _expire_unconfirmed(db: Database, *, order_id: int, now: datetime) -> None:
    # Its own transaction: the expiry stands although the request that found it is refused.
    async with db.write() as session:
        order = await lock_order(session, actor=None, order_id=order_id)
        if order.status == OrderStatus.AWAITING_PAYMENT:
            await expire_order(session, order=order, now=now, reason="the wallet code was not confirmed in time")
