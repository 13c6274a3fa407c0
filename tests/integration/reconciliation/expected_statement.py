"""A month's statement lines computed independently of the settlement code: every payment, order and wallet
transfer is read back one by one and put through the pure rules, then summed per line in Python.

Keys are (section, item, payer, payee); values are (count, amount in fen).
"""

from collections import defaultdict
from datetime import date, datetime

from sqlalchemy import select

from expo.clock import expo_local
from expo.db import Database
from expo.provinces import SHANGHAI
from reconciliation.calendar import payout_day
from reconciliation.rules import (
    BUREAU,
    PLATFORM,
    CommissionRates,
    Month,
    bureau_proceeds_remittance,
    commission_fen,
    commission_invoices,
    proceeds_remittances,
    split_wallet_fee,
    split_wallet_fee_refund,
)
from reconciliation.statement_rules import BUYERS, MERCHANTS
from ticketing.models import Order, Payment
from ticketing.rules import TicketType
from ticketing.sales_rules import PaymentMethod
from wallet.models import Merchant, WalletTransfer, WalletUser
from wallet.rules import PaymentChannel

Key = tuple[str, str, str, str]
Expected = dict[Key, tuple[int, int]]


class _Sums:
    def __init__(self) -> None:
        self.lines: dict[Key, list[int]] = defaultdict(lambda: [0, 0])

    def add(self, key: Key, amount: int) -> None:
        entry = self.lines[key]
        entry[0] += 1
        entry[1] += amount

    def result(self) -> Expected:
        return {key: (count, amount) for key, (count, amount) in self.lines.items() if count}


def _inside(at: datetime | None, start: datetime | None, end: datetime) -> bool:
    return at is not None and (start is None or at >= start) and at < end


async def expected_lines(
    db: Database, *, month: Month, start: datetime | None, end: datetime, rates: CommissionRates
) -> Expected:
    """The ticket and wallet lines of the records in [start, end), and the payouts of the month's days, from the
    rules alone (the generated months never leave a merchant's day negative, so nothing is carried)."""
    sums = _Sums()
    async with db.read() as session:
        payments = (await session.execute(select(Payment, Order).join(Order, Order.id == Payment.order_id))).all()
        transfers = list((await session.scalars(select(WalletTransfer).order_by(WalletTransfer.id))).all())
        users = {u.id: u for u in (await session.scalars(select(WalletUser))).all()}
        merchants = {m.id: m for m in (await session.scalars(select(Merchant))).all()}
    for payment, order in payments:
        if payment.status != "confirmed" or not _inside(payment.settled_at, start, end):
            continue
        _ticket_movement(sums, payment, order, rates)
    _wallet(sums, transfers, users, merchants, month=month, start=start, end=end)
    return sums.result()


def _ticket_movement(sums: _Sums, payment: Payment, order: Order, rates: CommissionRates) -> None:
    """One payment through the pure rules: its commission's invoices, its proceeds' remittances."""
    sale = payment.kind == "charge"
    sign = 1 if sale else -1
    commission = commission_fen(sign * order.amount_fen, rate_bp=rates.rate_bp(TicketType(order.product)))
    invoiced = {i.issuer: i.amount_fen for i in commission_invoices(commission, home_province=order.home_province)}
    item = "commission_on_sales" if sale else "commission_reversed"
    for company in {SHANGHAI, order.home_province}:  # each takes a part of the order, if only a zero one
        sums.add(("commission", item, BUREAU, company), invoiced.get(company, 0))
        sums.add(("invoices", "commission", BUREAU, company), invoiced.get(company, 0))
    item = "ticket_sales" if sale else "ticket_reversals"
    amount = sign * payment.amount_fen
    method = PaymentMethod(payment.method)
    remitted = proceeds_remittances(amount, method=method, sale_province=order.sale_province)
    for line in [*remitted, *bureau_proceeds_remittance(amount)]:
        sums.add(("proceeds", item, line.payer, line.payee), line.amount_fen)
    sums.add(("invoices", "ticket_proceeds", BUYERS, BUREAU), amount)


def _wallet(
    sums: _Sums,
    transfers: list[WalletTransfer],
    users: dict[int, WalletUser],
    merchants: dict[int, Merchant],
    *,
    month: Month,
    start: datetime | None,
    end: datetime,
) -> None:
    by_id = {t.id: t for t in transfers}
    fee_refunded: dict[int, int] = defaultdict(int)  # per payment, the fee given back by earlier refunds
    payouts: dict[str, dict[int, int]] = defaultdict(lambda: defaultdict(int))  # payout day -> merchant -> net
    for transfer in transfers:  # in id order: a refund after its payment and after earlier refunds
        if transfer.state != "posted" or transfer.kind not in ("payment", "refund") or transfer.merchant_id is None:
            hall_cash = transfer.state == "posted" and transfer.kind == "top_up" and transfer.channel == "hall_cash"
            if hall_cash and _inside(transfer.finished_at, start, end):
                sums.add(("wallet_funds", "hall_cash_top_ups", SHANGHAI, PLATFORM), transfer.amount_fen)
            continue
        merchant = merchants[transfer.merchant_id]
        assert transfer.user_id is not None
        user = users[transfer.user_id]
        channel = PaymentChannel(transfer.channel)
        kind = "proximity" if channel is PaymentChannel.PROXIMITY else "remote"
        provinces = {"user_province": user.province_code, "merchant_province": merchant.province_code}
        if transfer.kind == "payment":
            shares = split_wallet_fee(transfer.fee_fen, channel=channel, **provinces)
            item, net = f"merchant_fees_{kind}", transfer.amount_fen - transfer.fee_fen
        else:
            assert transfer.original_id is not None
            before = fee_refunded[transfer.original_id]
            fee_refunded[transfer.original_id] += transfer.fee_fen
            original = by_id[transfer.original_id]
            shares = split_wallet_fee_refund(
                fee_refunded_before=before,
                fee_refunding=transfer.fee_fen,
                channel=PaymentChannel(original.channel),
                **provinces,
            )
            item, net = f"merchant_fee_refunds_{kind}", -(transfer.amount_fen - transfer.fee_fen)
        assert transfer.finished_at is not None
        payouts[payout_day(expo_local(transfer.finished_at).date()).isoformat()][merchant.id] += net
        if not _inside(transfer.finished_at, start, end):
            continue
        for province, part in shares.items():
            sums.add(("wallet_fees", item, PLATFORM, province), part)
    for day, nets in payouts.items():
        paid = [net for net in nets.values() if net > 0]
        if paid and date.fromisoformat(day) in month:
            key = ("merchant_payouts", f"payout_{day}", PLATFORM, MERCHANTS)
            sums.lines[key] = [len(paid), sum(paid)]
