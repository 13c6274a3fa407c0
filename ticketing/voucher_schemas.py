"""API schemas of vouchers, physical tickets and the MMS outbox (msgspec Structs), and their construction."""

from datetime import date, datetime
from typing import Annotated

from msgspec import Meta, Struct

from ticketing.exchange_rules import Exchanged, Into
from ticketing.exchanges import Exchange
from ticketing.mms import SentMms
from ticketing.signed_codes import grouped
from ticketing.voucher_models import PhysicalTicket
from ticketing.vouchers import VoucherView

# A code as typed may carry dashes and spaces; anything longer than a few times a code is not one.
CodeText = Annotated[str, Meta(min_length=1, max_length=400)]
CsnHex = Annotated[str, Meta(pattern=r"^[0-9A-Fa-f]{16}$")]


class ExchangeIn(Struct, forbid_unknown_fields=True):
    code: CodeText
    into: Into
    csn: CsnHex | None = None  # the Expo card's CSN, for an exchange onto the card


class ExchangedOut(Struct):
    at: datetime
    into: str
    province: str | None
    hall: str | None


class VoucherOut(Struct):
    ticket_id: int
    order_id: int
    code: str
    code_grouped: str
    kid: int
    last_day: date
    issued_at: datetime
    sent_at: datetime | None
    sends: int
    exchanged: ExchangedOut | None


class PhysicalCodeOut(Struct):
    code: str
    code_grouped: str
    kid: int
    first_day: date
    last_day: date


class ExchangeOut(Struct):
    ticket_id: int
    order_id: int
    into: str
    msisdn: str
    ticket_type: str
    first_day: date
    last_day: date
    exchanged_at: datetime
    physical: PhysicalCodeOut | None


class PhysicalOut(Struct):
    ticket_id: int
    code: str
    code_grouped: str
    kid: int
    first_day: date
    last_day: date
    issued_at: datetime
    hall: str | None


class MmsOut(Struct):
    id: int
    msisdn: str
    subject: str
    text: str
    created_at: datetime


def _exchanged_out(exchanged: Exchanged | None) -> ExchangedOut | None:
    if exchanged is None:
        return None
    return ExchangedOut(exchanged.at, exchanged.into, exchanged.province, exchanged.hall)


def voucher_out(view: VoucherView) -> VoucherOut:
    """A voucher as sellers see it."""
    voucher = view.voucher
    return VoucherOut(
        ticket_id=voucher.ticket_id,
        order_id=voucher.order_id,
        code=voucher.code,
        code_grouped=grouped(voucher.code),
        kid=voucher.kid,
        last_day=voucher.last_day,
        issued_at=voucher.issued_at,
        sent_at=voucher.sent_at,
        sends=voucher.sends,
        exchanged=_exchanged_out(view.exchanged),
    )


def exchange_out(exchange: Exchange) -> ExchangeOut:
    """An exchange as the hall terminal gets it: the ticket, and the physical ticket's code to print."""
    voucher, ticket, physical = exchange.voucher, exchange.ticket, exchange.physical
    assert voucher.exchanged_at is not None
    assert voucher.exchanged_into is not None
    printed = None
    if physical is not None:
        printed = PhysicalCodeOut(
            physical.code, grouped(physical.code), physical.kid, physical.first_day, physical.last_day
        )
    return ExchangeOut(
        ticket_id=ticket.id,
        order_id=ticket.order_id,
        into=voucher.exchanged_into,
        msisdn=ticket.msisdn,
        ticket_type=ticket.ticket_type,
        first_day=physical.first_day if physical else voucher.first_day,
        last_day=physical.last_day if physical else voucher.last_day,
        exchanged_at=voucher.exchanged_at,
        physical=printed,
    )


def physical_out(physical: PhysicalTicket) -> PhysicalOut:
    """A physical ticket for a reprint."""
    return PhysicalOut(
        ticket_id=physical.ticket_id,
        code=physical.code,
        code_grouped=grouped(physical.code),
        kid=physical.kid,
        first_day=physical.first_day,
        last_day=physical.last_day,
        issued_at=physical.issued_at,
        hall=physical.hall,
    )


def mms_out(message: SentMms) -> MmsOut:
    """An MMS of the outbox, without its picture."""
    return MmsOut(message.id, message.msisdn, message.subject, message.text, message.created_at)
