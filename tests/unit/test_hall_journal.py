"""The hall terminal's local journal: serials, batches, torn lines, totals and the day-close upload."""

import os
import stat
from datetime import datetime
from pathlib import Path

import pytest

from expo.clock import EXPO_TZ
from hall_terminals.errors import TerminalError
from hall_terminals.journal import (
    EntryType,
    Journal,
    TypeTotal,
    find_entry,
    open_batch,
    open_batch_no,
    sale_of_ticket,
    totals_of,
    upload_entries,
)

AT = datetime(2010, 6, 1, 10, 0, tzinfo=EXPO_TZ)


def _day(journal: Journal) -> None:
    journal.append(EntryType.SALE, at=AT, order_id=7, ticket_id=70, amount_fen=16000, payment="cash")
    journal.append(EntryType.WRITE, at=AT, order_id=7, ticket_id=70, csn="0031000000000001", slot=1)
    journal.append(EntryType.SALE, at=AT, order_id=8, ticket_id=80, amount_fen=40000, payment="bank_card")
    journal.append(EntryType.VOID, at=AT, order_id=8, ticket_id=80, amount_fen=40000)


def test_serials_batches_and_totals(tmp_path: Path) -> None:
    journal = Journal(tmp_path)
    assert journal.entries() == []
    assert open_batch_no([]) == 1
    _day(journal)
    entries = journal.entries()
    assert [(e.serial, e.batch_no, e.type) for e in entries] == [
        (1, 1, "sale"), (2, 1, "write"), (3, 1, "sale"), (4, 1, "void"),
    ]  # fmt: skip
    assert stat.S_IMODE(journal.path.stat().st_mode) == 0o600
    assert totals_of(open_batch(entries)) == {
        EntryType.SALE: TypeTotal(2, 56000),
        EntryType.WRITE: TypeTotal(1, 0),
        EntryType.VOID: TypeTotal(1, 40000),
    }
    assert upload_entries(entries) == [
        {"serial": 1, "type": "sale", "order_id": 7, "amount_fen": 16000},
        {"serial": 2, "type": "write", "ticket_id": 70},
        {"serial": 3, "type": "sale", "order_id": 8, "amount_fen": 40000},
        {"serial": 4, "type": "void", "order_id": 8, "amount_fen": 40000},
    ]
    assert sale_of_ticket(entries, 80) is not None
    assert sale_of_ticket(entries, 70).order_id == 7  # type: ignore[union-attr]
    assert sale_of_ticket(entries, 99) is None

    journal.append(EntryType.CLOSE, at=AT, matched=True, discrepancies=0)
    after = journal.entries()
    assert (after[-1].serial, after[-1].batch_no) == (5, 1)  # the close line belongs to the batch it closes
    assert open_batch_no(after) == 2
    assert open_batch(after) == []
    assert totals_of(open_batch(after))[EntryType.SALE] == TypeTotal(0, 0)
    nxt = journal.append(EntryType.SALE, at=AT, order_id=9, ticket_id=90, amount_fen=16000)
    assert (nxt.serial, nxt.batch_no) == (6, 2)
    assert [e.serial for e in open_batch(journal.entries())] == [6]


def test_a_torn_last_line_is_ignored_and_the_next_line_starts_fresh(tmp_path: Path) -> None:
    journal = Journal(tmp_path)
    _day(journal)
    with open(journal.path, "ab") as out:
        out.write(b'{"serial": 5, "batch_no": 1, "ty')  # power lost mid-write
    assert len(journal.entries()) == 4
    entry = journal.append(EntryType.SALE, at=AT, order_id=10, ticket_id=100, amount_fen=16000)
    assert entry.serial == 5
    assert [e.serial for e in journal.entries()] == [1, 2, 3, 4, 5]


def test_find_entry(tmp_path: Path) -> None:
    journal = Journal(tmp_path)
    with pytest.raises(TerminalError) as refused:
        find_entry(journal.entries(), None)
    assert refused.value.code == "no_slip"
    _day(journal)
    journal.append(EntryType.CLOSE, at=AT, matched=True, discrepancies=0)
    entries = journal.entries()
    assert find_entry(entries, None).serial == 4  # the last slip, not the close line
    assert find_entry(entries, 2).type == EntryType.WRITE
    with pytest.raises(TerminalError):
        find_entry(entries, 5)  # a close has no slip
    with pytest.raises(TerminalError):
        find_entry(entries, 42)


def test_the_journal_file_is_appended_never_rewritten(tmp_path: Path) -> None:
    journal = Journal(tmp_path)
    _day(journal)
    before = journal.path.read_bytes()
    inode = os.stat(journal.path).st_ino
    journal.append(EntryType.VOID, at=AT, order_id=7, amount_fen=16000)
    assert journal.path.read_bytes().startswith(before)
    assert os.stat(journal.path).st_ino == inode
