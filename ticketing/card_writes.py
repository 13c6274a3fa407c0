"""Writing tickets to Expo cards through a relaying terminal (hall counter) or over the air, exactly once.

The platform holds the root keys and the terminal only relays: the platform builds OPEN SESSION with a
fresh RND_T, checks the card's cryptogram in the answer and builds the MAC'd WRITE TICKET for that session
and slot; the terminal reads the slot back and the platform confirms the write only when the record on
the card is the one it sent. Until then the ticket stays writable and every retry is a new attempt with
a fresh session, never a second ticket: an earlier attempt whose record turns up on the card is confirmed
instead, and one that may have landed blocks the next until its slot has been read. Lock order: the
ticket, then its attempts, then the card.
"""

import logging
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from expo.access.rules import Principal
from expo.errors import Conflict, ExpoError, NotFound
from simcard.apdu import SW_OK, MalformedApdu, split_response
from simcard.keys import KEY_ISSUE, KEY_VALIDATE, KeySet, sam_card_key
from simcard.messages import CHALLENGE_BYTES, MalformedResponse, SessionOpening, open_session_command
from simcard.record import CARD_PART_OFFSET, sign
from simcard.session import CardError, Session
from ticketing.card_models import CardWrite, ExpoCard
from ticketing.card_rules import choose_slot, ticket_record
from ticketing.cards import CardStatus, check_card_province, load_card
from ticketing.models import Order, Ticket
from ticketing.orders import MAX_ORDER_ID
from ticketing.sales_rules import Carrier, TicketStatus

log = logging.getLogger(__name__)


class WriteState(StrEnum):
    AWAITING_SESSION = "awaiting_session"  # OPEN SESSION handed out; the card's answer is awaited
    AWAITING_RESULT = "awaiting_result"  # WRITE TICKET handed out; the record read back is awaited
    CONFIRMED = "confirmed"  # the record is on the card
    FAILED = "failed"  # this attempt is over (`failure` says why); the ticket stays writable


OPEN = (WriteState.AWAITING_SESSION.value, WriteState.AWAITING_RESULT.value)


@dataclass(frozen=True)
class SlotRecord:
    """A record the terminal read from an occupied slot."""

    slot: int
    record: bytes


@dataclass(frozen=True)
class WriteStep:
    """An attempt and what the terminal sends the card next (nothing once the write is confirmed)."""

    write: CardWrite
    open_session: bytes | None = None  # step 2's OPEN SESSION
    write_ticket: bytes | None = None  # step 3's WRITE TICKET


@dataclass(frozen=True)
class Outcome:
    """A step's result: the next step, or the refusal to raise once the failed attempt is committed."""

    step: WriteStep | None = None
    refusal: ExpoError | None = None


async def start_write(
    session: AsyncSession,
    *,
    actor: Principal,
    ticket_id: int,
    csn: bytes,
    free_slots: Sequence[int],
    records: Sequence[SlotRecord],
    now: datetime,
) -> WriteStep:
    """Begin writing a paid card ticket to its number's active card: a new attempt and its OPEN SESSION (ISSUE).

    An earlier attempt's record among the slots read confirms that attempt instead; an earlier attempt whose
    slot is neither free nor read refuses with `write_unresolved` until the terminal reads that slot.
    """
    ticket = await _lock_ticket(session, ticket_id)
    _check_writable(ticket)
    attempts = await _attempts(session, ticket.id)
    _check_not_written(attempts)
    card = await load_card(session, csn=csn)
    check_card_province(actor, card)
    if card.status != CardStatus.ACTIVE or card.msisdn != ticket.msisdn:
        raise Conflict("card_not_registered", f"card {card.csn} is not the active card of the ticket's number")
    found = _found_on_card(attempts, csn=card.csn, records=records)
    if found is not None:
        _confirm(found, attempts, now=now)
        return WriteStep(found)
    occupied = {r.slot: r.record for r in records}
    _settle_earlier(attempts, csn=card.csn, free_slots=set(free_slots), occupied=occupied, now=now)
    confirmed_slots = await session.scalars(
        select(CardWrite.slot).where(CardWrite.csn == card.csn, CardWrite.state == WriteState.CONFIRMED.value)
    )
    slot = choose_slot(free_slots=set(free_slots) - set(occupied), confirmed_slots=confirmed_slots)
    rnd_t = secrets.token_bytes(CHALLENGE_BYTES)
    write = CardWrite(
        ticket_id=ticket.id,
        attempt=max((a.attempt for a in attempts), default=0) + 1,
        csn=card.csn,
        slot=slot,
        state=WriteState.AWAITING_SESSION.value,
        rnd_t=rnd_t,
        credential_id=actor.credential_id,
        staff_id=actor.staff_id,
        created_at=now,
        updated_at=now,
    )
    session.add(write)
    await session.flush()
    return WriteStep(write, open_session=open_session_command(KEY_ISSUE, rnd_t))


async def accept_session(
    session: AsyncSession, *, actor: Principal, write_id: int, response: bytes, root_keys: KeySet, now: datetime
) -> Outcome:
    """The card's answer to OPEN SESSION: a genuine card's cryptogram yields the signed record's WRITE TICKET for
    this session; a refusal, a malformed answer or a wrong cryptogram ends the attempt."""
    write, ticket = await _lock_write(session, actor=actor, write_id=write_id)
    if write.state != WriteState.AWAITING_SESSION:
        raise Conflict("write_not_pending", f"card write {write.id} is {write.state}", state=write.state)
    card = await load_card(session, csn=bytes.fromhex(write.csn), lock=True)
    opening = _opening(response, card=card)
    if isinstance(opening, ExpoError):
        return _fail(write, opening, now=now)
    _check_key_version(card, root_keys)
    try:
        card_session = Session.start(sam_card_key(root_keys, opening.csn, KEY_ISSUE), KEY_ISSUE, write.rnd_t, opening)
    except CardError:
        return _fail(write, ExpoError("card_cryptogram_invalid", "the card's cryptogram is wrong"), now=now)
    _check_writable(ticket)
    order = await session.get_one(Order, ticket.order_id)
    unsigned = ticket_record(
        ticket_id=ticket.id,
        ticket_type=ticket.ticket_type,
        visit_day=ticket.visit_day,
        upgrade_day=ticket.upgrade_day,
        channel=order.channel,
        province=order.sale_province,
        key_version=card.key_version,
    )
    record = sign(unsigned, sam_card_key(root_keys, opening.csn, KEY_VALIDATE), opening.csn)
    card.last_ctr = max(card.last_ctr, opening.ctr)
    write.ctr = opening.ctr
    write.record = record
    write.state = WriteState.AWAITING_RESULT.value
    write.updated_at = now
    return Outcome(WriteStep(write, write_ticket=card_session.write_ticket_command(write.slot, record)))


async def finish_write(
    session: AsyncSession, *, actor: Principal, write_id: int, sw: int, record: bytes | None, now: datetime
) -> Outcome:
    """The terminal's report after WRITE TICKET: confirmed when the record read back is the one sent (whatever
    the write's status word said); otherwise the attempt fails and the ticket stays writable."""
    write, _ = await _lock_write(session, actor=actor, write_id=write_id)
    if write.state == WriteState.CONFIRMED:
        return Outcome(WriteStep(write))
    if write.record is None:
        raise Conflict("write_not_pending", f"card write {write.id} sent nothing to the card", state=write.state)
    if record is not None and record[:CARD_PART_OFFSET] == write.record[:CARD_PART_OFFSET]:
        _confirm(write, await _attempts(session, write.ticket_id), now=now)
        return Outcome(WriteStep(write))
    reason = "card_refused" if sw != SW_OK else ("record_mismatch" if record is not None else "not_read_back")
    refusal = Conflict(
        "write_not_confirmed", f"the card does not hold the ticket ({reason})", reason=reason, sw=f"{sw:04X}"
    )
    if write.state != WriteState.AWAITING_RESULT:
        return Outcome(refusal=refusal)
    return _fail(write, refusal, now=now, failure=reason)


async def pending_writes(session: AsyncSession, *, reader: Principal, csn: bytes) -> list[Ticket]:
    """Paid card tickets of the card's number that are not on a card yet, oldest first (for over-the-air writes)."""
    card = await load_card(session, csn=csn)
    check_card_province(reader, card)
    if card.status != CardStatus.ACTIVE or card.msisdn is None:
        return []
    written = select(CardWrite.ticket_id).where(CardWrite.state == WriteState.CONFIRMED.value)
    tickets = await session.scalars(
        select(Ticket)
        .where(
            Ticket.msisdn == card.msisdn,
            Ticket.carrier == Carrier.EXPO_CARD.value,
            Ticket.status == TicketStatus.ISSUED.value,
            Ticket.id.not_in(written),
        )
        .order_by(Ticket.id)
    )
    return list(tickets)


async def _lock_ticket(session: AsyncSession, ticket_id: int) -> Ticket:
    ticket = None
    if 0 < ticket_id <= MAX_ORDER_ID:
        ticket = await session.scalar(select(Ticket).where(Ticket.id == ticket_id).with_for_update())
    if ticket is None:
        raise NotFound("ticket_not_found", f"no ticket {ticket_id}")
    return ticket


async def _lock_write(session: AsyncSession, *, actor: Principal, write_id: int) -> tuple[CardWrite, Ticket]:
    """The attempt, if the caller started it, locked after its ticket (the fixed lock order)."""
    found = await session.get(CardWrite, write_id) if 0 < write_id <= MAX_ORDER_ID else None
    if found is None or found.credential_id != actor.credential_id:
        raise NotFound("write_not_found", f"no card write {write_id}")
    ticket = await _lock_ticket(session, found.ticket_id)
    write = await session.scalar(
        select(CardWrite).where(CardWrite.id == write_id).with_for_update().execution_options(populate_existing=True)
    )
    assert write is not None
    return write, ticket


async def _attempts(session: AsyncSession, ticket_id: int) -> list[CardWrite]:
    query = select(CardWrite).where(CardWrite.ticket_id == ticket_id).order_by(CardWrite.attempt)
    return list(await session.scalars(query.with_for_update().execution_options(populate_existing=True)))


def _check_writable(ticket: Ticket) -> None:
    """Only a paid, unused Expo-card ticket is written to a card."""
    if ticket.carrier != Carrier.EXPO_CARD:
        raise ExpoError("not_a_card_ticket", f"ticket {ticket.id} is a {ticket.carrier} ticket, not an Expo card one")
    if ticket.status in (TicketStatus.VOID, TicketStatus.REFUNDED):
        raise Conflict("ticket_voided", f"ticket {ticket.id} is {ticket.status}", ticket_status=ticket.status)
    if ticket.status == TicketStatus.USED:
        raise Conflict("ticket_used", f"ticket {ticket.id} is used")
    if ticket.status != TicketStatus.ISSUED:
        raise Conflict("ticket_not_paid", f"ticket {ticket.id} is {ticket.status}", ticket_status=ticket.status)


def _check_not_written(attempts: Sequence[CardWrite]) -> None:
    for attempt in attempts:
        if attempt.state == WriteState.CONFIRMED:
            raise Conflict("already_written", "the ticket is already on a card", csn=attempt.csn, slot=attempt.slot)


def _check_key_version(card: ExpoCard, root_keys: KeySet) -> None:
    if card.key_version != root_keys.version:
        raise ExpoError("card_key_version_unknown", f"card {card.csn} has key version {card.key_version}", status=409)


def _opening(response: bytes, *, card: ExpoCard) -> SessionOpening | ExpoError:
    """The OPEN SESSION answer of this very card (its CSN and key version), or why it is not one."""
    try:
        data, sw = split_response(response)
        if sw != SW_OK:
            return Conflict("card_refused", f"the card refused to open a session ({sw:04X})", sw=f"{sw:04X}")
        opening = SessionOpening.parse(data)
    except (MalformedApdu, MalformedResponse):
        return ExpoError("card_response_invalid", "the card's answer is not an OPEN SESSION answer")
    if opening.csn.hex() != card.csn or opening.key_version != card.key_version:
        return ExpoError("card_response_invalid", "the answer comes from another card or key version")
    return opening


def _found_on_card(attempts: Sequence[CardWrite], *, csn: str, records: Sequence[SlotRecord]) -> CardWrite | None:
    """An earlier attempt whose record the terminal read on this card (its confirmation got lost)."""
    for attempt in attempts:
        if attempt.csn != csn or attempt.record is None:
            continue
        for found in records:
            if found.slot == attempt.slot and found.record[:CARD_PART_OFFSET] == attempt.record[:CARD_PART_OFFSET]:
                return attempt
    return None


def _settle_earlier(
    attempts: Sequence[CardWrite], *, csn: str, free_slots: set[int], occupied: dict[int, bytes], now: datetime
) -> None:
    """End the open attempts a new one supersedes, once none of them can have put the ticket on the card."""
    for attempt in attempts:
        if attempt.state not in OPEN:
            continue
        if attempt.state == WriteState.AWAITING_RESULT and attempt.csn == csn:
            if attempt.slot not in free_slots and attempt.slot not in occupied:
                raise Conflict(
                    "write_unresolved",
                    f"an earlier write may be in slot {attempt.slot}: read that slot and report it",
                    slot=attempt.slot,
                )
            failure = "not_on_card"
        elif attempt.state == WriteState.AWAITING_RESULT:
            failure = "card_replaced"  # the number has another active card now
        else:
            failure = "superseded"
        attempt.state = WriteState.FAILED.value
        attempt.failure = failure
        attempt.updated_at = now


def _confirm(write: CardWrite, attempts: Sequence[CardWrite], *, now: datetime) -> None:
    """The record is on the card: this attempt is the ticket's one write; the other open attempts end."""
    _check_not_written([a for a in attempts if a.id != write.id])
    for attempt in attempts:
        if attempt.id != write.id and attempt.state in OPEN:
            attempt.state = WriteState.FAILED.value
            attempt.failure = "superseded"
            attempt.updated_at = now
    write.state = WriteState.CONFIRMED.value
    write.failure = None
    write.confirmed_at = now
    write.updated_at = now
    log.info(
        "ticket %d confirmed on card %s slot %d (attempt %d)", write.ticket_id, write.csn, write.slot, write.attempt
    )


def _fail(write: CardWrite, refusal: ExpoError, *, now: datetime, failure: str | None = None) -> Outcome:
    write.state = WriteState.FAILED.value
    write.failure = failure or refusal.code
    write.updated_at = now
    log.info("card write %d of ticket %d failed: %s", write.id, write.ticket_id, write.failure)
    return Outcome(refusal=refusal)
