"""What a ticket's card record says (type code, valid days, entries, flags, channel, province), and card numbers."""

from datetime import date, datetime

import pytest

from expo.clock import EXPO_TZ
from expo.errors import ExpoError
from simcard.record import NO_DAY, TicketRecord, day_date
from ticketing.card_rules import choose_slot, parse_csn, ticket_record
from ticketing.rules import PEAK_DAYS, TicketType, decide_entry, expo_days
from ticketing.rules import TicketUse as Use

T = TicketType
EXPECTED = {  # docs/card.md: type code, first valid day, last valid day, entries allowed, concession flag
    T.PEAK: (0x01, date(2010, 10, 3), date(2010, 10, 3), 1, 0),
    T.PEAK_CONCESSION: (0x02, date(2010, 10, 3), date(2010, 10, 3), 1, 1),
    T.STANDARD: (0x03, date(2010, 5, 4), date(2010, 10, 24), 1, 0),
    T.STANDARD_CONCESSION: (0x04, date(2010, 5, 4), date(2010, 10, 24), 1, 1),
    T.EVENING: (0x05, date(2010, 5, 4), date(2010, 10, 24), 1, 0),
    T.PASS_3: (0x06, date(2010, 5, 1), date(2010, 10, 31), 3, 0),
    T.PASS_7: (0x07, date(2010, 5, 1), date(2010, 10, 31), 7, 0),
}
DATED = {T.PEAK, T.PEAK_CONCESSION}


def record_of(ticket_type: TicketType, *, upgrade_day: date | None = None, channel: str = "hall") -> TicketRecord:
    return ticket_record(
        ticket_id=4242,
        ticket_type=ticket_type.value,
        visit_day=date(2010, 10, 3) if ticket_type in DATED else None,
        upgrade_day=upgrade_day,
        channel=channel,
        province="31",
        key_version=1,
    )


@pytest.mark.parametrize("ticket_type", list(TicketType))
def test_every_type_maps_to_its_code_days_and_entries(ticket_type: TicketType) -> None:
    code, first, last, entries, concession = EXPECTED[ticket_type]
    record = record_of(ticket_type)
    assert (record.ticket_id, record.ticket_type, record.entries_allowed) == (4242, code, entries)
    assert (day_date(record.first_day), day_date(record.last_day)) == (first, last)
    assert record.flags == concession
    assert record.upgrade_day == NO_DAY
    assert (record.channel, record.province, record.key_version) == (1, "31", 1)
    assert record.is_fresh()
    assert TicketRecord.decode(record.encode()) == record


def test_the_type_codes_are_distinct_and_cover_the_catalogue() -> None:
    assert sorted(record_of(t).ticket_type for t in TicketType) == list(range(1, 8))


@pytest.mark.parametrize("ticket_type", [T.STANDARD, T.STANDARD_CONCESSION, T.EVENING])
def test_standard_span_covers_every_standard_day_and_starts_and_ends_on_one(ticket_type: TicketType) -> None:
    record = record_of(ticket_type)
    first, last = day_date(record.first_day), day_date(record.last_day)
    assert first is not None
    assert last is not None
    standard_days = [d for d in expo_days() if d not in PEAK_DAYS]
    assert all(first <= d <= last for d in standard_days)
    assert first in standard_days
    assert last in standard_days


def test_an_upgrade_sets_its_flag_and_day_and_widens_the_span_to_it() -> None:
    closing_week = date(2010, 10, 30)
    record = record_of(T.STANDARD, upgrade_day=closing_week)
    assert record.flags == 0x02
    assert day_date(record.upgrade_day) == closing_week
    assert (day_date(record.first_day), day_date(record.last_day)) == (date(2010, 5, 4), closing_week)
    # The gate's own rules admit the ticket on that day, and the span the card carries agrees.
    use = Use(T.STANDARD, visit_day=None, upgrade_day=closing_week, entries_used=0, last_entry_day=None)
    assert decide_entry(use=use, at=datetime(2010, 10, 30, 10, tzinfo=EXPO_TZ)).admit


@pytest.mark.parametrize(("channel", "code"), [("hall", 1), ("hotline", 2), ("web", 3)])
def test_channel_codes(channel: str, code: int) -> None:
    assert record_of(T.PASS_3, channel=channel).channel == code


def test_a_dated_ticket_without_its_day_is_a_bug() -> None:
    with pytest.raises(ValueError, match="visit day"):
        ticket_record(
            ticket_id=1,
            ticket_type="peak",
            visit_day=None,
            upgrade_day=None,
            channel="hall",
            province="31",
            key_version=1,
        )


def test_csn_parsing() -> None:
    assert parse_csn("0031000000000001") == bytes.fromhex("0031000000000001")
    for bad in ("0031", "1131000000000001", "00ab000000000001", "zz31000000000001", "003100000000000100"):
        with pytest.raises(ExpoError) as refused:
            parse_csn(bad)
        assert refused.value.code == "invalid_csn"


def test_slot_choice() -> None:
    assert choose_slot(free_slots=[3, 2, 4], confirmed_slots=[]) == 2
    assert choose_slot(free_slots=[1, 2], confirmed_slots=[1]) == 2
    for free, confirmed in (([], []), ([1], [1]), ([5, 0], [])):
        with pytest.raises(ExpoError) as refused:
            choose_slot(free_slots=free, confirmed_slots=confirmed)
        assert refused.value.code == "card_full"
