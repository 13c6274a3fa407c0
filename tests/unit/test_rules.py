"""Entry rules of the Expo tickets, over every ticket type and the telling days and hours."""

from datetime import UTC, date, datetime, time, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ticketing.rules import (
    CATALOGUE,
    EntryDecision,
    TicketType,
    TicketUse,
    decide_entry,
    is_expo_day,
    is_peak_day,
)

SHANGHAI = ZoneInfo("Asia/Shanghai")
T = TicketType
ALL_TYPES = list(TicketType)
SINGLE_DAY_TYPES = [t for t in T if t not in (T.PASS_3, T.PASS_7)]
CONCESSIONS = {T.STANDARD_CONCESSION, T.PEAK_CONCESSION}
PEAK_VISIT_DAY = date(2010, 10, 1)
PEAK_CONCESSION_VISIT_DAY = date(2010, 5, 2)


def local(day: date, at: time = time(18, 0)) -> datetime:
    return datetime.combine(day, at, tzinfo=SHANGHAI)


def fresh(ticket_type: TicketType, *, upgrade_day: date | None = None) -> TicketUse:
    visit_day = {T.PEAK: PEAK_VISIT_DAY, T.PEAK_CONCESSION: PEAK_CONCESSION_VISIT_DAY}.get(ticket_type)
    return TicketUse(
        ticket_type=ticket_type,
        visit_day=visit_day,
        upgrade_day=upgrade_day,
        entries_used=0,
        last_entry_day=None,
    )


# Entry at 18:00 local with an unused ticket; the peak ticket is for 10-01, the peak concession for 05-02.
# ok = admitted, pk = peak_day_not_valid, out = outside_expo.
ENTRY_GRID = """
day          standard std_conc peak peak_conc evening pass_3 pass_7
2010-04-30   out      out      out  out       out     out    out
2010-05-01   pk       pk       pk   pk        pk      pk     pk
2010-05-02   pk       pk       pk   ok        pk      pk     pk
2010-05-03   pk       pk       pk   pk        pk      pk     pk
2010-05-04   ok       ok       ok   ok        ok      ok     ok
2010-06-15   ok       ok       ok   ok        ok      ok     ok
2010-09-30   ok       ok       ok   ok        ok      ok     ok
2010-10-01   pk       pk       ok   pk        pk      pk     pk
2010-10-07   pk       pk       pk   pk        pk      pk     pk
2010-10-08   ok       ok       ok   ok        ok      ok     ok
2010-10-16   ok       ok       ok   ok        ok      ok     ok
2010-10-24   ok       ok       ok   ok        ok      ok     ok
2010-10-25   pk       pk       pk   pk        pk      pk     pk
2010-10-31   pk       pk       pk   pk        pk      pk     pk
2010-11-01   out      out      out  out       out     out    out
2011-05-01   out      out      out  out       out     out    out
"""
_COLUMNS = [T.STANDARD, T.STANDARD_CONCESSION, T.PEAK, T.PEAK_CONCESSION, T.EVENING, T.PASS_3, T.PASS_7]
_CODES = {"ok": "ok", "pk": "peak_day_not_valid", "out": "outside_expo"}
ENTRY_CASES = [
    pytest.param(ticket_type, date.fromisoformat(cells[0]), _CODES[code], id=f"{ticket_type}-{cells[0]}")
    for cells in (line.split() for line in ENTRY_GRID.strip().splitlines()[1:])
    for ticket_type, code in zip(_COLUMNS, cells[1:], strict=True)
]


@pytest.mark.parametrize(("ticket_type", "day", "code"), ENTRY_CASES)
def test_entry_grid(ticket_type: TicketType, day: date, code: str) -> None:
    decision = decide_entry(use=fresh(ticket_type), at=local(day))
    assert decision == EntryDecision(admit=code == "ok", code=code, check_id=ticket_type in CONCESSIONS)


@pytest.mark.parametrize("ticket_type", [T.STANDARD, T.STANDARD_CONCESSION])
@pytest.mark.parametrize(
    ("day", "code"),
    [
        (date(2010, 10, 1), "ok"),  # the upgrade day
        (date(2010, 10, 2), "peak_day_not_valid"),  # another peak day
        (date(2010, 10, 16), "ok"),  # a standard day stays valid
    ],
)
def test_upgraded_standard_entry(ticket_type: TicketType, day: date, code: str) -> None:
    use = fresh(ticket_type, upgrade_day=date(2010, 10, 1))
    assert decide_entry(use=use, at=local(day, time(10, 0))).code == code


# --- time of day and time zone ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("at", "code"),
    [
        (local(date(2010, 6, 15), time(16, 59, 59)), "evening_not_yet"),
        (local(date(2010, 6, 15), time(17, 0)), "ok"),
        (local(date(2010, 6, 15), time(23, 59)), "ok"),
        (local(date(2010, 6, 15), time(9, 0)), "evening_not_yet"),
        (datetime(2010, 6, 15, 8, 59, 59, tzinfo=UTC), "evening_not_yet"),  # 16:59:59 in Shanghai
        (datetime(2010, 6, 15, 9, 0, tzinfo=UTC), "ok"),  # 17:00 in Shanghai
        (datetime(2010, 6, 15, 17, 0, tzinfo=timezone(timedelta(hours=8))), "ok"),
        (local(date(2010, 10, 1), time(18, 0)), "peak_day_not_valid"),
    ],
)
def test_evening_entry(at: datetime, code: str) -> None:
    assert decide_entry(use=fresh(T.EVENING), at=at).code == code


@pytest.mark.parametrize("ticket_type", [t for t in T if t is not T.EVENING])
def test_daytime_tickets_enter_in_the_morning(ticket_type: TicketType) -> None:
    assert decide_entry(use=fresh(ticket_type), at=local(date(2010, 6, 15), time(9, 0))).admit


@pytest.mark.parametrize("ticket_type", ALL_TYPES)
def test_utc_evening_of_the_last_day_is_already_after_the_expo(ticket_type: TicketType) -> None:
    at = datetime(2010, 10, 31, 16, 30, tzinfo=UTC)  # 2010-11-01 00:30 in Shanghai
    assert decide_entry(use=fresh(ticket_type), at=at).code == "outside_expo"


def test_utc_day_before_opening_is_already_the_first_day() -> None:
    at = datetime(2010, 4, 30, 16, 30, tzinfo=UTC)  # 2010-05-01 00:30 in Shanghai, a peak day
    use = TicketUse(
        ticket_type=T.PEAK, visit_day=date(2010, 5, 1), upgrade_day=None, entries_used=0, last_entry_day=None
    )
    assert decide_entry(use=use, at=at).code == "ok"
    assert decide_entry(use=fresh(T.STANDARD), at=at).code == "peak_day_not_valid"


def test_utc_standard_day_turns_into_a_peak_day() -> None:
    at = datetime(2010, 9, 30, 20, 0, tzinfo=UTC)  # 2010-10-01 04:00 in Shanghai
    assert decide_entry(use=fresh(T.STANDARD), at=at).code == "peak_day_not_valid"
    assert decide_entry(use=fresh(T.PEAK), at=at).code == "ok"


def test_naive_datetime_refused() -> None:
    with pytest.raises(ValueError, match="aware"):
        decide_entry(use=fresh(T.STANDARD), at=datetime(2010, 6, 15, 10, 0))


# --- entries ---------------------------------------------------------------------------------


@pytest.mark.parametrize("ticket_type", SINGLE_DAY_TYPES)
@pytest.mark.parametrize("day", [date(2010, 6, 15), date(2010, 6, 16)])
def test_single_day_ticket_no_reentry(ticket_type: TicketType, day: date) -> None:
    use = TicketUse(
        ticket_type=ticket_type,
        visit_day=fresh(ticket_type).visit_day,
        upgrade_day=None,
        entries_used=1,
        last_entry_day=date(2010, 6, 15),
    )
    decision = decide_entry(use=use, at=local(day))
    assert (decision.admit, decision.code) == (False, "already_used")


@pytest.mark.parametrize(
    ("ticket_type", "entries_used", "last_entry_day", "code"),
    [
        (T.PASS_3, 1, date(2010, 6, 14), "ok"),
        (T.PASS_3, 2, date(2010, 6, 14), "ok"),  # the third entry
        (T.PASS_3, 3, date(2010, 6, 14), "no_entries_left"),  # a fourth
        (T.PASS_3, 1, date(2010, 6, 15), "already_entered_today"),
        (T.PASS_7, 6, date(2010, 6, 1), "ok"),  # the seventh entry
        (T.PASS_7, 7, date(2010, 6, 1), "no_entries_left"),
        (T.PASS_7, 3, date(2010, 6, 15), "already_entered_today"),
    ],
)
def test_pass_entries(ticket_type: TicketType, entries_used: int, last_entry_day: date, code: str) -> None:
    use = TicketUse(
        ticket_type=ticket_type,
        visit_day=None,
        upgrade_day=None,
        entries_used=entries_used,
        last_entry_day=last_entry_day,
    )
    decision = decide_entry(use=use, at=local(date(2010, 6, 15), time(10, 0)))
    assert (decision.admit, decision.code) == (code == "ok", code)


@pytest.mark.parametrize("ticket_type", [T.STANDARD_CONCESSION, T.PEAK_CONCESSION])
def test_concession_checks_id_on_refusal_too(ticket_type: TicketType) -> None:
    refused = decide_entry(use=fresh(ticket_type), at=local(date(2010, 10, 31)))
    admitted = decide_entry(use=fresh(ticket_type), at=local(date(2010, 6, 15)))
    assert (refused.admit, refused.check_id) == (False, True)
    assert (admitted.admit, admitted.check_id) == (True, True)


# --- properties ------------------------------------------------------------------------------

instants = st.datetimes(min_value=datetime(2010, 4, 25), max_value=datetime(2010, 11, 5), timezones=st.just(UTC))
days = st.dates(min_value=date(2010, 4, 25), max_value=date(2010, 11, 5))


@given(
    ticket_type=st.sampled_from(SINGLE_DAY_TYPES),
    entries_used=st.integers(min_value=1, max_value=10),
    visit_day=st.none() | days,
    upgrade_day=st.none() | days,
    last_entry_day=st.none() | days,
    at=instants,
)
def test_used_single_day_ticket_never_admitted(
    ticket_type: TicketType,
    entries_used: int,
    visit_day: date | None,
    upgrade_day: date | None,
    last_entry_day: date | None,
    at: datetime,
) -> None:
    use = TicketUse(
        ticket_type=ticket_type,
        visit_day=visit_day,
        upgrade_day=upgrade_day,
        entries_used=entries_used,
        last_entry_day=last_entry_day,
    )
    assert not decide_entry(use=use, at=at).admit


@given(
    ticket_type=st.sampled_from(ALL_TYPES),
    entries_used=st.integers(min_value=0, max_value=10),
    visit_day=st.none() | days,
    upgrade_day=st.none() | days,
    last_entry_day=st.none() | days,
    at=instants,
)
def test_entry_invariants(
    ticket_type: TicketType,
    entries_used: int,
    visit_day: date | None,
    upgrade_day: date | None,
    last_entry_day: date | None,
    at: datetime,
) -> None:
    use = TicketUse(
        ticket_type=ticket_type,
        visit_day=visit_day,
        upgrade_day=upgrade_day,
        entries_used=entries_used,
        last_entry_day=last_entry_day,
    )
    decision = decide_entry(use=use, at=at)
    day = at.astimezone(SHANGHAI).date()
    assert decision.check_id == (ticket_type in CONCESSIONS)
    assert (decision.code == "ok") == decision.admit
    if decision.admit:
        assert is_expo_day(day)
        assert entries_used < CATALOGUE[ticket_type].entries_allowed
        assert last_entry_day != day
        assert not is_peak_day(day) or day in (visit_day, upgrade_day)
    if ticket_type in (T.EVENING, T.PASS_3, T.PASS_7) and is_peak_day(day):
        assert not decision.admit
