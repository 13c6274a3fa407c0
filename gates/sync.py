"""The gate's sync: upload the journal's pending lines, pull the ticket-code keys and the revocation list, in the
background.

The network is never in the tap path. A round (`GateSync.sync_once`) uploads every pending line in batches
of up to `BATCH` (a batch is marked uploaded only on the server's 200, so a lost reply just sends it again
and the server counts it as duplicates), then pulls the public keys of ticket codes (kept when the service
has none to give) and the revocation deltas page by page. `BackgroundSync` runs
rounds on a daemon thread: every `interval` seconds while the service answers, and after a failure with a
capped backoff (1 s, 2 s, ... 30 s, jittered) for as long as it stays away, hours if need be.

A refused batch (4xx) is logged with its code and stays pending, never dropped. When the server names the
one line it refuses (`invalid_entry` with its `seq`), that line is held back (and reported on every round)
so the gate's other lines still land.
"""

import logging
import random
import threading
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Protocol

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from gates.client import REVOCATION_PAGE, Conflict, GateClient
from gates.wire import GateEntry
from hall_terminals.errors import ServiceError

BATCH = 500
MIN_DELAY = 1.0  # seconds before the first retry after a failed round
MAX_DELAY = 30.0  # the backoff's cap: a gate away for hours still reconnects within half a minute
INTERVAL = 5.0  # seconds between rounds while the service answers

log = logging.getLogger("gates.sync")


class SyncJournal(Protocol):
    """What the sync needs of the gate's journal (`gates.journal.GateJournal`)."""

    def pending(self, *, limit: int) -> list[GateEntry]: ...

    def mark_uploaded(self, seqs: list[int]) -> None: ...

    def revocation_version(self) -> int: ...

    def apply_revocations(self, *, version: int, ticket_ids: list[int]) -> None: ...

    def replace_ticket_keys(self, keys: Mapping[int, Ed25519PublicKey]) -> None: ...


@dataclass
class SyncReport:
    """What one round did; `errors` holds the refusals or the outage that ended a part of it."""

    batches: int = 0
    stored: int = 0
    duplicates: int = 0
    conflicts: list[Conflict] = field(default_factory=list)
    revocations: int = 0
    revocation_version: int | None = None
    ticket_keys: int | None = None  # keys the service published this round (None: it had none, or no answer)
    held: dict[int, str] = field(default_factory=dict)  # seq -> code of lines the server refuses one by one
    errors: list[ServiceError] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """Everything pending went up and the revocation list is current."""
        return not self.errors and not self.held

    def summary(self) -> str:
        """One line for the operator and the log."""
        parts = [
            f"stored {self.stored}",
            f"duplicates {self.duplicates}",
            f"conflicts {len(self.conflicts)}",
            f"revocations {self.revocations}",
        ]
        if self.revocation_version is not None:
            parts.append(f"revocation_version {self.revocation_version}")
        if self.ticket_keys is not None:
            parts.append(f"ticket_keys {self.ticket_keys}")
        if self.held:
            parts.append("held " + ",".join(f"{seq}:{code}" for seq, code in sorted(self.held.items())))
        return " ".join(parts)


def unreachable(error: ServiceError) -> bool:
    """The service is away (no answer, or a server-side failure): worth retrying unchanged later."""
    return error.code == "service_unreachable" or (error.status is not None and error.status >= 500)


def retry_delay(failures: int) -> float:
    """Seconds to wait after `failures` failed rounds in a row: doubling from 1 s, capped at 30 s."""
    if failures <= 0:
        return 0.0
    return min(MAX_DELAY, MIN_DELAY * float(2 ** min(failures - 1, 16)))


class GateSync:
    """One gate's uploads and revocation pulls; a round at a time, from one thread at a time."""

    def __init__(
        self,
        *,
        gate_id: int,
        journal: SyncJournal,
        client: GateClient,
        batch: int = BATCH,
        revocation_page: int = REVOCATION_PAGE,
    ) -> None:
        self.gate_id = gate_id
        self.journal = journal
        self.client = client
        self.batch = batch
        self.revocation_page = revocation_page
        self.held: dict[int, str] = {}

    def sync_once(self) -> SyncReport:
        """Upload everything pending, then pull the ticket-code keys and the revocation list; what went wrong is
        in the report."""
        report = SyncReport()
        try:
            self._upload(report)
        except ServiceError as error:
            report.errors.append(error)
            if unreachable(error):
                log.warning("gate %s: upload failed, will retry: %s (%s)", self.gate_id, error.code, error.message)
                return report  # the service is away: asking it for revocations now would only wait again
            log.error("gate %s: batch refused, kept pending: %s (%s)", self.gate_id, error.code, error.message)
        finally:
            report.held = dict(self.held)
        # The keys on every round, not only once a code met an unknown key id: after a rotation a hall prints
        # tickets under the new key at once, and a gate that asked only when such a code came would have
        # refused that visitor first. One small GET per round, as the revocation pull is.
        try:
            self._pull_keys(report)
        except ServiceError as error:
            report.errors.append(error)
            log.warning("gate %s: ticket key pull failed: %s (%s)", self.gate_id, error.code, error.message)
            if unreachable(error):
                return report
        try:
            self._pull(report)
        except ServiceError as error:
            report.errors.append(error)
            log.warning("gate %s: revocation pull failed: %s (%s)", self.gate_id, error.code, error.message)
        return report

    def _pull_keys(self, report: SyncReport) -> None:
        try:
            keys = self.client.public_keys()
        except ServiceError as error:
            if error.code != "signing_keys_unavailable":
                raise
            # The service is not set up to sign codes: keep the keys the gate has; paper still verifies.
            log.info("gate %s: the service publishes no ticket keys yet", self.gate_id)
            return
        self.journal.replace_ticket_keys(keys)
        report.ticket_keys = len(keys)

    def _upload(self, report: SyncReport) -> None:
        while True:
            candidates = self.journal.pending(limit=self.batch + len(self.held))
            lines = [line for line in candidates if line.seq not in self.held][: self.batch]
            if not lines:
                return
            try:
                reply = self.client.upload(self.gate_id, lines)
            except ServiceError as error:
                if self._hold_refused_line(error, lines):
                    continue
                raise
            self.journal.mark_uploaded([line.seq for line in lines])
            report.batches += 1
            report.stored += reply.stored
            report.duplicates += reply.duplicates
            report.conflicts.extend(reply.conflicts)
            if reply.conflicts:
                found = Counter(conflict.code for conflict in reply.conflicts)
                log.info("gate %s: the service reports conflicts %s", self.gate_id, dict(sorted(found.items())))

    def _hold_refused_line(self, error: ServiceError, lines: list[GateEntry]) -> bool:
        """The server refused the batch for one named line: keep that line pending, send the others."""
        seq = error.extra.get("seq")
        if error.code != "invalid_entry" or not any(line.seq == seq for line in lines):
            return False
        assert isinstance(seq, int)
        self.held[seq] = error.code
        log.error("gate %s: line %s refused (%s: %s), kept pending", self.gate_id, seq, error.code, error.message)
        return True

    def _pull(self, report: SyncReport) -> None:
        while True:
            since = self.journal.revocation_version()
            page = self.client.revocations(since=since, limit=self.revocation_page)
            if page.version < since or (page.more and page.version == since):
                raise ServiceError("unexpected_reply", f"revocation list went from version {since} to {page.version}")
            if page.version != since:
                self.journal.apply_revocations(version=page.version, ticket_ids=[r.ticket_id for r in page.revocations])
            report.revocations += len(page.revocations)
            report.revocation_version = page.version
            if not page.more:
                return


class BackgroundSync:
    """Rounds of a `GateSync` on a daemon thread until `stop`; a failed round backs off, a good one waits `interval`."""

    def __init__(
        self,
        sync: GateSync,
        *,
        interval: float = INTERVAL,
        delay: Callable[[int], float] = retry_delay,
        on_report: Callable[[SyncReport], None] | None = None,
    ) -> None:
        self.sync = sync
        self.interval = interval
        self.delay = delay
        self.on_report = on_report
        self.failures = 0  # failed rounds in a row
        self.rounds = 0
        self._stopping = threading.Event()
        self._wake = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"gate-{sync.gate_id}-sync", daemon=True)

    def start(self) -> None:
        """Start the thread; the first round runs at once."""
        self._thread.start()

    def wake(self) -> None:
        """Run the next round now instead of at the end of the wait."""
        self._wake.set()

    def stop(self, *, timeout: float = 30.0) -> bool:
        """Stop after the round in progress; True when the thread has ended within `timeout` seconds."""
        self._stopping.set()
        self._wake.set()
        self._thread.join(timeout)
        return not self._thread.is_alive()

    def _run(self) -> None:
        while not self._stopping.is_set():
            report = self._round()
            self.rounds += 1
            if report.ok and self.failures:
                gate, failed = self.sync.gate_id, self.failures
                log.info("gate %s: in sync again after %d failed rounds: %s", gate, failed, report.summary())
            self.failures = 0 if report.ok else self.failures + 1
            if self.on_report is not None:
                self.on_report(report)
            wait = self.interval if self.failures == 0 else self.delay(self.failures) * _jitter()
            self._wake.wait(wait)
            self._wake.clear()

    def _round(self) -> SyncReport:
        try:
            return self.sync.sync_once()
        except Exception as error:
            # The sync thread must outlive any fault (a full disk, a bug): the gate keeps admitting meanwhile.
            log.exception("gate %s: sync round failed", self.sync.gate_id)
            return SyncReport(errors=[ServiceError("sync_failed", f"{type(error).__name__}: {error}")])


def _jitter() -> float:
    # Gates cut off together must not all come back in the same second.
    return random.uniform(0.75, 1.0)  # noqa: S311  # spreading retries, not a secret
