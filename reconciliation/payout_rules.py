"""T+1 payout rules, pure: how what a merchant is owed from before a run and its nets of each payout day become what
each day pays and what it carries to the next.

A day pays what is owed so far (carried in) plus the day's net when that is above zero, as far as the merchant's
account covers it; what it does not pay, a net not above zero included, is carried to the next day. So over a run
what is paid plus what is carried out equals what was owed plus what was earned, nothing paid is negative, and all
paid together never exceeds what the account could pay when the run began.
"""

from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class Activity:
    """A merchant's payments and refunds over one payout day's span; `earned_fen` is what its account was credited
    for them (payments net of fees, less refunds net of the fees given back)."""

    payments: int = 0
    gross_fen: int = 0
    fee_fen: int = 0
    refunds: int = 0
    refunded_fen: int = 0
    earned_fen: int = 0


@dataclass(frozen=True)
class DayPayout:
    """A merchant's row of one payout day (`day` indexes the run's days): what it carried in, the day's activity
    and what was paid."""

    day: int
    activity: Activity
    carried_in_fen: int
    amount_fen: int

    @property
    def carried_out_fen(self) -> int:
        """What is still owed after the day (negative: owed back)."""
        return self.carried_in_fen + self.activity.earned_fen - self.amount_fen


def pay_merchant(*, owed_fen: int, days: Sequence[Activity | None], available_fen: int) -> list[DayPayout]:
    """domain (T+1): each day pays the carry plus the day's net when above zero, as far as the account's
    `available_fen` (at the run's start, less what earlier days paid) covers; the rest is carried. `owed_fen` is
    what the first day carries in; `days[i]` is day i's activity (None: none). A day with neither activity nor
    carry has no row."""
    rows: list[DayPayout] = []
    carried, available = owed_fen, max(available_fen, 0)
    for day, found in enumerate(days):
        if found is None and carried == 0:
            continue
        activity = found or Activity()
        due = carried + activity.earned_fen
        amount = max(min(due, available), 0)
        rows.append(DayPayout(day, activity, carried, amount))
        available -= amount
        carried = due - amount
    return rows
