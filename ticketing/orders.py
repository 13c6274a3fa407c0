"""Reading orders: one order with its tickets and payments, and a province-scoped list."""

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from expo.access.rules import Principal, Role
from expo.clock import EXPO_TZ
from expo.errors import NotFound
from ticketing.models import Order, OrderEvent, Payment, Ticket

# Order ids are INTEGER; a larger number names no order and must not reach the database driver.
MAX_ORDER_ID = 2**31 - 1


@dataclass(frozen=True)
class OrderView:
    """An order as its reader sees it."""

    order: Order
    tickets: list[Ticket]
    payments: list[Payment]


def may_see(reader: Principal, order: Order) -> bool:
    """Sellers see their province's sales; the web front and couriers see only orders they can act on."""
    if reader.role == Role.ADMIN:
        return reader.sees_province(order.sale_province)
    if reader.role == Role.WEB:
        return order.credential_id == reader.credential_id
    if reader.role == Role.COURIER:
        return order.carrier == "physical"
    return reader.province_code is not None and reader.province_code == order.sale_province


async def load_order(session: AsyncSession, *, reader: Principal, order_id: int) -> Order:
    """The order if the reader may see it; otherwise `order_not_found` (its existence is not revealed)."""
    order = await session.get(Order, order_id) if 0 < order_id <= MAX_ORDER_ID else None
    return _visible(order, reader=reader, order_id=order_id)


async def lock_order(session: AsyncSession, *, actor: Principal | None, order_id: int) -> Order:
    """The order, row-locked for a state change; `actor` None is the system itself."""
    if not 0 < order_id <= MAX_ORDER_ID:
        raise NotFound("order_not_found", f"no order {order_id}")
    order = await session.scalar(select(Order).where(Order.id == order_id).with_for_update())
    if actor is None and order is not None:
        return order
    return _visible(order, reader=actor, order_id=order_id)


def _visible(order: Order | None, *, reader: Principal | None, order_id: int) -> Order:
    if order is None or reader is None or not may_see(reader, order):
        raise NotFound("order_not_found", f"no order {order_id}")
    return order


async def order_parts(session: AsyncSession, order: Order) -> OrderView:
    """The order with its tickets and payments."""
    tickets = (await session.scalars(select(Ticket).where(Ticket.order_id == order.id).order_by(Ticket.id))).all()
    payments = (await session.scalars(select(Payment).where(Payment.order_id == order.id).order_by(Payment.id))).all()
    return OrderView(order=order, tickets=list(tickets), payments=list(payments))


async def get_order(session: AsyncSession, *, reader: Principal, order_id: int) -> OrderView:
    """One order with its tickets and payments, if the reader may see it."""
    return await order_parts(session, await load_order(session, reader=reader, order_id=order_id))


async def order_history(session: AsyncSession, *, reader: Principal, order_id: int) -> list[OrderEvent]:
    """Every recorded state change of an order, oldest first."""
    order = await load_order(session, reader=reader, order_id=order_id)
    return list(
        (await session.scalars(select(OrderEvent).where(OrderEvent.order_id == order.id).order_by(OrderEvent.id))).all()
    )


async def find_orders(
    session: AsyncSession, *, reader: Principal, msisdn: str | None, since: datetime | None, limit: int
) -> list[Order]:
    """Recent orders the reader may see, newest first, optionally for one phone number.

    A `since` without a zone is Expo time (Asia/Shanghai), like every other wall-clock time of the Expo.
    """
    query = select(Order).order_by(Order.id.desc()).limit(limit)
    if reader.role == Role.WEB:
        query = query.where(Order.credential_id == reader.credential_id)
    elif reader.province_code is not None:
        query = query.where(Order.sale_province == reader.province_code)
    if msisdn is not None:
        query = query.where(Order.msisdn == msisdn)
    if since is not None:
        query = query.where(Order.created_at >= (since if since.tzinfo else since.replace(tzinfo=EXPO_TZ)))
    return list((await session.scalars(query)).all())
