"""The settlement month, commission and its split, wallet fee splits and the routing of proceeds."""

import itertools
from datetime import date
from fractions import Fraction

import pytest
from hypothesis import given
from hypothesis import strategies as st

from expo.errors import ExpoError
from expo.provinces import PROVINCES, SHANGHAI
from reconciliation.rules import (
    BUREAU,
    DEFAULT_COMMISSION_BP,
    PLATFORM,
    CommissionRates,
    Invoice,
    Line,
    Month,
    bureau_proceeds_remittance,
    commission_fen,
    commission_invoices,
    commission_settlement,
    proceeds_remittances,
    split_commission,
    split_wallet_fee,
    split_wallet_fee_refund,
)
from ticketing.rules import CATALOGUE, TicketType
from ticketing.sales_rules import PaymentMethod
from wallet.rules import PaymentChannel

provinces = st.sampled_from(sorted(PROVINCES))
amounts = st.integers(-(10**12), 10**12)
channels = st.sampled_from(list(PaymentChannel))


# --- the settlement month ----------------------------------------------------------------------------


def test_a_month_parses_and_knows_its_days() -> None:
    june = Month.parse("2010-06")
    assert (june.year, june.month, str(june)) == (2010, 6, "2010-06")
    assert (june.first_day, june.last_day) == (date(2010, 6, 1), date(2010, 6, 30))
    assert june.next() == Month.parse("2010-07")
    assert date(2010, 6, 30) in june
    assert date(2010, 7, 1) not in june
    assert Month.of(date(2010, 10, 31)) == Month.parse("2010-10")


@pytest.mark.parametrize(
    ("text", "last_day", "following"),
    [
        ("2009-01", date(2009, 1, 31), "2009-02"),
        ("2009-02", date(2009, 2, 28), "2009-03"),
        ("2009-12", date(2009, 12, 31), "2010-01"),
        ("2010-02", date(2010, 2, 28), "2010-03"),
        ("2010-12", date(2010, 12, 31), "2011-01"),
        ("2011-02", date(2011, 2, 28), "2011-03"),
    ],
)
def test_month_ends_and_year_ends(text: str, last_day: date, following: str) -> None:
    month = Month.parse(text)
    assert month.last_day == last_day
    assert str(month.next()) == following


def test_months_are_ordered() -> None:
    assert Month.parse("2009-12") < Month.parse("2010-01") < Month.parse("2010-06")


@pytest.mark.parametrize(
    "text",
    ["", "2010", "2010-6", "2010-006", "201006", "2010/06", " 2010-06", "2010-06 ", "2010-00", "2010-13", "June",
     "２０１０-０６", "2010-06-01", "10-06", "-2010-06"],
)  # fmt: skip
def test_bad_month_texts_are_refused(text: str) -> None:
    with pytest.raises(ExpoError) as refused:
        Month.parse(text)
    assert refused.value.code == "month_invalid"


@pytest.mark.parametrize("text", ["2008-12", "2000-01", "2011-04", "2012-01", "9999-12", "0000-01"])
def test_months_outside_the_settlement_period_are_refused(text: str) -> None:
    with pytest.raises(ExpoError) as refused:
        Month.parse(text)
    assert refused.value.code == "month_out_of_range"
    assert refused.value.extra == {"first_month": "2009-01", "last_month": "2011-03"}


def test_there_is_no_month_after_the_last() -> None:
    with pytest.raises(ExpoError) as refused:
        Month.parse("2011-03").next()
    assert refused.value.code == "month_out_of_range"


def test_the_settlement_period_covers_the_expo_and_its_aftermath() -> None:
    months = [Month.parse("2009-01")]
    while str(months[-1]) != "2011-03":
        months.append(months[-1].next())
    assert len(months) == 27
    assert all(earlier.last_day < later.first_day for earlier, later in itertools.pairwise(months))


# --- commission --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("price", "rate_bp", "commission"),
    [
        (16_000, 300, 480),  # standard day, 3%
        (9_000, 300, 270),
        (50, 100, 1),  # exactly half a fen rounds up
        (49, 100, 0),
        (150, 100, 2),  # 1.5 fen
        (-50, 100, -1),  # a reversal is the exact negative
        (-16_000, 300, -480),
        (12_345, 0, 0),
        (12_345, 10_000, 12_345),
        (0, 300, 0),
    ],
)
def test_commission_is_rounded_half_up_to_the_fen(price: int, rate_bp: int, commission: int) -> None:
    assert commission_fen(price, rate_bp=rate_bp) == commission


@given(price=st.integers(0, 10**9), rate_bp=st.integers(0, 10_000))
def test_commission_is_the_nearest_fen_with_halves_up(price: int, rate_bp: int) -> None:
    exact = Fraction(price * rate_bp, 10_000)
    commission = commission_fen(price, rate_bp=rate_bp)
    assert exact - Fraction(1, 2) < commission <= exact + Fraction(1, 2)
    assert commission_fen(-price, rate_bp=rate_bp) == -commission


@pytest.mark.parametrize("rate_bp", [-1, 10_001, True])
def test_bad_commission_rates_are_refused(rate_bp: int) -> None:
    with pytest.raises(ExpoError) as refused:
        commission_fen(16_000, rate_bp=rate_bp)
    assert refused.value.code == "commission_rate_invalid"
    with pytest.raises(ExpoError) as refused:
        CommissionRates(default_bp=rate_bp)
    assert refused.value.code == "commission_rate_invalid"
    with pytest.raises(ExpoError) as refused:
        CommissionRates(by_type={TicketType.EVENING: rate_bp})
    assert refused.value.code == "commission_rate_invalid"


@pytest.mark.parametrize("ticket_type", list(TicketType))
def test_commission_rates_default_and_override_per_type(ticket_type: TicketType) -> None:
    assert CommissionRates().rate_bp(ticket_type) == DEFAULT_COMMISSION_BP
    rates = CommissionRates(default_bp=250, by_type={TicketType.PASS_7: 150})
    assert rates.rate_bp(ticket_type) == (150 if ticket_type is TicketType.PASS_7 else 250)
    price = CATALOGUE[ticket_type].price_fen
    assert commission_fen(price, rate_bp=rates.rate_bp(ticket_type)) > 0


def test_commission_rates_cannot_change_afterwards() -> None:
    overrides = {TicketType.PEAK: 200}
    rates = CommissionRates(by_type=overrides)
    overrides[TicketType.PEAK] = 900
    assert rates.rate_bp(TicketType.PEAK) == 200
    with pytest.raises(TypeError):
        rates.by_type[TicketType.PEAK] = 900  # type: ignore[index]


@given(commission=amounts, home=provinces)
def test_the_commission_split_sums_to_the_commission(commission: int, home: str) -> None:
    parts = split_commission(commission, home_province=home)
    assert sum(parts.values()) == commission
    assert set(parts) <= {SHANGHAI, home}
    assert all(part != 0 for part in parts.values())


@given(commission=amounts, home=provinces)
def test_a_reversal_negates_the_commission_split_exactly(commission: int, home: str) -> None:
    parts = split_commission(commission, home_province=home)
    assert split_commission(-commission, home_province=home) == reversed_parts(parts)
    assert {party: part + parts[party] for party, part in reversed_parts(parts).items()} == dict.fromkeys(parts, 0)


@given(commission=st.integers(0, 10**12), home=provinces.filter(lambda code: code != SHANGHAI))
def test_shanghai_takes_fifteen_percent_rounded_half_up(commission: int, home: str) -> None:
    parts = split_commission(commission, home_province=home)
    shanghai = parts.get(SHANGHAI, 0)
    exact = Fraction(15 * commission, 100)
    assert exact - Fraction(1, 2) < shanghai <= exact + Fraction(1, 2)
    assert parts.get(home, 0) == commission - shanghai


@pytest.mark.parametrize(
    ("commission", "home", "parts"),
    [
        (480, "44", {"31": 72, "44": 408}),
        (10, "44", {"31": 2, "44": 8}),  # 1.5 : 8.5 fen, the half to Shanghai
        (1, "44", {"44": 1}),  # 0.15 : 0.85
        (-10, "44", {"31": -2, "44": -8}),
        (480, "31", {"31": 480}),  # Shanghai's own customers
        (0, "44", {}),
    ],
)
def test_commission_split_examples(commission: int, home: str, parts: dict[str, int]) -> None:
    assert split_commission(commission, home_province=home) == parts


def test_an_unknown_home_province_is_refused() -> None:
    with pytest.raises(ExpoError) as refused:
        split_commission(480, home_province="99")
    assert refused.value.code == "unknown_province"


# --- wallet fees -------------------------------------------------------------------------------------


@given(fee=amounts, channel=channels, user=provinces, merchant=provinces)
def test_the_wallet_fee_split_sums_to_the_fee(fee: int, channel: PaymentChannel, user: str, merchant: str) -> None:
    parts = split_wallet_fee(fee, channel=channel, user_province=user, merchant_province=merchant)
    assert sum(parts.values()) == fee
    assert set(parts) <= {user, merchant}  # the platform's part is 0
    assert PLATFORM not in parts
    assert split_wallet_fee(-fee, channel=channel, user_province=user, merchant_province=merchant) == reversed_parts(
        parts
    )


@given(fee=st.integers(0, 10**9), user=provinces, merchant=provinces)
def test_remote_fees_go_to_the_users_province(fee: int, user: str, merchant: str) -> None:
    for channel in (PaymentChannel.WEB, PaymentChannel.SMS):
        parts = split_wallet_fee(fee, channel=channel, user_province=user, merchant_province=merchant)
        assert parts == ({user: fee} if fee else {})


@given(fee=st.integers(0, 10**9), user=provinces, merchant=provinces)
def test_proximity_fees_split_seventy_thirty(fee: int, user: str, merchant: str) -> None:
    parts = split_wallet_fee(fee, channel=PaymentChannel.PROXIMITY, user_province=user, merchant_province=merchant)
    if user == merchant:
        assert parts == ({user: fee} if fee else {})
    else:
        assert abs(parts.get(user, 0) - Fraction(7 * fee, 10)) <= Fraction(1, 2)
        assert parts.get(merchant, 0) == fee - parts.get(user, 0)


def test_wallet_fee_split_examples() -> None:
    proximity = PaymentChannel.PROXIMITY
    assert split_wallet_fee(100, channel=proximity, user_province="44", merchant_province="31") == {"44": 70, "31": 30}
    assert split_wallet_fee(5, channel=proximity, user_province="44", merchant_province="31") == {"44": 4, "31": 1}
    assert split_wallet_fee(100, channel=proximity, user_province="31", merchant_province="31") == {"31": 100}
    assert split_wallet_fee(100, channel=PaymentChannel.SMS, user_province="44", merchant_province="31") == {"44": 100}
    with pytest.raises(ExpoError) as refused:
        split_wallet_fee(100, channel=proximity, user_province="44", merchant_province="00")
    assert refused.value.code == "unknown_province"


@st.composite
def fee_refunds(draw: st.DrawFn) -> tuple[int, list[int]]:
    """A fee and the pieces of it partial refunds give back, adding up to all of it."""
    fee = draw(st.integers(0, 10**6))
    cuts = sorted(draw(st.sets(st.integers(1, fee - 1), max_size=8))) if fee > 1 else []
    bounds = [0, *cuts, fee]
    return fee, [b - a for a, b in itertools.pairwise(bounds)]


@given(plan=fee_refunds(), channel=channels, user=provinces, merchant=provinces)
def test_partial_fee_refunds_reverse_the_split_exactly(
    plan: tuple[int, list[int]], channel: PaymentChannel, user: str, merchant: str
) -> None:
    fee, pieces = plan
    provinces_of = {"user_province": user, "merchant_province": merchant}
    original = split_wallet_fee(fee, channel=channel, **provinces_of)
    returned: dict[str, int] = {}
    refunded_before = 0
    for piece in pieces:
        back = split_wallet_fee_refund(
            fee_refunded_before=refunded_before, fee_refunding=piece, channel=channel, **provinces_of
        )
        assert sum(back.values()) == -piece
        for party, part in back.items():
            returned[party] = returned.get(party, 0) + part
        refunded_before += piece
    assert {party: part for party, part in returned.items() if part} == reversed_parts(original)


# --- proceeds and commission settlement --------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "sale_province", "lines"),
    [
        (PaymentMethod.CASH, "44", [Line("44", SHANGHAI, 16_000)]),  # a hall sale in Guangdong
        (PaymentMethod.BANK_CARD, "11", [Line("11", SHANGHAI, 16_000)]),
        (PaymentMethod.CASH, SHANGHAI, []),  # Shanghai's own hall: nothing to remit
        (PaymentMethod.WALLET, "44", [Line(PLATFORM, SHANGHAI, 16_000)]),
        (PaymentMethod.WALLET, SHANGHAI, [Line(PLATFORM, SHANGHAI, 16_000)]),
        (PaymentMethod.CREDIT_CARD, "32", [Line("32", SHANGHAI, 16_000)]),  # 12580 by credit card
        (PaymentMethod.COD, "32", [Line("32", SHANGHAI, 16_000)]),
        (PaymentMethod.ONLINE_BANKING, "65", [Line("65", SHANGHAI, 16_000)]),
        (PaymentMethod.ONLINE_BANKING, SHANGHAI, []),
    ],
)
def test_who_remits_a_tickets_proceeds(method: PaymentMethod, sale_province: str, lines: list[Line]) -> None:
    assert proceeds_remittances(16_000, method=method, sale_province=sale_province) == lines
    reversed_lines = [Line(line.payer, line.payee, -line.amount_fen) for line in lines]
    assert proceeds_remittances(-16_000, method=method, sale_province=sale_province) == reversed_lines


@given(price=amounts, method=st.sampled_from(list(PaymentMethod)), sale_province=provinces)
def test_proceeds_reach_shanghai_in_full(price: int, method: PaymentMethod, sale_province: str) -> None:
    lines = proceeds_remittances(price, method=method, sale_province=sale_province)
    assert all(line.payee == SHANGHAI and line.payer != SHANGHAI for line in lines)
    assert sum(line.amount_fen for line in lines) == (0 if sale_province == SHANGHAI and method != "wallet" else price)


def test_shanghai_remits_the_proceeds_in_full_to_the_bureau() -> None:
    assert bureau_proceeds_remittance(1_234_567) == [Line(SHANGHAI, BUREAU, 1_234_567)]
    assert bureau_proceeds_remittance(0) == []


def test_each_company_invoices_the_bureau_for_its_commission() -> None:
    assert commission_invoices(480, home_province="44") == [Invoice("31", BUREAU, 72), Invoice("44", BUREAU, 408)]
    assert commission_invoices(480, home_province=SHANGHAI) == [Invoice("31", BUREAU, 480)]


@given(commission=amounts, home=provinces)
def test_the_commission_flows_through_shanghai(commission: int, home: str) -> None:
    lines = commission_settlement(commission, home_province=home)
    parts = split_commission(commission, home_province=home)
    received: dict[str, int] = {}
    for line in lines:
        received[line.payer] = received.get(line.payer, 0) - line.amount_fen
        received[line.payee] = received.get(line.payee, 0) + line.amount_fen
    expected = {BUREAU: -commission, **parts} if commission else {}
    assert {party: net for party, net in received.items() if net} == expected
    invoiced = {invoice.issuer: invoice.amount_fen for invoice in commission_invoices(commission, home_province=home)}
    assert invoiced == parts


def reversed_parts(parts: dict[str, int]) -> dict[str, int]:
    """A reversal's parts: the same parties, the negative amounts."""
    return {party: -part for party, part in parts.items()}
