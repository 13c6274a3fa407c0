"""The gate's local journal: committed lines numbered in order, upload bookkeeping, revocations, counts, reopening."""

import sqlite3
import stat
from datetime import date, datetime, timedelta
from pathlib import Path

import pytest

from gates.journal import GateJournal
from gates.wire import Event, GateEntry
from tests.unit.gates.support import at

CSN = "0031000000000042"
WHEN = at("2010-06-01")


@pytest.fixture
def journal(tmp_path: Path) -> GateJournal:
    return GateJournal(tmp_path / "journal.sqlite3")


def admit(journal: GateJournal, ticket_id: int = 7, *, ctr: int = 1, when: datetime = WHEN) -> GateEntry:
    return journal.append(
        event=Event.ADMITTED, at=when, code="ok", csn=CSN, ctr=ctr, ticket_id=ticket_id, slot=1, card_marked=True
    )


def test_append_numbers_lines_and_returns_what_was_stored(journal: GateJournal) -> None:
    first = admit(journal)
    second = journal.append(event=Event.REFUSED, at=WHEN, code="card_removed")
    assert (first.seq, second.seq) == (1, 2)
    assert journal.lines() == [first, second]
    assert journal.line(2) == second
    assert journal.line(3) is None


def test_a_line_is_committed_when_append_returns(tmp_path: Path) -> None:
    journal = GateJournal(tmp_path / "j.sqlite3")
    admit(journal)
    other = sqlite3.connect(tmp_path / "j.sqlite3")  # another reader sees it: nothing waits in a transaction
    assert other.execute("SELECT COUNT(*) FROM lines").fetchone() == (1,)
    other.close()


@pytest.mark.parametrize(("durable", "level"), [(True, 2), (False, 1)])
def test_durable_means_synchronous_full(tmp_path: Path, durable: bool, level: int) -> None:
    journal = GateJournal(tmp_path / "j.sqlite3", durable=durable)
    assert journal._db.execute("PRAGMA synchronous").fetchone() == (level,)
    assert journal._db.execute("PRAGMA journal_mode").fetchone() == ("wal",)


def test_the_file_is_the_owners_only(tmp_path: Path) -> None:
    GateJournal(tmp_path / "j.sqlite3")
    assert stat.S_IMODE((tmp_path / "j.sqlite3").stat().st_mode) == 0o600


def test_an_aware_time_is_required(journal: GateJournal) -> None:
    with pytest.raises(ValueError, match="aware"):
        journal.append(event=Event.REFUSED, at=WHEN.replace(tzinfo=None), code="no_ticket")


def test_two_programs_of_one_device_never_share_a_seq(tmp_path: Path) -> None:
    gate, annul_command = GateJournal(tmp_path / "j.sqlite3"), GateJournal(tmp_path / "j.sqlite3")
    seqs = [admit(gate).seq, admit(annul_command).seq, admit(gate).seq]
    assert seqs == [1, 2, 3]


def test_pending_and_mark_uploaded(journal: GateJournal) -> None:
    lines = [admit(journal, ticket_id=n, ctr=n) for n in range(1, 6)]
    assert journal.pending(limit=3) == lines[:3]
    journal.mark_uploaded([1, 3])
    assert [line.seq for line in journal.pending(limit=10)] == [2, 4, 5]
    journal.mark_uploaded([2, 4, 5, 99])
    assert journal.pending(limit=10) == []
    assert len(journal.lines()) == 5  # uploaded lines stay


def test_revocations_move_forward_and_are_kept_in_memory(journal: GateJournal) -> None:
    assert journal.revocation_version() == 0
    assert not journal.is_revoked(7)
    journal.apply_revocations(version=3, ticket_ids=[7, 8])
    journal.apply_revocations(version=5, ticket_ids=[8, 9])
    assert journal.revocation_version() == 5
    assert [journal.is_revoked(n) for n in (6, 7, 8, 9)] == [False, True, True, True]
    journal.apply_revocations(version=4, ticket_ids=[])  # a stale page never moves the version back
    assert journal.revocation_version() == 5


def test_counts_per_day_with_an_annulment_counted_once(journal: GateJournal) -> None:
    first = admit(journal, 1)
    admit(journal, 2, ctr=2)
    journal.append(event=Event.REFUSED, at=WHEN, code="already_used", csn=CSN, ticket_id=1, slot=1)
    journal.append(
        event=Event.FORCED, at=WHEN, code="already_used", csn=CSN, ticket_id=3, slot=1, reason="r", supervisor="S1"
    )
    journal.append(event=Event.ANNULLED, at=WHEN, code="ok", csn=CSN, ticket_id=1, annuls_seq=first.seq)
    journal.append(
        event=Event.ANNULLED, at=WHEN, code="ok", csn=CSN, ticket_id=1, annuls_seq=first.seq, card_marked=True, ctr=5
    )
    journal.append(event=Event.SOUVENIR, at=WHEN, code="ok", csn=CSN, ticket_id=2, slot=1, card_marked=True, ctr=6)
    admit(journal, 4, ctr=7, when=WHEN + timedelta(days=1))
    today = {"admitted": 2, "forced": 1, "annulled": 1, "refused": 1, "souvenirs": 1, "entries": 2}
    assert journal.counts(day=date(2010, 6, 1)) == today
    assert journal.counts(day=date(2010, 6, 2)) == {
        "admitted": 1,
        "forced": 0,
        "annulled": 0,
        "refused": 0,
        "souvenirs": 0,
        "entries": 1,
    }
    assert journal.counts()["entries"] == 3
    assert journal.counts(day=date(2010, 6, 3))["entries"] == 0


def test_the_day_is_the_expo_days(journal: GateJournal) -> None:
    # 23:30 UTC on 31 May is 07:30 on 1 June in Shanghai
    admit(journal, when=at("2010-06-01", "07:30").astimezone(tz=None))
    assert journal.counts(day=date(2010, 6, 1))["admitted"] == 1
    assert [line.seq for line in journal.card_lines(CSN, date(2010, 6, 1))] == [1]
    assert journal.card_lines(CSN, date(2010, 6, 2)) == []
    assert journal.card_lines("0031000000000043", date(2010, 6, 1)) == []


def test_last_admission(journal: GateJournal) -> None:
    assert journal.last_admission() == (None, False)
    admit(journal, 1)
    second = admit(journal, 2, ctr=2)
    journal.append(event=Event.REFUSED, at=WHEN, code="no_ticket", csn=CSN)
    assert journal.last_admission() == (second, False)
    journal.append(event=Event.ANNULLED, at=WHEN, code="ok", csn=CSN, ticket_id=2, annuls_seq=second.seq)
    assert journal.last_admission() == (second, True)


def test_reopening_keeps_everything(tmp_path: Path) -> None:
    path = tmp_path / "data" / "journal.sqlite3"
    journal = GateJournal(path)
    lines = [admit(journal, n, ctr=n) for n in (1, 2, 3)]
    journal.mark_uploaded([1])
    journal.apply_revocations(version=12, ticket_ids=[2])
    journal.close()
    again = GateJournal(path, durable=False)
    assert again.lines() == lines
    assert [line.seq for line in again.pending(limit=10)] == [2, 3]
    assert again.revocation_version() == 12
    assert again.is_revoked(2)
    assert admit(again, 4, ctr=4).seq == 4
