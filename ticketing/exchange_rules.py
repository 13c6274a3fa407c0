"""Pure rules of QR exchange vouchers: when one may be fetched or sent, when it may be exchanged, and its MMS.

A voucher is revoked exactly when its ticket is void or refunded (the gates' revocation list already says
so for the ticket id); nothing about a voucher is stored to revoke it. No I/O here.
"""

from dataclasses import dataclass
from datetime import date, datetime
from enum import StrEnum

from expo.errors import Conflict, ExpoError, NotFound
from ticketing.rules import ticket_kind
from ticketing.sales_rules import Carrier, OrderStatus, TicketStatus
from ticketing.signed_codes import CodeKind, CodeRefused, TicketClaim, grouped

REVOKED = frozenset({TicketStatus.VOID.value, TicketStatus.REFUNDED.value})
MMS_SUBJECT = "Expo 2010 ticket voucher"


class Into(StrEnum):
    """What a voucher is exchanged for at a hall."""

    PHYSICAL = "physical"  # a paper ticket with its own signed code
    EXPO_CARD = "expo_card"  # the ticket, written to the number's Expo card by the card-write steps


@dataclass(frozen=True)
class Exchanged:
    """Where and when a voucher was exchanged, and for what."""

    at: datetime
    into: str
    province: str | None
    hall: str | None


def check_fetchable(*, carrier: str, order_status: str, ticket_status: str) -> None:
    """Only a QR-voucher order has a voucher; a void or refunded ticket's voucher is revoked; it exists once paid."""
    if carrier != Carrier.QR_VOUCHER:
        raise Conflict("not_a_voucher_order", f"the order's tickets are carried by {carrier}, not a QR voucher")
    if ticket_status in REVOKED:
        raise Conflict("voucher_revoked", f"the ticket is {ticket_status}: its voucher is no longer valid")
    if order_status != OrderStatus.PAID:
        raise Conflict("voucher_not_issued", f"the order is {order_status}: a voucher is issued once it is paid")


def check_sendable(exchanged: Exchanged | None) -> None:
    """A voucher already exchanged is not sent again: it would admit nobody."""
    if exchanged is not None:
        raise already_exchanged(exchanged)


def code_refusal(refused: CodeRefused) -> ExpoError:
    """A code that is not genuine (malformed, unknown key, forged, unreadable picture) as a 400 refusal."""
    return ExpoError(refused.code, refused.message, status=400)


def check_voucher_claim(claim: TicketClaim, *, today: date) -> None:
    """A hall exchanges vouchers, not physical tickets; a voucher past its last valid day (Expo-local) is expired."""
    if claim.kind != CodeKind.VOUCHER:
        raise ExpoError("not_a_voucher", "this is a physical ticket's code, not an exchange voucher", status=400)
    if claim.last_day < today:
        raise Conflict("voucher_expired", f"the voucher was valid until {claim.last_day.isoformat()}")


def check_exchangeable(*, code: str, issued_code: str | None, ticket_status: str, exchanged: Exchanged | None) -> None:
    """A genuine code is exchanged once: it must be the voucher the platform issued for the ticket, whose ticket is
    neither void nor refunded nor used, and which was not exchanged before."""
    if issued_code is None or issued_code != code:
        raise NotFound("voucher_unknown", "the platform issued no such voucher")
    if ticket_status in REVOKED:
        raise Conflict("voucher_revoked", f"the ticket is {ticket_status}: its voucher is no longer valid")
    if exchanged is not None:
        raise already_exchanged(exchanged)
    if ticket_status == TicketStatus.USED:
        raise Conflict("ticket_used", "the ticket is used")
    if ticket_status != TicketStatus.ISSUED:
        raise NotFound("voucher_unknown", f"the ticket is {ticket_status}: it has no valid voucher")


def already_exchanged(exchanged: Exchanged) -> Conflict:
    """The refusal of a second exchange, naming the first: when, where and for what."""
    where = exchanged.hall or f"province {exchanged.province}"
    return Conflict(
        "already_exchanged",
        f"the voucher was exchanged for {exchanged.into} at {where} on {exchanged.at.isoformat()}",
        exchanged_at=exchanged.at,
        province=exchanged.province,
        hall=exchanged.hall,
        into=exchanged.into,
    )


def voucher_text(*, ticket_type: str, first_day: date, last_day: date, code: str) -> str:
    """The MMS text sent with a voucher's QR picture: the ticket, its days, where to exchange it and the code."""
    kind = ticket_kind(ticket_type)
    first, last = first_day.isoformat(), last_day.isoformat()
    days = f"on {first}" if first == last else f"{first} to {last}"
    return (
        f"Your Expo 2010 {kind.name} ticket, valid {days}. Show this QR code at a service hall to get a physical "
        f"ticket or to have the ticket written to your Expo card. Exchange code: {grouped(code)}"
    )
