"""The terminal's local journal: every sale, card write, void, voucher exchange and day close, by a local serial.

A JSON-lines file in the terminal's data folder, appended one line at a time (under an exclusive lock,
fsynced), never rewritten. Batches number the days between closes: batch 1 until the first close, and
each line carries the batch it belongs to; a close line ends its batch. A torn last line (the terminal
lost power while writing it) is ignored. The day close uploads the open batch (`upload_entries`).

A voucher exchange is journaled before it is asked for (`exchange_sent`, with its Idempotency-Key), so the
same command run again after a lost reply asks with the same key (`pending_exchange_key`); the answer
closes that key: `exchange` (done, a slip) or `exchange_refused` (the service said no; a retry asks anew).
"""

import fcntl
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from pathlib import Path
from typing import Any

import msgspec

from hall_terminals.errors import TerminalError

JOURNAL_FILE = "journal.jsonl"


class EntryType(StrEnum):
    SALE = "sale"
    WRITE = "write"  # a ticket confirmed on a card
    VOID = "void"
    CLOSE = "close"  # the day close: ends its batch
    EXCHANGE_SENT = "exchange_sent"  # a voucher exchange about to be asked for, with its Idempotency-Key
    EXCHANGE = "exchange"  # a voucher exchanged (no money moves)
    EXCHANGE_REFUSED = "exchange_refused"  # the service refused the exchange asked with that key


SLIP_TYPES = frozenset({EntryType.SALE, EntryType.WRITE, EntryType.VOID, EntryType.EXCHANGE})


class Entry(msgspec.Struct, omit_defaults=True, forbid_unknown_fields=True):
    """One journal line; which fields are set depends on the type."""

    serial: int
    batch_no: int
    type: EntryType
    at: datetime
    clerk: str | None = None
    order_id: int | None = None
    ticket_id: int | None = None
    amount_fen: int = 0  # a sale: paid; a void: given back
    payment: str | None = None  # cash | bank_card
    approval_code: str | None = None
    msisdn: str | None = None
    ticket_type: str | None = None
    visit_day: str | None = None
    csn: str | None = None
    slot: int | None = None
    matched: bool | None = None  # a close: the platform's comparison
    discrepancies: int | None = None
    into: str | None = None  # an exchange: physical | expo_card
    idempotency_key: str | None = None  # an exchange asked, done or refused
    physical_code: str | None = None  # an exchange into a physical ticket: the code printed on it
    refusal: str | None = None  # a refused exchange: the service's code


@dataclass(frozen=True)
class TypeTotal:
    count: int
    amount_fen: int


class Journal:
    """The journal file of one terminal."""

    def __init__(self, data_dir: Path) -> None:
        self.path = data_dir / JOURNAL_FILE

    def entries(self) -> list[Entry]:
        """Every complete line, oldest first."""
        try:
            raw = self.path.read_bytes()
        except FileNotFoundError:
            return []
        return parse_lines(raw)

    def append(self, entry_type: EntryType, *, at: datetime, **fields: Any) -> Entry:
        """Add one line with the next serial, in the open batch (the close line: in the batch it closes)."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_APPEND, 0o600)
        with os.fdopen(fd, "r+b") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)  # two commands at one terminal never share a serial
            handle.seek(0)
            data = handle.read()
            existing = parse_lines(data)
            serial = existing[-1].serial + 1 if existing else 1
            entry = Entry(serial=serial, batch_no=open_batch_no(existing), type=entry_type, at=at, **fields)
            torn = bool(data) and not data.endswith(b"\n")
            handle.write((b"\n" if torn else b"") + msgspec.json.encode(entry) + b"\n")
            handle.flush()
            os.fsync(handle.fileno())
        return entry


def parse_lines(raw: bytes) -> list[Entry]:
    """The journal's lines; a torn or unreadable line is skipped (it was never acknowledged)."""
    found: list[Entry] = []
    for line in raw.split(b"\n"):
        if not line.strip():
            continue
        try:
            found.append(msgspec.json.decode(line, type=Entry))
        except msgspec.DecodeError:
            continue
    return found


def open_batch_no(entries: Sequence[Entry]) -> int:
    """The batch new lines join: one after the last closed batch."""
    closes = [e.batch_no for e in entries if e.type == EntryType.CLOSE]
    return max(closes) + 1 if closes else 1


def open_batch(entries: Sequence[Entry]) -> list[Entry]:
    """The lines since the last day close."""
    number = open_batch_no(entries)
    return [e for e in entries if e.batch_no == number and e.type != EntryType.CLOSE]


def find_entry(entries: Iterable[Entry], serial: int | None) -> Entry:
    """The line with this serial, or the last slip-bearing line (sale, write, void, exchange); `no_slip` if none."""
    slips = [e for e in entries if e.type in SLIP_TYPES and (serial is None or e.serial == serial)]
    if not slips:
        which = f"serial {serial}" if serial is not None else "any sale"
        raise TerminalError("no_slip", f"the journal has no slip for {which}")
    return slips[-1]


def sale_of_ticket(entries: Iterable[Entry], ticket_id: int) -> Entry | None:
    """The line that brought a ticket to this terminal: its sale, or its voucher's exchange (the last one)."""
    found = [e for e in entries if e.type in (EntryType.SALE, EntryType.EXCHANGE) and e.ticket_id == ticket_id]
    return found[-1] if found else None


def pending_exchange_key(entries: Sequence[Entry], *, ticket_id: int, into: str, csn: str | None) -> str | None:
    """The key of the same exchange asked before without an answer (a lost reply): asking again reuses it."""
    answered = {e.idempotency_key for e in entries if e.type in (EntryType.EXCHANGE, EntryType.EXCHANGE_REFUSED)}
    for entry in reversed(entries):
        if entry.type == EntryType.EXCHANGE_SENT and (entry.ticket_id, entry.into, entry.csn) == (ticket_id, into, csn):
            return None if entry.idempotency_key in answered else entry.idempotency_key
    return None


def exchanges_of(entries: Iterable[Entry]) -> int:
    """How many vouchers were exchanged (they move no money, so they are counted apart from the totals)."""
    return sum(1 for entry in entries if entry.type == EntryType.EXCHANGE)


def totals_of(entries: Iterable[Entry]) -> dict[EntryType, TypeTotal]:
    """Count and sum lines by type (sale, write, void; every type present)."""
    kinds = (EntryType.SALE, EntryType.WRITE, EntryType.VOID)
    counts = dict.fromkeys(kinds, 0)
    sums = dict.fromkeys(kinds, 0)
    for entry in entries:
        if entry.type in counts:
            counts[entry.type] += 1
            sums[entry.type] += entry.amount_fen
    return {kind: TypeTotal(counts[kind], sums[kind]) for kind in kinds}


def upload_entries(entries: Iterable[Entry]) -> list[dict[str, Any]]:
    """The open batch as the day close uploads it: sales and voids by order, writes by ticket."""
    lines: list[dict[str, Any]] = []
    for entry in entries:
        if entry.type == EntryType.WRITE:
            lines.append({"serial": entry.serial, "type": "write", "ticket_id": entry.ticket_id})
        elif entry.type in (EntryType.SALE, EntryType.VOID):
            lines.append(
                {
                    "serial": entry.serial,
                    "type": entry.type.value,
                    "order_id": entry.order_id,
                    "amount_fen": entry.amount_fen,
                }
            )
    return lines
