"""The gate's sync against a service that comes and goes: every journal line lands once, nothing is dropped."""

import logging
import threading
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path

import httpx
import msgspec
import pytest

from expo.clock import EXPO_TZ
from gates.client import GateClient
from gates.journal import GateJournal
from gates.sync import MAX_DELAY, BackgroundSync, GateSync, retry_delay
from gates.wire import MAX_BATCH, Event, GateBatch, GateEntry

GATE = 1001
T0 = datetime(2010, 10, 16, 9, 0, tzinfo=EXPO_TZ)


class FakeService:
    """The gate endpoints in memory: stores lines by seq (duplicates counted), serves a revocation list.

    `failures` is the script of what the next requests meet: "refused" (connection refused), "timeout",
    "lost" (stored, then the reply is lost), or a status code; afterwards it answers normally."""

    def __init__(self, *, revoked: list[int] | None = None) -> None:
        self.stored: dict[int, GateEntry] = {}
        self.sent: list[int] = []  # every seq of every batch that reached the service
        self.batches: list[int] = []  # sizes
        self.revoked = revoked or []
        self.failures: list[str | int | None] = []
        self.refuse_seq: int | None = None  # a line the service refuses as invalid_entry

    def transport(self) -> httpx.MockTransport:
        return httpx.MockTransport(self.handle)

    def handle(self, request: httpx.Request) -> httpx.Response:
        failure = self.failures.pop(0) if self.failures else None
        if failure == "refused":
            raise httpx.ConnectError("connection refused", request=request)
        if failure == "timeout":
            raise httpx.ReadTimeout("timed out", request=request)
        if isinstance(failure, int):
            return httpx.Response(failure, json={"code": f"fail_{failure}", "detail": "scripted", "status": failure})
        assert request.headers["Authorization"] == "Bearer exg_token"
        if request.url.path == "/v1/gate-entries":
            reply = self._entries(request)
            if failure == "lost":
                raise httpx.ReadError("connection reset", request=request)
            return reply
        if request.url.path == "/v1/ticket-keys":  # a service not set up to sign ticket codes
            return httpx.Response(503, json={"code": "signing_keys_unavailable", "detail": "none", "status": 503})
        assert request.url.path == "/v1/gate-revocations"
        since, limit = int(request.url.params["since"]), int(request.url.params["limit"])
        versions = [v for v in range(1, len(self.revoked) + 1) if v > since][:limit]
        page = [{"version": v, "ticket_id": self.revoked[v - 1], "reason": "void"} for v in versions]
        more = bool(versions) and versions[-1] < len(self.revoked)
        version = versions[-1] if versions else since
        return httpx.Response(200, json={"version": version, "revocations": page, "more": more})

    def _entries(self, request: httpx.Request) -> httpx.Response:
        batch = msgspec.json.decode(request.content, type=GateBatch)
        assert batch.gate_id == GATE
        assert len(batch.entries) <= MAX_BATCH
        if self.refuse_seq is not None and any(e.seq == self.refuse_seq for e in batch.entries):
            return httpx.Response(400, json={"code": "invalid_entry", "detail": "bad line", "seq": self.refuse_seq})
        self.batches.append(len(batch.entries))
        stored = duplicates = 0
        for entry in batch.entries:
            self.sent.append(entry.seq)
            if entry.seq in self.stored:
                duplicates += 1
            else:
                self.stored[entry.seq] = entry
                stored += 1
        conflicts = [{"seq": e.seq, "code": "forced_admission"} for e in batch.entries if e.event is Event.FORCED]
        return httpx.Response(
            200, json={"gate_id": GATE, "stored": stored, "duplicates": duplicates, "conflicts": conflicts}
        )


@pytest.fixture
def journal(tmp_path: Path) -> Iterator[GateJournal]:
    kept = GateJournal(tmp_path / "journal.sqlite3", durable=False)
    yield kept
    kept.close()


def fill(journal: GateJournal, count: int, *, start: int = 0) -> list[GateEntry]:
    lines = []
    for n in range(start, start + count):
        event = Event.FORCED if n % 97 == 5 else Event.ADMITTED
        lines.append(
            journal.append(
                event=event, at=T0 + timedelta(seconds=n), code="ok", csn=f"0031{n:012x}", ctr=n, ticket_id=n + 1,
                slot=1, card_marked=True, reason="lost phone" if event is Event.FORCED else None,
                supervisor="SUP-1" if event is Event.FORCED else None,
            )
        )  # fmt: skip
    return lines


def syncer(journal: GateJournal, service: FakeService, **options: int) -> GateSync:
    client = GateClient("http://service", "exg_token", transport=service.transport())
    return GateSync(gate_id=GATE, journal=journal, client=client, **options)


def test_the_backoff_doubles_from_one_second_to_thirty() -> None:
    assert [retry_delay(n) for n in range(9)] == [0, 1, 2, 4, 8, 16, MAX_DELAY, MAX_DELAY, MAX_DELAY]
    assert retry_delay(10_000) == MAX_DELAY  # hours away: still half a minute


def test_pending_lines_go_up_in_batches_of_500_and_are_marked(journal: GateJournal) -> None:
    lines = fill(journal, 1203)
    service = FakeService()
    report = syncer(journal, service).sync_once()
    assert report.ok, report.errors
    assert service.batches == [500, 500, 203]
    assert (report.batches, report.stored, report.duplicates) == (3, 1203, 0)
    assert [c.seq for c in report.conflicts] == [line.seq for line in lines if line.event is Event.FORCED]
    assert service.stored == {line.seq: line for line in lines}
    assert journal.pending(limit=10) == []
    again = syncer(journal, service).sync_once()
    assert (again.batches, again.stored) == (0, 0)
    assert len(service.sent) == 1203  # nothing went up twice


def test_an_outage_keeps_everything_pending_and_the_return_lands_it_once(journal: GateJournal) -> None:
    lines = fill(journal, 700)
    service = FakeService()
    service.failures = ["refused", "timeout", 503, 500, 502]
    sync = syncer(journal, service)
    codes = []
    for _ in range(5):
        report = sync.sync_once()
        assert not report.ok
        codes.append((report.errors[0].code, report.errors[0].status))
        assert len(report.errors) == 1  # the service is away: no revocation pull waits for it as well
    assert codes == [
        ("service_unreachable", None), ("service_unreachable", None), ("fail_503", 503), ("fail_500", 500),
        ("fail_502", 502),
    ]  # fmt: skip
    assert len(journal.pending(limit=1000)) == 700
    assert service.stored == {}
    more = fill(journal, 10, start=700)  # the gate keeps admitting meanwhile
    assert sync.sync_once().ok
    assert service.stored == {line.seq: line for line in [*lines, *more]}
    assert len(service.sent) == 710


def test_a_lost_reply_sends_the_batch_again_and_the_service_counts_duplicates(journal: GateJournal) -> None:
    lines = fill(journal, 600)
    service = FakeService()
    service.failures = [None, "lost"]  # the first batch lands, the second's reply is lost
    sync = syncer(journal, service)
    first = sync.sync_once()
    assert [e.code for e in first.errors] == ["service_unreachable"]
    assert first.stored == 500
    assert [line.seq for line in journal.pending(limit=1000)] == [line.seq for line in lines[500:]]
    second = sync.sync_once()
    assert (second.stored, second.duplicates) == (0, 100)
    assert service.stored == {line.seq: line for line in lines}
    assert journal.pending(limit=10) == []


def test_a_refused_batch_is_reported_with_its_code_and_stays_pending(
    journal: GateJournal, caplog: pytest.LogCaptureFixture
) -> None:
    fill(journal, 20)
    service = FakeService(revoked=[55])
    service.failures = [403]
    with caplog.at_level(logging.ERROR, logger="gates.sync"):
        report = syncer(journal, service).sync_once()
    assert [(e.code, e.status) for e in report.errors] == [("fail_403", 403)]
    assert "fail_403" in caplog.text
    assert len(journal.pending(limit=100)) == 20
    assert journal.is_revoked(55)  # a refused upload does not stop the revocation pull


def test_a_line_the_service_refuses_is_held_back_and_the_others_land(journal: GateJournal) -> None:
    lines = fill(journal, 30)
    service = FakeService()
    service.refuse_seq = lines[3].seq
    sync = syncer(journal, service, batch=10)
    report = sync.sync_once()
    assert report.held == {lines[3].seq: "invalid_entry"}
    assert not report.ok
    assert sorted(service.stored) == [line.seq for line in lines if line.seq != lines[3].seq]
    assert [line.seq for line in journal.pending(limit=100)] == [lines[3].seq]  # never dropped
    assert sync.sync_once().held == {lines[3].seq: "invalid_entry"}  # and reported on every round


def test_revocations_come_in_pages_until_the_list_is_current(journal: GateJournal) -> None:
    service = FakeService(revoked=list(range(100, 125)))
    report = syncer(journal, service, revocation_page=10).sync_once()
    assert report.ok
    assert (report.revocations, report.revocation_version) == (25, 25)
    assert journal.revocation_version() == 25
    assert all(journal.is_revoked(t) for t in range(100, 125))
    service.revoked.append(7)
    assert syncer(journal, service).sync_once().revocations == 1
    assert journal.is_revoked(7)
    assert journal.revocation_version() == 26


def test_a_revocation_list_that_does_not_advance_is_an_error_not_a_loop(journal: GateJournal) -> None:
    def stuck(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/v1/ticket-keys":
            return httpx.Response(503, json={"code": "signing_keys_unavailable", "detail": "none", "status": 503})
        return httpx.Response(200, json={"version": 0, "revocations": [], "more": True})

    client = GateClient("http://service", "exg_token", transport=httpx.MockTransport(stuck))
    report = GateSync(gate_id=GATE, journal=journal, client=client).sync_once()
    assert [e.code for e in report.errors] == ["unexpected_reply"]


@pytest.mark.parametrize(
    "reply", [httpx.Response(200, json={"ok": 1}), httpx.Response(200, text="<html>Wi-Fi login</html>")]
)
def test_a_reply_that_does_not_fit_marks_nothing(journal: GateJournal, reply: httpx.Response) -> None:
    fill(journal, 3)
    client = GateClient("http://s", "t", transport=httpx.MockTransport(lambda _: reply))
    report = GateSync(gate_id=GATE, journal=journal, client=client).sync_once()
    assert report.errors[0].code == "unexpected_reply"
    assert len(journal.pending(limit=10)) == 3


def test_the_background_thread_backs_off_while_the_service_is_away_and_lands_everything(
    journal: GateJournal,
) -> None:
    lines = fill(journal, 1100)
    service = FakeService(revoked=[9])
    service.failures = [*(["refused"] * 6), 503, "timeout", "lost"]
    waits: list[int] = []
    landed = threading.Event()

    def delay(failures: int) -> float:
        waits.append(failures)
        return 0.001

    def seen(report: object) -> None:
        if not journal.pending(limit=1) and journal.revocation_version() == 1:
            landed.set()

    background = BackgroundSync(syncer(journal, service), interval=0.001, delay=delay, on_report=seen)
    background.start()
    assert landed.wait(10)
    assert background.stop(timeout=10)
    assert waits[:9] == list(range(1, 10))  # one more failure each round, so the backoff grows to its cap
    assert service.stored == {line.seq: line for line in lines}
    assert len(service.sent) == len(lines) + 500  # only the batch whose reply was lost went twice
    assert journal.is_revoked(9)


def test_the_background_thread_survives_a_fault_of_its_own(journal: GateJournal) -> None:
    fill(journal, 2)
    service = FakeService()
    sync = syncer(journal, service)
    reports: list[bool] = []
    broken = GateJournal(journal.path)
    broken.close()  # every call on a closed journal raises: a fault, not an outage
    sync.journal = broken
    background = BackgroundSync(sync, interval=0.001, delay=lambda _: 0.001, on_report=lambda r: reports.append(r.ok))
    background.start()
    while len(reports) < 3:
        threading.Event().wait(0.01)
    sync.journal = journal
    while not reports[-1]:
        threading.Event().wait(0.01)
    assert background.stop(timeout=10)
    assert reports[:3] == [False, False, False]
    assert len(service.stored) == 2
