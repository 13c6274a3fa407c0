"""The wallet lines of June 2010 from the ledger, against figures worked out here from the trades made.

Payments and refunds (remote and proximity, users and merchants of several provinces, partial and full refunds),
cash top-ups at two provinces' halls, a bank top-up, a recharge card, withdrawals and a T+1 payout go through the
wallet's services; a few fall just outside June (31 May, 1 July) and must be left out. The fee shares expected are
computed with the documents' rule written out again here: remote 100% the user's province, proximity 70 : 30
the user's and the merchant's (the odd fen to the larger remainder, a tie to the user's province).
"""

from collections import defaultdict
from datetime import datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from expo.bank import BankResult, BankStatus, InMemoryBank
from reconciliation.commission import month_window
from reconciliation.payouts import run_payouts
from reconciliation.rules import PLATFORM, Month
from reconciliation.statement_rules import BANK, RECHARGE_CARD_SALES, Section
from reconciliation.wallet_lines import wallet_lines
from tests.integration.conftest import Service
from tests.integration.reconciliation.payout_trades import TERMS, Trades, june, phone
from wallet.models import WalletTransfer
from wallet.recharge_cards import issue_recharge_cards, redeem_recharge_card
from wallet.topups import BankChannel, top_up_by_bank, top_up_cash
from wallet.withdrawals import request_withdrawal, settle_withdrawal

MAY_31 = datetime(2010, 5, 31, 22, 0, tzinfo=june(1).tzinfo)
JULY_1 = datetime(2010, 7, 1, 0, 0, tzinfo=june(1).tzinfo)
CARD_ACCOUNT = "6222020000000001"  # the in-memory bank approves it
RATES = {"CAFE": 300, "EBOOK": 100, "GAMES": 1500}
PROVINCE = {"CAFE": "31", "EBOOK": "44", "GAMES": "11"}
PROXIMITY = {"CAFE"}

Key = tuple[Section, str, str, str]


def fee_split(fee: int, *, merchant: str, user_province: str) -> dict[str, int]:
    """The documents' split, written out again: 70% of the fee rounded half up is the user's province's."""
    if merchant not in PROXIMITY:
        return {user_province: fee}
    user_part = (fee * 70 + 50) // 100
    shares: dict[str, int] = defaultdict(int)
    shares[user_province] += user_part
    shares[PROVINCE[merchant]] += fee - user_part
    return dict(shares)


class Expected:
    """The June lines, tallied trade by trade: key -> [transfers, amount]."""

    def __init__(self) -> None:
        self.lines: dict[Key, list[int]] = defaultdict(lambda: [0, 0])
        self.refunded: dict[int, int] = defaultdict(int)  # payment id -> refunded so far

    def add(self, key: Key, amount: int) -> None:
        self.lines[key][0] += 1
        self.lines[key][1] += amount

    def payment(self, transfer: WalletTransfer, merchant: str, user_province: str) -> None:
        fee = (transfer.amount_fen * RATES[merchant] + 5_000) // 10_000
        reach = "proximity" if merchant in PROXIMITY else "remote"
        for province, share in fee_split(fee, merchant=merchant, user_province=user_province).items():
            if share:
                self.add((Section.WALLET_FEES, f"merchant_fees_{reach}", PLATFORM, province), share)

    def refund(self, payment: WalletTransfer, amount: int, merchant: str, user_province: str) -> None:
        """A refund gives back the fee pro rata, cumulatively: its shares are those of the fee refunded after it
        less those of the fee refunded before it."""
        fee = (payment.amount_fen * RATES[merchant] + 5_000) // 10_000
        before_fen = self.refunded[payment.id]
        self.refunded[payment.id] += amount
        before = fee_split(fee * before_fen // payment.amount_fen, merchant=merchant, user_province=user_province)
        after = fee_split(
            fee * self.refunded[payment.id] // payment.amount_fen, merchant=merchant, user_province=user_province
        )
        reach = "proximity" if merchant in PROXIMITY else "remote"
        for province, share in after.items():
            if share - before.get(province, 0):
                key = (Section.WALLET_FEES, f"merchant_fee_refunds_{reach}", PLATFORM, province)
                self.add(key, -(share - before.get(province, 0)))


async def test_the_months_wallet_lines_are_its_fee_shares_and_money_in_and_out(service: Service) -> None:
    trades = Trades(service.db)
    for code, category in (("CAFE", "restaurants"), ("EBOOK", "other_remote"), ("GAMES", "virtual_goods")):
        await trades.merchant(code, category, PROVINCE[code], rate_bp=RATES[code])
    expected = Expected()
    funds = Section.WALLET_FUNDS
    for province, hall in (("31", "31"), ("44", "44"), ("51", "31")):
        await trades.wallet(phone(province), top_up_fen=900_000, hall=hall)  # 1 June
        expected.add((funds, "hall_cash_top_ups", hall, PLATFORM), 900_000)

    async def pay(province: str, merchant: str, amount: int, at: datetime) -> WalletTransfer:
        transfer = await trades.pay(phone(province), merchant, amount, now=at)
        expected.payment(transfer, merchant, province)
        return transfer

    async def refund(payment: WalletTransfer, province: str, merchant: str, amount: int, at: datetime) -> None:
        await trades.refund(payment, amount, now=at)
        expected.refund(payment, amount, merchant, province)

    remote = await pay("44", "EBOOK", 12_345, june(10, 9))
    await pay("51", "GAMES", 9_999, june(10, 9))
    split_odd = await pay("51", "CAFE", 7_777, june(10, 10))  # proximity, two provinces
    await pay("31", "CAFE", 5_000, june(10, 10))  # proximity, user and merchant both of 31: one leg
    full = await pay("44", "CAFE", 3_000, june(10, 11))
    await refund(full, "44", "CAFE", 3_000, june(10, 12))
    await refund(split_odd, "51", "CAFE", 2_000, june(10, 13))
    await refund(split_odd, "51", "CAFE", 3_000, june(10, 14))
    await refund(remote, "44", "EBOOK", 5_000, june(10, 15))

    async with service.db.write() as session:
        await top_up_by_bank(
            session,
            idempotency_key="bank-1",
            msisdn=phone("44"),
            amount_fen=30_000,
            channel=BankChannel.ONLINE_BANKING,
            account=CARD_ACCOUNT,
            bank=InMemoryBank(),
            bank_timeout=timedelta(seconds=5),
            limits=TERMS.limits,
            now=june(5),
        )
        cards = await issue_recharge_cards(session, count=2, face_value_fen=5_000, batch="JUNE", now=june(1))
    expected.add((funds, "bank_top_ups", BANK, PLATFORM), 30_000)
    for card, msisdn, at in ((cards[0], phone("44"), june(8)), (cards[1], phone("51"), JULY_1)):
        async with service.db.write() as session:
            await redeem_recharge_card(
                session,
                idempotency_key=f"card-{card.serial}",
                msisdn=msisdn,
                serial=card.serial,
                pin=card.pin,
                limits=TERMS.limits,
                now=at,
            )
    expected.add((funds, "recharge_card_top_ups", RECHARGE_CARD_SALES, PLATFORM), 5_000)
    # Withdrawals count when the bank paid them (the hold captured), not when they were asked for.
    for key, amount, asked, paid in (("w-june", 1_000, june(20), june(21)), ("w-july", 2_000, june(30, 20), JULY_1)):
        async with service.db.write() as session:
            withdrawal = await request_withdrawal(
                session,
                idempotency_key=key,
                msisdn=phone("31"),
                amount_fen=amount,
                account=CARD_ACCOUNT,
                bank=InMemoryBank(),
                bank_timeout=timedelta(seconds=5),
                limits=TERMS.limits,
                now=asked,
            )
        async with service.db.write() as session:
            locked = await lock_withdrawal(session, withdrawal.id)
            await settle_withdrawal(session, transfer=locked, result=BankResult(BankStatus.APPROVED), now=paid)
    expected.add((funds, "withdrawals", PLATFORM, BANK), 1_000)
    # The merchants' T+1 payout goes out through the banks too, but it is no withdrawal (it has its own section).
    async with service.db.write() as session:
        [paid_out] = await run_payouts(session, from_day=june(11).date(), through=june(11).date(), now=june(11, 2))
    assert paid_out.amount_fen > 0

    # Just outside June: cash and a payment on 31 May, a payment and a refund on 1 July.
    async with service.db.write() as session:
        await top_up_cash(
            session,
            idempotency_key="may-cash",
            msisdn=phone("31"),
            amount_fen=1_111,
            hall_province="31",
            limits=TERMS.limits,
            now=MAY_31,
        )
    await trades.pay(phone("44"), "EBOOK", 500, now=MAY_31)
    july = await trades.pay(phone("44"), "GAMES", 1_000, now=JULY_1)
    await trades.refund(july, 1_000, now=JULY_1)

    async with service.db.read() as session:
        lines = await wallet_lines(session, window=month_window(Month(2010, 6)))
    found = {(line.section, line.item, line.payer, line.payee): [line.count, line.amount_fen] for line in lines}
    assert found == dict(expected.lines)
    # Spot checks of the rule itself: 233 fen of fee split 163 : 70, 90 split 63 : 27, a 150 fen fee all 31's.
    assert found[(Section.WALLET_FEES, "merchant_fees_proximity", PLATFORM, "51")] == [1, 163]
    assert found[(Section.WALLET_FEES, "merchant_fees_proximity", PLATFORM, "31")] == [3, 70 + 150 + 27]
    assert found[(Section.WALLET_FEES, "merchant_fees_remote", PLATFORM, "44")] == [1, 123]
    by_key = {(line.section, line.item, line.payer, line.payee): line for line in lines}
    basis = by_key[(Section.WALLET_FEES, "merchant_fees_remote", PLATFORM, "44")].basis
    assert "fee_income:44" in basis
    assert "2010-06-01 00:00" in basis
    assert all(line.amount_fen for line in lines)


async def lock_withdrawal(session: AsyncSession, transfer_id: int) -> WalletTransfer:
    """A withdrawal locked for the bank's answer, as the sweep locks it."""
    transfer = await session.get(WalletTransfer, transfer_id, with_for_update=True, populate_existing=True)
    assert transfer is not None
    return transfer
