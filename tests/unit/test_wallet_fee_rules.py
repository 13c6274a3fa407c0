"""Properties of the wallet's pure money rules: fees, fee shares, pro-rata refunds, risk limits, balanced legs."""

import itertools
from fractions import Fraction

import pytest
from hypothesis import given
from hypothesis import strategies as st

from expo.errors import ExpoError
from wallet.ledger import Leg, check_balanced
from wallet.rules import (
    FEE_CATEGORIES,
    MAX_WALLET_PAYMENT_FEN,
    Limit,
    LimitedOperation,
    OperationLimits,
    Usage,
    check_limits,
    fee_for,
    fee_shares,
    part_refunded,
)

amounts = st.integers(1, MAX_WALLET_PAYMENT_FEN)
rates = st.one_of(
    st.sampled_from(sorted({bp for c in FEE_CATEGORIES.values() for bp in (c.guide_bp, c.promo_bp)})),
    st.integers(0, 10_000),
)
provinces = st.sampled_from(["11", "15", "31", "44"])


@pytest.mark.parametrize(
    ("amount", "rate_bp", "fee"),
    [
        (2_550, 100, 26),  # 25.5 fen: a half rounds up
        (2_549, 100, 25),
        (1, 1_500, 0),  # 0.15 fen
        (4, 1_500, 1),  # 0.6 fen
        (10, 500, 1),  # exactly half a fen
        (1, 5_000, 1),
        (999_999, 1_500, 150_000),  # 149,999.85
        (12_345, 0, 0),
    ],
)
def test_fee_is_rounded_half_up_to_the_fen(amount: int, rate_bp: int, fee: int) -> None:
    assert fee_for(amount, rate_bp) == fee


@given(amount=amounts, rate_bp=rates)
def test_fee_is_the_nearest_fen_to_the_exact_fee(amount: int, rate_bp: int) -> None:
    exact = Fraction(amount * rate_bp, 10_000)
    fee = fee_for(amount, rate_bp)
    assert exact - Fraction(1, 2) < fee <= exact + Fraction(1, 2)
    assert 0 <= fee <= amount
    assert fee_for(amount + 1, rate_bp) >= fee  # a bigger payment never pays a smaller fee


@given(fee=st.integers(0, 200_000), proximity=st.booleans(), user=provinces, merchant=provinces)
def test_fee_shares_sum_to_the_fee(fee: int, proximity: bool, user: str, merchant: str) -> None:
    shares = fee_shares(fee, proximity=proximity, user_province=user, merchant_province=merchant)
    assert sum(shares.values()) == fee
    assert all(part > 0 for part in shares.values())
    assert set(shares) <= {user, merchant}


@given(fee=st.integers(0, 200_000), user=provinces, merchant=provinces)
def test_a_remote_fee_goes_wholly_to_the_users_province(fee: int, user: str, merchant: str) -> None:
    assert fee_shares(fee, proximity=False, user_province=user, merchant_province=merchant) == (
        {user: fee} if fee else {}
    )


@given(fee=st.integers(0, 200_000))
def test_a_proximity_fee_is_split_seventy_thirty_to_the_nearest_fen(fee: int) -> None:
    shares = fee_shares(fee, proximity=True, user_province="15", merchant_province="31")
    user_part = shares.get("15", 0)
    assert abs(user_part - Fraction(7 * fee, 10)) <= Fraction(1, 2)
    assert shares.get("31", 0) == fee - user_part


@given(fee=st.integers(0, 200_000), proximity=st.booleans())
def test_fee_shares_never_shrink_as_the_fee_grows(fee: int, proximity: bool) -> None:
    """Refunds return the fee by the shares of what was refunded so far; that needs shares monotone in the fee."""
    smaller = fee_shares(fee, proximity=proximity, user_province="15", merchant_province="31")
    bigger = fee_shares(fee + 1, proximity=proximity, user_province="15", merchant_province="31")
    assert all(bigger.get(province, 0) >= part for province, part in smaller.items())


@st.composite
def refund_plans(draw: st.DrawFn) -> tuple[int, int, list[int]]:
    """A payment, a part of it (red packets, a fee share), and partial refunds that add up to all of it."""
    whole = draw(st.integers(1, 100_000))
    part = draw(st.integers(0, whole))
    cuts = sorted(draw(st.sets(st.integers(1, whole - 1), max_size=8))) if whole > 1 else []
    bounds = [0, *cuts, whole]
    return whole, part, [b - a for a, b in itertools.pairwise(bounds)]


@given(plan=refund_plans())
def test_partial_refunds_return_exactly_the_part(plan: tuple[int, int, list[int]]) -> None:
    whole, part, refunds = plan
    refunded_before = 0
    returned = 0
    for refunding in refunds:
        back = part_refunded(part, whole_fen=whole, refunded_before=refunded_before, refunding=refunding)
        assert 0 <= back <= refunding  # never more of the part than of the whole
        returned += back
        refunded_before += refunding
        assert returned == part * refunded_before // whole  # cumulative: no rounding drift
    assert returned == part


def _limits(day_fen: int, day_count: int, month_fen: int, month_count: int) -> OperationLimits:
    return OperationLimits(Limit(day_fen, day_count), Limit(month_fen, month_count))


@given(
    day_fen=st.integers(1, 10**7),
    day_count=st.integers(1, 100),
    used_fen=st.integers(0, 10**7),
    used_count=st.integers(0, 100),
    amount=st.integers(1, 10**6),
)
def test_limits_allow_up_to_and_refuse_past_the_days_limit(
    day_fen: int, day_count: int, used_fen: int, used_count: int, amount: int
) -> None:
    limits = _limits(day_fen, day_count, 10**9, 10**6)  # the month's limits are far away
    usage = Usage(day_fen=used_fen, day_count=used_count, month_fen=used_fen, month_count=used_count)
    if used_count + 1 > day_count:
        expected: str | None = "payment_count_limit"
    elif used_fen + amount > day_fen:
        expected = "payment_amount_limit"
    else:
        expected = None
    if expected is None:
        check_limits(limits, usage, amount_fen=amount, operation=LimitedOperation.PAYMENT)
        return
    with pytest.raises(ExpoError) as refused:
        check_limits(limits, usage, amount_fen=amount, operation=LimitedOperation.PAYMENT)
    assert (refused.value.code, refused.value.extra["period"]) == (expected, "day")
    if expected == "payment_amount_limit":
        assert refused.value.extra["remaining_fen"] == max(day_fen - used_fen, 0)


@pytest.mark.parametrize("operation", list(LimitedOperation))
def test_limits_at_their_exact_boundaries(operation: LimitedOperation) -> None:
    limits = _limits(10_000, 3, 50_000, 10)
    check_limits(limits, Usage(9_000, 2, 9_000, 2), amount_fen=1_000, operation=operation)  # lands exactly on both
    with pytest.raises(ExpoError) as over_amount:
        check_limits(limits, Usage(9_000, 2, 9_000, 2), amount_fen=1_001, operation=operation)
    assert (over_amount.value.code, over_amount.value.extra["remaining_fen"]) == (f"{operation}_amount_limit", 1_000)
    with pytest.raises(ExpoError) as over_count:
        check_limits(limits, Usage(0, 3, 0, 3), amount_fen=1, operation=operation)
    assert over_count.value.code == f"{operation}_count_limit"
    with pytest.raises(ExpoError) as month:
        check_limits(limits, Usage(0, 0, 49_999, 9), amount_fen=2, operation=operation)
    assert (month.value.code, month.value.extra["period"]) == (f"{operation}_amount_limit", "month")
    with pytest.raises(ExpoError) as month_count:
        check_limits(limits, Usage(0, 0, 0, 10), amount_fen=1, operation=operation)
    assert (month_count.value.code, month_count.value.extra["period"]) == (f"{operation}_count_limit", "month")


legs = st.lists(
    st.builds(Leg, account_id=st.integers(1, 6), amount_fen=st.integers(-10_000, 10_000), user_side=st.booleans()),
    max_size=8,
)


@given(legs=legs)
def test_check_balanced_refuses_legs_that_do_not_sum_to_zero(legs: list[Leg]) -> None:
    if sum(item.amount_fen for item in legs) == 0:
        return
    with pytest.raises(ValueError, match="unbalanced"):
        check_balanced(legs)


@given(legs=legs, closing_account=st.integers(1, 6))
def test_balanced_legs_are_merged_per_account_and_ordered_for_locking(legs: list[Leg], closing_account: int) -> None:
    closing = Leg(closing_account, -sum(item.amount_fen for item in legs))
    merged = check_balanced([*legs, closing])
    assert sum(item.amount_fen for item in merged) == 0
    assert all(item.amount_fen != 0 for item in merged)
    assert len({item.account_id for item in merged}) == len(merged)
    for account in {item.account_id for item in [*legs, closing]}:
        total = sum(item.amount_fen for item in [*legs, closing] if item.account_id == account)
        assert total == sum(item.amount_fen for item in merged if item.account_id == account)
    assert [item.lock_order for item in merged] == sorted(item.lock_order for item in merged)
