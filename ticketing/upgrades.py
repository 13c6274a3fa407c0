"""Selling the October peak-day upgrade: +40 yuan lets a standard ticket in on one peak day.

An upgrade is its own paid order (so it settles and reverses like any sale), linked to the ticket it
upgrades and taking one place of that peak day's stock. It is sold at the service-hall counter.
"""

from datetime import date, datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from expo.access.rules import Principal
from expo.clock import expo_local
from expo.errors import Conflict, ExpoError, Forbidden, NotFound
from expo.provinces import normalize_msisdn
from ticketing import stock
from ticketing.journal import record_event
from ticketing.models import Order, Payment, Ticket
from ticketing.orders import MAX_ORDER_ID, OrderView
from ticketing.rules import UPGRADE_PRICE_FEN, check_upgrade, ticket_kind
from ticketing.sales import PaymentDetails, check_payment_details, payment_reference
from ticketing.sales_rules import METHODS, Channel, OrderStatus, TicketStatus, channel_for

UPGRADE_PRODUCT = "peak_upgrade"


async def sell_upgrade(
    session: AsyncSession,
    *,
    seller: Principal,
    idempotency_key: str,
    ticket_id: int,
    msisdn: str,
    day: date,
    payment: PaymentDetails,
    now: datetime,
) -> OrderView:
    """Upgrade the holder's unused standard ticket for one peak day from October, paid at the hall counter."""
    if channel_for(seller.role) != Channel.HALL:
        raise Forbidden("upgrade_at_hall_only", "peak-day upgrades are sold at the service-hall counter")
    if payment.method not in METHODS[Channel.HALL]:
        raise ExpoError("payment_method_not_allowed", f"the hall does not take {payment.method}")
    check_payment_details(payment)
    number = normalize_msisdn(msisdn)
    ticket = await _holders_ticket(session, ticket_id=ticket_id, msisdn=number)
    if ticket.status != TicketStatus.ISSUED:
        raise Conflict("ticket_not_upgradable", f"ticket {ticket.id} is {ticket.status}")
    if ticket.upgrade_day is not None:
        raise Conflict("already_upgraded", f"ticket {ticket.id} is already upgraded for {ticket.upgrade_day}")
    check_upgrade(kind=ticket_kind(ticket.ticket_type), upgrade_day=day, today=expo_local(now).date())
    await stock.ensure_available(session, day=day, quantity=1)

    order = Order(
        credential_id=seller.credential_id,
        idempotency_key=idempotency_key,
        channel=Channel.HALL.value,
        sale_province=seller.province_code or ticket.home_province,
        hall=seller.hall,
        staff_id=seller.staff_id,
        msisdn=number,
        home_province=ticket.home_province,
        product=UPGRADE_PRODUCT,
        visit_day=day,
        quantity=1,
        unit_price_fen=UPGRADE_PRICE_FEN,
        amount_fen=UPGRADE_PRICE_FEN,
        carrier=ticket.carrier,
        payment_method=payment.method.value,
        status=OrderStatus.PAID.value,
        upgrade_ticket_id=ticket.id,
        created_at=now,
        paid_at=now,
    )
    session.add(order)
    await session.flush()
    charge = Payment(
        order_id=order.id,
        kind="charge",
        method=payment.method.value,
        amount_fen=UPGRADE_PRICE_FEN,
        status="confirmed",
        reference=payment_reference(credential_id=seller.credential_id, idempotency_key=idempotency_key),
        external_ref=payment.approval_code,
        created_at=now,
        settled_at=now,
    )
    session.add(charge)
    record_event(session, order=order, event="created", status_to=OrderStatus.PAID, by=seller, now=now)
    ticket.upgrade_day = day
    await session.flush()
    await stock.reserve(session, day=day, quantity=1)
    return OrderView(order=order, tickets=[], payments=[charge])


async def _holders_ticket(session: AsyncSession, *, ticket_id: int, msisdn: str) -> Ticket:
    """The ticket, locked, if it belongs to this number; the number is the holder's proof."""
    ticket = None
    if 0 < ticket_id <= MAX_ORDER_ID:
        ticket = await session.scalar(select(Ticket).where(Ticket.id == ticket_id).with_for_update())
    if ticket is None or ticket.msisdn != msisdn:
        raise NotFound("ticket_not_found", f"no ticket {ticket_id} for {msisdn}")
    return ticket


async def upgraded_ticket(session: AsyncSession, order: Order) -> Ticket | None:
    """The ticket an upgrade order upgrades; None for other orders."""
    if order.upgrade_ticket_id is None:
        return None
    return await session.get(Ticket, order.upgrade_ticket_id, with_for_update=True)
