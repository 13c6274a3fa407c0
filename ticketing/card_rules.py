"""Pure rules of tickets on Expo cards: what a ticket's record says, card numbers, and which slot to write.

The record layout is `docs/card.md`'s, built by `simcard.record`; this module decides its content from
the ticket: type code, first and last valid day, entries, flags, channel and province. No I/O.
"""

from collections.abc import Iterable, Mapping
from datetime import date
from types import MappingProxyType

from expo.errors import Conflict, ExpoError
from simcard.keys import province_of_csn
from simcard.record import (
    CHANNEL_HALL,
    CHANNEL_HOTLINE,
    CHANNEL_WEB,
    FLAG_CONCESSION,
    FLAG_UPGRADE_PAID,
    NO_DAY,
    TicketRecord,
    day_number,
)
from simcard.state import SLOTS
from ticketing.rules import EXPO_FIRST_DAY, EXPO_LAST_DAY, TicketType, expo_days, is_peak_day, ticket_kind
from ticketing.sales_rules import Channel

# docs/card.md: ticket type codes and issuing channel codes on the card.
TYPE_CODES: Mapping[TicketType, int] = MappingProxyType(
    {
        TicketType.PEAK: 0x01,
        TicketType.PEAK_CONCESSION: 0x02,
        TicketType.STANDARD: 0x03,
        TicketType.STANDARD_CONCESSION: 0x04,
        TicketType.EVENING: 0x05,
        TicketType.PASS_3: 0x06,
        TicketType.PASS_7: 0x07,
    }
)
CHANNEL_CODES: Mapping[Channel, int] = MappingProxyType(
    {Channel.HALL: CHANNEL_HALL, Channel.HOTLINE: CHANNEL_HOTLINE, Channel.WEB: CHANNEL_WEB}
)

# Standard-day and evening tickets are good from the first to the last non-peak day of the Expo.
STANDARD_FIRST_DAY = min(d for d in expo_days() if not is_peak_day(d))
STANDARD_LAST_DAY = max(d for d in expo_days() if not is_peak_day(d))


def ticket_record(
    *,
    ticket_id: int,
    ticket_type: str,
    visit_day: date | None,
    upgrade_day: date | None,
    channel: str,
    province: str,
    key_version: int,
) -> TicketRecord:
    """A ticket's record, unsigned: dated tickets are good on their day only; standard-day and evening tickets
    from the Expo's first to its last standard day (gates still refuse the peak days inside that span);
    passes over the whole Expo. A paid peak-day upgrade sets its flag and day and widens the span to cover
    it, so every day a ticket may be used on lies between its first and last valid day."""
    kind = ticket_kind(ticket_type)
    first, last = valid_span(kind.ticket_type, visit_day=visit_day, upgrade_day=upgrade_day)
    flags = FLAG_CONCESSION if kind.concession else 0
    if upgrade_day is not None:
        flags |= FLAG_UPGRADE_PAID
    return TicketRecord(
        ticket_id=ticket_id,
        ticket_type=TYPE_CODES[kind.ticket_type],
        first_day=day_number(first),
        last_day=day_number(last),
        entries_allowed=kind.entries_allowed,
        flags=flags,
        upgrade_day=NO_DAY if upgrade_day is None else day_number(upgrade_day),
        channel=CHANNEL_CODES[Channel(channel)],
        province=province,
        key_version=key_version,
    )


def valid_span(ticket_type: TicketType, *, visit_day: date | None, upgrade_day: date | None) -> tuple[date, date]:
    """The first and last day a ticket may be used on, whatever carries it: a dated ticket its day; standard-day
    and evening tickets the Expo's standard days; passes the whole Expo; an upgrade widens it to its peak day."""
    kind = ticket_kind(ticket_type)
    if kind.dated:
        if visit_day is None:
            raise ValueError(f"a {kind.ticket_type} ticket has a visit day")
        first, last = visit_day, visit_day
    elif kind.entries_allowed > 1:
        first, last = EXPO_FIRST_DAY, EXPO_LAST_DAY
    else:
        first, last = STANDARD_FIRST_DAY, STANDARD_LAST_DAY
    if upgrade_day is not None:
        first, last = min(first, upgrade_day), max(last, upgrade_day)
    return first, last


def parse_csn(text: str) -> bytes:
    """A CSN as the API takes it: 16 hex digits whose first two bytes are a province code in BCD (00 31 ...)."""
    try:
        csn = bytes.fromhex(text)
        province_of_csn(csn)
    except ValueError:
        raise ExpoError("invalid_csn", "a card serial number is 16 hex digits starting 00 and the province") from None
    return csn


def choose_slot(*, free_slots: Iterable[int], confirmed_slots: Iterable[int]) -> int:
    """The lowest slot the terminal read as free that holds no ticket the platform confirmed; `card_full` if none."""
    taken = set(confirmed_slots)
    usable = sorted(s for s in set(free_slots) if 1 <= s <= SLOTS and s not in taken)
    if not usable:
        raise Conflict("card_full", "the card has no free ticket slot")
    return usable[0]
