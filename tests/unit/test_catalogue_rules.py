"""The ticket catalogue, the Expo calendar, and the rules of selling and upgrading tickets."""

from datetime import date, time, timedelta
from itertools import pairwise

import pytest

from expo.errors import ExpoError
from ticketing.rules import (
    CATALOGUE,
    EVENING_ENTRY_FROM,
    EXPO_FIRST_DAY,
    EXPO_LAST_DAY,
    PEAK_DAYS,
    UPGRADE_FIRST_DAY,
    UPGRADE_PRICE_FEN,
    TicketType,
    check_sale,
    check_upgrade,
    expo_days,
    is_expo_day,
    is_peak_day,
    ticket_kind,
)

T = TicketType
ALL_TYPES = list(TicketType)


# --- catalogue -------------------------------------------------------------------------------

PRICES_FEN = {
    T.STANDARD: 16000,
    T.STANDARD_CONCESSION: 10000,
    T.PEAK: 20000,
    T.PEAK_CONCESSION: 12000,
    T.EVENING: 9000,
    T.PASS_3: 40000,
    T.PASS_7: 90000,
}


@pytest.mark.parametrize("ticket_type", ALL_TYPES)
def test_price_in_fen(ticket_type: TicketType) -> None:
    assert ticket_kind(ticket_type.value).price_fen == PRICES_FEN[ticket_type]


@pytest.mark.parametrize(
    ("ticket_type", "concession", "dated", "entries", "evening"),
    [
        (T.STANDARD, False, False, 1, False),
        (T.STANDARD_CONCESSION, True, False, 1, False),
        (T.PEAK, False, True, 1, False),
        (T.PEAK_CONCESSION, True, True, 1, False),
        (T.EVENING, False, False, 1, True),
        (T.PASS_3, False, False, 3, False),
        (T.PASS_7, False, False, 7, False),
    ],
)
def test_kind_facts(ticket_type: TicketType, concession: bool, dated: bool, entries: int, evening: bool) -> None:
    kind = CATALOGUE[ticket_type]
    assert kind.ticket_type is ticket_type
    assert (kind.concession, kind.dated, kind.entries_allowed, kind.evening) == (
        concession,
        dated,
        entries,
        evening,
    )
    assert kind.name
    assert kind.name_zh


def test_catalogue_names() -> None:
    assert CATALOGUE[T.STANDARD].name == "Standard day"
    assert CATALOGUE[T.STANDARD].name_zh == "平日普通票"
    assert len(CATALOGUE) == 7


def test_unknown_ticket_type() -> None:
    with pytest.raises(ExpoError) as caught:
        ticket_kind("vip")
    assert caught.value.code == "unknown_ticket_type"


def test_upgrade_constants() -> None:
    assert (
        4000,
        date(2010, 10, 1),
        time(17, 0),
    ) == (UPGRADE_PRICE_FEN, UPGRADE_FIRST_DAY, EVENING_ENTRY_FROM)


# --- calendar --------------------------------------------------------------------------------


def test_expo_days() -> None:
    days = expo_days()
    assert len(days) == 184
    assert days[0] == EXPO_FIRST_DAY == date(2010, 5, 1)
    assert days[-1] == EXPO_LAST_DAY == date(2010, 10, 31)
    assert all(b - a == timedelta(days=1) for a, b in pairwise(days))


def test_peak_days() -> None:
    assert len(PEAK_DAYS) == 17
    assert sum(1 for d in expo_days() if not is_peak_day(d)) == 167
    may = {date(2010, 5, d) for d in (1, 2, 3)}
    national_day = {date(2010, 10, d) for d in range(1, 8)}
    closing = {date(2010, 10, d) for d in range(25, 32)}
    assert may | national_day | closing == PEAK_DAYS


@pytest.mark.parametrize(
    ("day", "expo", "peak"),
    [
        (date(2010, 4, 30), False, False),
        (date(2010, 5, 1), True, True),
        (date(2010, 5, 4), True, False),
        (date(2010, 10, 16), True, False),
        (date(2010, 10, 31), True, True),
        (date(2010, 11, 1), False, False),
    ],
)
def test_day_predicates(day: date, expo: bool, peak: bool) -> None:
    assert (is_expo_day(day), is_peak_day(day)) == (expo, peak)


# --- sales -----------------------------------------------------------------------------------

UNDATED = [t for t in T if not CATALOGUE[t].dated]
DATED = [T.PEAK, T.PEAK_CONCESSION]


@pytest.mark.parametrize("ticket_type", UNDATED)
@pytest.mark.parametrize("today", [date(2010, 1, 15), date(2010, 5, 1), date(2010, 10, 31)])
def test_undated_sale_allowed_until_the_last_day(ticket_type: TicketType, today: date) -> None:
    check_sale(kind=CATALOGUE[ticket_type], visit_day=None, today=today)


@pytest.mark.parametrize("ticket_type", DATED)
@pytest.mark.parametrize(
    ("visit_day", "today"),
    [
        (date(2010, 5, 1), date(2010, 1, 15)),  # pre-sale
        (date(2010, 10, 1), date(2010, 10, 1)),  # same day
        (date(2010, 10, 31), date(2010, 10, 30)),
    ],
)
def test_dated_sale_allowed(ticket_type: TicketType, visit_day: date, today: date) -> None:
    check_sale(kind=CATALOGUE[ticket_type], visit_day=visit_day, today=today)


@pytest.mark.parametrize(
    ("ticket_type", "visit_day", "today", "code"),
    [
        (T.STANDARD, None, date(2010, 11, 1), "sales_closed"),
        (T.PEAK, date(2010, 10, 31), date(2010, 11, 1), "sales_closed"),
        (T.STANDARD, date(2010, 6, 15), date(2010, 6, 1), "visit_day_not_allowed"),
        (T.PASS_3, date(2010, 10, 1), date(2010, 6, 1), "visit_day_not_allowed"),
        (T.PEAK, None, date(2010, 6, 1), "visit_day_required"),
        (T.PEAK_CONCESSION, None, date(2010, 6, 1), "visit_day_required"),
        (T.PEAK, date(2010, 6, 15), date(2010, 6, 1), "not_a_peak_day"),
        (T.PEAK, date(2011, 5, 1), date(2010, 6, 1), "outside_expo"),
        (T.PEAK_CONCESSION, date(2010, 4, 30), date(2010, 4, 1), "outside_expo"),
        (T.PEAK, date(2010, 5, 1), date(2010, 5, 2), "day_passed"),
    ],
)
def test_sale_refusals(ticket_type: TicketType, visit_day: date | None, today: date, code: str) -> None:
    with pytest.raises(ExpoError) as caught:
        check_sale(kind=CATALOGUE[ticket_type], visit_day=visit_day, today=today)
    assert caught.value.code == code
    assert caught.value.status == 422


# --- October upgrade -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("upgrade_day", "today"),
    [
        (date(2010, 10, 1), date(2010, 9, 20)),
        (date(2010, 10, 7), date(2010, 10, 7)),
        (date(2010, 10, 31), date(2010, 10, 26)),
    ],
)
def test_upgrade_allowed(upgrade_day: date, today: date) -> None:
    check_upgrade(kind=CATALOGUE[T.STANDARD], upgrade_day=upgrade_day, today=today)


@pytest.mark.parametrize("ticket_type", [t for t in T if t is not T.STANDARD])
def test_upgrade_only_for_standard(ticket_type: TicketType) -> None:
    with pytest.raises(ExpoError) as caught:
        check_upgrade(kind=CATALOGUE[ticket_type], upgrade_day=date(2010, 10, 2), today=date(2010, 10, 1))
    assert caught.value.code == "upgrade_not_allowed"


@pytest.mark.parametrize(
    ("upgrade_day", "today", "code"),
    [
        (date(2010, 5, 1), date(2010, 4, 1), "upgrade_not_yet_offered"),
        (date(2010, 5, 3), date(2010, 10, 1), "upgrade_not_yet_offered"),
        (date(2010, 10, 16), date(2010, 10, 1), "not_a_peak_day"),
        (date(2010, 11, 1), date(2010, 10, 1), "outside_expo"),
        (date(2010, 10, 2), date(2010, 10, 3), "day_passed"),
    ],
)
def test_upgrade_refusals(upgrade_day: date, today: date, code: str) -> None:
    with pytest.raises(ExpoError) as caught:
        check_upgrade(kind=CATALOGUE[T.STANDARD], upgrade_day=upgrade_day, today=today)
    assert caught.value.code == code
