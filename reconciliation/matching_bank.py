"""Matching the ledger's bank-side money against the banks' confirmation files, in the database.

Our side: ticket payments through the bank gateway (credit card, online banking; a refund or void under the
reference of the charge it pays back, as the bank was given it) and wallet transfers through banks (top-ups by
bank card or online banking, withdrawals to cards, merchant payouts). Their side: the confirmations of
`reconciliation.bank_confirmations`. They pair on (reference, kind). A month reports our money settled in it
that no bank confirms, and the confirmations of its days that we have no settled record of, or of another amount.
"""

from collections.abc import Callable
from datetime import datetime

from sqlalchemy import (
    ColumnElement,
    SQLColumnExpression,
    Subquery,
    and_,
    case,
    exists,
    func,
    literal,
    or_,
    select,
    union_all,
)
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from expo.clock import expo_local
from reconciliation import matching_rules as rules
from reconciliation.commission import month_bounds
from reconciliation.matching_rules import SETTLED_STATUSES, BankKind, BankRecord, DiscrepancyFound
from reconciliation.models import BankConfirmation, BankConfirmationFile
from reconciliation.rules import Month
from ticketing.models import Order, Payment
from ticketing.sales_rules import GATEWAY_METHODS
from wallet.models import Merchant, WalletTransfer, WalletUser
from wallet.rules import TransferKind
from wallet.topups import BANK_CHANNELS
from wallet.withdrawals import WITHDRAWAL_CHANNEL

# Which of our records to take, given its bank reference and when it settled.
Narrow = Callable[[SQLColumnExpression[str | None], SQLColumnExpression[datetime | None]], ColumnElement[bool]]


def _bank_records(narrow: Narrow) -> Subquery:
    """Our side of every bank movement `narrow` keeps (given its bank reference and when it settled): ticket
    payments through the bank gateway (a reversal under its charge's reference) and wallet transfers through
    banks (bank top-ups, withdrawals, merchant payouts)."""
    gateway = [method.value for method in GATEWAY_METHODS]
    charge = aliased(Payment)
    charges = (
        select(
            Payment.reference.label("reference"),
            Payment.kind.label("kind"),
            Payment.amount_fen.label("amount_fen"),
            Payment.status.label("status"),
            Payment.settled_at.label("at"),
            Order.sale_province.label("province"),
        )
        .join(Order, Order.id == Payment.order_id)
        .where(
            Payment.kind == BankKind.CHARGE.value,
            Payment.method.in_(gateway),
            narrow(Payment.reference, Payment.settled_at),
        )
    )
    reversals = (
        select(
            charge.reference, Payment.kind, Payment.amount_fen, Payment.status, Payment.settled_at, Order.sale_province
        )
        .join(charge, and_(charge.order_id == Payment.order_id, charge.kind == BankKind.CHARGE.value))
        .join(Order, Order.id == Payment.order_id)
        .where(
            Payment.kind.in_((BankKind.REFUND.value, BankKind.VOID.value)),
            Payment.method.in_(gateway),
            narrow(charge.reference, Payment.settled_at),
        )
    )
    kind = case(
        {
            TransferKind.TOP_UP.value: literal(BankKind.TOP_UP.value),
            TransferKind.WITHDRAWAL.value: literal(BankKind.WITHDRAWAL.value),
        },
        value=WalletTransfer.kind,
        else_=literal(BankKind.PAYOUT.value),
    )
    transfers = (
        select(
            WalletTransfer.reference,
            kind,
            WalletTransfer.amount_fen,
            WalletTransfer.state,
            WalletTransfer.finished_at,
            func.coalesce(WalletUser.province_code, Merchant.province_code),
        )
        .outerjoin(WalletUser, WalletUser.id == WalletTransfer.user_id)
        .outerjoin(Merchant, Merchant.id == WalletTransfer.merchant_id)
        .where(
            or_(
                and_(
                    WalletTransfer.kind == TransferKind.TOP_UP.value, WalletTransfer.channel.in_(sorted(BANK_CHANNELS))
                ),
                and_(
                    WalletTransfer.kind == TransferKind.WITHDRAWAL.value, WalletTransfer.channel == WITHDRAWAL_CHANNEL
                ),
                WalletTransfer.kind == TransferKind.MERCHANT_PAYOUT.value,
            ),
            WalletTransfer.reference.is_not(None),
            narrow(WalletTransfer.reference, WalletTransfer.finished_at),
        )
    )
    return union_all(charges, reversals, transfers).subquery("ours")


async def match_bank_confirmations(session: AsyncSession, *, month: Month) -> list[DiscrepancyFound]:
    """Our bank-side money settled in the month that no bank confirms, and the banks' confirmations of the
    month's days that we have no settled record of, or of another amount."""
    start, end = month_bounds(month)
    ours = _bank_records(lambda _reference, at: and_(at >= start, at < end))
    confirmed = exists().where(BankConfirmation.reference == ours.c.reference, BankConfirmation.kind == ours.c.kind)
    unconfirmed = (
        select(ours)
        .where(ours.c.status.in_(sorted(SETTLED_STATUSES)), ~confirmed)
        .order_by(ours.c.at, ours.c.reference, ours.c.kind)
    )
    file_days = set(
        await session.scalars(
            select(BankConfirmationFile.day).where(
                BankConfirmationFile.day >= month.first_day, BankConfirmationFile.day <= month.last_day
            )
        )
    )
    found = [
        rules.missing_at_bank(
            BankRecord(reference, BankKind(kind), amount, status, at, province),
            bank_file_received=expo_local(at).date() in file_days,
        )
        for reference, kind, amount, status, at, province in await session.execute(unconfirmed)
    ]
    in_month = and_(BankConfirmation.day >= month.first_day, BankConfirmation.day <= month.last_day)
    theirs = _bank_records(lambda reference, _at: reference.in_(select(BankConfirmation.reference).where(in_month)))
    differing = (
        select(
            BankConfirmation.reference,
            BankConfirmation.kind,
            BankConfirmation.bank,
            BankConfirmation.day,
            BankConfirmation.amount_fen,
            theirs.c.amount_fen,
            theirs.c.status,
            theirs.c.at,
            theirs.c.province,
        )
        .outerjoin(
            theirs, and_(theirs.c.reference == BankConfirmation.reference, theirs.c.kind == BankConfirmation.kind)
        )
        .where(
            in_month,
            or_(
                theirs.c.reference.is_(None),
                theirs.c.status.not_in(sorted(SETTLED_STATUSES)),
                theirs.c.amount_fen != BankConfirmation.amount_fen,
            ),
        )
        .order_by(BankConfirmation.day, BankConfirmation.bank, BankConfirmation.reference, BankConfirmation.kind)
    )
    for reference, kind, bank, day, amount, our_amount, status, at, province in await session.execute(differing):
        ours_record = (
            None if status is None else BankRecord(reference, BankKind(kind), int(our_amount), status, at, province)
        )
        difference = rules.confirmed_difference(
            reference=reference, kind=BankKind(kind), bank=bank, day=day, amount_fen=amount, ours=ours_record
        )
        if difference is not None:
            found.append(difference)
    return found
