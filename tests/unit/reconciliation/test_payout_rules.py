"""The T+1 payout rule: a merchant's owed amount and daily nets walked into what each day pays and carries."""

import pytest
from hypothesis import given
from hypothesis import strategies as st

from reconciliation.payout_rules import Activity, DayPayout, pay_merchant


def net(earned_fen: int) -> Activity:
    """A day whose only figure that matters to the rule is what the account was credited."""
    return Activity(payments=1, earned_fen=earned_fen)


@pytest.mark.parametrize(
    ("owed", "days", "available", "expected"),
    [
        # carried in, net, paid per row (day index)
        (0, [net(9_700)], 9_700, [(0, 0, 9_700, 9_700)]),
        (0, [None, None], 0, []),  # nothing owed, nothing earned: no rows
        (0, [net(-5_100), net(1_700), None], 0, [(0, 0, -5_100, 0), (1, -5_100, 1_700, 0), (2, -3_400, 0, 0)]),
        (2_524, [None, net(990)], 3_514, [(0, 2_524, 0, 2_524), (1, 0, 990, 990)]),  # owed from before: day 0
        (-5_940, [net(19_800)], 13_860, [(0, -5_940, 19_800, 13_860)]),  # a late refund netted
        (0, [net(9_900), net(990)], 3_960, [(0, 0, 9_900, 3_960), (1, 5_940, 990, 0)]),  # the account covers less
        (0, [net(0)], 0, [(0, 0, 0, 0)]),  # a sale refunded the same day: a row, nothing paid
    ],
)
def test_each_day_pays_what_is_due_and_covered_and_carries_the_rest(
    owed: int, days: list[Activity | None], available: int, expected: list[tuple[int, int, int, int]]
) -> None:
    rows = pay_merchant(owed_fen=owed, days=days, available_fen=available)
    assert [(row.day, row.carried_in_fen, row.activity.earned_fen, row.amount_fen) for row in rows] == expected


def test_a_day_without_activity_carries_an_empty_activity() -> None:
    [row] = pay_merchant(owed_fen=100, days=[None], available_fen=100)
    assert row == DayPayout(0, Activity(), 100, 100)
    assert row.carried_out_fen == 0


NETS = st.lists(st.none() | st.integers(-(10**9), 10**9).map(net), max_size=12)


@given(owed=st.integers(-(10**9), 10**9), days=NETS, available=st.integers(0, 3 * 10**9))
def test_what_is_paid_plus_what_is_carried_is_what_was_earned(
    owed: int, days: list[Activity | None], available: int
) -> None:
    rows = pay_merchant(owed_fen=owed, days=days, available_fen=available)
    earned = sum(day.earned_fen for day in days if day is not None)
    paid = sum(row.amount_fen for row in rows)
    carried_out = rows[-1].carried_out_fen if rows else owed
    assert paid + carried_out == owed + earned
    assert all(row.amount_fen >= 0 for row in rows)
    assert paid <= available
    # Each row carries in what the one before carried out; the first, what was owed.
    assert [row.carried_in_fen for row in rows] == [owed, *(row.carried_out_fen for row in rows[:-1])][: len(rows)]
    # A row is paid all that is due, unless the account ran out; a day is skipped only with nothing to carry.
    left = available
    for row in rows:
        due = row.carried_in_fen + row.activity.earned_fen
        assert row.amount_fen == max(min(due, left), 0)
        left -= row.amount_fen
    assert {row.day for row in rows} >= {index for index, day in enumerate(days) if day is not None}
