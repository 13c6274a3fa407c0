"""HTTP API of the ticket platform: catalogue, stock, sales, after-sales and the bank's notifications."""

from datetime import date, datetime
from typing import Annotated, Any

from litestar import Request, Response, Router, get, post, put
from litestar.params import FromPath, FromQuery, JSONBody, QueryParameter

from expo.access.rules import Role
from expo.bank import BankStatus, notification_is_genuine
from expo.errors import Unauthorized
from expo.http import IdempotencyKey, allow, clock_of, db_of, idempotent_reply, json_reply, principal_of, settings_of
from expo.provinces import PROVINCES, normalize_msisdn, province
from expo.segments import home_province
from ticketing import aftersales, orders, sales, stock, upgrades, wallet_payments
from ticketing.rules import CATALOGUE
from ticketing.sales_rules import Carrier, OrderStatus
from ticketing.schemas import (
    BankNotificationIn,
    CapacityIn,
    DeliveryIn,
    HomeProvinceOut,
    KindOut,
    PaymentIn,
    ProvinceOut,
    SaleIn,
    UpgradeIn,
    WalletCodeIn,
    event_out,
    order_out,
    stock_out,
    view_out,
)
from ticketing.sweeps import apply_bank_notification, apply_wallet_code
from ticketing.voucher_api import deliver_after_payment, keyring_of
from ticketing.vouchers import order_paid_by
from wallet.http import sms_of, terms_of

SELLERS = (Role.HALL_CLERK, Role.HOTLINE_AGENT, Role.WEB)
STAFF_AND_ADMIN = (Role.HALL_CLERK, Role.HOTLINE_AGENT, Role.ADMIN)

AnyRequest = Request[Any, Any, Any]


def _payment_details(payment: PaymentIn) -> sales.PaymentDetails:
    return sales.PaymentDetails(
        method=payment.method, account=payment.account, approval_code=payment.approval_code, password=payment.password
    )


@get("/catalogue")
async def list_catalogue() -> list[KindOut]:
    """The Expo's ticket types and prices."""
    return [
        KindOut(
            ticket_type=k.ticket_type.value,
            name=k.name,
            name_zh=k.name_zh,
            price_fen=k.price_fen,
            concession=k.concession,
            dated=k.dated,
            entries_allowed=k.entries_allowed,
            evening=k.evening,
        )
        for k in CATALOGUE.values()
    ]


@get("/provinces")
async def list_provinces() -> list[ProvinceOut]:
    """The 31 provincial companies."""
    return [ProvinceOut(code=p.code, name=p.name, name_zh=p.name_zh) for p in PROVINCES.values()]


@get("/numbers/{msisdn:str}/province", guards=[allow(*SELLERS, Role.ADMIN)])
async def number_province(request: AnyRequest, msisdn: FromPath[str]) -> HomeProvinceOut:
    """The home province of a phone number, from its number segment."""
    number = normalize_msisdn(msisdn)
    async with db_of(request).read() as session:
        code = await home_province(session, msisdn=number)
    found = province(code)
    return HomeProvinceOut(msisdn=number, province=ProvinceOut(code=found.code, name=found.name, name_zh=found.name_zh))


@get("/stock", guards=[allow(*SELLERS, Role.ADMIN)])
async def list_stock(request: AnyRequest) -> Response[bytes]:
    """Capacity, sold and available tickets of every peak day."""
    async with db_of(request).read() as session:
        rows = await stock.stock_levels(session)
    return json_reply([stock_out(r) for r in rows], status=200)


@put("/stock/{day:date}", guards=[allow(Role.ADMIN)])
async def set_day_capacity(request: AnyRequest, day: FromPath[date], data: JSONBody[CapacityIn]) -> Response[bytes]:
    """Set a peak day's capacity (never below what is sold)."""
    async with db_of(request).write() as session:
        row = await stock.set_capacity(session, day=day, capacity=data.capacity)
        reply = stock_out(row)
    return json_reply(reply, status=200)


@post("/orders", guards=[allow(*SELLERS)])
async def create_order(
    request: AnyRequest, data: JSONBody[SaleIn], idempotency_key: IdempotencyKey = None
) -> Response[bytes]:
    """Sell tickets through the caller's channel: 201 when paid, 202 while payment or delivery is awaited.

    A 12580 wallet sale texts the buyer a code once it is committed; the agent submits it to confirm.
    A QR-voucher sale needs the signing keys (`signing_keys_unavailable` before anything is sold); once it is
    paid, its voucher is issued and sent by MMS after the commit.
    """
    seller = principal_of(request)
    now = clock_of(request).now()
    terms = request.app.state.sale_terms
    if data.carrier == Carrier.QR_VOUCHER:
        keyring_of(request)  # refuses (503) before the sale when its voucher could not be signed
    await wallet_payments.verify_web_password(
        db_of(request),
        seller=seller,
        method=data.payment.method,
        msisdn=data.msisdn,
        password=data.payment.password,
        now=now,
    )
    texts: list[tuple[str, str]] = []
    paid_vouchers: list[int] = []

    async def work(session: Any) -> tuple[int, Any]:
        sale = await sales.sell_ticket(
            session,
            seller=seller,
            idempotency_key=idempotency_key or "",
            msisdn=data.msisdn,
            ticket_type=data.ticket_type,
            visit_day=data.visit_day,
            quantity=data.quantity,
            carrier=data.carrier,
            payment=_payment_details(data.payment),
            concession_category=data.concession.category if data.concession else None,
            concession_id_last4=data.concession.id_last4 if data.concession else None,
            terms=terms,
            now=now,
            wallet_terms=terms_of(request),
        )
        order = sale.view.order
        if sale.code is not None:
            text = wallet_payments.code_text(amount_fen=order.amount_fen, order_id=order.id, digits=sale.code.digits)
            texts.append((order.msisdn, text))
        if order.status == OrderStatus.PAID and order.carrier == Carrier.QR_VOUCHER:
            paid_vouchers.append(order.id)
        return (201 if order.status == OrderStatus.PAID else 202), view_out(sale.view)

    reply = await idempotent_reply(request, key=idempotency_key, work=work)
    for msisdn, text in texts:  # only after the commit: a code for a sale that was rolled back is never sent
        await sms_of(request).send(msisdn=msisdn, text=text, now=now)
    for order_id in paid_vouchers:
        await deliver_after_payment(request, order_id=order_id)
    return reply


@post("/tickets/{ticket_id:int}/upgrade", guards=[allow(Role.HALL_CLERK)])
async def upgrade_ticket(
    request: AnyRequest, ticket_id: FromPath[int], data: JSONBody[UpgradeIn], idempotency_key: IdempotencyKey = None
) -> Response[bytes]:
    """Sell the +40 yuan peak-day upgrade of a standard ticket (from October), at the hall counter."""
    seller = principal_of(request)
    now = clock_of(request).now()

    async def work(session: Any) -> tuple[int, Any]:
        view = await upgrades.sell_upgrade(
            session,
            seller=seller,
            idempotency_key=idempotency_key or "",
            ticket_id=ticket_id,
            msisdn=data.msisdn,
            day=data.day,
            payment=_payment_details(data.payment),
            now=now,
        )
        return 201, view_out(view)

    return await idempotent_reply(request, key=idempotency_key, work=work)


@get("/orders/{order_id:int}", guards=[allow(*SELLERS, Role.ADMIN, Role.COURIER)])
async def read_order(request: AnyRequest, order_id: FromPath[int]) -> Response[bytes]:
    """One order with its tickets and payments (only within the caller's province or channel)."""
    async with db_of(request).read() as session:
        view = await orders.get_order(session, reader=principal_of(request), order_id=order_id)
        reply = view_out(view)
    return json_reply(reply, status=200)


@get("/orders/{order_id:int}/events", guards=[allow(*SELLERS, Role.ADMIN)])
async def read_order_events(request: AnyRequest, order_id: FromPath[int]) -> Response[bytes]:
    """Every state change of an order: what, when, who, from where."""
    async with db_of(request).read() as session:
        events = await orders.order_history(session, reader=principal_of(request), order_id=order_id)
        reply = [event_out(e) for e in events]
    return json_reply(reply, status=200)


@get("/orders", guards=[allow(*SELLERS, Role.ADMIN)])
async def list_orders(
    request: AnyRequest,
    msisdn: FromQuery[str | None] = None,
    since: FromQuery[datetime | None] = None,
    limit: Annotated[int, QueryParameter(ge=1, le=500)] = 50,
) -> Response[bytes]:
    """Recent orders the caller may see, newest first."""
    number = normalize_msisdn(msisdn) if msisdn else None
    async with db_of(request).read() as session:
        found = await orders.find_orders(session, reader=principal_of(request), msisdn=number, since=since, limit=limit)
        reply = [order_out(o, tickets=[], payments=[]) for o in found]
    return json_reply(reply, status=200)


@post("/orders/{order_id:int}/void", guards=[allow(*STAFF_AND_ADMIN, Role.WEB)])
async def void_order(
    request: AnyRequest, order_id: FromPath[int], idempotency_key: IdempotencyKey = None
) -> Response[bytes]:
    """Void a sale on its own day, before use."""
    actor = principal_of(request)
    now = clock_of(request).now()

    async def work(session: Any) -> tuple[int, Any]:
        view = await aftersales.void_sale(session, actor=actor, order_id=order_id, bank=request.app.state.bank, now=now)
        return 200, view_out(await orders.order_parts(session, view.order))

    return await idempotent_reply(request, key=idempotency_key, work=work)


@post("/orders/{order_id:int}/refund", guards=[allow(*STAFF_AND_ADMIN, Role.WEB)])
async def refund_order(
    request: AnyRequest, order_id: FromPath[int], idempotency_key: IdempotencyKey = None
) -> Response[bytes]:
    """Refund an unused paid order in full."""
    actor = principal_of(request)
    now = clock_of(request).now()

    async def work(session: Any) -> tuple[int, Any]:
        view = await aftersales.refund_sale(
            session, actor=actor, order_id=order_id, bank=request.app.state.bank, now=now
        )
        return 200, view_out(await orders.order_parts(session, view.order))

    return await idempotent_reply(request, key=idempotency_key, work=work)


@post("/orders/{order_id:int}/wallet-confirmation", guards=[allow(Role.HOTLINE_AGENT, Role.WEB)])
async def confirm_wallet_payment(
    request: AnyRequest, order_id: FromPath[int], data: JSONBody[WalletCodeIn]
) -> Response[bytes]:
    """The code texted to the buyer of a held wallet payment: right, the order is paid; too late, it expires."""
    view = await apply_wallet_code(
        db_of(request), actor=principal_of(request), order_id=order_id, code=data.code, now=clock_of(request).now()
    )
    if view.order.status == OrderStatus.PAID and view.order.carrier == Carrier.QR_VOUCHER:
        await deliver_after_payment(request, order_id=view.order.id)
    return json_reply(view_out(view), status=200)


@post("/orders/{order_id:int}/delivery", guards=[allow(Role.COURIER)])
async def confirm_delivery(
    request: AnyRequest,
    order_id: FromPath[int],
    data: JSONBody[DeliveryIn],
    idempotency_key: IdempotencyKey = None,
) -> Response[bytes]:
    """The courier confirms the physical tickets were delivered and the cash collected."""
    courier = principal_of(request)
    now = clock_of(request).now()

    async def work(session: Any) -> tuple[int, Any]:
        view = await aftersales.confirm_delivery(
            session,
            courier=courier,
            order_id=order_id,
            collected_fen=data.collected_fen,
            receipt=data.receipt,
            now=now,
        )
        return 200, view_out(view)

    return await idempotent_reply(request, key=idempotency_key, work=work)


@post("/bank/notifications", status_code=200)
async def bank_notification(request: AnyRequest, data: JSONBody[BankNotificationIn]) -> dict[str, str]:
    """A bank's asynchronous answer about a charge, signed with the shared secret (X-Bank-Signature)."""
    signature = request.headers.get("x-bank-signature", "")
    if not notification_is_genuine(settings_of(request).bank_notify_secret, await request.body(), signature):
        raise Unauthorized("bad_signature", "the notification's signature does not verify")
    status = await apply_bank_notification(
        db_of(request),
        reference=data.reference,
        status=BankStatus(data.status),
        bank_ref=data.bank_ref,
        bank=request.app.state.bank,
        now=clock_of(request).now(),
    )
    if status == OrderStatus.PAID:
        voucher_order = await order_paid_by(db_of(request), reference=data.reference)
        if voucher_order is not None:
            await deliver_after_payment(request, order_id=voucher_order)
    return {"reference": data.reference, "order_status": status}


router = Router(
    path="/v1",
    route_handlers=[
        list_catalogue,
        list_provinces,
        number_province,
        list_stock,
        set_day_capacity,
        create_order,
        upgrade_ticket,
        read_order,
        read_order_events,
        list_orders,
        void_order,
        refund_order,
        confirm_wallet_payment,
        confirm_delivery,
        bank_notification,
    ],
    tags=["tickets"],
)
