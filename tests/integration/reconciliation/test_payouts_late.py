"""T+1 payouts of records that commit after their day was run, and of days missed after a gap: the next run pays
or nets them, and runs every working day not yet run, in order."""

from datetime import date, datetime

from expo.clock import EXPO_TZ
from tests.integration.conftest import Service
from tests.integration.reconciliation.payout_trades import (
    Trades,
    check_ledger,
    file_rows,
    june,
    merchant_balances,
    payout_file_of,
    phone,
)


async def test_a_payment_dated_before_a_cutoff_and_committed_after_its_day_ran_is_paid_next(
    service: Service, trades: Trades
) -> None:
    """A payment whose transaction took its time at 23:59:59 on the 10th commits after the 11th was run: the 11th
    did not see it, and the 12th pays it, as owed from before its window."""
    await trades.pay(phone("44"), "CAFE", 10_000, now=june(10, 15))  # fee 300, +9_700 -> 11th
    [eleventh] = await trades.payouts(from_day=date(2010, 6, 11), through=date(2010, 6, 11), now=june(11, 2))
    assert (eleventh.merchants, eleventh.amount_fen) == (1, 9_700)
    await trades.pay(phone("51"), "EBOOK", 2_550, now=june(10, 23, 59, 59))  # committed now: fee 26, +2_524
    await trades.pay(phone("31"), "EBOOK", 1_000, now=june(11, 10))  # fee 10, +990 -> 12th
    [twelfth] = await trades.payouts(from_day=date(2010, 6, 12), through=date(2010, 6, 12), now=june(12, 2))
    assert (twelfth.merchants, twelfth.amount_fen) == (1, 2_524 + 990)
    # The late payment is in what was carried in, not in the day's figures (it was posted before the window).
    assert await file_rows(service.db, date(2010, 6, 12)) == {"EBOOK": (1, 1_000, 10, 0, 0, 2_524, 3_514)}
    assert await merchant_balances(service.db) == {"CAFE": 0, "EBOOK": 0, "GAMES": 0}
    [thirteenth] = await trades.payouts(from_day=date(2010, 6, 13), through=date(2010, 6, 13), now=june(13, 2))
    assert (thirteenth.merchants, thirteenth.amount_fen) == (0, 0)  # paid once
    assert await file_rows(service.db, date(2010, 6, 13)) == {}
    await check_ledger(service.db)


async def test_a_refund_dated_before_a_cutoff_and_committed_after_its_day_ran_is_netted_next(
    service: Service, trades: Trades
) -> None:
    """A refund of a sale already paid out, dated before the 11th's cutoff and committed after the 11th ran, is
    taken from the next day's payout; nothing is carried on as owed that the merchant was never owed."""
    sale = await trades.pay(phone("51"), "EBOOK", 10_000, now=june(10, 10))  # fee 100, +9_900 -> 11th
    await trades.payouts(from_day=date(2010, 6, 11), through=date(2010, 6, 11), now=june(11, 2))
    await trades.pay(phone("31"), "EBOOK", 20_000, now=june(11, 10))  # fee 200, +19_800 -> 12th
    await trades.refund(sale, 6_000, now=june(10, 23, 59, 59))  # committed now: fee 60 back, -5_940
    [twelfth] = await trades.payouts(from_day=date(2010, 6, 12), through=date(2010, 6, 12), now=june(12, 2))
    assert (twelfth.merchants, twelfth.amount_fen) == (1, 19_800 - 5_940)
    [row] = (await payout_file_of(service, date(2010, 6, 12))).values()
    assert (row.carried_in_fen, row.amount_fen, row.carried_out_fen) == (-5_940, 13_860, 0)
    await trades.pay(phone("44"), "EBOOK", 1_000, now=june(12, 10))  # fee 10, +990 -> 13th
    [thirteenth] = await trades.payouts(from_day=date(2010, 6, 13), through=date(2010, 6, 13), now=june(13, 2))
    assert (thirteenth.merchants, thirteenth.amount_fen) == (1, 990)
    assert await file_rows(service.db, date(2010, 6, 13)) == {"EBOOK": (1, 1_000, 10, 0, 0, 0, 990)}
    assert (await merchant_balances(service.db))["EBOOK"] == 0
    await check_ledger(service.db)


async def test_after_a_gap_every_missed_working_day_is_run_in_order(service: Service, trades: Trades) -> None:
    """Payouts last ran on 11 June; asked through 2 July from 1 July (as `expo settle payouts` does), the run
    starts after the 11th: every working day of the gap, across the month's end, is run, each paying its own."""
    await trades.pay(phone("44"), "CAFE", 1_000, now=june(10, 10))  # fee 30, +970 -> 11th
    await trades.payouts(from_day=date(2010, 6, 11), through=date(2010, 6, 11), now=june(11, 2))
    await trades.pay(phone("44"), "GAMES", 2_000, now=june(20, 10))  # a Sunday: fee 300, +1_700 -> Monday 21st
    await trades.pay(phone("31"), "EBOOK", 5_000, now=june(30, 10))  # fee 50, +4_950 -> 1 July
    july_2 = datetime(2010, 7, 2, 2, tzinfo=EXPO_TZ)
    runs = await trades.payouts(from_day=date(2010, 7, 1), through=date(2010, 7, 2), now=july_2)
    june_days = [date(2010, 6, day) for day in (12, 13, 17, 18, 21, 22, 23, 24, 25, 28, 29, 30)]
    assert [run.payout_day for run in runs] == [*june_days, date(2010, 7, 1), date(2010, 7, 2)]
    assert [run.covered_from for run in runs[1:]] == [run.cutoff for run in runs[:-1]]
    assert {run.payout_day: run.amount_fen for run in runs if run.amount_fen} == {
        date(2010, 6, 21): 1_700,
        date(2010, 7, 1): 4_950,
    }
    assert await file_rows(service.db, date(2010, 6, 21)) == {"GAMES": (1, 2_000, 300, 0, 0, 0, 1_700)}
    assert await merchant_balances(service.db) == {"CAFE": 0, "EBOOK": 0, "GAMES": 0}
    await check_ledger(service.db)
