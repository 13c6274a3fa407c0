"""After the sale: voids, refunds, cash-on-delivery and wallet-code confirmation, and the bank's late answers."""

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from expo.access.rules import Principal
from expo.bank import BankGateway, BankResult, BankStatus
from expo.clock import expo_local
from expo.errors import Conflict, ExpoError, NotFound
from ticketing import stock, wallet_payments
from ticketing.journal import record_event
from ticketing.models import Order, Payment, Ticket
from ticketing.orders import OrderView, load_order, lock_order, order_parts
from ticketing.revocations import REVOKING_STATUSES, revoke_tickets
from ticketing.rules import EXPO_LAST_DAY
from ticketing.sales import mark_paid
from ticketing.sales_rules import (
    GATEWAY_METHODS,
    Channel,
    OrderStatus,
    PaymentMethod,
    TicketStatus,
    check_awaiting_code,
    check_may_reverse,
    check_refund,
    check_void,
)
from ticketing.upgrades import upgraded_ticket


async def void_sale(
    session: AsyncSession, *, actor: Principal, order_id: int, bank: BankGateway, now: datetime
) -> OrderView:
    """Cancel a sale on its own day before use, as if never sold: money back, stock released."""
    view = await _open_for_reversal(session, actor=actor, order_id=order_id)
    order = view.order
    check_void(
        status=OrderStatus(order.status),
        method=PaymentMethod(order.payment_method),
        paid_day=expo_local(order.paid_at).date() if order.paid_at else None,
        today=expo_local(now).date(),
        tickets_unused=_all_unused(await _affected_tickets(session, view)),
    )
    await _pay_back(session, view, kind="void", bank=bank, now=now)  # before the stock: its row locks last
    await _close(session, view, ticket_status=TicketStatus.VOID, order_status=OrderStatus.VOID, by=actor, now=now)
    return view


async def refund_sale(
    session: AsyncSession, *, actor: Principal, order_id: int, bank: BankGateway, now: datetime
) -> OrderView:
    """Refund an unused paid order in full, until its dated day (or the Expo's last day)."""
    view = await _open_for_reversal(session, actor=actor, order_id=order_id)
    check_refund(
        status=OrderStatus(view.order.status),
        tickets_unused=_all_unused(await _affected_tickets(session, view)),
        closes_on=view.order.visit_day or EXPO_LAST_DAY,
        today=expo_local(now).date(),
    )
    await _pay_back(session, view, kind="refund", bank=bank, now=now)
    await _close(
        session, view, ticket_status=TicketStatus.REFUNDED, order_status=OrderStatus.REFUNDED, by=actor, now=now
    )
    return view


async def _open_for_reversal(session: AsyncSession, *, actor: Principal, order_id: int) -> OrderView:
    """Lock the order and check the actor's channel (and hall) may reverse it.

    A ticket with an outstanding peak-day upgrade is reversed only after its upgrade.
    """
    order = await lock_order(session, actor=actor, order_id=order_id)
    check_may_reverse(actor_role=actor.role, actor_hall=actor.hall, channel=Channel(order.channel), hall=order.hall)
    view = await order_parts(session, order)
    if any(ticket.upgrade_day is not None for ticket in view.tickets):
        raise Conflict("upgrade_outstanding", "void or refund the ticket's peak-day upgrade first")
    return view


async def _affected_tickets(session: AsyncSession, view: OrderView) -> list[Ticket]:
    """The tickets whose use decides a reversal: the order's own, or the one an upgrade order upgrades."""
    upgraded = await upgraded_ticket(session, view.order)
    return [upgraded] if upgraded is not None else view.tickets


async def confirm_delivery(
    session: AsyncSession,
    *,
    courier: Principal,
    order_id: int,
    collected_fen: int,
    receipt: str,
    now: datetime,
) -> OrderView:
    """The courier handed over the physical tickets and collected the cash: the order is paid."""
    order = await lock_order(session, actor=courier, order_id=order_id)
    if order.status != OrderStatus.AWAITING_DELIVERY:
        raise Conflict("not_awaiting_delivery", f"order {order.id} is {order.status}")
    if collected_fen != order.amount_fen:
        raise ExpoError("amount_mismatch", f"collected {collected_fen} fen, but the order is {order.amount_fen} fen")
    view = await order_parts(session, order)
    mark_paid(session, order, charge_of(view), view.tickets, by=courier, now=now, external_ref=receipt)
    return view


async def wallet_order(session: AsyncSession, *, actor: Principal, order_id: int) -> OrderView:
    """A wallet order of the actor's channel that waits for its texted code (or was paid by it already)."""
    order = await load_order(session, reader=actor, order_id=order_id)
    check_may_reverse(actor_role=actor.role, actor_hall=actor.hall, channel=Channel(order.channel), hall=order.hall)
    check_awaiting_code(status=OrderStatus(order.status), method=PaymentMethod(order.payment_method))
    return await order_parts(session, order)


async def confirm_wallet_payment(session: AsyncSession, *, actor: Principal, order_id: int, now: datetime) -> OrderView:
    """The buyer's code was right: the held money moves to the bureau's receivable, the tickets are issued.

    A paid order is returned as it stands, so a retried confirmation gets the same answer.
    """
    order = await lock_order(session, actor=actor, order_id=order_id)
    view = await wallet_order(session, actor=actor, order_id=order.id)
    if order.status == OrderStatus.PAID:
        return view
    if order.expires_at is not None and order.expires_at <= now:
        raise Conflict("order_expired", f"order {order.id} was not confirmed in time")
    charge = charge_of(view)
    await wallet_payments.capture_hold(session, charge=charge, now=now)
    mark_paid(session, order, charge, view.tickets, by=actor, now=now, external_ref=None)
    return view


async def settle_bank_answer(
    session: AsyncSession, *, order: Order, result: BankResult, bank: BankGateway, now: datetime
) -> None:
    """Apply a late bank answer to an order waiting for it; a confirmation after expiry is refunded."""
    view = await order_parts(session, order)
    charge = charge_of(view)
    if result.status == BankStatus.PENDING or charge.status != "pending":
        return
    if order.status == OrderStatus.AWAITING_PAYMENT:
        if result.status == BankStatus.APPROVED:
            mark_paid(session, order, charge, view.tickets, by=None, now=now, external_ref=result.bank_ref)
        else:
            charge.status = "declined"
            await _close(
                session,
                view,
                ticket_status=TicketStatus.CANCELLED,
                order_status=OrderStatus.EXPIRED,
                by=None,
                now=now,
                detail="declined by the bank",
            )
        return
    if result.status == BankStatus.APPROVED:
        # The money arrived after the order had expired and released its stock: give it back.
        charge.status = "confirmed"
        charge.settled_at = now
        charge.external_ref = result.bank_ref
        await _pay_back(session, view, kind="refund", bank=bank, now=now)
        record_event(
            session,
            order=order,
            event="late_payment_refunded",
            status_to=order.status,
            by=None,
            now=now,
            detail="the bank confirmed after the order expired",
        )
    else:
        charge.status = "declined"


async def expire_order(session: AsyncSession, *, order: Order, now: datetime, reason: str) -> None:
    """An order not paid within its window expires: tickets cancelled, a wallet hold let go, stock released."""
    view = await order_parts(session, order)
    charge = charge_of(view)
    if charge.method == PaymentMethod.WALLET:
        await wallet_payments.release_hold(session, charge=charge, now=now)  # before the stock: its row locks last
    await _close(
        session,
        view,
        ticket_status=TicketStatus.CANCELLED,
        order_status=OrderStatus.EXPIRED,
        by=None,
        now=now,
        detail=reason,
    )
    if charge.method not in GATEWAY_METHODS:
        charge.status = "cancelled"


def _all_unused(tickets: list[Ticket]) -> bool:
    return all(t.status == TicketStatus.ISSUED and t.entries_used == 0 for t in tickets)


def charge_of(view: OrderView) -> Payment:
    """The order's charge: the money it was (or is to be) paid with."""
    for payment in view.payments:
        if payment.kind == "charge":
            return payment
    raise NotFound("payment_not_found", f"order {view.order.id} has no charge")


async def _pay_back(session: AsyncSession, view: OrderView, *, kind: str, bank: BankGateway, now: datetime) -> None:
    """Record the money going back the way it came: refunded at the bank, or to the wallet out of the bureau's
    receivable; a wallet payment still held is let go instead (nothing was taken, nothing goes back)."""
    charge = charge_of(view)
    external_ref = None
    if PaymentMethod(charge.method) in GATEWAY_METHODS:
        result = await bank.refund(reference=charge.reference, amount_fen=charge.amount_fen)
        if result.status != BankStatus.APPROVED:
            raise ExpoError("bank_refund_failed", "the bank did not accept the refund; try again", status=502)
        external_ref = result.bank_ref
    elif charge.method == PaymentMethod.WALLET:
        if charge.status == "pending":
            await wallet_payments.release_hold(session, charge=charge, now=now)
            return
        external_ref = await wallet_payments.refund_to_wallet(session, charge=charge, step=kind, now=now)
    session.add(
        Payment(
            order_id=view.order.id,
            kind=kind,
            method=charge.method,
            amount_fen=charge.amount_fen,
            status="confirmed",
            reference=f"{charge.reference}-{kind[0].upper()}",
            external_ref=external_ref,
            masked_account=charge.masked_account,
            created_at=now,
            settled_at=now,
        )
    )


async def _close(
    session: AsyncSession,
    view: OrderView,
    *,
    ticket_status: TicketStatus,
    order_status: OrderStatus,
    by: Principal | None,
    now: datetime,
    detail: str | None = None,
) -> None:
    """End an order's life: its tickets take their final status and a dated day gets its stock back."""
    order = view.order
    for ticket in view.tickets:
        ticket.status = ticket_status.value
    upgraded = await upgraded_ticket(session, order)
    if upgraded is not None:
        upgraded.upgrade_day = None
    if order.visit_day is not None:
        await stock.release(session, day=order.visit_day, quantity=order.quantity)
    order.closed_at = now
    record_event(session, order=order, event=order_status.value, status_to=order_status, by=by, now=now, detail=detail)
    if ticket_status in REVOKING_STATUSES:
        # Last: the revocation counter's lock is held from here to commit (see ticketing.revocations).
        await revoke_tickets(session, ticket_ids=[t.id for t in view.tickets], reason=ticket_status, now=now)


async def orders_due(session: AsyncSession, *, now: datetime, limit: int) -> list[int]:
    """Ids of unpaid orders whose window has passed (cash-on-delivery or a bank that never answered)."""
    rows = await session.scalars(
        select(Order.id)
        .where(
            Order.status.in_((OrderStatus.AWAITING_PAYMENT.value, OrderStatus.AWAITING_DELIVERY.value)),
            Order.expires_at <= now,
        )
        .order_by(Order.id)
        .limit(limit)
    )
    return list(rows.all())
