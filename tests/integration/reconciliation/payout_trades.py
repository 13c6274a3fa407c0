"""Wallet trades for the T+1 payout tests, made through the wallet's services with an injected clock, and the
checks they share: merchant balances, the payout file, the ledger's balance.

The scenario runs across the Dragon Boat holiday of 2010 (Fri 11 June, then Sat 12 and Sun 13 worked, Mon 14 ..
Wed 16 off, Thu 17); the comments give each trade's merchant net and payout day, worked out by hand.
"""

from dataclasses import dataclass
from datetime import date, datetime, timedelta

from sqlalchemy import func, select

from expo.clock import EXPO_TZ
from expo.db import Database
from reconciliation.models import PayoutRun
from reconciliation.payout_file import PayoutFileRow, payout_file
from reconciliation.payouts import run_payouts
from tests.integration.conftest import Service, number
from tests.integration.reconciliation.month_data import SEGMENTS
from wallet.accounts import OpenedVia, open_account
from wallet.audit import audit_ledger
from wallet.merchants import create_merchant
from wallet.models import Merchant, Posting, WalletAccount, WalletTransfer
from wallet.payments import PaymentTerms, find_merchant, lock_payment, pay, refund_payment
from wallet.rules import (
    AccountClass,
    Limit,
    LimitedOperation,
    OperationLimits,
    PaymentChannel,
    RiskLimits,
    fee_category,
)
from wallet.topups import top_up_cash

UNLIMITED = OperationLimits(Limit(10**12, 10**6), Limit(10**12, 10**6))
TERMS = PaymentTerms(
    limits=RiskLimits({cls: dict.fromkeys(LimitedOperation, UNLIMITED) for cls in AccountClass}),
    hold_window=timedelta(minutes=10),
)


def phone(province: str, n: int = 1) -> str:
    """A phone number whose wallet belongs to `province`."""
    return number(n, SEGMENTS[province])


def june(day: int, hour: int = 12, minute: int = 0, second: int = 0) -> datetime:
    return datetime(2010, 6, day, hour, minute, second, tzinfo=EXPO_TZ)


@dataclass
class Trades:
    """Merchants, wallets, payments and refunds made through the wallet's services, each in its own transaction."""

    db: Database

    async def merchant(self, code: str, category: str, province: str, *, rate_bp: int | None = None) -> None:
        async with self.db.write() as session:
            await create_merchant(
                session,
                code=code,
                name=f"Merchant {code}",
                category=category,
                province_code=province,
                fee_rate_bp=rate_bp,
                allows_adjust=False,
                now=june(1),
            )

    async def wallet(self, msisdn: str, *, top_up_fen: int, hall: str = "31") -> str:
        async with self.db.write() as session:
            await open_account(session, msisdn=msisdn, via=OpenedVia.SMS, password=None, id_last4=None, now=june(1))
            await top_up_cash(
                session,
                idempotency_key=f"cash-{msisdn}",
                msisdn=msisdn,
                amount_fen=top_up_fen,
                hall_province=hall,
                limits=TERMS.limits,
                now=june(1),
            )
        return msisdn

    async def pay(self, msisdn: str, merchant_code: str, amount_fen: int, *, now: datetime) -> WalletTransfer:
        async with self.db.write() as session:
            merchant = await find_merchant(session, code=merchant_code)
            proximity = fee_category(merchant.category).proximity
            outcome = await pay(
                session,
                idempotency_key=f"pay-{msisdn}-{merchant_code}-{now.isoformat()}",
                msisdn=msisdn,
                merchant=merchant,
                amount_fen=amount_fen,
                channel=PaymentChannel.PROXIMITY if proximity else PaymentChannel.WEB,
                terms=TERMS,
                now=now,
            )
            return outcome.transfer

    async def refund(self, payment: WalletTransfer, amount_fen: int, *, now: datetime) -> WalletTransfer:
        async with self.db.write() as session:
            return await refund_payment(
                session,
                idempotency_key=f"refund-{payment.id}-{now.isoformat()}",
                payment=await lock_payment(session, transfer_id=payment.id),
                amount_fen=amount_fen,
                now=now,
            )

    async def payouts(self, *, from_day: date, through: date, now: datetime) -> list[PayoutRun]:
        seen: list[date] = []
        async with self.db.write() as session:
            runs = await run_payouts(session, from_day=from_day, through=through, now=now, on_day=seen.append)
        assert seen == [run.payout_day for run in runs]
        return runs


async def merchant_balances(db: Database) -> dict[str, int]:
    async with db.read() as session:
        rows = await session.execute(select(Merchant.code, WalletAccount.balance).join(WalletAccount))
        return {code: balance for code, balance in rows}


async def file_rows(db: Database, day: date) -> dict[str, tuple[int, int, int, int, int, int, int]]:
    """A payout day's rows: merchant -> payments, gross, fee, refunds, refunded, carried in, paid."""
    async with db.read() as session:
        rows = await payout_file(session, payout_day=day)
    return {
        row.merchant_code: (
            row.payments,
            row.gross_fen,
            row.fee_fen,
            row.refunds,
            row.refunded_fen,
            row.carried_in_fen,
            row.amount_fen,
        )
        for row in rows
    }


async def check_ledger(db: Database) -> None:
    async with db.read() as session:
        report = await audit_ledger(session)
        total = await session.scalar(select(func.coalesce(func.sum(Posting.amount_fen), 0)))
    assert report.ok, report.problems
    assert total == 0


async def payout_transfers(db: Database) -> int:
    async with db.read() as session:
        count = await session.scalar(
            select(func.count()).select_from(WalletTransfer).where(WalletTransfer.kind == "merchant_payout")
        )
        return int(count or 0)


async def payout_file_of(service: Service, day: date) -> dict[str, PayoutFileRow]:
    """A payout day's file rows, by merchant code."""
    async with service.db.read() as session:
        return {row.merchant_code: row for row in await payout_file(session, payout_day=day)}


async def trade_across_the_holiday(trades: Trades) -> None:
    """The trades; the comments give each one's merchant net and its payout day (first working day after it)."""
    cafe_first = await trades.pay(phone("44"), "CAFE", 10_000, now=june(10, 15))  # fee 300, +9_700 -> 11th
    games_first = await trades.pay(phone("31"), "GAMES", 10_000, now=june(10, 16))  # fee 1_500, +8_500 -> 11th
    await trades.pay(phone("51"), "EBOOK", 2_550, now=june(10, 23, 59, 59))  # fee 26 (25.5 up), +2_524 -> 11th
    await trades.pay(phone("51"), "EBOOK", 1_000, now=june(11, 0))  # at the cutoff: fee 10, +990 -> 12th
    await trades.refund(games_first, 6_000, now=june(11, 11))  # fee 900 back, -5_100 -> 12th
    await trades.pay(phone("44"), "GAMES", 2_000, now=june(12, 12))  # Saturday worked: fee 300, +1_700 -> 13th
    await trades.pay(phone("31"), "CAFE", 3_333, now=june(13, 13))  # Sunday worked: fee 100, +3_233 -> 17th
    await trades.pay(phone("44"), "EBOOK", 5_000, now=june(14, 10))  # holiday: fee 50, +4_950 -> 17th
    await trades.refund(cafe_first, 10_000, now=june(15, 10))  # holiday: fee 300 back, -9_700 -> 17th
    await trades.pay(phone("31"), "CAFE", 1_000, now=june(16, 10))  # holiday: fee 30, +970 -> 17th
    # Thursday 17th, after its cutoff: paid on the 18th; it also leaves every account enough to pay the days before.
    await trades.pay(phone("44"), "CAFE", 30_000, now=june(17, 9))  # fee 900, +29_100
    await trades.pay(phone("51"), "GAMES", 100_000, now=june(17, 9))  # fee 15_000, +85_000
    await trades.pay(phone("31"), "EBOOK", 20_000, now=june(17, 9))  # fee 200, +19_800
