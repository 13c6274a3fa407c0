"""Selling tickets: order -> payment -> tickets, through the hall, the 12580 hotline and the web/OTA.

One sale is one transaction. The bank (if any) is asked before anything is written; the rows then go
in once, already in their state. Dated tickets take their day's stock as the last statement, so the
hot row is locked only until the commit. If the day sells out or the number wins another ticket
meanwhile, an approved charge is refunded at the bank before the refusal. A wallet payment is made
inside the transaction instead (on the web its password is checked before), so a refusal or a lost
race undoes it together with everything else.
"""

import asyncio
import hashlib
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Self

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from expo.access.rules import Principal
from expo.bank import BankGateway, BankResult, BankStatus, BankTimeout, mask_account
from expo.clock import expo_local
from expo.errors import Conflict, ExpoError
from expo.provinces import normalize_msisdn
from expo.segments import home_province
from ticketing import stock, wallet_payments
from ticketing.journal import record_event
from ticketing.models import Order, Payment, Ticket
from ticketing.orders import OrderView
from ticketing.rules import TicketKind, check_sale, ticket_kind
from ticketing.sales_rules import (
    GATEWAY_METHODS,
    Carrier,
    OrderStatus,
    PaymentMethod,
    TicketStatus,
    channel_for,
    check_order_shape,
    check_wallet_password,
)
from wallet.models import WalletTransfer
from wallet.payments import PaymentTerms
from wallet.rules import TransferState
from wallet.sms import IssuedCode


@dataclass(frozen=True)
class PaymentDetails:
    """How the buyer pays: the method, and the card/account, the counter POS approval code or the wallet password."""

    method: PaymentMethod
    account: str | None = None
    approval_code: str | None = None
    password: str | None = None


@dataclass(frozen=True)
class Sale:
    """The order sold, and the code to text its buyer when a wallet payment waits for it."""

    view: OrderView
    code: IssuedCode | None = None


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
    wallet_terms: PaymentTerms | None = None,
) -> Sale:
    """Sell `quantity` tickets of one type to one phone number through the seller's channel.

    A web wallet payment's password is verified by the caller first (`wallet_payments.verify_web_password`).
    """
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
    check_payment_details(payment)
    check_wallet_password(channel=channel, method=payment.method, password_given=payment.password is not None)
    number = normalize_msisdn(msisdn)
    home = await home_province(session, msisdn=number)
    if carrier != Carrier.PHYSICAL:
        await _refuse_second_unused(session, msisdn=number)
    if visit_day is not None:
        await stock.ensure_available(session, day=visit_day, quantity=quantity)

    amount = kind.price_fen * quantity
    reference = payment_reference(credential_id=seller.credential_id, idempotency_key=idempotency_key)
    code = None
    if payment.method == PaymentMethod.WALLET:
        paid = await wallet_payments.charge_wallet(
            session,
            channel=channel,
            msisdn=number,
            amount_fen=amount,
            reference=reference,
            terms=wallet_terms,
            credential_id=seller.credential_id,
            now=now,
        )
        collected, code = _Collected.from_wallet(paid.transfer), paid.code
    else:
        collected = await _collect(payment, reference=reference, amount_fen=amount, terms=terms, now=now)
    try:
        view = await _write_sale(
            session,
            seller=seller,
            idempotency_key=idempotency_key,
            msisdn=number,
            home=home,
            kind=kind,
            visit_day=visit_day,
            quantity=quantity,
            carrier=carrier,
            payment=payment,
            concession_category=concession_category,
            concession_id_last4=concession_id_last4,
            reference=reference,
            collected=collected,
            now=now,
        )
        if visit_day is not None:
            # Last statement of the sale: the day's row stays locked only until the commit.
            await stock.reserve(session, day=visit_day, quantity=quantity)
    except (Conflict, IntegrityError) as exc:
        if collected.status == OrderStatus.PAID and payment.method in GATEWAY_METHODS:
            await terms.bank.refund(reference=reference, amount_fen=amount)
        if isinstance(exc, IntegrityError):
            raise _unused_ticket_exists(number) from exc
        raise
    return Sale(view, code)


@dataclass(frozen=True)
class _Collected:
    """How far the money got before the order is written."""

    status: OrderStatus
    external_ref: str | None
    expires_at: datetime | None

    @classmethod
    def from_wallet(cls, transfer: WalletTransfer) -> Self:
        """A wallet transfer posted at once pays the order; a held one leaves it waiting until the hold expires."""
        posted = transfer.state == TransferState.POSTED.value
        return cls(OrderStatus.PAID if posted else OrderStatus.AWAITING_PAYMENT, str(transfer.id), transfer.expires_at)


async def _collect(
    payment: PaymentDetails, *, reference: str, amount_fen: int, terms: SaleTerms, now: datetime
) -> _Collected:
    """Collect the money as the method allows: at the counter, on delivery later, or through the bank."""
    if payment.method in (PaymentMethod.CASH, PaymentMethod.BANK_CARD):
        return _Collected(OrderStatus.PAID, payment.approval_code, None)
    if payment.method == PaymentMethod.COD:
        return _Collected(OrderStatus.AWAITING_DELIVERY, None, now + terms.cod_window)
    assert payment.account is not None
    try:
        result = await asyncio.wait_for(
            terms.bank.charge(reference=reference, account=payment.account, amount_fen=amount_fen),
            timeout=terms.bank_timeout.total_seconds(),
        )
    except (TimeoutError, BankTimeout):
        result = BankResult(BankStatus.PENDING, reason="bank_timeout")
    if result.status == BankStatus.DECLINED:
        raise ExpoError("payment_declined", f"the bank declined the payment ({result.reason})", status=402)
    if result.status == BankStatus.APPROVED:
        return _Collected(OrderStatus.PAID, result.bank_ref, None)
    return _Collected(OrderStatus.AWAITING_PAYMENT, result.bank_ref, now + terms.bank_window)


async def _write_sale(
    session: AsyncSession,
    *,
    seller: Principal,
    idempotency_key: str,
    msisdn: str,
    home: str,
    kind: TicketKind,
    visit_day: date | None,
    quantity: int,
    carrier: Carrier,
    payment: PaymentDetails,
    concession_category: str | None,
    concession_id_last4: str | None,
    reference: str,
    collected: _Collected,
    now: datetime,
) -> OrderView:
    """Insert the order, its tickets, its charge and its journal, each row once and already in its state."""
    paid = collected.status == OrderStatus.PAID
    order = Order(
        credential_id=seller.credential_id,
        idempotency_key=idempotency_key,
        channel=channel_for(seller.role).value,
        sale_province=seller.province_code or home,
        hall=seller.hall,
        staff_id=seller.staff_id,
        msisdn=msisdn,
        home_province=home,
        product=kind.ticket_type.value,
        visit_day=visit_day,
        quantity=quantity,
        unit_price_fen=kind.price_fen,
        amount_fen=kind.price_fen * quantity,
        carrier=carrier.value,
        payment_method=payment.method.value,
        status=collected.status.value,
        concession_category=concession_category,
        concession_id_last4=concession_id_last4,
        created_at=now,
        paid_at=now if paid else None,
        expires_at=collected.expires_at,
    )
    session.add(order)
    await session.flush()
    ticket_status = TicketStatus.ISSUED if paid else TicketStatus.PENDING
    tickets = [
        Ticket(
            order_id=order.id,
            msisdn=msisdn,
            home_province=home,
            ticket_type=kind.ticket_type.value,
            visit_day=visit_day,
            carrier=carrier.value,
            status=ticket_status.value,
            entries_used=0,
            created_at=now,
        )
        for _ in range(quantity)
    ]
    charge = Payment(
        order_id=order.id,
        kind="charge",
        method=payment.method.value,
        amount_fen=order.amount_fen,
        status="confirmed" if paid else "pending",
        reference=reference,
        external_ref=collected.external_ref,
        masked_account=mask_account(payment.account) if payment.account else None,
        created_at=now,
        settled_at=now if paid else None,
    )
    session.add_all([*tickets, charge])
    record_event(session, order=order, event="created", status_to=collected.status, by=seller, now=now)
    await session.flush()
    return OrderView(order=order, tickets=tickets, payments=[charge])


def check_payment_details(payment: PaymentDetails) -> None:
    """Gateway payments name a numeric account; counter bank-card payments carry the POS approval code."""
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
