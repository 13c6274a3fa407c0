"""Mainland China's working days (工作日) over the settlement period, and the T+1 payout day of merchants.

Weekends are days off except the weekends the State Council moves work to (调休上班); its public holidays
are days off. The arrangements are the State Council's published ones for 2009, 2010 and 2011: 2009 for
the pre-sale months, 2010 for the Expo, 2011 for the refunds and settlement that run after it (see
`reconciliation.rules.Month`). A day outside these years is refused rather than guessed.
Pure: every answer depends only on the day asked about.
"""

from dataclasses import dataclass
from datetime import date, timedelta

from expo.errors import ExpoError

FIRST_MODELLED_DAY = date(2009, 1, 1)
LAST_MODELLED_DAY = date(2011, 12, 31)
_SATURDAY = 5


@dataclass(frozen=True)
class Holiday:
    """One public holiday of the State Council's arrangement: its days off and the weekends worked for it."""

    name: str
    first_day_off: date
    last_day_off: date
    weekends_worked: tuple[date, ...] = ()

    def days_off(self) -> list[date]:
        span = (self.last_day_off - self.first_day_off).days + 1
        return [self.first_day_off + timedelta(days=n) for n in range(span)]


HOLIDAYS: tuple[Holiday, ...] = (
    # 2009
    Holiday("New Year", date(2009, 1, 1), date(2009, 1, 3), (date(2009, 1, 4),)),
    Holiday("Spring Festival", date(2009, 1, 25), date(2009, 1, 31), (date(2009, 1, 24), date(2009, 2, 1))),
    Holiday("Qingming", date(2009, 4, 4), date(2009, 4, 6)),
    Holiday("Labour Day", date(2009, 5, 1), date(2009, 5, 3)),
    Holiday("Dragon Boat", date(2009, 5, 28), date(2009, 5, 30), (date(2009, 5, 31),)),
    Holiday("National Day, Mid-Autumn", date(2009, 10, 1), date(2009, 10, 8), (date(2009, 9, 27), date(2009, 10, 10))),
    # 2010
    Holiday("New Year", date(2010, 1, 1), date(2010, 1, 3)),
    Holiday("Spring Festival", date(2010, 2, 13), date(2010, 2, 19), (date(2010, 2, 20), date(2010, 2, 21))),
    Holiday("Qingming", date(2010, 4, 3), date(2010, 4, 5)),
    Holiday("Labour Day", date(2010, 5, 1), date(2010, 5, 3)),
    Holiday("Dragon Boat", date(2010, 6, 14), date(2010, 6, 16), (date(2010, 6, 12), date(2010, 6, 13))),
    Holiday("Mid-Autumn", date(2010, 9, 22), date(2010, 9, 24), (date(2010, 9, 19), date(2010, 9, 25))),
    Holiday("National Day", date(2010, 10, 1), date(2010, 10, 7), (date(2010, 9, 26), date(2010, 10, 9))),
    # 2011
    Holiday("New Year", date(2011, 1, 1), date(2011, 1, 3)),
    Holiday("Spring Festival", date(2011, 2, 2), date(2011, 2, 8), (date(2011, 1, 30), date(2011, 2, 12))),
    Holiday("Qingming", date(2011, 4, 3), date(2011, 4, 5), (date(2011, 4, 2),)),
    Holiday("Labour Day", date(2011, 4, 30), date(2011, 5, 2)),
    Holiday("Dragon Boat", date(2011, 6, 4), date(2011, 6, 6)),
    Holiday("Mid-Autumn", date(2011, 9, 10), date(2011, 9, 12)),
    Holiday("National Day", date(2011, 10, 1), date(2011, 10, 7), (date(2011, 10, 8), date(2011, 10, 9))),
    # The 2012 arrangement moves a working day onto Saturday 2011-12-31; its days off lie past the modelled years.
    Holiday("New Year", date(2012, 1, 1), date(2012, 1, 3), (date(2011, 12, 31),)),
)

DAYS_OFF: frozenset[date] = frozenset(day for holiday in HOLIDAYS for day in holiday.days_off())
WEEKENDS_WORKED: frozenset[date] = frozenset(day for holiday in HOLIDAYS for day in holiday.weekends_worked)


def is_modelled(day: date) -> bool:
    """Only the days of the years whose holiday arrangement is encoded here are known."""
    return FIRST_MODELLED_DAY <= day <= LAST_MODELLED_DAY


def check_modelled(day: date) -> date:
    """Refuse a day outside the modelled years: its holidays are not known, so its working days are not either."""
    if not is_modelled(day):
        raise ExpoError(
            "calendar_out_of_range",
            f"working days are known from {FIRST_MODELLED_DAY} to {LAST_MODELLED_DAY}, not on {day}",
            first_day=FIRST_MODELLED_DAY.isoformat(),
            last_day=LAST_MODELLED_DAY.isoformat(),
        )
    return day


def is_working_day(day: date) -> bool:
    """A working day is a weekday that is not a holiday's day off, or a weekend the arrangement makes worked."""
    check_modelled(day)
    if day in WEEKENDS_WORKED:
        return True
    return day.weekday() < _SATURDAY and day not in DAYS_OFF


def next_working_day(day: date) -> date:
    """The first working day strictly after `day`; refused when it would fall outside the modelled years."""
    check_modelled(day)
    candidate = day + timedelta(days=1)
    while is_modelled(candidate):
        if is_working_day(candidate):
            return candidate
        candidate += timedelta(days=1)
    return check_modelled(candidate)  # past the last modelled day: refused


def payout_day(trade_day: date) -> date:
    """Merchants are paid T+1: a trade on any day, working or not, is paid on the first working day after it."""
    return next_working_day(trade_day)
