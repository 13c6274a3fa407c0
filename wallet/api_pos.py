"""HTTP API of merchants' proximity terminals: tap payments, voids and adjustments, totals, slips, settlement.

A terminal's serial is its idempotency key: the same serial with the same body replays the first
answer, with another body it is refused. Settlement uploads replay by batch number instead.
"""

from datetime import datetime
from typing import Annotated, Any

import msgspec
from litestar import Response, Router, get, post
from litestar.params import FromPath, JSONBody
from msgspec import Meta, Struct
from sqlalchemy.ext.asyncio import AsyncSession

from expo.access.rules import Role
from expo.clock import expo_local
from expo.http import allow, clock_of, db_of, idempotent_reply, json_reply, principal_of, settings_of
from expo.provinces import normalize_msisdn
from wallet import pos
from wallet.api_payments import describe
from wallet.http import AnyRequest, terms_of
from wallet.pos_rules import Discrepancy, EntryType, JournalLine, Slip, TypeTotal, mask_msisdn, slip_text
from wallet.schemas import Fen, Msisdn, Password, ShortText, TransferOut

Serial = Annotated[int, Meta(gt=0, le=2**31 - 1)]
TerminalNo = Annotated[str, Meta(pattern=r"^[A-Z0-9][A-Z0-9-]{0,15}$")]
# Uploaded lines are checked by the rules (their own 400 codes); this only keeps numbers within the columns.
AnySerial = Annotated[int, Meta(ge=-(2**31), le=2**31 - 1)]


class TerminalIn(Struct, forbid_unknown_fields=True):
    terminal_no: TerminalNo


class PosPaymentIn(Struct, forbid_unknown_fields=True):
    serial: Serial
    msisdn: Msisdn  # read from the tapped Expo card
    amount_fen: Fen
    password: Password | None = None  # typed on the PIN pad above the PIN-free amount
    voucher: ShortText | None = None
    product: ShortText | None = None


class VoidIn(Struct, forbid_unknown_fields=True):
    serial: Serial
    original_serial: Serial


class AdjustIn(Struct, forbid_unknown_fields=True):
    serial: Serial
    original_serial: Serial
    new_amount_fen: Fen


class JournalLineIn(Struct, forbid_unknown_fields=True):
    serial: AnySerial
    entry_type: EntryType
    amount_fen: Fen


class BatchIn(Struct, forbid_unknown_fields=True):
    batch_no: Serial
    entries: Annotated[list[JournalLineIn], Meta(max_length=10_000)]


class PosTransferOut(TransferOut):
    """A terminal's transaction: the transfer it made and its place in the terminal's journal."""

    terminal_no: str
    serial: int
    batch_no: int
    entry_type: str
    original_serial: int | None


class TotalsOut(Struct):
    terminal_no: str
    batch_no: int
    sale: TypeTotal
    void: TypeTotal
    adjust: TypeTotal
    net_fen: int


class SlipOut(Struct):
    merchant: str
    merchant_name: str
    terminal_no: str
    serial: int
    batch_no: int
    entry_type: str
    original_serial: int | None
    msisdn: str  # masked, as printed
    amount_fen: int
    at: datetime  # Shanghai local time
    transfer_id: int
    reprint: bool
    text: str


class BatchOut(Struct):
    terminal_no: str
    batch_no: int
    entries: int  # the platform's lines in the batch
    net_fen: int  # the platform's net of the batch
    matched: bool
    discrepancies: list[Discrepancy]
    uploaded_at: datetime
    next_batch_no: int


@post("/admin/merchants/{code:str}/terminals", guards=[allow(Role.ADMIN)])
async def register_terminal(request: AnyRequest, code: FromPath[str], data: JSONBody[TerminalIn]) -> Response[bytes]:
    """Register a merchant's proximity terminal and issue its credential; the token is shown once."""
    async with db_of(request).write() as session:
        terminal, token = await pos.create_terminal(
            session, merchant_code=code, terminal_no=data.terminal_no, now=clock_of(request).now()
        )
    return json_reply({"terminal_no": terminal.terminal_no, "merchant": code, "token": token}, status=201)


async def _transaction_out(session: AsyncSession, record: pos.PosRecord) -> PosTransferOut:
    shown = await describe(session, record.transfer)
    return PosTransferOut(
        **msgspec.structs.asdict(shown),
        terminal_no=record.terminal.terminal_no,
        serial=record.entry.serial,
        batch_no=record.entry.batch_no,
        entry_type=record.entry.entry_type,
        original_serial=record.entry.original_serial,
    )


def _serial_key(serial: int) -> str:
    # The reply store is scoped to the caller, and each terminal has its own credential.
    return f"pos-serial-{serial}"


@post("/pos/payments", guards=[allow(Role.POS)])
async def pay_at_terminal(request: AnyRequest, data: JSONBody[PosPaymentIn]) -> Response[bytes]:
    """A card tapped on the terminal pays the merchant; above the PIN-free amount with the payment password."""
    caller = principal_of(request)
    now = clock_of(request).now()
    number = normalize_msisdn(data.msisdn)
    await pos.confirm_holder(
        db_of(request),
        msisdn=number,
        amount_fen=data.amount_fen,
        password=data.password,
        pin_free_fen=settings_of(request).proximity_pin_free_fen,
        now=now,
    )

    async def work(session: AsyncSession) -> tuple[int, Any]:
        terminal = await pos.lock_terminal(session, credential_id=caller.credential_id)
        record = await pos.pay_at_terminal(
            session,
            terminal=terminal,
            serial=data.serial,
            msisdn=number,
            amount_fen=data.amount_fen,
            terms=terms_of(request),
            now=now,
            voucher_code=data.voucher,
            product=data.product,
        )
        return 201, await _transaction_out(session, record)

    return await idempotent_reply(request, key=_serial_key(data.serial), work=work)


@post("/pos/voids", guards=[allow(Role.POS)])
async def void_sale(request: AnyRequest, data: JSONBody[VoidIn]) -> Response[bytes]:
    """Void a sale of the open batch by its serial: what is left of it goes back to the user."""
    caller = principal_of(request)
    now = clock_of(request).now()

    async def work(session: AsyncSession) -> tuple[int, Any]:
        terminal = await pos.lock_terminal(session, credential_id=caller.credential_id)
        record = await pos.void_sale(
            session, terminal=terminal, serial=data.serial, original_serial=data.original_serial, now=now
        )
        return 201, await _transaction_out(session, record)

    return await idempotent_reply(request, key=_serial_key(data.serial), work=work)


@post("/pos/adjustments", guards=[allow(Role.POS)])
async def adjust_sale(request: AnyRequest, data: JSONBody[AdjustIn]) -> Response[bytes]:
    """Lower a sale of the open batch to a new amount, where the merchant allows it; the difference goes back."""
    caller = principal_of(request)
    now = clock_of(request).now()

    async def work(session: AsyncSession) -> tuple[int, Any]:
        terminal = await pos.lock_terminal(session, credential_id=caller.credential_id)
        record = await pos.adjust_sale(
            session,
            terminal=terminal,
            serial=data.serial,
            original_serial=data.original_serial,
            new_amount_fen=data.new_amount_fen,
            now=now,
        )
        return 201, await _transaction_out(session, record)

    return await idempotent_reply(request, key=_serial_key(data.serial), work=work)


@get("/pos/totals", guards=[allow(Role.POS)])
async def read_totals(request: AnyRequest) -> Response[bytes]:
    """The open batch's totals by transaction type: everything since the last settlement."""
    async with db_of(request).read() as session:
        terminal = await pos.find_terminal(session, credential_id=principal_of(request).credential_id)
        totals = await pos.open_totals(session, terminal=terminal)
    reply = TotalsOut(
        terminal_no=terminal.terminal_no,
        batch_no=terminal.batch_no,
        sale=totals.sale,
        void=totals.void,
        adjust=totals.adjust,
        net_fen=totals.net_fen,
    )
    return json_reply(reply, status=200)


def _slip_out(slip: Slip) -> SlipOut:
    return SlipOut(
        merchant=slip.merchant_code,
        merchant_name=slip.merchant_name,
        terminal_no=slip.terminal_no,
        serial=slip.serial,
        batch_no=slip.batch_no,
        entry_type=slip.entry_type.value,
        original_serial=slip.original_serial,
        msisdn=mask_msisdn(slip.msisdn),
        amount_fen=slip.amount_fen,
        at=expo_local(slip.at),
        transfer_id=slip.transfer_id,
        reprint=True,
        text=slip_text(slip, reprint=True),
    )


@get("/pos/slips/last", guards=[allow(Role.POS)])
async def reprint_last(request: AnyRequest) -> Response[bytes]:
    """Reprint the slip of the terminal's latest transaction."""
    async with db_of(request).read() as session:
        terminal = await pos.find_terminal(session, credential_id=principal_of(request).credential_id)
        slip = await pos.last_slip(session, terminal=terminal)
    return json_reply(_slip_out(slip), status=200)


@get("/pos/slips/{serial:int}", guards=[allow(Role.POS)])
async def reprint_serial(request: AnyRequest, serial: FromPath[int]) -> Response[bytes]:
    """Reprint the slip of one of the terminal's transactions by its serial."""
    async with db_of(request).read() as session:
        terminal = await pos.find_terminal(session, credential_id=principal_of(request).credential_id)
        slip = await pos.slip_of(session, terminal=terminal, serial=serial)
    return json_reply(_slip_out(slip), status=200)


@post("/pos/batches", guards=[allow(Role.POS)])
async def settle_batch(request: AnyRequest, data: JSONBody[BatchIn]) -> Response[bytes]:
    """Upload the terminal's journal of its open batch: compared with the platform's, stored, the batch closed."""
    lines = [JournalLine(line.serial, line.entry_type, line.amount_fen) for line in data.entries]
    async with db_of(request).write() as session:
        terminal = await pos.lock_terminal(session, credential_id=principal_of(request).credential_id)
        settled = await pos.settle_batch(
            session, terminal=terminal, batch_no=data.batch_no, lines=lines, now=clock_of(request).now()
        )
        batch = settled.batch
    reply = BatchOut(
        terminal_no=terminal.terminal_no,
        batch_no=batch.batch_no,
        entries=batch.entries,
        net_fen=batch.net_fen,
        matched=batch.matched,
        discrepancies=pos.discrepancies_of(batch),
        uploaded_at=expo_local(batch.uploaded_at),
        next_batch_no=batch.batch_no + 1,
    )
    response = json_reply(reply, status=201)
    if settled.replayed:
        response.headers["Idempotent-Replayed"] = "true"
    return response


router = Router(
    path="/v1/wallet",
    route_handlers=[
        register_terminal,
        pay_at_terminal,
        void_sale,
        adjust_sale,
        read_totals,
        reprint_last,
        reprint_serial,
        settle_batch,
    ],
)
