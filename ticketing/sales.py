"""Selling tickets: order -> payment -> tickets, through the hall, the 12580 hotline and the web/OTA.

One sale is one transaction. Dated tickets take their day's stock as the last statement, so the hot
row is locked only for the commit. A bank is asked before the stock is taken; if the day sells out
meanwhile, the charge is refunded at the bank before the refusal.
"""

import asyncio
import hashlib
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from expo.access.rules import Principal
from expo.bank import BankGateway, BankResult, BankStatus, BankTimeout, mask_account
from expo.clock import expo_local
from expo.errors import Conflict, ExpoError
from ticketing import stock
from ticketing.journal import record_event
from ticketing.models import Order, Payment, Ticket
from ticketing.orders import OrderView
from ticketing.provinces import normalize_msisdn
from ticketing.rules import TicketKind, check_sale, ticket_kind
from ticketing.sales_rules import (
    GATEWAY_METHODS,
    Carrier,
    OrderStatus,
    PaymentMethod,
    TicketStatus,
    channel_for,
    check_order_shape,
)
from ticketing.segments import home_province


@dataclass(frozen=True)
class PaymentDetails:
    """How the buyer pays: the method, and the card/account or the counter POS approval code."""

    method: PaymentMethod
    account: str | None = None
    approval_code: str | None = None


@dataclass(frozen=True)
class SaleTerms:
    """The windows and the bank a sale runs with (from settings)."""

    bank: BankGateway
    bank_timeout: timedelta
    bank_window: timedelta
    cod_window: timedelta


def payment_reference(*, credential_id: int, idempotency_key: str) -> str:
    """The merchant reference sent to the bank: stable across retries of one request, so never charged twice."""
    digest = hashlib.sha256(f"{credential_id}:{idempotency_key}".encode()).hexdigest()
    return "EXP" + digest[:29].upper()


async def sell_ticket(
    session: AsyncSession,
    *,
    seller: Principal,
    idempotency_key: str,
    msisdn: str,
    ticket_type: str,
    visit_day: date | None,
    quantity: int,
    carrier: Carrier,
    payment: PaymentDetails,
    concession_category: str | None,
    concession_id_last4: str | None,
    terms: SaleTerms,
    now: datetime,
) -> OrderView:
    """Sell `quantity` tickets of one type to one phone number through the seller's channel."""
    channel = channel_for(seller.role)
    kind = ticket_kind(ticket_type)
    check_sale(kind=kind, visit_day=visit_day, today=expo_local(now).date())
    check_order_shape(
        channel=channel,
        method=payment.method,
        carrier=carrier,
        quantity=quantity,
        concession=kind.concession,
        concession_category=concession_category,
    )
    _check_payment_details(payment)
    number = normalize_msisdn(msisdn)
    home = await home_province(session, msisdn=number)
    if carrier != Carrier.PHYSICAL:
        await _refuse_second_unused(session, msisdn=number)
    if visit_day is not None:
        await stock.ensure_available(session, day=visit_day, quantity=quantity)

    order = Order(
        credential_id=seller.credential_id,
        idempotency_key=idempotency_key,
        channel=channel.value,
        sale_province=seller.province_code or home,
        hall=seller.hall,
        staff_id=seller.staff_id,
        msisdn=number,
        home_province=home,
        product=kind.ticket_type.value,
        visit_day=visit_day,
        quantity=quantity,
        unit_price_fen=kind.price_fen,
        amount_fen=kind.price_fen * quantity,
        carrier=carrier.value,
        payment_method=payment.method.value,
        status=OrderStatus.AWAITING_PAYMENT.value,
        concession_category=concession_category,
        concession_id_last4=concession_id_last4,
        created_at=now,
    )
    session.add(order)
    await session.flush()
    record_event(session, order=order, event="created", status_to=order.status, by=seller, now=now)
    tickets = _new_tickets(order, kind=kind, now=now)
    session.add_all(tickets)
    charge = Payment(
        order_id=order.id,
        kind="charge",
        method=payment.method.value,
        amount_fen=order.amount_fen,
        status="pending",
        reference=payment_reference(credential_id=seller.credential_id, idempotency_key=idempotency_key),
        masked_account=mask_account(payment.account) if payment.account else None,
        external_ref=payment.approval_code,
        created_at=now,
    )
    session.add(charge)
    try:
        await session.flush()
    except IntegrityError as exc:
        raise _unused_ticket_exists(number) from exc

    bank_result = await _take_payment(
        session, order, charge, tickets, payment=payment, seller=seller, terms=terms, now=now
    )
    if visit_day is not None:
        try:
            await stock.reserve(session, day=visit_day, quantity=quantity)
        except Conflict:
            if bank_result is not None and bank_result.status == BankStatus.APPROVED:
                await terms.bank.refund(reference=charge.reference, amount_fen=charge.amount_fen)
            raise
    await session.flush()
    return OrderView(order=order, tickets=tickets, payments=[charge])


def _check_payment_details(payment: PaymentDetails) -> None:
    if payment.method in GATEWAY_METHODS and not (payment.account and payment.account.isdigit()):
        raise ExpoError("account_required", f"{payment.method} needs the card or bank account number")
    if payment.method == PaymentMethod.BANK_CARD and not payment.approval_code:
        raise ExpoError("approval_code_required", "a counter bank-card payment needs the POS approval code")


async def _refuse_second_unused(session: AsyncSession, *, msisdn: str) -> None:
    unused = await session.scalar(
        select(Ticket.id)
        .where(
            Ticket.msisdn == msisdn,
            Ticket.status.in_((TicketStatus.PENDING.value, TicketStatus.ISSUED.value)),
            Ticket.carrier != Carrier.PHYSICAL.value,
        )
        .limit(1)
    )
    if unused is not None:
        raise _unused_ticket_exists(msisdn)


def _unused_ticket_exists(msisdn: str) -> Conflict:
    return Conflict(
        "unused_ticket_exists",
        f"{msisdn} already holds an unused mobile ticket; it can buy again once that one is used",
    )


def _new_tickets(order: Order, *, kind: TicketKind, now: datetime) -> list[Ticket]:
    return [
        Ticket(
            order_id=order.id,
            msisdn=order.msisdn,
            home_province=order.home_province,
            ticket_type=kind.ticket_type.value,
            visit_day=order.visit_day,
            carrier=order.carrier,
            status=TicketStatus.PENDING.value,
            entries_used=0,
            created_at=now,
        )
        for _ in range(order.quantity)
    ]


async def _take_payment(
    session: AsyncSession,
    order: Order,
    charge: Payment,
    tickets: list[Ticket],
    *,
    payment: PaymentDetails,
    seller: Principal,
    terms: SaleTerms,
    now: datetime,
) -> BankResult | None:
    """Collect the money as the method allows; returns the bank's answer for gateway methods."""
    if payment.method in (PaymentMethod.CASH, PaymentMethod.BANK_CARD):
        mark_paid(session, order, charge, tickets, by=seller, now=now, external_ref=payment.approval_code)
        return None
    if payment.method == PaymentMethod.COD:
        order.expires_at = now + terms.cod_window
        record_event(
            session,
            order=order,
            event="awaiting_delivery",
            status_to=OrderStatus.AWAITING_DELIVERY,
            by=seller,
            now=now,
        )
        return None
    assert payment.account is not None
    try:
        result = await asyncio.wait_for(
            terms.bank.charge(reference=charge.reference, account=payment.account, amount_fen=charge.amount_fen),
            timeout=terms.bank_timeout.total_seconds(),
        )
    except (TimeoutError, BankTimeout):
        result = BankResult(BankStatus.PENDING, reason="bank_timeout")
    if result.status == BankStatus.DECLINED:
        raise ExpoError("payment_declined", f"the bank declined the payment ({result.reason})", status=402)
    if result.status == BankStatus.APPROVED:
        mark_paid(session, order, charge, tickets, by=seller, now=now, external_ref=result.bank_ref)
    else:
        order.expires_at = now + terms.bank_window
        charge.external_ref = result.bank_ref
    return result


def mark_paid(
    session: AsyncSession,
    order: Order,
    charge: Payment,
    tickets: list[Ticket],
    *,
    by: Principal | None,
    now: datetime,
    external_ref: str | None,
) -> None:
    """Money received: the charge settles, the order is paid and its tickets are issued."""
    charge.status = "confirmed"
    charge.settled_at = now
    charge.external_ref = external_ref or charge.external_ref
    order.paid_at = now
    order.expires_at = None
    for ticket in tickets:
        ticket.status = TicketStatus.ISSUED.value
    record_event(session, order=order, event="paid", status_to=OrderStatus.PAID, by=by, now=now)
