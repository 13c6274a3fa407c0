"""Matching the ledger's bank-side money against the banks' confirmation files, in the database.

Our side: ticket payments through the bank gateway (credit card, online banking; a refund or void under the
reference of the charge it pays back, as the bank was given it) and wallet transfers through banks (top-ups by
bank card or online banking, withdrawals to cards, merchant payouts). Their side: the confirmations of
`reconciliation.bank_confirmations`. They pair on (reference, kind). A month reports our money settled in it
that no bank confirms, and the confirmations of its days that we have no settled record of, or of another amount.
"""

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Select, SQLColumnExpression, Subquery, and_, case, exists, func, literal, or_, select, union_all
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

# The wallet transfers that go through a bank: each kind, the kind the bank confirms it as, and its channels
# (None: any).
_BANK_TRANSFERS: dict[str, tuple[BankKind, list[str] | None]] = {
    TransferKind.TOP_UP.value: (BankKind.TOP_UP, sorted(BANK_CHANNELS)),
    TransferKind.WITHDRAWAL.value: (BankKind.WITHDRAWAL, [WITHDRAWAL_CHANNEL]),
    TransferKind.MERCHANT_PAYOUT.value: (BankKind.PAYOUT, None),
}


@dataclass(frozen=True)
class _Part:
    """One part of our side as a narrowing sees it: its table's columns, so that its indexes serve."""

    reference: SQLColumnExpression[str | None]  # the reference the bank knows the movement by
    kind: SQLColumnExpression[str]  # the kind the bank confirms it as (`BankKind`)
    kinds: tuple[BankKind, ...]  # the kinds the part holds
    at: SQLColumnExpression[datetime | None]  # when it settled
    status: SQLColumnExpression[str]


# Which of our records to take: each part's query narrowed (filtered, or joined to what it is matched with).
_Query = Select[*tuple[Any, ...]]  # a SELECT of any columns
Narrow = Callable[[_Query, _Part], _Query]


def _bank_records(narrow: Narrow) -> Subquery:
    """Our side of every bank movement `narrow` keeps: ticket payments through the bank gateway (a reversal under
    its charge's reference) and wallet transfers through banks (bank top-ups, withdrawals, merchant payouts)."""
    gateway = [method.value for method in GATEWAY_METHODS]
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
        .where(Payment.kind == BankKind.CHARGE.value, Payment.method.in_(gateway))
    )
    charges = narrow(
        charges, _Part(Payment.reference, Payment.kind, (BankKind.CHARGE,), Payment.settled_at, Payment.status)
    )
    charge = aliased(Payment)
    reversals = (
        select(
            charge.reference, Payment.kind, Payment.amount_fen, Payment.status, Payment.settled_at, Order.sale_province
        )
        .join(charge, and_(charge.order_id == Payment.order_id, charge.kind == BankKind.CHARGE.value))
        .join(Order, Order.id == Payment.order_id)
        .where(Payment.kind.in_((BankKind.REFUND.value, BankKind.VOID.value)), Payment.method.in_(gateway))
    )
    reversals = narrow(
        reversals,
        _Part(charge.reference, Payment.kind, (BankKind.REFUND, BankKind.VOID), Payment.settled_at, Payment.status),
    )
    confirmed_as = case(
        {kind: literal(bank_kind.value) for kind, (bank_kind, _) in _BANK_TRANSFERS.items()}, value=WalletTransfer.kind
    )
    transfers = (
        select(
            WalletTransfer.reference,
            confirmed_as,
            WalletTransfer.amount_fen,
            WalletTransfer.state,
            WalletTransfer.finished_at,
            func.coalesce(WalletUser.province_code, Merchant.province_code),
        )
        .outerjoin(WalletUser, WalletUser.id == WalletTransfer.user_id)
        .outerjoin(Merchant, Merchant.id == WalletTransfer.merchant_id)
        .where(
            # Each alternative names its kind: an index on (kind, state, finished_at) serves each one.
            or_(
                *(
                    WalletTransfer.kind == kind
                    if channels is None
                    else and_(WalletTransfer.kind == kind, WalletTransfer.channel.in_(channels))
                    for kind, (_, channels) in _BANK_TRANSFERS.items()
                )
            ),
            WalletTransfer.reference.is_not(None),
        )
    )
    transfers = narrow(
        transfers,
        _Part(
            WalletTransfer.reference,
            confirmed_as,
            tuple(bank_kind for bank_kind, _ in _BANK_TRANSFERS.values()),
            WalletTransfer.finished_at,
            WalletTransfer.state,
        ),
    )
    return union_all(charges, reversals, transfers).subquery("ours")


async def match_bank_confirmations(session: AsyncSession, *, month: Month) -> list[DiscrepancyFound]:
    """Our bank-side money settled in the month that no bank confirms, and the banks' confirmations of the
    month's days that we have no settled record of, or of another amount."""
    start, end = month_bounds(month)

    def settled_in_month(query: _Query, part: _Part) -> _Query:
        # Only settled money is owed a confirmation: its status is tested in each part, with its kind and time.
        return query.where(part.status.in_(sorted(SETTLED_STATUSES)), part.at >= start, part.at < end)

    ours = _bank_records(settled_in_month)
    confirmed = exists().where(BankConfirmation.reference == ours.c.reference, BankConfirmation.kind == ours.c.kind)
    unconfirmed = select(ours).where(~confirmed).order_by(ours.c.at, ours.c.reference, ours.c.kind)
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
    confirmation = aliased(BankConfirmation)

    def confirmed_in_month(query: _Query, part: _Part) -> _Query:
        # Each part joined to the month's confirmations of its kinds by reference: driven by them, not by our
        # history. Whatever our status: a confirmed movement we hold as pending or declined differs too.
        return query.join(
            confirmation,
            and_(
                confirmation.reference == part.reference,
                confirmation.kind.in_([kind.value for kind in part.kinds]),
                confirmation.kind == part.kind,
                confirmation.day >= month.first_day,
                confirmation.day <= month.last_day,
            ),
        ).add_columns(confirmation.id.label("confirmation_id"))

    theirs = _bank_records(confirmed_in_month)
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
        .outerjoin(theirs, theirs.c.confirmation_id == BankConfirmation.id)
        .where(
            in_month,
            or_(
                theirs.c.confirmation_id.is_(None),
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
