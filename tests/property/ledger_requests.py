"""The state machine's cast (users, merchants, terms), its fresh start, and the requests it sends.

A request is sent under a key with an amount and returns the transfer it made (or found again), so the
machine can send any of them again to replay a key, or with another amount to misuse one.
"""

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from expo.clock import FixedClock
from expo.db import Base, Database
from expo.models_registry import metadata
from tests.property.ledger_model import ModelMerchant
from tests.property.ledger_ops import fund_marketing, grant_red_packet, hold_withdrawal
from wallet.accounts import OpenedVia, open_account
from wallet.merchants import create_merchant
from wallet.payments import PaymentTerms, find_merchant, lock_payment, pay, refund_payment
from wallet.rules import AccountClass, Limit, LimitedOperation, OperationLimits, PaymentChannel, RiskLimits
from wallet.topups import top_up_cash

Request = Callable[[AsyncSession, str, int], Awaitable[int]]

UNLIMITED = OperationLimits(Limit(10**12, 10**6), Limit(10**12, 10**6))
# Risk limits are not what the machine checks: with the defaults a long run would soon hit the day's count.
TERMS = PaymentTerms(
    limits=RiskLimits({cls: dict.fromkeys(LimitedOperation, UNLIMITED) for cls in AccountClass}),
    hold_window=timedelta(minutes=10),
)
# Numbers of three provinces (shipped segments): Inner Mongolia, Shanghai, Beijing; one opened in a hall.
USERS = {"13800000001": "15", "13425540001": "31", "13400000001": "11"}
HALL_OPENED = "13425540001"
# Remote and proximity merchants, a fee-free one, odd negotiated rates. A proximity fee is split between
# the user's and the merchant's provinces: NOODLES is in no user's province, so its fee is always split;
# CINEMA shares its province with one user, whose two shares then fall to one province.
MERCHANTS = {
    ModelMerchant("GAMES", 1500, proximity=False, province="31"): "virtual_goods",
    ModelMerchant("EBOOKS", 100, proximity=False, province="11"): "other_remote",
    ModelMerchant("WATER", 0, proximity=False, province="31"): "utilities",
    ModelMerchant("NOODLES", 300, proximity=True, province="44"): "restaurants",
    ModelMerchant("CINEMA", 250, proximity=True, province="15"): "entertainment",
}
WALLET_TABLES = [
    table
    for table in reversed(metadata.sorted_tables)
    if any(m.local_table is table and m.class_.__module__ == "wallet.models" for m in Base.registry.mappers)
]


async def reset_wallet(db: Database, clock: FixedClock) -> None:
    """Empty the wallet's tables (the segments stay) and open the cast's wallets and merchants again."""
    async with db.write() as session:
        if db.sqlite:
            await session.execute(text("PRAGMA defer_foreign_keys = ON"))
        for table in WALLET_TABLES:
            await session.execute(table.delete())
        for msisdn in sorted(USERS):
            hall = msisdn == HALL_OPENED
            await open_account(
                session,
                msisdn=msisdn,
                via=OpenedVia.HALL if hall else OpenedVia.SMS,
                password=None,
                id_last4="123X" if hall else None,
                now=clock.now(),
            )
        for merchant, category in MERCHANTS.items():
            await create_merchant(
                session,
                code=merchant.code,
                name=merchant.code.title(),
                category=category,
                province_code=merchant.province,
                fee_rate_bp=merchant.rate_bp,
                allows_adjust=False,
                now=clock.now(),
            )


@dataclass
class Requests:
    """The services the machine drives, each bound to its fixed arguments and read at the clock's time."""

    clock: FixedClock

    def top_up(self, msisdn: str, hall: str) -> Request:
        async def send(session: AsyncSession, key: str, amount: int) -> int:
            made = await top_up_cash(
                session,
                idempotency_key=key,
                msisdn=msisdn,
                amount_fen=amount,
                hall_province=hall,
                limits=TERMS.limits,
                now=self.clock.now(),
            )
            return made.id

        return send

    def pay(self, msisdn: str, payee: ModelMerchant | None, channel: PaymentChannel) -> Request:
        async def send(session: AsyncSession, key: str, amount: int) -> int:
            outcome = await pay(
                session,
                idempotency_key=key,
                msisdn=msisdn,
                merchant=await find_merchant(session, code=payee.code) if payee else None,
                amount_fen=amount,
                channel=channel,
                terms=TERMS,
                now=self.clock.now(),
            )
            # Only a new SMS payment texts a code; a replay never texts again.
            assert (outcome.code is not None) == (channel == PaymentChannel.SMS and not outcome.replayed)
            return outcome.transfer.id

        return send

    def refund(self, payment_id: int) -> Request:
        async def send(session: AsyncSession, key: str, amount: int) -> int:
            payment = await lock_payment(session, transfer_id=payment_id)
            made = await refund_payment(
                session, idempotency_key=key, payment=payment, amount_fen=amount, now=self.clock.now()
            )
            return made.id

        return send

    def withdraw(self, msisdn: str) -> Request:
        async def send(session: AsyncSession, key: str, amount: int) -> int:
            return await hold_withdrawal(session, key=key, msisdn=msisdn, amount_fen=amount, now=self.clock.now())

        return send

    def fund_marketing(self) -> Request:
        async def send(session: AsyncSession, key: str, amount: int) -> int:
            return await fund_marketing(session, key=key, amount_fen=amount, now=self.clock.now())

        return send

    def grant_red_packet(self, msisdn: str) -> Request:
        async def send(session: AsyncSession, key: str, amount: int) -> int:
            return await grant_red_packet(session, key=key, msisdn=msisdn, amount_fen=amount, now=self.clock.now())

        return send
