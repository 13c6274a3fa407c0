"""HTTP API of Expo cards: the card registry, SIM-swap registration and the relayed write of tickets to cards.

A write, as a hall terminal (or the phone's OTA agent) runs it:
1. SELECT the card (CSN, CTR) and READ TICKET every slot;
2. `POST /v1/tickets/{id}/card-writes` {csn, free_slots, records} -> `open_session_apdu` (the platform's RND_T);
3. send it to the card, `POST /v1/card-writes/{id}/session` {response} -> `write_apdu`, `read_apdu`;
4. send both, `POST /v1/card-writes/{id}/result` {sw of the write, record read back} -> confirmed.
APDUs and card answers travel as hex; key material never leaves the platform, in replies or logs.
"""

from datetime import date, datetime
from typing import Annotated, Any

from litestar import Request, Response, Router, get, post
from litestar.params import FromPath, JSONBody
from msgspec import Meta, Struct

from expo.access.rules import Role
from expo.errors import ExpoError
from expo.http import allow, clock_of, db_of, json_reply, principal_of, settings_of
from simcard.keys import KeySet
from simcard.keystore import KeyFileError, load_root_keys
from simcard.messages import read_ticket_command
from ticketing import card_writes, cards
from ticketing.card_models import CardWrite, ExpoCard
from ticketing.card_rules import parse_csn
from ticketing.card_writes import Outcome, SlotRecord, WriteStep

AnyRequest = Request[Any, Any, Any]
Slot = Annotated[int, Meta(ge=1, le=4)]
CsnHex = Annotated[str, Meta(pattern=r"^[0-9A-Fa-f]{16}$")]
RecordHex = Annotated[str, Meta(pattern=r"^[0-9A-Fa-f]{64}$")]
WRITERS = (Role.HALL_CLERK, Role.WEB)


class RegistrationIn(Struct, forbid_unknown_fields=True):
    csn: CsnHex
    msisdn: Annotated[str, Meta(min_length=1, max_length=20)]


class SlotRecordIn(Struct, forbid_unknown_fields=True):
    slot: Slot
    record: RecordHex


class WriteStartIn(Struct, forbid_unknown_fields=True):
    csn: CsnHex
    free_slots: Annotated[list[Slot], Meta(max_length=4)]
    records: Annotated[list[SlotRecordIn], Meta(max_length=4)] = []


class SessionIn(Struct, forbid_unknown_fields=True):
    response: Annotated[str, Meta(pattern=r"^([0-9A-Fa-f]{2}){2,258}$")]  # R-APDU: data and SW1 SW2


class ResultIn(Struct, forbid_unknown_fields=True):
    sw: Annotated[str, Meta(pattern=r"^[0-9A-Fa-f]{4}$")]  # WRITE TICKET's status word
    record: RecordHex | None = None  # READ TICKET of the slot afterwards; null when it could not be read


class CardOut(Struct):
    csn: str
    province: str
    status: str
    msisdn: str | None
    key_version: int
    registered_at: datetime | None


class RegistrationOut(Struct):
    card: CardOut
    replaced_csn: str | None


class WriteOut(Struct):
    write_id: int
    ticket_id: int
    attempt: int
    csn: str
    slot: int
    state: str
    open_session_apdu: str | None = None
    write_apdu: str | None = None
    read_apdu: str | None = None


class PendingOut(Struct):
    ticket_id: int
    order_id: int
    ticket_type: str
    visit_day: date | None
    upgrade_day: date | None


def _card_out(card: ExpoCard) -> CardOut:
    return CardOut(card.csn, card.province, card.status, card.msisdn, card.key_version, card.registered_at)


def _write_out(step: WriteStep) -> WriteOut:
    write: CardWrite = step.write
    out = WriteOut(write.id, write.ticket_id, write.attempt, write.csn, write.slot, write.state)
    if step.open_session is not None:
        out.open_session_apdu = step.open_session.hex().upper()
    if step.write_ticket is not None:
        out.write_apdu = step.write_ticket.hex().upper()
        out.read_apdu = read_ticket_command(write.slot).hex().upper()
    return out


def root_keys_of(request: AnyRequest) -> KeySet:
    """The national root keys from EXPO_KEY_FILE, read once per process; `card_keys_unavailable` without them."""
    keys = request.app.state.get("card_root_keys")
    if keys is None:
        path = settings_of(request).key_file
        try:
            keys = load_root_keys(path) if path else None
        except KeyFileError as exc:
            raise ExpoError("card_keys_unavailable", "the platform cannot read its card keys", status=503) from exc
        if keys is None:
            raise ExpoError("card_keys_unavailable", "no card key file is configured (EXPO_KEY_FILE)", status=503)
        request.app.state.card_root_keys = keys
    return keys


def _reply(outcome: Outcome) -> Response[bytes]:
    """The committed outcome of a step: its refusal raised only now, so the failed attempt stays recorded."""
    if outcome.refusal is not None:
        raise outcome.refusal
    assert outcome.step is not None
    return json_reply(_write_out(outcome.step), status=200)


@post("/cards/registrations", guards=[allow(Role.HALL_CLERK)])
async def register_card(request: AnyRequest, data: JSONBody[RegistrationIn]) -> Response[bytes]:
    """A SIM swap at the hall: the card becomes the number's active card (moving it from any earlier card)."""
    async with db_of(request).write() as session:
        card, previous = await cards.register_card(
            session,
            clerk=principal_of(request),
            csn=parse_csn(data.csn),
            msisdn=data.msisdn,
            now=clock_of(request).now(),
        )
        reply = RegistrationOut(_card_out(card), previous.csn if previous else None)
    return json_reply(reply, status=201)


@get("/cards/{csn:str}", guards=[allow(*WRITERS, Role.ADMIN)])
async def read_card(request: AnyRequest, csn: FromPath[str]) -> Response[bytes]:
    """A card's registry entry: province, status and the number it is registered to."""
    async with db_of(request).read() as session:
        card = await cards.load_card(session, csn=parse_csn(csn))
        cards.check_card_province(principal_of(request), card)
        reply = _card_out(card)
    return json_reply(reply, status=200)


@get("/cards/{csn:str}/pending-writes", guards=[allow(*WRITERS)])
async def list_pending_writes(request: AnyRequest, csn: FromPath[str]) -> Response[bytes]:
    """Paid tickets of the card's number not yet on a card: what an over-the-air agent writes next."""
    async with db_of(request).read() as session:
        tickets = await card_writes.pending_writes(session, reader=principal_of(request), csn=parse_csn(csn))
        reply = [PendingOut(t.id, t.order_id, t.ticket_type, t.visit_day, t.upgrade_day) for t in tickets]
    return json_reply(reply, status=200)


@post("/tickets/{ticket_id:int}/card-writes", guards=[allow(*WRITERS)])
async def start_card_write(
    request: AnyRequest, ticket_id: FromPath[int], data: JSONBody[WriteStartIn]
) -> Response[bytes]:
    """Step 2: a new write attempt and the OPEN SESSION command for the card (or 200 when already on it)."""
    records = [SlotRecord(r.slot, bytes.fromhex(r.record)) for r in data.records]
    async with db_of(request).write() as session:
        step = await card_writes.start_write(
            session,
            actor=principal_of(request),
            ticket_id=ticket_id,
            csn=parse_csn(data.csn),
            free_slots=data.free_slots,
            records=records,
            now=clock_of(request).now(),
        )
    return json_reply(_write_out(step), status=201 if step.open_session is not None else 200)


@post("/card-writes/{write_id:int}/session", guards=[allow(*WRITERS)])
async def card_write_session(
    request: AnyRequest, write_id: FromPath[int], data: JSONBody[SessionIn]
) -> Response[bytes]:
    """Step 3: the card's OPEN SESSION answer -> the WRITE TICKET command carrying the signed record."""
    keys = root_keys_of(request)
    async with db_of(request).write() as session:
        outcome = await card_writes.accept_session(
            session,
            actor=principal_of(request),
            write_id=write_id,
            response=bytes.fromhex(data.response),
            root_keys=keys,
            now=clock_of(request).now(),
        )
    return _reply(outcome)


@post("/card-writes/{write_id:int}/result", guards=[allow(*WRITERS)])
async def card_write_result(request: AnyRequest, write_id: FromPath[int], data: JSONBody[ResultIn]) -> Response[bytes]:
    """Step 4: the write's status word and the slot read back; confirmed only when the card holds the record."""
    async with db_of(request).write() as session:
        outcome = await card_writes.finish_write(
            session,
            actor=principal_of(request),
            write_id=write_id,
            sw=int(data.sw, 16),
            record=bytes.fromhex(data.record) if data.record else None,
            now=clock_of(request).now(),
        )
    return _reply(outcome)


router = Router(
    path="/v1",
    route_handlers=[
        register_card,
        read_card,
        list_pending_writes,
        start_card_write,
        card_write_session,
        card_write_result,
    ],
    tags=["cards"],
)
