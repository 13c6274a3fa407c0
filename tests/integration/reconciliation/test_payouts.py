"""T+1 merchant payouts on a real ledger: payments and refunds made through the wallet's services across the
Dragon Boat holiday of 2010 (Fri 11 June, then Sat 12 and Sun 13 worked, Mon 14 .. Wed 16 off, Thu 17), then paid.

The expected figures are worked out by hand from the trades of `payout_trades.py` (each trade's day and the first
working day after it), not by the code under test; the ledger must stay balanced and every merchant be paid exactly
its net.
"""

import asyncio
from datetime import date

import pytest
from sqlalchemy import func, select

from expo.db import Database
from expo.errors import ExpoError
from reconciliation.calendar import payout_day
from reconciliation.models import MerchantPayout, PayoutRun
from reconciliation.payout_file import payout_file, payout_file_csv
from reconciliation.payouts import payout_lines
from reconciliation.rules import PLATFORM
from reconciliation.statement_rules import MERCHANTS, Section
from tests.integration.conftest import Service
from tests.integration.reconciliation.payout_trades import (
    Trades,
    check_ledger,
    file_rows,
    june,
    merchant_balances,
    payout_transfers,
    phone,
    trade_across_the_holiday,
)
from wallet.models import Posting, WalletAccount, WalletTransfer
from wallet.payments import lock_payment, refund_payment


def test_the_scenario_dates_are_those_of_the_calendar() -> None:
    """The hand-worked payout days below rest on these: T+1 in working days, the holiday's days off skipped."""
    assert [payout_day(date(2010, 6, day)) for day in (10, 11, 12, 13, 14, 15, 16, 17)] == [
        date(2010, 6, 11),
        date(2010, 6, 12),
        date(2010, 6, 13),
        date(2010, 6, 17),
        date(2010, 6, 17),
        date(2010, 6, 17),
        date(2010, 6, 17),
        date(2010, 6, 18),
    ]


async def test_merchants_are_paid_t_plus_one_working_day_net_of_fees_with_refunds_carried(
    service: Service, trades: Trades
) -> None:
    await trade_across_the_holiday(trades)
    before = await merchant_balances(service.db)
    runs = await trades.payouts(from_day=date(2010, 6, 11), through=date(2010, 6, 17), now=june(17, 10))
    assert [(run.payout_day, run.merchants, run.amount_fen) for run in runs] == [
        (date(2010, 6, 11), 3, 9_700 + 8_500 + 2_524),
        (date(2010, 6, 12), 1, 990),
        (date(2010, 6, 13), 0, 0),
        (date(2010, 6, 17), 1, 4_950),
    ]
    assert runs[0].covered_from is None
    assert [run.covered_from for run in runs[1:]] == [run.cutoff for run in runs[:-1]]
    assert runs[-1].cutoff == june(17, 0)

    # merchant: payments, gross, fee, refunds, refunded (net of the fee given back), carried in, paid
    assert await file_rows(service.db, date(2010, 6, 11)) == {
        "CAFE": (1, 10_000, 300, 0, 0, 0, 9_700),
        "EBOOK": (1, 2_550, 26, 0, 0, 0, 2_524),
        "GAMES": (1, 10_000, 1_500, 0, 0, 0, 8_500),
    }
    assert await file_rows(service.db, date(2010, 6, 12)) == {
        "EBOOK": (1, 1_000, 10, 0, 0, 0, 990),
        "GAMES": (0, 0, 0, 1, 5_100, 0, 0),  # refunds outweigh the day: -5_100 carried
    }
    assert await file_rows(service.db, date(2010, 6, 13)) == {
        "GAMES": (1, 2_000, 300, 0, 0, -5_100, 0),  # -5_100 + 1_700: -3_400 carried
    }
    assert await file_rows(service.db, date(2010, 6, 17)) == {
        "CAFE": (2, 4_333, 130, 1, 9_700, 0, 0),  # 4_203 - 9_700: -5_497 carried
        "EBOOK": (1, 5_000, 50, 0, 0, 0, 4_950),
        "GAMES": (0, 0, 0, 0, 0, -3_400, 0),  # nothing new: its carry is still owed back
    }
    paid = {"CAFE": 9_700, "EBOOK": 2_524 + 990 + 4_950, "GAMES": 8_500}
    after = await merchant_balances(service.db)
    assert {code: before[code] - after[code] for code in before} == paid
    await check_ledger(service.db)

    # The 18th pays Thursday's trades less what was carried; every merchant is then paid exactly its net.
    friday = await trades.payouts(from_day=date(2010, 6, 1), through=date(2010, 6, 18), now=june(18, 2))
    assert [(run.payout_day, run.merchants, run.amount_fen) for run in friday] == [
        (date(2010, 6, 18), 3, (29_100 - 5_497) + 19_800 + (85_000 - 3_400))
    ]
    assert await merchant_balances(service.db) == {"CAFE": 0, "EBOOK": 0, "GAMES": 0}
    await check_ledger(service.db)


async def test_running_a_day_again_does_nothing(service: Service, trades: Trades) -> None:
    await trade_across_the_holiday(trades)
    first = await trades.payouts(from_day=date(2010, 6, 11), through=date(2010, 6, 17), now=june(17, 10))
    transfers = await payout_transfers(service.db)
    assert transfers == 3 + 1 + 0 + 1
    balances = await merchant_balances(service.db)
    assert await trades.payouts(from_day=date(2010, 6, 11), through=date(2010, 6, 17), now=june(17, 11)) == []
    assert await trades.payouts(from_day=date(2010, 6, 1), through=date(2010, 6, 16), now=june(17, 11)) == []
    assert await payout_transfers(service.db) == transfers
    assert await merchant_balances(service.db) == balances
    async with service.db.read() as session:
        assert await session.scalar(select(func.count()).select_from(PayoutRun)) == len(first)
        assert await session.scalar(select(func.count()).select_from(MerchantPayout)) == 3 + 2 + 1 + 3


async def test_a_payout_never_takes_back_money_refunded_since_the_cutoff(service: Service, trades: Trades) -> None:
    """A refund made after the cutoff but before the run already took its money: the payout pays what is left."""
    sale = await trades.pay(phone("51"), "EBOOK", 10_000, now=june(10, 10))  # fee 100, +9_900 -> 11th
    await trades.refund(sale, 6_000, now=june(11, 1))  # fee 60 back, -5_940 -> 12th
    [eleventh] = await trades.payouts(from_day=date(2010, 6, 11), through=date(2010, 6, 11), now=june(11, 2))
    assert (eleventh.merchants, eleventh.amount_fen) == (1, 3_960)  # all the account holds; 5_940 carried
    assert await file_rows(service.db, date(2010, 6, 11)) == {"EBOOK": (1, 10_000, 100, 0, 0, 0, 3_960)}
    assert (await merchant_balances(service.db))["EBOOK"] == 0
    await trades.pay(phone("31"), "EBOOK", 1_000, now=june(11, 10))  # fee 10, +990 -> 12th
    [twelfth] = await trades.payouts(from_day=date(2010, 6, 12), through=date(2010, 6, 12), now=june(12, 2))
    assert (twelfth.merchants, twelfth.amount_fen) == (1, 990)  # 5_940 carried - 5_940 refunded + 990
    assert await file_rows(service.db, date(2010, 6, 12)) == {"EBOOK": (1, 1_000, 10, 1, 5_940, 5_940, 990)}
    assert (await merchant_balances(service.db))["EBOOK"] == 0
    await check_ledger(service.db)


async def test_the_payout_file_and_the_statement_lines(service: Service, trades: Trades) -> None:
    await trade_across_the_holiday(trades)
    await trades.payouts(from_day=date(2010, 6, 11), through=date(2010, 6, 17), now=june(17, 10))
    async with service.db.read() as session:
        csv_text = payout_file_csv(await payout_file(session, payout_day=date(2010, 6, 17)))
        lines = await payout_lines(session, first_day=date(2010, 6, 12), last_day=date(2010, 6, 30))
    assert csv_text.splitlines() == [
        "payout_day,merchant,name,province,payments,gross_fen,gross_yuan,fee_fen,fee_yuan,refunds,refunded_fen,"
        "refunded_yuan,carried_in_fen,carried_in_yuan,amount_fen,amount_yuan,reference",
        "2010-06-17,CAFE,Merchant CAFE,31,2,4333,43.33,130,1.30,1,9700,97.00,0,0.00,0,0.00,",
        "2010-06-17,EBOOK,Merchant EBOOK,44,1,5000,50.00,50,0.50,0,0,0.00,0,0.00,4950,49.50,payout:2010-06-17:EBOOK",
        "2010-06-17,GAMES,Merchant GAMES,11,0,0,0.00,0,0.00,0,0,0.00,-3400,-34.00,0,0.00,",
    ]
    # The 13th paid nothing: no line. The 11th is outside the span asked for.
    assert [(line.section, line.item, line.payer, line.payee, line.count, line.amount_fen) for line in lines] == [
        (Section.MERCHANT_PAYOUTS, "payout_2010-06-12", PLATFORM, MERCHANTS, 1, 990),
        (Section.MERCHANT_PAYOUTS, "payout_2010-06-17", PLATFORM, MERCHANTS, 1, 4_950),
    ]
    async with service.db.read() as session:
        paid = await session.scalar(select(WalletTransfer).where(WalletTransfer.reference == "payout:2010-06-17:EBOOK"))
        assert paid is not None
        assert (paid.kind, paid.state, paid.channel, paid.amount_fen) == ("merchant_payout", "posted", "bank", 4_950)
        legs = await session.execute(
            select(WalletAccount.code, Posting.amount_fen)
            .join(WalletAccount, WalletAccount.id == Posting.account_id)
            .where(Posting.transfer_id == paid.id)
            .order_by(WalletAccount.code)
        )
        assert sorted(tuple(row) for row in legs) == [("bank_settlement", 4_950), ("merchant:EBOOK", -4_950)]


async def test_refusals(service: Service, trades: Trades) -> None:
    with pytest.raises(ExpoError) as refused:
        await trades.payouts(from_day=date(2010, 6, 11), through=date(2010, 6, 18), now=june(17, 23, 59, 59))
    assert (refused.value.code, refused.value.status) == ("payout_day_not_reached", 409)
    await trades.payouts(from_day=date(2010, 6, 11), through=date(2010, 6, 17), now=june(17, 10))
    for day in (date(2010, 6, 14), date(2010, 6, 18)):  # a day off; a day not run yet
        async with service.db.read() as session:
            with pytest.raises(ExpoError) as missing:
                await payout_file(session, payout_day=day)
        assert (missing.value.code, missing.value.status) == ("payout_day_not_run", 404)
    async with service.db.read() as session:
        assert await payout_file(session, payout_day=date(2010, 6, 13)) == []  # run, nobody to pay or carry


@pytest.mark.parametrize("database_url", ["postgres"], indirect=True)
async def test_a_payout_and_refunds_at_once_never_overdraw_a_merchant(database_url: str, service: Service) -> None:
    """Twelve merchants' whole nets are due, and each is refunded in full on the payout day, on other connections.
    Six refunds have debited their merchants and not yet committed when the run starts: it waits for their rows
    and pays those merchants nothing. The six others race the run: whichever goes first, the other finds the money
    gone. No account goes negative and the ledger stays balanced."""
    trades = Trades(service.db)
    sales = []
    for n in range(12):
        await trades.merchant(f"SHOP{n:02d}", "other_remote", "44")
        buyer = await trades.wallet(phone("51", n), top_up_fen=900_000)
        sales.append(await trades.pay(buyer, f"SHOP{n:02d}", 10_000 + n, now=june(10, 10)))
    racing = Database(database_url, pool_size=20)
    refunds_made, commit = asyncio.Event(), asyncio.Event()

    async def refund_and_wait(early: list[WalletTransfer]) -> None:
        async with racing.write() as session:
            for sale in early:
                payment = await lock_payment(session, transfer_id=sale.id)
                await refund_payment(
                    session,
                    idempotency_key=f"early-{sale.id}",
                    payment=payment,
                    amount_fen=sale.amount_fen,
                    now=june(11, 10),
                )
            refunds_made.set()
            await commit.wait()

    async def refund(sale: WalletTransfer) -> str:
        try:
            await Trades(racing).refund(sale, sale.amount_fen, now=june(11, 10))
        except ExpoError as exc:
            return exc.code
        return "refunded"

    early = asyncio.create_task(refund_and_wait(sales[:6]))
    tasks: list[asyncio.Task[object]] = [early]
    try:
        await refunds_made.wait()
        run = asyncio.create_task(
            Trades(racing).payouts(from_day=date(2010, 6, 11), through=date(2010, 6, 11), now=june(11, 10))
        )
        late = [asyncio.create_task(refund(sale)) for sale in sales[6:]]
        tasks += [run, *late]
        await asyncio.sleep(0.5)
        assert not run.done()  # it waits for the merchant rows the early refunds hold
        commit.set()
        await early
        [day] = await run
        outcomes = [await task for task in late]
    finally:
        commit.set()
        await asyncio.gather(*tasks, return_exceptions=True)
        await racing.dispose()
    assert set(outcomes) <= {"refunded", "merchant_balance_insufficient"}
    assert day.merchants == 6 - outcomes.count("refunded")
    assert day.amount_fen == sum(
        sale.amount_fen - sale.fee_fen
        for sale, outcome in zip(sales[6:], outcomes, strict=True)
        if outcome != "refunded"
    )
    balances = await merchant_balances(service.db)
    assert all(balance == 0 for balance in balances.values()), balances
    await check_ledger(service.db)
