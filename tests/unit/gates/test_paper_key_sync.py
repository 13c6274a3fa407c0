"""The sync's pull of ticket-code keys against a service in memory: kept, replaced, kept when the service has none,
and what a failed pull does to the rest of the round."""

from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from gates.client import GateClient
from gates.journal import GateJournal
from gates.sync import GateSync
from tests.unit.gates.support import at
from ticketing.signing_keys import generate_keyring, public_document, rotate_keyring

Handler = Callable[[httpx.Request], httpx.Response]
NO_REVOCATIONS = {"version": 0, "revocations": [], "more": False}


@pytest.fixture
def journal(tmp_path: Path) -> Iterator[GateJournal]:
    kept = GateJournal(tmp_path / "journal.sqlite3", durable=False)
    yield kept
    kept.close()


def service(keys: Handler, asked: list[str]) -> GateClient:
    def handle(request: httpx.Request) -> httpx.Response:
        asked.append(request.url.path)
        if request.url.path == "/v1/ticket-keys":
            return keys(request)
        return httpx.Response(200, json=NO_REVOCATIONS)

    return GateClient("http://service", "exg_token", transport=httpx.MockTransport(handle))


def test_the_published_keys_replace_the_kept_ones(journal: GateJournal, tmp_path: Path) -> None:
    path = tmp_path / "ring.json"
    ring = generate_keyring(path, now=at("2010-04-01"))
    document = public_document(ring)
    asked: list[str] = []
    sync = GateSync(gate_id=1001, journal=journal, client=service(lambda _: httpx.Response(200, json=document), asked))
    report = sync.sync_once()
    assert (report.ok, report.ticket_keys, set(journal.ticket_keys())) == (True, 1, {1})
    assert asked == ["/v1/ticket-keys", "/v1/gate-revocations"]  # keys first, then the revocations
    document = public_document(rotate_keyring(path, now=at("2010-06-01")))
    assert sync.sync_once().ticket_keys == 2
    assert set(journal.ticket_keys()) == {1, 2}


def test_a_service_without_keys_leaves_the_kept_keys(journal: GateJournal, tmp_path: Path) -> None:
    ring = generate_keyring(tmp_path / "ring.json", now=at("2010-04-01"))
    journal.replace_ticket_keys(ring.public_keys())
    problem = {"code": "signing_keys_unavailable", "detail": "none", "status": 503}
    asked: list[str] = []
    client = service(lambda _: httpx.Response(503, json=problem), asked)
    report = GateSync(gate_id=1001, journal=journal, client=client).sync_once()
    assert (report.ok, report.ticket_keys, set(journal.ticket_keys())) == (True, None, {1})
    assert asked == ["/v1/ticket-keys", "/v1/gate-revocations"]


def test_an_unreadable_key_list_is_an_error_but_the_revocations_still_come(journal: GateJournal) -> None:
    asked: list[str] = []
    client = service(lambda _: httpx.Response(200, json={"kind": "something-else", "keys": []}), asked)
    report = GateSync(gate_id=1001, journal=journal, client=client).sync_once()
    assert [e.code for e in report.errors] == ["unexpected_reply"]
    assert asked == ["/v1/ticket-keys", "/v1/gate-revocations"]
    assert report.revocation_version == 0
    assert journal.ticket_keys() == {}


def test_a_service_gone_away_ends_the_round_at_the_keys(journal: GateJournal) -> None:
    def gone(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused", request=request)

    asked: list[str] = []
    report = GateSync(gate_id=1001, journal=journal, client=service(gone, asked)).sync_once()
    assert [e.code for e in report.errors] == ["service_unreachable"]
    assert asked == ["/v1/ticket-keys"]  # asking for revocations now would only wait again
