"""Exchanging QR vouchers at a hall, exactly once: for a physical ticket, or for the ticket on an Expo card.

The clerk's terminal reads the voucher (a picture or the typed code); the platform verifies its signature
with every public key it holds, then locks the ticket and then the voucher (the fixed lock order), so two
halls exchanging one voucher at the same instant get one exchange and one `already_exchanged`. A physical
ticket gets its own code, signed with the current key, which gates verify offline; an Expo-card exchange
only moves the ticket to the card carrier, and the terminal writes it by the card-write steps.
"""

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from expo.access.rules import Principal
from expo.clock import expo_local
from expo.errors import Conflict, ExpoError, NotFound
from ticketing.card_rules import parse_csn
from ticketing.cards import CardStatus, check_card_province, load_card
from ticketing.exchange_rules import REVOKED, Into, check_exchangeable, check_voucher_claim, code_refusal
from ticketing.journal import record_event
from ticketing.models import Order, Ticket
from ticketing.orders import MAX_ORDER_ID
from ticketing.sales_rules import Carrier
from ticketing.signed_codes import CodeKind, CodeRefused, TicketClaim, normalize, verify_code
from ticketing.signing_keys import Keyring
from ticketing.voucher_models import PhysicalTicket, Voucher
from ticketing.vouchers import exchange_of


@dataclass(frozen=True)
class Exchange:
    """A voucher exchanged: the voucher, its ticket, and the physical ticket printed for it (if that)."""

    voucher: Voucher
    ticket: Ticket
    physical: PhysicalTicket | None


async def exchange_voucher(
    session: AsyncSession,
    *,
    clerk: Principal,
    code: str,
    into: Into,
    csn: str | None,
    keyring: Keyring,
    now: datetime,
) -> Exchange:
    """Exchange a genuine, unexpired, unrevoked voucher once, for a physical ticket or onto the active Expo card of
    the ticket's number (`csn_required`, `card_not_registered`). Nothing changes on a refusal."""
    card_csn = _card_csn(into, csn)
    claim = _verified(code, keyring)
    check_voucher_claim(claim, today=expo_local(now).date())
    ticket = await _lock_ticket(session, claim.ticket_id)
    voucher = await session.scalar(select(Voucher).where(Voucher.ticket_id == ticket.id).with_for_update())
    check_exchangeable(
        code=normalize(code),
        issued_code=voucher.code if voucher else None,
        ticket_status=ticket.status,
        exchanged=exchange_of(voucher) if voucher else None,
    )
    assert voucher is not None
    physical = None
    if card_csn is None:
        physical = _print_physical(session, ticket=ticket, voucher=voucher, clerk=clerk, keyring=keyring, now=now)
        ticket.carrier = Carrier.PHYSICAL.value
    else:
        card = await load_card(session, csn=card_csn)
        check_card_province(clerk, card)
        if card.status != CardStatus.ACTIVE or card.msisdn != ticket.msisdn:
            raise Conflict("card_not_registered", f"card {card.csn} is not the active card of the ticket's number")
        ticket.carrier = Carrier.EXPO_CARD.value
    voucher.exchanged_at = now
    voucher.exchanged_into = into.value
    voucher.exchange_province = clerk.province_code
    voucher.exchange_hall = clerk.hall
    voucher.exchange_credential_id = clerk.credential_id
    voucher.exchange_staff_id = clerk.staff_id
    order = await session.get_one(Order, ticket.order_id)
    record_event(
        session,
        order=order,
        event="voucher_exchanged",
        status_to=order.status,
        by=clerk,
        now=now,
        detail=f"ticket {ticket.id} into {into.value}",
    )
    await session.flush()
    return Exchange(voucher, ticket, physical)


def _card_csn(into: Into, csn: str | None) -> bytes | None:
    if into == Into.PHYSICAL:
        return None
    if not csn:
        raise ExpoError("csn_required", "an exchange onto an Expo card names the card's CSN", status=400)
    return parse_csn(csn)


def _verified(code: str, keyring: Keyring) -> TicketClaim:
    try:
        return verify_code(code, keyring.public_keys())
    except CodeRefused as refused:
        raise code_refusal(refused) from None


async def _lock_ticket(session: AsyncSession, ticket_id: int) -> Ticket:
    ticket = None
    if 0 < ticket_id <= MAX_ORDER_ID:
        ticket = await session.scalar(select(Ticket).where(Ticket.id == ticket_id).with_for_update())
    if ticket is None:
        raise NotFound("voucher_unknown", "the platform issued no such voucher")
    return ticket


def _print_physical(
    session: AsyncSession, *, ticket: Ticket, voucher: Voucher, clerk: Principal, keyring: Keyring, now: datetime
) -> PhysicalTicket:
    """The paper ticket's code: the ticket as it stands now (an upgrade included), signed with the current key."""
    claim, code = keyring.sign_ticket(
        CodeKind.PHYSICAL,
        ticket_id=ticket.id,
        ticket_type=ticket.ticket_type,
        visit_day=ticket.visit_day,
        upgrade_day=ticket.upgrade_day,
    )
    physical = PhysicalTicket(
        ticket_id=ticket.id,
        voucher_id=voucher.id,
        kid=claim.kid,
        code=code,
        first_day=claim.first_day,
        last_day=claim.last_day,
        issued_at=now,
        province=clerk.province_code or "",
        hall=clerk.hall,
        credential_id=clerk.credential_id,
        staff_id=clerk.staff_id,
    )
    session.add(physical)
    return physical


async def physical_ticket(session: AsyncSession, *, reader: Principal, ticket_id: int) -> PhysicalTicket:
    """A physical ticket for a reprint, seen by the exchanging province's clerks and the back office; the paper of
    a void or refunded ticket is not printed again (`ticket_voided`)."""
    found = None
    if 0 < ticket_id <= MAX_ORDER_ID:
        found = await session.scalar(select(PhysicalTicket).where(PhysicalTicket.ticket_id == ticket_id))
    if found is None or not reader.sees_province(found.province):
        raise NotFound("physical_ticket_not_found", f"no physical ticket for ticket {ticket_id}")
    status = await session.scalar(select(Ticket.status).where(Ticket.id == ticket_id))
    if status in REVOKED:
        raise Conflict("ticket_voided", f"ticket {ticket_id} is {status}", ticket_status=status)
    return found
