"""Pure rules of selling: channels, how each may be paid, carriers, and when a sale may be voided or refunded."""

from datetime import date
from enum import StrEnum

from expo.access.rules import Role
from expo.errors import ExpoError, Forbidden


class Channel(StrEnum):
    HALL = "hall"  # service-hall sales terminal
    HOTLINE = "hotline"  # the 12580 call centre
    WEB = "web"  # web and over-the-air from the SIM menu


class PaymentMethod(StrEnum):
    CASH = "cash"
    BANK_CARD = "bank_card"  # bank card on the counter's POS; the terminal reports the approval code
    CREDIT_CARD = "credit_card"  # 12580, charged through the bank gateway
    COD = "cod"  # 12580 physical ticket, cash on delivery
    ONLINE_BANKING = "online_banking"  # web/OTA, through the bank gateway
    WALLET = "wallet"  # the buyer's mobile wallet: the password on the web, a texted code through 12580


class Carrier(StrEnum):
    EXPO_CARD = "expo_card"
    QR_VOUCHER = "qr_voucher"
    PHYSICAL = "physical"


class OrderStatus(StrEnum):
    AWAITING_PAYMENT = "awaiting_payment"  # the bank has not confirmed yet, or the buyer not the wallet's code
    AWAITING_DELIVERY = "awaiting_delivery"  # cash on delivery, courier on the way
    PAID = "paid"
    EXPIRED = "expired"  # never paid in time; its stock is released
    VOID = "void"
    REFUNDED = "refunded"


class TicketStatus(StrEnum):
    PENDING = "pending"  # its order is not paid yet
    ISSUED = "issued"  # paid and unused
    USED = "used"
    VOID = "void"
    REFUNDED = "refunded"
    CANCELLED = "cancelled"  # its order expired unpaid


CHANNEL_OF_ROLE = {Role.HALL_CLERK: Channel.HALL, Role.HOTLINE_AGENT: Channel.HOTLINE, Role.WEB: Channel.WEB}

METHODS = {
    Channel.HALL: frozenset({PaymentMethod.CASH, PaymentMethod.BANK_CARD}),
    Channel.HOTLINE: frozenset({PaymentMethod.CREDIT_CARD, PaymentMethod.COD, PaymentMethod.WALLET}),
    Channel.WEB: frozenset({PaymentMethod.ONLINE_BANKING, PaymentMethod.WALLET}),
}
CARRIERS = {
    Channel.HALL: frozenset({Carrier.EXPO_CARD}),
    Channel.HOTLINE: frozenset({Carrier.EXPO_CARD, Carrier.QR_VOUCHER, Carrier.PHYSICAL}),
    Channel.WEB: frozenset({Carrier.EXPO_CARD, Carrier.QR_VOUCHER}),
}
GATEWAY_METHODS = frozenset({PaymentMethod.CREDIT_CARD, PaymentMethod.ONLINE_BANKING})
MAX_PHYSICAL_QUANTITY = 5
CONCESSION_CATEGORIES = frozenset({"student", "senior", "disabled", "child", "military"})


def channel_for(role: Role) -> Channel:
    """Each seller sells through its own channel; other roles do not sell."""
    channel = CHANNEL_OF_ROLE.get(role)
    if channel is None:
        raise Forbidden("role_cannot_sell", f"a {role} does not sell tickets")
    return channel


def check_order_shape(
    *,
    channel: Channel,
    method: PaymentMethod,
    carrier: Carrier,
    quantity: int,
    concession: bool,
    concession_category: str | None,
) -> None:
    """A channel takes its own payment methods and carriers; physical tickets go cash-on-delivery only,
    mobile tickets one at a time; concessions name their category (ID is checked again at entry)."""
    if method not in METHODS[channel]:
        raise ExpoError("payment_method_not_allowed", f"the {channel} channel does not take {method}")
    if carrier not in CARRIERS[channel]:
        raise ExpoError("carrier_not_allowed", f"the {channel} channel does not issue {carrier} tickets")
    if (method == PaymentMethod.COD) != (carrier == Carrier.PHYSICAL):
        raise ExpoError("carrier_not_allowed", "physical tickets are sold cash-on-delivery, and only they are")
    limit = MAX_PHYSICAL_QUANTITY if carrier == Carrier.PHYSICAL else 1
    if not 1 <= quantity <= limit:
        raise ExpoError("invalid_quantity", f"between 1 and {limit} {carrier} tickets per order")
    if concession and concession_category not in CONCESSION_CATEGORIES:
        raise ExpoError(
            "concession_proof_required",
            "a concession ticket needs the buyer's category and ID: " + ", ".join(sorted(CONCESSION_CATEGORIES)),
        )
    if not concession and concession_category is not None:
        raise ExpoError("concession_not_applicable", "only concession tickets take a concession category")


def check_wallet_password(*, channel: Channel, method: PaymentMethod, password_given: bool) -> None:
    """A web wallet payment is confirmed with the payment password; nothing else carries one: a 12580 agent
    never hears it (the buyer confirms a texted code instead)."""
    if method == PaymentMethod.WALLET and channel == Channel.WEB:
        if not password_given:
            raise ExpoError("password_required", "a web wallet payment is confirmed with the payment password")
    elif password_given:
        raise ExpoError("password_not_allowed", f"a {method} payment through the {channel} channel takes no password")


def check_void(
    *, status: OrderStatus, method: PaymentMethod, paid_day: date | None, today: date, tickets_unused: bool
) -> None:
    """A paid sale is voided only on the day it was paid and before any ticket is used; a wallet payment still
    waiting for its texted code may be voided any time (nothing was taken: the hold is let go)."""
    if status == OrderStatus.AWAITING_PAYMENT and method == PaymentMethod.WALLET:
        return
    if status != OrderStatus.PAID:
        raise ExpoError("not_voidable", f"an order that is {status} cannot be voided", status=409)
    if paid_day != today:
        raise ExpoError("void_window_passed", "a sale can be voided only on its own day; refund it", status=409)
    if not tickets_unused:
        raise ExpoError("ticket_used", "a used ticket cannot be voided", status=409)


def check_refund(*, status: OrderStatus, tickets_unused: bool, closes_on: date, today: date) -> None:
    """A paid, unused order is refunded in full until `closes_on` (a dated ticket's day, else the Expo's last)."""
    if status != OrderStatus.PAID:
        raise ExpoError("not_refundable", f"an order that is {status} cannot be refunded", status=409)
    if not tickets_unused:
        raise ExpoError("ticket_used", "a used ticket cannot be refunded", status=409)
    if today >= closes_on:
        raise ExpoError("refund_window_passed", f"refunds closed on {closes_on.isoformat()}", status=409)


def check_awaiting_code(*, status: OrderStatus, method: PaymentMethod) -> None:
    """Only a wallet order waiting for its texted code takes one (a paid one is answered as it stands, for retries)."""
    if method != PaymentMethod.WALLET or status not in (OrderStatus.AWAITING_PAYMENT, OrderStatus.PAID):
        raise ExpoError(
            "not_awaiting_payment", f"this {method} order is {status}, not waiting for a wallet code", status=409
        )


def check_may_reverse(*, actor_role: Role, actor_hall: str | None, channel: Channel, hall: str | None) -> None:
    """Voids, refunds and wallet-code confirmations are done by the selling channel (and hall), or by the
    operator's back office."""
    if actor_role == Role.ADMIN:
        return
    if CHANNEL_OF_ROLE.get(actor_role) != channel or (channel == Channel.HALL and actor_hall != hall):
        raise Forbidden("not_your_sale", "only the selling channel (and hall) can act on this sale")
