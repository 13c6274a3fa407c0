"""The gate's local journal: every decision as a `GateEntry` line, the synced revocation list and ticket-code
keys, a little meta.

stdlib sqlite3 in the device's data folder (WAL; synchronous=FULL unless the caller asks for NORMAL), one
connection kept open for the device's life and shared by its threads under a lock. A line is committed
before `append` returns, so before the gate opens. `seq` is SQLite's next rowid in the same transaction,
so two programs of one device (the gate loop and `expo gate annul`) never share a number. Revoked ticket
ids and the public keys of ticket codes are loaded into memory once and kept in step with every change
made here; `refresh` reloads them when another program of the device changed the file (its sync).

A journal file written before physical tickets has no `paper` column: it is added on opening (every
older line is a card's), so a gate keeps its journal across the upgrade.
"""

import sqlite3
import threading
from collections.abc import Iterable, Mapping, Sequence
from collections.abc import Set as AbstractSet
from datetime import date, datetime
from pathlib import Path
from types import MappingProxyType
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from expo.clock import expo_local
from gates.wire import Event, GateEntry

JOURNAL_FILE = "journal.sqlite3"
BUSY_TIMEOUT_S = 10.0

_SCHEMA = """
CREATE TABLE IF NOT EXISTS lines (
    seq INTEGER PRIMARY KEY,
    event TEXT NOT NULL,
    at TEXT NOT NULL,
    day TEXT NOT NULL,
    code TEXT NOT NULL,
    csn TEXT,
    ctr INTEGER,
    ticket_id INTEGER,
    slot INTEGER,
    check_id INTEGER NOT NULL DEFAULT 0,
    card_marked INTEGER NOT NULL DEFAULT 0,
    reason TEXT,
    supervisor TEXT,
    annuls_seq INTEGER,
    uploaded INTEGER NOT NULL DEFAULT 0,
    paper INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS lines_pending ON lines (seq) WHERE uploaded = 0;
CREATE INDEX IF NOT EXISTS lines_card_day ON lines (csn, day);
CREATE INDEX IF NOT EXISTS lines_admitted ON lines (seq) WHERE event = 'admitted';
CREATE TABLE IF NOT EXISTS revocations (ticket_id INTEGER PRIMARY KEY);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS ticket_keys (kid INTEGER PRIMARY KEY, public BLOB NOT NULL);
"""
# After the `paper` column exists (a journal of an older gate gets it first).
_PAPER_INDEX = "CREATE INDEX IF NOT EXISTS lines_paper_ticket ON lines (ticket_id) WHERE paper = 1"
_COLUMNS = (
    "seq, event, at, code, csn, ctr, ticket_id, slot, check_id, card_marked, reason, supervisor, annuls_seq, paper"
)
_INSERT = (
    "INSERT INTO lines (event, at, day, code, csn, ctr, ticket_id, slot, check_id, card_marked, reason, supervisor,"
    " annuls_seq, paper) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)
_REVOCATION_VERSION = "revocation_version"


def _entry(row: tuple[Any, ...]) -> GateEntry:
    seq, event, at, code, csn, ctr, ticket_id, slot, check_id, card_marked, reason, supervisor, annuls_seq, paper = row
    return GateEntry(
        seq=seq,
        event=Event(event),
        at=datetime.fromisoformat(at),
        code=code,
        csn=csn,
        ctr=ctr,
        ticket_id=ticket_id,
        slot=slot,
        check_id=bool(check_id),
        card_marked=bool(card_marked),
        reason=reason,
        supervisor=supervisor,
        annuls_seq=annuls_seq,
        paper=bool(paper),
    )


def _raw_public(key: Ed25519PublicKey) -> bytes:
    return key.public_bytes(Encoding.Raw, PublicFormat.Raw)


class GateJournal:
    """One device's journal file."""

    def __init__(self, path: Path | str, *, durable: bool = True) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        # Autocommit mode: every write below is its own explicit BEGIN IMMEDIATE ... COMMIT.
        self._db = sqlite3.connect(self.path, timeout=BUSY_TIMEOUT_S, isolation_level=None, check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute(f"PRAGMA synchronous={'FULL' if durable else 'NORMAL'}")
        self._db.executescript(_SCHEMA)
        self._add_paper_column()
        self.path.chmod(0o600)
        self._revoked: set[int] = set()
        self._keys: Mapping[int, Ed25519PublicKey] = MappingProxyType({})
        self._version = -1
        self.refresh()

    def _add_paper_column(self) -> None:
        """A journal of a gate from before physical tickets: its lines are all a card's (paper = 0)."""
        with self._write():  # checked again under the write lock: two programs may open the old file at once
            columns = {row[1] for row in self._db.execute("PRAGMA table_info(lines)")}
            if "paper" not in columns:
                self._db.execute("ALTER TABLE lines ADD COLUMN paper INTEGER NOT NULL DEFAULT 0")
            self._db.execute(_PAPER_INDEX)

    def refresh(self) -> None:
        """Reload the revoked tickets and the ticket-code keys if another program of the device changed the file."""
        with self._lock:
            version = self._db.execute("PRAGMA data_version").fetchone()[0]
            if version == self._version:
                return
            self._version = version
            self._revoked.update(row[0] for row in self._db.execute("SELECT ticket_id FROM revocations"))
            rows = self._db.execute("SELECT kid, public FROM ticket_keys").fetchall()
        self._keys = MappingProxyType({kid: Ed25519PublicKey.from_public_bytes(raw) for kid, raw in rows})

    def __repr__(self) -> str:
        return f"GateJournal({str(self.path)!r})"

    def _write(self) -> "_Transaction":
        return _Transaction(self._db)

    def append(
        self,
        *,
        event: Event,
        at: datetime,
        code: str,
        csn: str | None = None,
        ctr: int | None = None,
        ticket_id: int | None = None,
        slot: int | None = None,
        check_id: bool = False,
        card_marked: bool = False,
        reason: str | None = None,
        supervisor: str | None = None,
        annuls_seq: int | None = None,
        paper: bool = False,
    ) -> GateEntry:
        """Journal one decision under the next seq and commit it; the stored line."""
        if at.tzinfo is None:
            raise ValueError("a journal line's time is aware")
        values = (
            event.value,
            at.isoformat(),
            expo_local(at).date().isoformat(),
            code,
            csn,
            ctr,
            ticket_id,
            slot,
            int(check_id),
            int(card_marked),
            reason,
            supervisor,
            annuls_seq,
            int(paper),
        )
        with self._lock:  # one INSERT in autocommit mode: its own transaction, committed on return
            seq = self._db.execute(_INSERT, values).lastrowid
        if seq is None:  # pragma: no cover - sqlite3 always reports the rowid of an INSERT
            raise RuntimeError("the journal did not number the line")
        return GateEntry(
            seq=seq,
            event=event,
            at=at,
            code=code,
            csn=csn,
            ctr=ctr,
            ticket_id=ticket_id,
            slot=slot,
            check_id=check_id,
            card_marked=card_marked,
            reason=reason,
            supervisor=supervisor,
            annuls_seq=annuls_seq,
            paper=paper,
        )

    def _select(self, sql: str, params: Sequence[Any] = ()) -> list[GateEntry]:
        with self._lock:
            rows = self._db.execute(sql, params).fetchall()
        return [_entry(row) for row in rows]

    def pending(self, *, limit: int) -> list[GateEntry]:
        """Lines not yet uploaded, oldest first, at most `limit`."""
        return self._select(f"SELECT {_COLUMNS} FROM lines WHERE uploaded = 0 ORDER BY seq LIMIT ?", (limit,))  # noqa: S608

    def mark_uploaded(self, seqs: Sequence[int]) -> None:
        """The server stored (or already had) these lines: they are not uploaded again."""
        with self._lock, self._write():
            self._db.executemany("UPDATE lines SET uploaded = 1 WHERE seq = ?", [(seq,) for seq in seqs])

    def lines(self) -> list[GateEntry]:
        """Every line, oldest first."""
        return self._select(f"SELECT {_COLUMNS} FROM lines ORDER BY seq")  # noqa: S608

    def card_lines(self, csn: str, day: date) -> list[GateEntry]:
        """This card's lines of one Expo day (the facts `gates.rules` needs of it), oldest first."""
        sql = f"SELECT {_COLUMNS} FROM lines WHERE csn = ? AND day = ? ORDER BY seq"  # noqa: S608
        return self._select(sql, (csn, day.isoformat()))

    def paper_lines(self, ticket_id: int) -> list[GateEntry]:
        """A physical ticket's lines at this gate, every day, oldest first: the only record of its use it has."""
        sql = f"SELECT {_COLUMNS} FROM lines WHERE paper = 1 AND ticket_id = ? ORDER BY seq"  # noqa: S608
        return self._select(sql, (ticket_id,))

    def line(self, seq: int) -> GateEntry | None:
        """One line by its seq."""
        found = self._select(f"SELECT {_COLUMNS} FROM lines WHERE seq = ?", (seq,))  # noqa: S608
        return found[0] if found else None

    def last_admission(self) -> tuple[GateEntry | None, bool]:
        """The gate's newest `admitted` line and whether it is annulled already."""
        found = self._select(f"SELECT {_COLUMNS} FROM lines WHERE event = 'admitted' ORDER BY seq DESC LIMIT 1")  # noqa: S608
        if not found:
            return None, False
        with self._lock:
            annulled = self._db.execute(
                "SELECT 1 FROM lines WHERE event = 'annulled' AND annuls_seq = ? LIMIT 1", (found[0].seq,)
            ).fetchone()
        return found[0], annulled is not None

    def revocation_version(self) -> int:
        """The version of the newest revocation applied (0 before the first pull)."""
        with self._lock:
            row = self._db.execute("SELECT value FROM meta WHERE key = ?", (_REVOCATION_VERSION,)).fetchone()
        return 0 if row is None else int(row[0])

    def apply_revocations(self, *, version: int, ticket_ids: Iterable[int]) -> None:
        """Add one delta of revoked tickets and move to its version, in one commit (never backwards)."""
        ids = list(ticket_ids)
        with self._lock, self._write():
            self._db.executemany("INSERT OR IGNORE INTO revocations (ticket_id) VALUES (?)", [(i,) for i in ids])
            self._db.execute(
                "INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value ="
                " CAST(MAX(CAST(value AS INTEGER), CAST(excluded.value AS INTEGER)) AS TEXT)",
                (_REVOCATION_VERSION, str(version)),
            )
        self._revoked.update(ids)

    def ticket_keys(self) -> Mapping[int, Ed25519PublicKey]:
        """The platform's public keys of ticket codes by key id, as last synced (empty before the first)."""
        return self._keys

    def replace_ticket_keys(self, keys: Mapping[int, Ed25519PublicKey]) -> None:
        """Keep the keys the service publishes now, in one commit (the service's list is the whole list); the
        same keys again write nothing."""
        self.refresh()
        rows = [(kid, _raw_public(key)) for kid, key in sorted(keys.items())]
        if rows == [(kid, _raw_public(key)) for kid, key in sorted(self._keys.items())]:
            return
        with self._lock, self._write():
            self._db.execute("DELETE FROM ticket_keys")
            self._db.executemany("INSERT INTO ticket_keys (kid, public) VALUES (?, ?)", rows)
        self._keys = MappingProxyType(dict(keys))

    def is_revoked(self, ticket_id: int) -> bool:
        """Whether the ticket was voided or refunded, by the revocation list synced so far."""
        return ticket_id in self._revoked

    @property
    def revoked(self) -> AbstractSet[int]:
        """The revoked ticket ids (a live view, for the decision rules)."""
        return self._revoked

    def counts(self, *, day: date | None = None) -> dict[str, int]:
        """Lines by event (of one Expo day, or all), and entries = admitted + forced - annulled, where an
        admission annulled twice (in the journal, then on the card) counts once."""
        where, params = ("WHERE day = ?", (day.isoformat(),)) if day is not None else ("", ())
        sql = (
            "SELECT event, COUNT(*), COUNT(DISTINCT annuls_seq) FROM lines "  # noqa: S608
            f"{where} GROUP BY event"
        )
        with self._lock:
            rows = self._db.execute(sql, params).fetchall()
        by_event = {event: (count, distinct) for event, count, distinct in rows}
        admitted = by_event.get(Event.ADMITTED.value, (0, 0))[0]
        forced = by_event.get(Event.FORCED.value, (0, 0))[0]
        annulled = by_event.get(Event.ANNULLED.value, (0, 0))[1]
        return {
            "admitted": admitted,
            "forced": forced,
            "annulled": annulled,
            "refused": by_event.get(Event.REFUSED.value, (0, 0))[0],
            "souvenirs": by_event.get(Event.SOUVENIR.value, (0, 0))[0],
            "entries": admitted + forced - annulled,
        }

    def close(self) -> None:
        """Close the file (a WAL checkpoint happens on the last close)."""
        with self._lock:
            self._db.close()


class _Transaction:
    """BEGIN IMMEDIATE ... COMMIT (ROLLBACK on error): a writer takes the lock at once, not on its first write."""

    def __init__(self, db: sqlite3.Connection) -> None:
        self._db = db

    def __enter__(self) -> None:
        self._db.execute("BEGIN IMMEDIATE")

    def __exit__(self, kind: type[BaseException] | None, value: BaseException | None, traceback: object) -> None:
        self._db.execute("COMMIT" if kind is None else "ROLLBACK")
