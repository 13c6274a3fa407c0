"""API schemas of the ticket platform (msgspec Structs) and their construction from models."""

from datetime import date, datetime
from typing import Annotated

import msgspec
from msgspec import Meta, Struct

from expo.http import PLAIN_TEXT
from ticketing.models import DayStock, Order, OrderEvent, Payment, Ticket
from ticketing.orders import OrderView
from ticketing.sales_rules import Carrier, PaymentMethod

ShortText = Annotated[str, Meta(min_length=1, max_length=32, pattern=PLAIN_TEXT)]
# Capacity is an INTEGER column; a bigger number is refused here rather than by the database driver.
MAX_CAPACITY = 2**31 - 1


class PaymentIn(Struct, forbid_unknown_fields=True):
    method: PaymentMethod
    account: Annotated[str, Meta(min_length=4, max_length=32, pattern=r"^\d+$")] | None = None
    approval_code: ShortText | None = None
    password: Annotated[str, Meta(min_length=1, max_length=32)] | None = None  # web wallet payments only


class WalletCodeIn(Struct, forbid_unknown_fields=True):
    code: Annotated[str, Meta(pattern=r"^\d{6}$")]  # the code texted to the buyer, read out to the agent


class ConcessionIn(Struct, forbid_unknown_fields=True):
    category: ShortText
    id_last4: Annotated[str, Meta(pattern=r"^[0-9]{3}[0-9Xx]$")]


class SaleIn(Struct, forbid_unknown_fields=True):
    msisdn: Annotated[str, Meta(min_length=1, max_length=20)]
    ticket_type: ShortText
    carrier: Carrier
    payment: PaymentIn
    visit_day: date | None = None
    quantity: int = 1
    concession: ConcessionIn | None = None


class UpgradeIn(Struct, forbid_unknown_fields=True):
    msisdn: Annotated[str, Meta(min_length=1, max_length=20)]
    day: date
    payment: PaymentIn


class DeliveryIn(Struct, forbid_unknown_fields=True):
    collected_fen: int
    receipt: ShortText


class CapacityIn(Struct, forbid_unknown_fields=True):
    capacity: Annotated[int, Meta(le=MAX_CAPACITY)]


class BankNotificationIn(Struct, forbid_unknown_fields=True):
    reference: Annotated[str, Meta(max_length=64, pattern=PLAIN_TEXT)]
    status: Annotated[str, Meta(pattern="^(approved|declined)$")]
    bank_ref: Annotated[str, Meta(max_length=64, pattern=PLAIN_TEXT)] | None = None


class TicketOut(Struct):
    id: int
    ticket_type: str
    visit_day: date | None
    upgrade_day: date | None
    carrier: str
    status: str
    entries_used: int


class PaymentOut(Struct):
    kind: str
    method: str
    amount_fen: int
    status: str
    reference: str
    external_ref: str | None
    masked_account: str | None


class OrderOut(Struct):
    id: int
    status: str
    channel: str
    sale_province: str
    hall: str | None
    msisdn: str
    home_province: str
    ticket_type: str
    visit_day: date | None
    quantity: int
    unit_price_fen: int
    amount_fen: int
    carrier: str
    payment_method: str
    created_at: datetime
    paid_at: datetime | None
    expires_at: datetime | None
    upgrade_ticket_id: int | None = None
    tickets: list[TicketOut] = msgspec.field(default_factory=list)
    payments: list[PaymentOut] = msgspec.field(default_factory=list)


class EventOut(Struct):
    at: datetime
    event: str
    status_from: str | None
    status_to: str
    credential_id: int | None
    staff_id: int | None
    province: str | None
    detail: str | None


class StockOut(Struct):
    day: date
    capacity: int
    sold: int
    available: int


class KindOut(Struct):
    ticket_type: str
    name: str
    name_zh: str
    price_fen: int
    concession: bool
    dated: bool
    entries_allowed: int
    evening: bool


class ProvinceOut(Struct):
    code: str
    name: str
    name_zh: str


class HomeProvinceOut(Struct):
    msisdn: str
    province: ProvinceOut


def ticket_out(ticket: Ticket) -> TicketOut:
    return TicketOut(
        id=ticket.id,
        ticket_type=ticket.ticket_type,
        visit_day=ticket.visit_day,
        upgrade_day=ticket.upgrade_day,
        carrier=ticket.carrier,
        status=ticket.status,
        entries_used=ticket.entries_used,
    )


def payment_out(payment: Payment) -> PaymentOut:
    return PaymentOut(
        kind=payment.kind,
        method=payment.method,
        amount_fen=payment.amount_fen,
        status=payment.status,
        reference=payment.reference,
        external_ref=payment.external_ref,
        masked_account=payment.masked_account,
    )


def order_out(order: Order, *, tickets: list[Ticket], payments: list[Payment]) -> OrderOut:
    return OrderOut(
        id=order.id,
        status=order.status,
        channel=order.channel,
        sale_province=order.sale_province,
        hall=order.hall,
        msisdn=order.msisdn,
        home_province=order.home_province,
        ticket_type=order.product,
        visit_day=order.visit_day,
        quantity=order.quantity,
        unit_price_fen=order.unit_price_fen,
        amount_fen=order.amount_fen,
        carrier=order.carrier,
        payment_method=order.payment_method,
        created_at=order.created_at,
        paid_at=order.paid_at,
        expires_at=order.expires_at,
        upgrade_ticket_id=order.upgrade_ticket_id,
        tickets=[ticket_out(t) for t in tickets],
        payments=[payment_out(p) for p in payments],
    )


def view_out(view: OrderView) -> OrderOut:
    return order_out(view.order, tickets=view.tickets, payments=view.payments)


def event_out(event: OrderEvent) -> EventOut:
    return EventOut(
        at=event.at,
        event=event.event,
        status_from=event.status_from,
        status_to=event.status_to,
        credential_id=event.credential_id,
        staff_id=event.staff_id,
        province=event.province,
        detail=event.detail,
    )


def stock_out(row: DayStock) -> StockOut:
    return StockOut(day=row.day, capacity=row.capacity, sold=row.sold, available=row.capacity - row.sold)
