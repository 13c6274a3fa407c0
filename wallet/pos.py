"""Proximity payments at merchants' terminals and the terminals' journal on the platform.

A terminal reaches the platform through its own credential and numbers its transactions itself: the
serial is its idempotency key, so one (terminal, serial) makes at most one transfer (ledger key
`pos:{terminal}:{serial}`) and one journal line (unique in `pos_entries`). A card tap pays up to the
PIN-free amount; above it the user types the payment password. Sales of the open batch can be voided
(adjusted to 0) or, where the merchant allows it, adjusted down; a settlement upload compares the
terminal's journal with the platform's and closes the batch. Every operation of a terminal first locks
its row, so a sale never slips into a batch that a concurrent settlement is closing.
"""

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

import msgspec
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from expo.access.rules import Role
from expo.access.service import create_credential
from expo.db import Database
from expo.errors import Conflict, ExpoError, Forbidden, NotFound
from expo.provinces import normalize_msisdn
from wallet import accounts, payments
from wallet.models import Merchant, PosBatch, PosEntry, PosTerminal, WalletTransfer, WalletUser
from wallet.payments import PaymentTerms
from wallet.pos_rules import (
    Discrepancy,
    EntryType,
    JournalLine,
    Slip,
    Totals,
    check_upload,
    compare_journals,
    needs_password,
    refund_for,
    totals_of,
)
from wallet.rules import PaymentChannel


@dataclass(frozen=True)
class PosRecord:
    """A journal line with the transfer it made and its terminal."""

    terminal: PosTerminal
    entry: PosEntry
    transfer: WalletTransfer
    replayed: bool = False


@dataclass(frozen=True)
class Settlement:
    """A settled batch as stored, and whether this upload only found it again."""

    terminal: PosTerminal
    batch: PosBatch
    replayed: bool = False


async def create_terminal(
    session: AsyncSession, *, merchant_code: str, terminal_no: str, now: datetime
) -> tuple[PosTerminal, str]:
    """Register a merchant's terminal with its own POS credential; the token is returned once."""
    merchant = await payments.find_merchant(session, code=merchant_code)
    if await session.scalar(select(PosTerminal.id).where(PosTerminal.terminal_no == terminal_no)) is not None:
        raise Conflict("terminal_exists", f"terminal number {terminal_no} is taken")
    credential, token = await create_credential(
        session,
        role=Role.POS,
        label=f"pos {terminal_no} of {merchant.code}",
        province_code=merchant.province_code,
        hall=None,
        merchant_code=merchant.code,
        now=now,
    )
    terminal = PosTerminal(
        terminal_no=terminal_no, merchant_id=merchant.id, credential_id=credential.id, batch_no=1, created_at=now
    )
    session.add(terminal)
    await session.flush()
    return terminal, token


async def find_terminal(session: AsyncSession, *, credential_id: int) -> PosTerminal:
    """The terminal a POS credential belongs to (for reading its journal)."""
    return _registered(await session.scalar(select(PosTerminal).where(PosTerminal.credential_id == credential_id)))


async def lock_terminal(session: AsyncSession, *, credential_id: int) -> PosTerminal:
    """The caller's terminal, locked: one operation of a terminal at a time, its open batch stable meanwhile."""
    query = select(PosTerminal).where(PosTerminal.credential_id == credential_id).with_for_update()
    return _registered(await session.scalar(query.execution_options(populate_existing=True)))


def _registered(terminal: PosTerminal | None) -> PosTerminal:
    if terminal is None:
        raise Forbidden("not_a_terminal", "this credential belongs to no registered terminal")
    return terminal


async def confirm_holder(
    db: Database, *, msisdn: str, amount_fen: int, password: str | None, pin_free_fen: int, now: datetime
) -> None:
    """Above the PIN-free amount the holder types the payment password; a password given is always checked."""
    if password is None:
        if needs_password(amount_fen, pin_free_fen=pin_free_fen):
            raise ExpoError(
                "password_required",
                f"payments above {pin_free_fen} fen need the payment password",
                status=403,
                pin_free_fen=pin_free_fen,
            )
        return
    # Its own transactions, before the payment's: wrong passwords count even though the payment is refused.
    await accounts.verify_password(db, msisdn=msisdn, password=password, now=now)


def ledger_key(terminal: PosTerminal, serial: int) -> str:
    """The ledger idempotency key of a terminal's transaction: its serial makes at most one transfer."""
    return f"pos:{terminal.id}:{serial}"


async def pay_at_terminal(
    session: AsyncSession,
    *,
    terminal: PosTerminal,
    serial: int,
    msisdn: str,
    amount_fen: int,
    terms: PaymentTerms,
    now: datetime,
    voucher_code: str | None = None,
    product: str | None = None,
) -> PosRecord:
    """A card tapped on a (locked) terminal pays its merchant at once; the sale joins the open batch."""
    number = normalize_msisdn(msisdn)
    found = await _replayed(session, terminal=terminal, serial=serial, entry_type=EntryType.SALE)
    if found is not None:
        if found.entry.msisdn != number or found.transfer.amount_fen + found.transfer.voucher_fen != amount_fen:
            raise _serial_used(serial)
        return found
    merchant = await session.get(Merchant, terminal.merchant_id)
    assert merchant is not None
    outcome = await payments.pay(
        session,
        idempotency_key=ledger_key(terminal, serial),
        msisdn=number,
        merchant=merchant,
        amount_fen=amount_fen,
        channel=PaymentChannel.PROXIMITY,
        terms=terms,
        now=now,
        voucher_code=voucher_code,
        product=product,
        reference=f"{terminal.terminal_no}-{serial:06d}",
        credential_id=terminal.credential_id,
    )
    user = await session.get(WalletUser, outcome.transfer.user_id)
    assert user is not None
    return await _journal(
        session,
        terminal=terminal,
        serial=serial,
        entry_type=EntryType.SALE,
        transfer=outcome.transfer,
        msisdn=user.msisdn,
        original_serial=None,
        now=now,
    )


async def void_sale(
    session: AsyncSession, *, terminal: PosTerminal, serial: int, original_serial: int, now: datetime
) -> PosRecord:
    """Void a sale of the open batch (adjust it to 0): all that is left of it goes back to the user."""
    return await _give_back(
        session,
        terminal=terminal,
        serial=serial,
        original_serial=original_serial,
        entry_type=EntryType.VOID,
        new_amount_fen=0,
        now=now,
    )


async def adjust_sale(
    session: AsyncSession,
    *,
    terminal: PosTerminal,
    serial: int,
    original_serial: int,
    new_amount_fen: int,
    now: datetime,
) -> PosRecord:
    """Lower a sale of the open batch to a new non-zero amount, where the merchant allows it; the rest goes back."""
    merchant = await session.get(Merchant, terminal.merchant_id)
    assert merchant is not None
    if not merchant.allows_adjust:
        raise Forbidden("adjust_not_allowed", f"merchant {merchant.code} does not allow adjustments; void instead")
    return await _give_back(
        session,
        terminal=terminal,
        serial=serial,
        original_serial=original_serial,
        entry_type=EntryType.ADJUST,
        new_amount_fen=new_amount_fen,
        now=now,
    )


async def _give_back(
    session: AsyncSession,
    *,
    terminal: PosTerminal,
    serial: int,
    original_serial: int,
    entry_type: EntryType,
    new_amount_fen: int,
    now: datetime,
) -> PosRecord:
    found = await _replayed(session, terminal=terminal, serial=serial, entry_type=entry_type)
    if found is not None:
        if found.entry.original_serial != original_serial:
            raise _serial_used(serial)
        return found
    original = await session.scalar(
        select(PosEntry).where(
            PosEntry.terminal_id == terminal.id,
            PosEntry.serial == original_serial,
            PosEntry.entry_type == EntryType.SALE.value,
        )
    )
    if original is None:
        raise NotFound("unknown_sale", f"this terminal made no sale with serial {original_serial}")
    if original.batch_no != terminal.batch_no:
        raise Conflict(
            "batch_closed",
            f"sale {original_serial} was settled in batch {original.batch_no}; refund it through the merchant instead",
        )
    payment = await payments.lock_payment(session, transfer_id=original.transfer_id)
    back_fen = refund_for(
        entry_type=entry_type, left_fen=payment.amount_fen - payment.refunded_fen, new_amount_fen=new_amount_fen
    )
    refund = await payments.refund_payment(
        session,
        idempotency_key=ledger_key(terminal, serial),
        payment=payment,
        amount_fen=back_fen,
        now=now,
        reason=f"POS {terminal.terminal_no} {entry_type.value} of serial {original_serial}",
        credential_id=terminal.credential_id,
    )
    refund.reference = f"{terminal.terminal_no}-{serial:06d}"
    return await _journal(
        session,
        terminal=terminal,
        serial=serial,
        entry_type=entry_type,
        transfer=refund,
        msisdn=original.msisdn,
        original_serial=original_serial,
        now=now,
    )


async def _replayed(
    session: AsyncSession, *, terminal: PosTerminal, serial: int, entry_type: EntryType
) -> PosRecord | None:
    """The line a serial already made, if any; a serial used for another kind of transaction is refused."""
    entry = await session.scalar(select(PosEntry).where(PosEntry.terminal_id == terminal.id, PosEntry.serial == serial))
    if entry is None:
        return None
    if entry.entry_type != entry_type.value:
        raise _serial_used(serial)
    transfer = await session.get(WalletTransfer, entry.transfer_id)
    assert transfer is not None
    return PosRecord(terminal, entry, transfer, replayed=True)


def _serial_used(serial: int) -> ExpoError:
    return Conflict("serial_used", f"serial {serial} of this terminal was used for another transaction", serial=serial)


async def _journal(
    session: AsyncSession,
    *,
    terminal: PosTerminal,
    serial: int,
    entry_type: EntryType,
    transfer: WalletTransfer,
    msisdn: str,
    original_serial: int | None,
    now: datetime,
) -> PosRecord:
    entry = PosEntry(
        terminal_id=terminal.id,
        serial=serial,
        batch_no=terminal.batch_no,
        entry_type=entry_type.value,
        amount_fen=transfer.amount_fen,
        transfer_id=transfer.id,
        original_serial=original_serial,
        msisdn=msisdn,
        created_at=now,
    )
    session.add(entry)
    await session.flush()
    return PosRecord(terminal, entry, transfer)


async def _batch_lines(session: AsyncSession, *, terminal: PosTerminal, batch_no: int) -> list[JournalLine]:
    rows = await session.execute(
        select(PosEntry.serial, PosEntry.entry_type, PosEntry.amount_fen)
        .where(PosEntry.terminal_id == terminal.id, PosEntry.batch_no == batch_no)
        .order_by(PosEntry.serial)
    )
    return [JournalLine(row.serial, EntryType(row.entry_type), row.amount_fen) for row in rows]


async def open_totals(session: AsyncSession, *, terminal: PosTerminal) -> Totals:
    """The open batch's totals by transaction type: everything since the last settlement."""
    return totals_of(await _batch_lines(session, terminal=terminal, batch_no=terminal.batch_no))


async def last_slip(session: AsyncSession, *, terminal: PosTerminal) -> Slip:
    """The slip of the terminal's latest transaction."""
    entry = await session.scalar(
        select(PosEntry).where(PosEntry.terminal_id == terminal.id).order_by(PosEntry.id.desc()).limit(1)
    )
    if entry is None:
        raise NotFound("no_slip", "this terminal has made no transaction yet")
    return await _slip(session, terminal=terminal, entry=entry)


async def slip_of(session: AsyncSession, *, terminal: PosTerminal, serial: int) -> Slip:
    """The slip of one of the terminal's transactions, by its serial (settled batches too)."""
    entry = await session.scalar(select(PosEntry).where(PosEntry.terminal_id == terminal.id, PosEntry.serial == serial))
    if entry is None:
        raise NotFound("unknown_serial", f"this terminal has no transaction with serial {serial}")
    return await _slip(session, terminal=terminal, entry=entry)


async def _slip(session: AsyncSession, *, terminal: PosTerminal, entry: PosEntry) -> Slip:
    merchant = await session.get(Merchant, terminal.merchant_id)
    assert merchant is not None
    return Slip(
        merchant_name=merchant.name,
        merchant_code=merchant.code,
        terminal_no=terminal.terminal_no,
        serial=entry.serial,
        batch_no=entry.batch_no,
        entry_type=EntryType(entry.entry_type),
        msisdn=entry.msisdn,
        amount_fen=entry.amount_fen,
        at=entry.created_at,
        transfer_id=entry.transfer_id,
        original_serial=entry.original_serial,
    )


async def settle_batch(
    session: AsyncSession, *, terminal: PosTerminal, batch_no: int, lines: Sequence[JournalLine], now: datetime
) -> Settlement:
    """A (locked) terminal's journal upload settles its open batch: compared with ours, stored, closed."""
    uploaded = check_upload(lines)
    stored = await session.scalar(
        select(PosBatch).where(PosBatch.terminal_id == terminal.id, PosBatch.batch_no == batch_no)
    )
    if stored is not None:
        return Settlement(terminal, stored, replayed=True)
    if batch_no != terminal.batch_no:
        raise Conflict(
            "wrong_batch", f"batch {terminal.batch_no} is open, not {batch_no}", open_batch_no=terminal.batch_no
        )
    platform = await _batch_lines(session, terminal=terminal, batch_no=batch_no)
    found = compare_journals(terminal=uploaded, platform=platform)
    totals = totals_of(platform)
    batch = PosBatch(
        terminal_id=terminal.id,
        batch_no=batch_no,
        entries=totals.count,
        net_fen=totals.net_fen,
        matched=not found,
        discrepancies=msgspec.json.encode(found).decode(),
        uploaded_at=now,
    )
    session.add(batch)
    terminal.batch_no = batch_no + 1
    await session.flush()
    return Settlement(terminal, batch)


def discrepancies_of(batch: PosBatch) -> list[Discrepancy]:
    """The disagreements a settlement found, as stored with it."""
    return msgspec.json.decode(batch.discrepancies, type=list[Discrepancy])
