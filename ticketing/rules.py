"""The Expo's ticket catalogue and validity rules: what may be sold, upgraded and let in, and when.

Pure: used by the sales service online and by gates and handheld check terminals offline, so every
decision here must depend only on its arguments. Dates are Expo-local (Asia/Shanghai) calendar days.
"""

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from enum import StrEnum
from types import MappingProxyType

from expo.clock import expo_local
from expo.errors import ExpoError
from expo.money import yuan

EXPO_FIRST_DAY = date(2010, 5, 1)
EXPO_LAST_DAY = date(2010, 10, 31)
UPGRADE_FIRST_DAY = date(2010, 10, 1)
UPGRADE_PRICE_FEN = yuan(40)
EVENING_ENTRY_FROM = time(17, 0)


def _day_span(first: date, last: date) -> list[date]:
    return [first + timedelta(days=n) for n in range((last - first).days + 1)]


# The designated days of the 2010 Expo: May Day holiday, National Day week and the closing week.
PEAK_DAYS: frozenset[date] = frozenset(
    _day_span(date(2010, 5, 1), date(2010, 5, 3))
    + _day_span(date(2010, 10, 1), date(2010, 10, 7))
    + _day_span(date(2010, 10, 25), EXPO_LAST_DAY)
)


class TicketType(StrEnum):
    """The Expo's ticket types; the value is the stable code used in the API and on the card."""

    STANDARD = "standard"
    STANDARD_CONCESSION = "standard_concession"
    PEAK = "peak"
    PEAK_CONCESSION = "peak_concession"
    EVENING = "evening"
    PASS_3 = "pass_3"  # noqa: S105 - a ticket type code, not a password
    PASS_7 = "pass_7"  # noqa: S105 - a ticket type code, not a password


@dataclass(frozen=True)
class TicketKind:
    """One catalogue entry: price and the facts the validity rules need."""

    ticket_type: TicketType
    name: str
    name_zh: str
    price_fen: int
    concession: bool  # ID checked at purchase and at entry
    dated: bool  # sold for one peak date and consumes that day's capacity
    entries_allowed: int
    evening: bool


def _kind(
    ticket_type: TicketType,
    name: str,
    name_zh: str,
    *,
    price_yuan: int,
    concession: bool = False,
    dated: bool = False,
    entries_allowed: int = 1,
    evening: bool = False,
) -> TicketKind:
    return TicketKind(
        ticket_type=ticket_type,
        name=name,
        name_zh=name_zh,
        price_fen=yuan(price_yuan),
        concession=concession,
        dated=dated,
        entries_allowed=entries_allowed,
        evening=evening,
    )


CATALOGUE: Mapping[TicketType, TicketKind] = MappingProxyType(
    {
        k.ticket_type: k
        for k in (
            _kind(TicketType.STANDARD, "Standard day", "平日普通票", price_yuan=160),
            _kind(
                TicketType.STANDARD_CONCESSION,
                "Standard day concession",
                "平日优惠票",
                price_yuan=100,
                concession=True,
            ),
            _kind(TicketType.PEAK, "Peak day", "指定日普通票", price_yuan=200, dated=True),
            _kind(
                TicketType.PEAK_CONCESSION,
                "Peak day concession",
                "指定日优惠票",
                price_yuan=120,
                concession=True,
                dated=True,
            ),
            _kind(TicketType.EVENING, "Evening", "夜票", price_yuan=90, evening=True),
            _kind(TicketType.PASS_3, "3-visit pass", "3次票", price_yuan=400, entries_allowed=3),
            _kind(TicketType.PASS_7, "7-visit pass", "7次票", price_yuan=900, entries_allowed=7),
        )
    }
)

# Which ticket field, if any, names the one peak day a ticket may also be used on.
_STANDARD_TYPES = frozenset({TicketType.STANDARD, TicketType.STANDARD_CONCESSION})
_PEAK_TYPES = frozenset({TicketType.PEAK, TicketType.PEAK_CONCESSION})


def ticket_kind(code: str) -> TicketKind:
    """The catalogue entry for a ticket type code; unknown codes are refused."""
    try:
        return CATALOGUE[TicketType(code)]
    except ValueError:
        raise ExpoError("unknown_ticket_type", f"no ticket type {code!r}") from None


def is_expo_day(day: date) -> bool:
    """The Expo is open 2010-05-01 to 2010-10-31 inclusive."""
    return EXPO_FIRST_DAY <= day <= EXPO_LAST_DAY


def is_peak_day(day: date) -> bool:
    """A peak (designated) day is one of the 17 listed in PEAK_DAYS; all other Expo days are standard."""
    return day in PEAK_DAYS


def expo_days() -> list[date]:
    """All 184 Expo days in calendar order."""
    return _day_span(EXPO_FIRST_DAY, EXPO_LAST_DAY)


def check_sale(*, kind: TicketKind, visit_day: date | None, today: date) -> None:
    """Refuse a sale that breaks the catalogue rules; pre-sales before opening are allowed.

    Order: sales_closed, visit_day_required / visit_day_not_allowed, outside_expo, not_a_peak_day,
    day_passed. Capacity of the peak day is the sales service's business, not checked here.
    """
    if today > EXPO_LAST_DAY:
        raise ExpoError("sales_closed", "ticket sales ended with the Expo on 2010-10-31")
    if not kind.dated:
        if visit_day is not None:
            raise ExpoError("visit_day_not_allowed", f"{kind.ticket_type} tickets are not sold for a date")
        return
    if visit_day is None:
        raise ExpoError("visit_day_required", f"{kind.ticket_type} tickets are sold for one peak day")
    _check_peak_day(visit_day)
    _check_not_passed(day=visit_day, today=today)


def check_upgrade(*, kind: TicketKind, upgrade_day: date, today: date) -> None:
    """Only a standard ticket may be upgraded (+40 yuan) for one peak day from October, not in the past.

    Order: upgrade_not_allowed, outside_expo, not_a_peak_day, upgrade_not_yet_offered, day_passed.
    """
    if kind.ticket_type is not TicketType.STANDARD:
        raise ExpoError("upgrade_not_allowed", f"{kind.ticket_type} tickets cannot be upgraded")
    _check_peak_day(upgrade_day)
    if upgrade_day < UPGRADE_FIRST_DAY:
        raise ExpoError("upgrade_not_yet_offered", "peak-day upgrades are offered for peak days from 2010-10-01")
    _check_not_passed(day=upgrade_day, today=today)


def _check_peak_day(day: date) -> None:
    if not is_expo_day(day):
        raise ExpoError("outside_expo", f"{day} is not an Expo day")
    if not is_peak_day(day):
        raise ExpoError("not_a_peak_day", f"{day} is not a peak day")


def _check_not_passed(*, day: date, today: date) -> None:
    if day < today:
        raise ExpoError("day_passed", f"{day} has already passed")


@dataclass(frozen=True)
class TicketUse:
    """What a gate knows of a ticket: its type, its peak day (if any) and its entries so far."""

    ticket_type: TicketType
    visit_day: date | None  # the peak date of a dated ticket
    upgrade_day: date | None  # the peak day a standard ticket was upgraded for
    entries_used: int
    last_entry_day: date | None


@dataclass(frozen=True)
class EntryDecision:
    """A gate's answer: admit or not, the reason code ("ok" when admitted), and whether to check ID."""

    admit: bool
    code: str
    check_id: bool


def decide_entry(*, use: TicketUse, at: datetime) -> EntryDecision:
    """Admit a ticket at an aware instant, judged on the Expo-local (Asia/Shanghai) day and time.

    Refusals in order: outside_expo; then the ticket's entries (single-day: already_used;
    passes: no_entries_left, already_entered_today); then the day (peak_day_not_valid unless the
    peak day is the ticket's own visit or upgrade day); then the hour (evening_not_yet before 17:00).
    Concession tickets set check_id on every decision, so staff check the ID whatever the gate says.
    """
    if at.tzinfo is None or at.utcoffset() is None:
        raise ValueError("decide_entry needs an aware datetime")
    local = expo_local(at)
    day = local.date()
    kind = CATALOGUE[use.ticket_type]
    code = _refusal(use=use, kind=kind, day=day, clock=local.time())
    return EntryDecision(admit=code is None, code=code or "ok", check_id=kind.concession)


def _refusal(*, use: TicketUse, kind: TicketKind, day: date, clock: time) -> str | None:
    if not is_expo_day(day):
        return "outside_expo"
    if kind.entries_allowed == 1:
        # Single-day tickets: one entry, no re-entry even on the same day. A recorded entry day counts
        # as used even if the count says otherwise: a gate refuses when its facts disagree.
        if use.entries_used >= 1 or use.last_entry_day is not None:
            return "already_used"
    else:
        if use.entries_used >= kind.entries_allowed:
            return "no_entries_left"
        if use.last_entry_day == day:
            return "already_entered_today"
    if is_peak_day(day) and day != _own_peak_day(use):
        return "peak_day_not_valid"
    if kind.evening and clock < EVENING_ENTRY_FROM:
        return "evening_not_yet"
    return None


def _own_peak_day(use: TicketUse) -> date | None:
    if use.ticket_type in _STANDARD_TYPES:
        return use.upgrade_day
    if use.ticket_type in _PEAK_TYPES:
        return use.visit_day
    return None  # evening tickets and passes are never valid on a peak day
