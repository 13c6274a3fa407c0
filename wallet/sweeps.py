"""Background housekeeping of the wallet: lapsed SMS payment holds, and bank money waiting for the bank.

- An SMS-confirmed merchant payment whose code was never given is voided once its hold lapses. Ticket
  payments are left alone: ticketing releases them with its own order expiry.
- A bank top-up the bank has not confirmed after a minute, and a withdrawal pending for a working day,
  are settled by asking the bank. The bank's signed notification settles them the same way, sooner.
Each item is handled in its own short transaction under its row lock and re-checked there, so several
workers (and `expo wallet sweep`) can sweep at once and never do anything twice. The bank is asked
before the lock is taken, so no lock waits on the network; a stale answer is dropped under the lock.
"""

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from expo.bank import BankGateway, BankResult, BankStatus, BankTimeout
from expo.db import Database
from expo.errors import NotFound
from wallet.models import WalletTransfer
from wallet.payments import cancel_payment, lapsed_holds, lock_payment
from wallet.rules import TransferKind, TransferState
from wallet.topups import BANK_CHANNELS, settle_bank_top_up
from wallet.withdrawals import WITHDRAWAL_CHANNEL, add_working_days, settle_withdrawal

log = logging.getLogger("expo.wallet.sweeps")

TOP_UP_QUERY_AFTER = timedelta(minutes=1)  # ours: a bank top-up not confirmed by then is asked about
WITHDRAWAL_QUERY_AFTER_WORKING_DAYS = 1  # documents: withdrawals take 1-3 working days
BANK_TRANSFER_KINDS = (TransferKind.TOP_UP.value, TransferKind.WITHDRAWAL.value)
BANK_TRANSFER_CHANNELS = (*sorted(BANK_CHANNELS), WITHDRAWAL_CHANNEL)


@dataclass
class WalletSweepReport:
    """What one sweep did."""

    holds_voided: int = 0
    top_ups_posted: int = 0
    top_ups_voided: int = 0
    withdrawals_paid: int = 0
    withdrawals_failed: int = 0


async def sweep_wallet(db: Database, *, bank: BankGateway, now: datetime, batch: int = 200) -> WalletSweepReport:
    """Void lapsed SMS payment holds and settle waiting bank top-ups and withdrawals by asking the bank."""
    report = WalletSweepReport()
    async with db.read() as session:
        lapsed = await _lapsed_merchant_payments(session, now=now, limit=batch)
        waiting = await _waiting_for_bank(session, now=now, limit=batch)
    for transfer_id in lapsed:
        try:
            if await _void_lapsed(db, transfer_id=transfer_id, now=now):
                report.holds_voided += 1
        except Exception:
            # One item's trouble must not stop the others; it is retried next sweep.
            log.exception("could not void lapsed payment %s", transfer_id)
    for transfer in waiting:
        try:
            await _settle_by_query(db, transfer=transfer, bank=bank, now=now, report=report)
        except Exception:
            log.exception("could not settle bank transfer %s", transfer.id)
    return report


async def _lapsed_merchant_payments(session: AsyncSession, *, now: datetime, limit: int) -> list[int]:
    # Ticket-payment holds are ticketing's to release with their orders (its sweep runs beside this one,
    # so they never pile up in front of the merchant payments); only merchant payments are voided here.
    ids = await lapsed_holds(session, now=now)
    if not ids:
        return []
    rows = await session.scalars(
        select(WalletTransfer.id)
        .where(WalletTransfer.id.in_(ids), WalletTransfer.kind == TransferKind.PAYMENT.value)
        .order_by(WalletTransfer.id)
        .limit(limit)
    )
    return list(rows.all())


async def _void_lapsed(db: Database, *, transfer_id: int, now: datetime) -> bool:
    async with db.write() as session:
        transfer = await lock_payment(session, transfer_id=transfer_id)
        lapsed = transfer.expires_at is not None and transfer.expires_at <= now
        if transfer.state != TransferState.PENDING.value or not lapsed:
            return False  # confirmed, or voided by another worker, meanwhile
        await cancel_payment(session, transfer=transfer, now=now)
        return True


async def _waiting_for_bank(session: AsyncSession, *, now: datetime, limit: int) -> list[WalletTransfer]:
    top_ups = await session.scalars(
        select(WalletTransfer)
        .where(
            WalletTransfer.state == TransferState.PENDING.value,
            WalletTransfer.kind == TransferKind.TOP_UP.value,
            WalletTransfer.channel.in_(sorted(BANK_CHANNELS)),
            WalletTransfer.created_at <= now - TOP_UP_QUERY_AFTER,
        )
        .order_by(WalletTransfer.id)
        .limit(limit)
    )
    # One working day is at least one calendar day; the weekend is skipped below, in Python.
    withdrawals = await session.scalars(
        select(WalletTransfer)
        .where(
            WalletTransfer.state == TransferState.PENDING.value,
            WalletTransfer.kind == TransferKind.WITHDRAWAL.value,
            WalletTransfer.created_at <= now - timedelta(days=WITHDRAWAL_QUERY_AFTER_WORKING_DAYS),
        )
        .order_by(WalletTransfer.id)
        .limit(limit)
    )
    due = [
        transfer
        for transfer in withdrawals
        if add_working_days(transfer.created_at, WITHDRAWAL_QUERY_AFTER_WORKING_DAYS) <= now
    ]
    return [*top_ups, *due]


async def _settle_by_query(
    db: Database, *, transfer: WalletTransfer, bank: BankGateway, now: datetime, report: WalletSweepReport
) -> None:
    if transfer.reference is None or transfer.description is None:
        return
    try:
        # The description of a bank transfer is the masked account: all the bank needs besides the reference.
        result = await bank.query(reference=transfer.reference, account=transfer.description)
    except BankTimeout:
        return
    if result.status == BankStatus.PENDING:
        return
    async with db.write() as session:
        locked = await lock_bank_transfer(session, transfer_id=transfer.id)
        if locked.state != TransferState.PENDING.value:
            return  # a notification or another worker settled it meanwhile
        await apply_bank_answer(session, transfer=locked, result=result, now=now)
        _count(report, locked)


def _count(report: WalletSweepReport, transfer: WalletTransfer) -> None:
    paid = transfer.state == TransferState.POSTED.value
    if transfer.kind == TransferKind.TOP_UP.value:
        if paid:
            report.top_ups_posted += 1
        else:
            report.top_ups_voided += 1
    elif paid:
        report.withdrawals_paid += 1
    else:
        report.withdrawals_failed += 1


async def lock_bank_transfer(session: AsyncSession, *, transfer_id: int) -> WalletTransfer:
    """Lock a bank top-up or withdrawal for a state change."""
    transfer = await session.get(WalletTransfer, transfer_id, with_for_update=True, populate_existing=True)
    if transfer is None or transfer.kind not in BANK_TRANSFER_KINDS:
        raise NotFound("unknown_transfer", f"no bank transfer {transfer_id}")
    return transfer


async def apply_bank_answer(
    session: AsyncSession, *, transfer: WalletTransfer, result: BankResult, now: datetime
) -> None:
    """Apply the bank's answer to a locked bank transfer; one already settled is left as it is."""
    if transfer.state != TransferState.PENDING.value:
        settled_as = BankStatus.APPROVED if transfer.state == TransferState.POSTED.value else BankStatus.DECLINED
        if result.status not in (BankStatus.PENDING, settled_as):
            # The bank changed its mind after we settled: the daily reconciliation must look at it.
            log.warning("bank says %s about transfer %s, already %s", result.status, transfer.id, transfer.state)
        return
    if transfer.kind == TransferKind.TOP_UP.value:
        await settle_bank_top_up(session, transfer=transfer, result=result, now=now)
    else:
        await settle_withdrawal(session, transfer=transfer, result=result, now=now)


async def apply_bank_notification(
    db: Database, *, reference: str, status: BankStatus, bank_ref: str | None, now: datetime
) -> WalletTransfer:
    """A bank's signed notification about a top-up or a withdrawal; repeats change nothing."""
    async with db.write() as session:
        transfer_id = await session.scalar(
            select(WalletTransfer.id).where(
                WalletTransfer.reference == reference,
                WalletTransfer.kind.in_(BANK_TRANSFER_KINDS),
                WalletTransfer.channel.in_(BANK_TRANSFER_CHANNELS),
            )
        )
        if transfer_id is None:
            raise NotFound("unknown_reference", f"no top-up or withdrawal with reference {reference}")
        transfer = await lock_bank_transfer(session, transfer_id=transfer_id)
        await apply_bank_answer(session, transfer=transfer, result=BankResult(status, bank_ref=bank_ref), now=now)
        return transfer
