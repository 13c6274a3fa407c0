"""QR exchange vouchers: issued once a QR-voucher ticket is paid, sent by MMS, fetched and sent again by sellers.

A voucher is made after the paying transaction has committed, by `deliver_vouchers`: idempotent, so the
handlers that pay an order call it for that order and the app's sweeper calls it for all (a crash between
the payment's commit and the voucher is caught there). It inserts the missing vouchers signed with the
current key (a second issuer's insert of the same ticket does nothing), then sends the unsent ones. Each
send is claimed first with `UPDATE ... WHERE sent_at IS NULL` in its own committed transaction, so two
workers never both send; a send that fails gives its claim back for the next round.
"""

import asyncio
import logging
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import exists, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from expo.access.rules import Principal
from expo.db import Database
from expo.errors import ExpoError
from ticketing.exchange_rules import MMS_SUBJECT, Exchanged, check_fetchable, check_sendable, voucher_text
from ticketing.mms import MmsGateway
from ticketing.models import Order, Payment, Ticket
from ticketing.orders import load_order
from ticketing.qr import qr_png
from ticketing.sales_rules import Carrier, TicketStatus
from ticketing.signed_codes import CodeKind
from ticketing.signing_keys import Keyring
from ticketing.voucher_models import Voucher

log = logging.getLogger(__name__)

BATCH = 200  # vouchers issued or sent per round of the sweeper


@dataclass
class DeliveryReport:
    """What one delivery did."""

    issued: int = 0
    sent: int = 0
    failed: int = 0


@dataclass(frozen=True)
class VoucherView:
    """A voucher with its ticket, as a seller sees it."""

    voucher: Voucher
    ticket: Ticket

    @property
    def exchanged(self) -> Exchanged | None:
        """Where and when it was exchanged, if it was."""
        return exchange_of(self.voucher)


def exchange_of(voucher: Voucher) -> Exchanged | None:
    """The voucher's exchange, if it was exchanged."""
    if voucher.exchanged_at is None or voucher.exchanged_into is None:
        return None
    return Exchanged(voucher.exchanged_at, voucher.exchanged_into, voucher.exchange_province, voucher.exchange_hall)


async def deliver_vouchers(
    db: Database, *, keyring: Keyring, mms: MmsGateway, now: datetime, order_id: int | None = None
) -> DeliveryReport:
    """Issue the missing vouchers of paid QR-voucher tickets (of one order, or all), then send the unsent ones.

    Safe to run any number of times, from any number of workers at once."""
    report = DeliveryReport()
    async with db.write() as session:
        report.issued = await issue_missing(session, keyring=keyring, now=now, order_id=order_id)
    async with db.read() as session:
        unsent = await _unsent(session, order_id=order_id)
    for voucher_id in unsent:
        claimed = await _claim(db, voucher_id=voucher_id, now=now)
        if claimed is None:
            continue  # another worker sends it
        try:
            await _send(mms, claimed, now=now)
        except Exception:
            log.exception("the MMS of voucher %d could not be sent; it is sent again next round", voucher_id)
            await _unclaim(db, voucher_id=voucher_id, claimed_at=now)
            report.failed += 1
        else:
            report.sent += 1
    if report.issued or report.sent or report.failed:
        # An order's own delivery is routine; the sweeper finding work means a delivery after a payment was missed.
        level = logging.DEBUG if order_id is not None else logging.INFO
        log.log(level, "vouchers: %d issued, %d sent, %d failed", report.issued, report.sent, report.failed)
    return report


async def issue_missing(session: AsyncSession, *, keyring: Keyring, now: datetime, order_id: int | None = None) -> int:
    """Sign and store the voucher of every paid QR-voucher ticket that has none yet; returns how many were made."""
    has_voucher = exists().where(Voucher.ticket_id == Ticket.id)
    query = select(Ticket).where(
        Ticket.carrier == Carrier.QR_VOUCHER.value, Ticket.status == TicketStatus.ISSUED.value, ~has_voucher
    )
    if order_id is not None:
        query = query.where(Ticket.order_id == order_id)
    tickets = list(await session.scalars(query.order_by(Ticket.id).limit(BATCH)))
    if not tickets:
        return 0
    rows = []
    for ticket in tickets:
        claim, code = keyring.sign_ticket(
            CodeKind.VOUCHER,
            ticket_id=ticket.id,
            ticket_type=ticket.ticket_type,
            visit_day=ticket.visit_day,
            upgrade_day=ticket.upgrade_day,
        )
        rows.append(
            {
                "ticket_id": ticket.id,
                "order_id": ticket.order_id,
                "msisdn": ticket.msisdn,
                "kid": claim.kid,
                "code": code,
                "first_day": claim.first_day,
                "last_day": claim.last_day,
                "issued_at": now,
                "sends": 0,
            }
        )
    dialect = postgresql if session.get_bind().dialect.name == "postgresql" else sqlite
    # Another worker issuing the same ticket's voucher at the same moment wins; this insert then skips it.
    made = await session.scalars(dialect.insert(Voucher).values(rows).on_conflict_do_nothing().returning(Voucher.id))
    return len(made.all())


async def _unsent(session: AsyncSession, *, order_id: int | None) -> list[int]:
    """Vouchers never sent whose ticket is still valid and not exchanged."""
    query = (
        select(Voucher.id)
        .join(Ticket, Ticket.id == Voucher.ticket_id)
        .where(
            Voucher.sent_at.is_(None),
            Voucher.exchanged_at.is_(None),
            Ticket.status == TicketStatus.ISSUED.value,
        )
    )
    if order_id is not None:
        query = query.where(Voucher.order_id == order_id)
    return list(await session.scalars(query.order_by(Voucher.id).limit(BATCH)))


@dataclass(frozen=True)
class _Claimed:
    voucher: Voucher
    ticket_type: str


async def _claim(db: Database, *, voucher_id: int, now: datetime) -> _Claimed | None:
    """Take the voucher's first send: only one claimant sees its `sent_at` still empty."""
    async with db.write() as session:
        taken = await session.scalar(
            update(Voucher)
            .where(Voucher.id == voucher_id, Voucher.sent_at.is_(None))
            .values(sent_at=now, sends=Voucher.sends + 1)
            .returning(Voucher.id)
        )
        if taken is None:
            return None
        voucher = await session.get_one(Voucher, voucher_id, populate_existing=True)
        ticket_type = await session.scalar(select(Ticket.ticket_type).where(Ticket.id == voucher.ticket_id))
    assert ticket_type is not None
    return _Claimed(voucher, ticket_type)


async def _unclaim(db: Database, *, voucher_id: int, claimed_at: datetime) -> None:
    """A send that failed: the voucher is unsent again (unless a later send has happened meanwhile)."""
    async with db.write() as session:
        await session.execute(
            update(Voucher)
            .where(Voucher.id == voucher_id, Voucher.sent_at == claimed_at)
            .values(sent_at=None, sends=Voucher.sends - 1)
        )


async def _send(mms: MmsGateway, claimed: _Claimed, *, now: datetime) -> None:
    voucher = claimed.voucher
    text = voucher_text(
        ticket_type=claimed.ticket_type, first_day=voucher.first_day, last_day=voucher.last_day, code=voucher.code
    )
    # Drawing the QR (pure Python, ~30 ms) runs beside the event loop, which keeps serving other requests.
    picture = await asyncio.to_thread(qr_png, voucher.code)
    await mms.send(msisdn=voucher.msisdn, subject=MMS_SUBJECT, text=text, image_png=picture, now=now)


async def fetch_voucher(
    db: Database, *, reader: Principal, order_id: int, keyring: Keyring | None, mms: MmsGateway, now: datetime
) -> VoucherView:
    """The voucher of a QR-voucher order the reader may see; a paid order's missing voucher is delivered first.

    Refusals: `not_a_voucher_order`, `voucher_revoked` (ticket void or refunded), `voucher_not_issued` (not paid),
    `signing_keys_unavailable` (it must be issued, but no keyring is at hand)."""
    async with db.read() as session:
        view = await _voucher_of(session, reader=reader, order_id=order_id)
    if view.voucher is not None:
        return VoucherView(view.voucher, view.ticket)
    if keyring is None:
        raise ExpoError("signing_keys_unavailable", "the platform cannot sign vouchers right now", status=503)
    await deliver_vouchers(db, keyring=keyring, mms=mms, now=now, order_id=view.ticket.order_id)
    async with db.read() as session:
        view = await _voucher_of(session, reader=reader, order_id=order_id)
    if view.voucher is None:
        raise ExpoError("voucher_not_issued", "the voucher could not be issued yet; try again", status=409)
    return VoucherView(view.voucher, view.ticket)


async def resend_voucher(
    db: Database, *, reader: Principal, order_id: int, keyring: Keyring | None, mms: MmsGateway, now: datetime
) -> VoucherView:
    """Send a voucher's MMS again (the buyer lost it); an exchanged voucher is not sent (`already_exchanged`)."""
    view = await fetch_voucher(db, reader=reader, order_id=order_id, keyring=keyring, mms=mms, now=now)
    check_sendable(view.exchanged)
    try:
        await _send(mms, _Claimed(view.voucher, view.ticket.ticket_type), now=now)
    except Exception as exc:
        log.exception("the MMS of voucher %d could not be sent again", view.voucher.id)
        raise ExpoError("mms_send_failed", "the MMS could not be sent; try again", status=502) from exc
    async with db.write() as session:
        await session.execute(
            update(Voucher).where(Voucher.id == view.voucher.id).values(sent_at=now, sends=Voucher.sends + 1)
        )
    return await fetch_voucher(db, reader=reader, order_id=order_id, keyring=keyring, mms=mms, now=now)


@dataclass(frozen=True)
class _Found:
    ticket: Ticket
    voucher: Voucher | None


async def _voucher_of(session: AsyncSession, *, reader: Principal, order_id: int) -> _Found:
    order = await load_order(session, reader=reader, order_id=order_id)
    ticket = await session.scalar(select(Ticket).where(Ticket.order_id == order.id).order_by(Ticket.id).limit(1))
    if ticket is None:
        raise ExpoError("voucher_not_issued", f"order {order.id} has no ticket", status=409)
    check_fetchable(carrier=order.carrier, order_status=order.status, ticket_status=ticket.status)
    voucher = await session.scalar(select(Voucher).where(Voucher.ticket_id == ticket.id))
    return _Found(ticket, voucher)


async def order_paid_by(db: Database, *, reference: str) -> int | None:
    """The order a bank reference's charge belongs to, if that order is a QR-voucher order."""
    async with db.read() as session:
        return await session.scalar(
            select(Order.id)
            .join(Payment, Payment.order_id == Order.id)
            .where(Payment.reference == reference, Payment.kind == "charge", Order.carrier == Carrier.QR_VOUCHER.value)
        )
