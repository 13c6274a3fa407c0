"""The 32-byte ticket record, the 16-byte log entry, Expo day numbers and BCD times (docs/card.md).

Pure. This module is the single source of the record's byte layout for card, platform, terminals
and gates; the platform MAC binds bytes 0-15 to the card's CSN under K_card[VALIDATE].
"""

import struct
from dataclasses import dataclass, replace
from datetime import date, datetime, timedelta

from simcard.keys import MAC_BYTES, aes_cmac, macs_equal

EXPO_DAY_ZERO = date(2010, 5, 1)
NO_DAY = 0xFFFF
RECORD_BYTES = 32
PLATFORM_PART = 16
CARD_PART_OFFSET = 24
LOG_BYTES = 16
TIME_BYTES = 7
REC_LABEL = b"REC"

FLAG_CONCESSION = 0x01
FLAG_UPGRADE_PAID = 0x02
CARD_FLAG_SOUVENIR = 0x01

CHANNEL_HALL = 1
CHANNEL_HOTLINE = 2
CHANNEL_WEB = 3

EVENT_WRITTEN = 1
EVENT_ENTRY = 2
EVENT_SOUVENIR = 3
EVENT_ANNULLED = 4

ANNUL_WINDOW_SECONDS = 120  # a turnstile that did not turn may annul its entry this long after it

_RECORD = struct.Struct(">IBHHBBHBBB8sBHBI")
_LOG = struct.Struct(">IBI7s")


def day_number(day: date) -> int:
    """Days since 2010-05-01 (day 0) as the card's u16."""
    number = (day - EXPO_DAY_ZERO).days
    if not 0 <= number < NO_DAY:
        raise ValueError(f"{day} is outside the card's day range")
    return number


def day_date(number: int) -> date | None:
    """The date of a card day number; None for FFFF (no day)."""
    return None if number == NO_DAY else EXPO_DAY_ZERO + timedelta(days=number)


def encode_time(at: datetime) -> bytes:
    """A local (Shanghai) wall time as 7 BCD bytes YYYYMMDDhhmmss."""
    return bytes.fromhex(at.strftime("%Y%m%d%H%M%S"))


def decode_time(raw: bytes) -> datetime:
    """7 BCD bytes YYYYMMDDhhmmss as a naive local time; ValueError if not BCD or not a real instant."""
    text = raw.hex()
    if len(raw) != TIME_BYTES or not text.isdigit():
        raise ValueError("a card time is 7 BCD bytes")
    # Fields by position (strptime costs a tenth of a gate tap); datetime() refuses what is no real instant.
    return datetime(  # noqa: DTZ001 - the card's clockless wall time
        int(text[0:4]), int(text[4:6]), int(text[6:8]), int(text[8:10]), int(text[10:12]), int(text[12:14])
    )


def province_byte(province: str) -> int:
    """The record's province byte: the two digits read as hex, so Shanghai "31" is 0x31 (BCD)."""
    try:
        raw = bytes.fromhex(province)
    except ValueError:
        raw = b""
    if len(raw) != 1:
        raise ValueError(f"a record province is two (BCD) digits, got {province!r}")
    return raw[0]


@dataclass(frozen=True)
class TicketRecord:
    """One ticket on the card: bytes 0-23 the platform's (signed), 24-31 the card's."""

    ticket_id: int
    ticket_type: int
    first_day: int
    last_day: int
    entries_allowed: int
    flags: int = 0
    upgrade_day: int = NO_DAY
    channel: int = CHANNEL_HALL
    province: str = "31"
    key_version: int = 1
    platform_mac: bytes = bytes(MAC_BYTES)
    entries_used: int = 0
    last_entry_day: int = NO_DAY
    card_flags: int = 0
    last_gate: int = 0

    @property
    def concession(self) -> bool:
        """Concession tickets need the holder's ID checked at entry."""
        return bool(self.flags & FLAG_CONCESSION)

    @property
    def souvenir_collected(self) -> bool:
        """The card's souvenir flag."""
        return bool(self.card_flags & CARD_FLAG_SOUVENIR)

    def encode(self) -> bytes:
        """The 32 bytes of docs/card.md; struct.error for a field out of range."""
        if len(self.platform_mac) != MAC_BYTES:
            raise ValueError("the platform MAC is 8 bytes")
        return _RECORD.pack(
            self.ticket_id,
            self.ticket_type,
            self.first_day,
            self.last_day,
            self.entries_allowed,
            self.flags,
            self.upgrade_day,
            self.channel,
            province_byte(self.province),
            self.key_version,
            self.platform_mac,
            self.entries_used,
            self.last_entry_day,
            self.card_flags,
            self.last_gate,
        )

    @classmethod
    def decode(cls, raw: bytes) -> "TicketRecord":
        """Any 32 bytes decode, and encode back to the same bytes (the province byte as two hex digits)."""
        if len(raw) != RECORD_BYTES:
            raise ValueError(f"a ticket record is {RECORD_BYTES} bytes, got {len(raw)}")
        (ticket_id, ticket_type, first, last, allowed, flags, upgrade, channel, province, version, mac, used,
         last_entry, card_flags, gate) = _RECORD.unpack(raw)  # fmt: skip
        return cls(
            ticket_id, ticket_type, first, last, allowed, flags, upgrade, channel, f"{province:02x}", version,
            mac, used, last_entry, card_flags, gate,
        )  # fmt: skip

    def is_fresh(self) -> bool:
        """A record as the platform writes it: no entries, no last day, no card flags, no gate."""
        return (self.entries_used, self.last_entry_day, self.card_flags, self.last_gate) == (0, NO_DAY, 0, 0)


def platform_mac(validate_card_key: bytes, record_bytes_0_16: bytes, csn: bytes) -> bytes:
    """First 8 bytes of AES-CMAC(K_card[VALIDATE], "REC" || bytes 0-15 || CSN)."""
    if len(record_bytes_0_16) != PLATFORM_PART or len(csn) != 8:
        raise ValueError("the platform MAC covers 16 record bytes and an 8-byte CSN")
    return aes_cmac(validate_card_key, REC_LABEL + record_bytes_0_16 + csn)[:MAC_BYTES]


def sign(record: TicketRecord, validate_card_key: bytes, csn: bytes) -> bytes:
    """The record's 32 bytes with its platform MAC filled in for this card."""
    head = record.encode()[:PLATFORM_PART]
    return replace(record, platform_mac=platform_mac(validate_card_key, head, csn)).encode()


def mac_is_valid(record_bytes: bytes, validate_card_key: bytes, csn: bytes) -> bool:
    """Whether a record's platform MAC (bytes 16-23) is this card's MAC over bytes 0-15."""
    if len(record_bytes) != RECORD_BYTES:
        return False
    expected = platform_mac(validate_card_key, record_bytes[:PLATFORM_PART], csn)
    return macs_equal(expected, record_bytes[PLATFORM_PART:CARD_PART_OFFSET])


@dataclass(frozen=True)
class LogEntry:
    """One card log entry: CTR, event, terminal or gate id (ticket id for a write), BCD time."""

    ctr: int
    event: int
    terminal: int
    time: bytes = bytes(TIME_BYTES)

    def encode(self) -> bytes:
        """The 16 bytes of docs/card.md."""
        return _LOG.pack(self.ctr, self.event, self.terminal, self.time)

    @classmethod
    def decode(cls, raw: bytes) -> "LogEntry":
        """16 bytes back into an entry."""
        if len(raw) != LOG_BYTES:
            raise ValueError(f"a log entry is {LOG_BYTES} bytes")
        return cls(*_LOG.unpack(raw))


def after_entry(record: TicketRecord, *, today: int, gate_id: int) -> TicketRecord | None:
    """An entry: refused (None) when every entry is used or the last entry was today; else one more, today."""
    if record.entries_used >= record.entries_allowed or record.last_entry_day == today:
        return None
    return replace(record, entries_used=record.entries_used + 1, last_entry_day=today, last_gate=gate_id)


def after_souvenir(record: TicketRecord) -> TicketRecord | None:
    """A souvenir: refused (None) before the first entry or when already collected; else the flag is set."""
    if record.entries_used == 0 or record.souvenir_collected:
        return None
    return replace(record, card_flags=record.card_flags | CARD_FLAG_SOUVENIR)


def after_annul(
    record: TicketRecord, *, today: int, gate_id: int, at: datetime, newest_log: LogEntry | None
) -> TicketRecord | None:
    """An annulment (the turnstile did not turn): allowed (else None) only for today's entry by this gate, before
    a souvenir, when the card's newest log entry is that entry at most ANNUL_WINDOW_SECONDS before `at` (the
    MAC'd time, not after it); then one entry fewer, no last entry day, no last gate."""
    if record.entries_used == 0 or record.last_entry_day != today or record.last_gate != gate_id:
        return None
    if record.souvenir_collected or newest_log is None:
        return None
    if newest_log.event != EVENT_ENTRY or newest_log.terminal != gate_id:
        return None
    try:
        entered = decode_time(newest_log.time)
    except ValueError:
        return None
    if not timedelta(0) <= at - entered <= timedelta(seconds=ANNUL_WINDOW_SECONDS):
        return None
    return undo_entry(record)


def undo_entry(record: TicketRecord) -> TicketRecord:
    """The card part after an annulled entry: one entry fewer, no last entry day, no last gate."""
    return replace(record, entries_used=record.entries_used - 1, last_entry_day=NO_DAY, last_gate=0)
