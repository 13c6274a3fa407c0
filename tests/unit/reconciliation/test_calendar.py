"""Working days of the settlement period and the T+1 payout day."""

from datetime import date, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from expo.errors import ExpoError
from reconciliation.calendar import (
    DAYS_OFF,
    FIRST_MODELLED_DAY,
    HOLIDAYS,
    LAST_MODELLED_DAY,
    WEEKENDS_WORKED,
    is_working_day,
    next_working_day,
    payout_day,
)


def _span(first: date, last: date) -> list[date]:
    return [first + timedelta(days=n) for n in range((last - first).days + 1)]


# The State Council's 2010 arrangement, day by day.
DAYS_OFF_2010 = [
    *_span(date(2010, 1, 1), date(2010, 1, 3)),
    *_span(date(2010, 2, 13), date(2010, 2, 19)),
    *_span(date(2010, 4, 3), date(2010, 4, 5)),
    *_span(date(2010, 5, 1), date(2010, 5, 3)),
    *_span(date(2010, 6, 14), date(2010, 6, 16)),
    *_span(date(2010, 9, 22), date(2010, 9, 24)),
    *_span(date(2010, 10, 1), date(2010, 10, 7)),
]
WEEKENDS_WORKED_2010 = [
    date(2010, 2, 20),
    date(2010, 2, 21),
    date(2010, 6, 12),
    date(2010, 6, 13),
    date(2010, 9, 19),
    date(2010, 9, 25),
    date(2010, 9, 26),
    date(2010, 10, 9),
]


@pytest.mark.parametrize("day", DAYS_OFF_2010, ids=str)
def test_the_2010_holidays_are_days_off(day: date) -> None:
    assert not is_working_day(day)


@pytest.mark.parametrize("day", WEEKENDS_WORKED_2010, ids=str)
def test_the_2010_adjusted_weekends_are_worked(day: date) -> None:
    assert day.weekday() >= 5
    assert is_working_day(day)


@pytest.mark.parametrize(
    ("day", "working"),
    [
        (date(2010, 1, 4), True),  # Monday after New Year
        (date(2010, 2, 12), True),  # Friday before Spring Festival
        (date(2010, 2, 22), True),  # Monday after the worked weekend
        (date(2010, 2, 27), False),  # an ordinary Saturday again
        (date(2010, 4, 2), True),  # Friday before Qingming
        (date(2010, 4, 6), True),
        (date(2010, 4, 30), True),
        (date(2010, 5, 4), True),
        (date(2010, 6, 11), True),  # Friday before the worked weekend of Dragon Boat
        (date(2010, 6, 17), True),
        (date(2010, 6, 19), False),
        (date(2010, 9, 18), False),  # the Saturday before the worked Sunday 19 Sep
        (date(2010, 9, 21), True),
        (date(2010, 9, 27), True),
        (date(2010, 9, 30), True),
        (date(2010, 10, 8), True),  # Friday after National Day, before the worked Saturday
        (date(2010, 10, 10), False),  # the Sunday after the worked Saturday
        (date(2010, 10, 16), False),  # the busiest Expo day was a Saturday
        (date(2010, 12, 31), True),
    ],
    ids=str,
)
def test_days_around_the_2010_holidays(day: date, working: bool) -> None:
    assert is_working_day(day) is working


def test_2010_has_the_expected_number_of_working_days() -> None:
    days = _span(date(2010, 1, 1), date(2010, 12, 31))
    weekdays = sum(1 for day in days if day.weekday() < 5)
    weekdays_off = sum(1 for day in DAYS_OFF_2010 if day.weekday() < 5)
    assert sum(1 for day in days if is_working_day(day)) == weekdays - weekdays_off + len(WEEKENDS_WORKED_2010)
    assert sum(1 for day in days if is_working_day(day)) == 250  # 261 weekdays, 19 of them off, 8 weekend days worked


def test_the_tables_are_consistent() -> None:
    assert not DAYS_OFF & WEEKENDS_WORKED
    assert all(day.weekday() >= 5 for day in WEEKENDS_WORKED)
    for holiday in HOLIDAYS:
        assert holiday.first_day_off <= holiday.last_day_off
        assert all(abs((worked - holiday.first_day_off).days) <= 14 for worked in holiday.weekends_worked)


@pytest.mark.parametrize(
    ("trade_day", "paid"),
    [
        (date(2010, 9, 29), date(2010, 9, 30)),  # Wednesday -> Thursday
        (date(2010, 9, 30), date(2010, 10, 8)),  # over the National Day week
        *[(day, date(2010, 10, 8)) for day in _span(date(2010, 10, 1), date(2010, 10, 7))],
        (date(2010, 10, 8), date(2010, 10, 9)),  # Friday -> the worked Saturday
        (date(2010, 10, 9), date(2010, 10, 11)),  # worked Saturday -> Monday
        (date(2010, 9, 25), date(2010, 9, 26)),  # worked Saturday -> worked Sunday
        (date(2010, 9, 18), date(2010, 9, 19)),  # Saturday off -> the worked Sunday
        (date(2010, 9, 21), date(2010, 9, 25)),  # over Mid-Autumn
        (date(2010, 2, 12), date(2010, 2, 20)),  # over Spring Festival, to the worked Saturday
        *[(day, date(2010, 2, 20)) for day in _span(date(2010, 2, 13), date(2010, 2, 19))],
        (date(2010, 2, 21), date(2010, 2, 22)),
        (date(2010, 6, 11), date(2010, 6, 12)),  # Friday -> the worked Saturday before Dragon Boat
        (date(2010, 6, 13), date(2010, 6, 17)),  # over Dragon Boat
        (date(2010, 4, 2), date(2010, 4, 6)),  # over Qingming
        (date(2010, 4, 30), date(2010, 5, 4)),  # over May Day, the Expo's opening
        (date(2009, 12, 31), date(2010, 1, 4)),  # over New Year, across the years
        (date(2010, 12, 31), date(2011, 1, 4)),
        (date(2010, 10, 31), date(2010, 11, 1)),  # the Expo's last day, a Sunday
    ],
    ids=str,
)
def test_merchants_are_paid_on_the_next_working_day(trade_day: date, paid: date) -> None:
    assert payout_day(trade_day) == paid


@given(day=st.dates(FIRST_MODELLED_DAY, LAST_MODELLED_DAY - timedelta(days=14)))
def test_the_payout_day_is_the_first_working_day_strictly_after(day: date) -> None:
    paid = payout_day(day)
    assert paid > day
    assert is_working_day(paid)
    assert not any(is_working_day(between) for between in _span(day + timedelta(days=1), paid - timedelta(days=1)))
    assert next_working_day(day) == paid


@pytest.mark.parametrize("day", [date(2008, 12, 31), date(2012, 1, 1), date(2020, 6, 1)], ids=str)
def test_days_outside_the_modelled_years_are_refused(day: date) -> None:
    for ask in (is_working_day, next_working_day, payout_day):
        with pytest.raises(ExpoError) as refused:
            ask(day)
        assert refused.value.code == "calendar_out_of_range"


def test_a_payout_past_the_last_modelled_day_is_refused() -> None:
    assert next_working_day(date(2011, 12, 30)) == date(2011, 12, 31)  # worked for the 2012 New Year
    with pytest.raises(ExpoError) as refused:
        payout_day(LAST_MODELLED_DAY)
    assert refused.value.code == "calendar_out_of_range"
