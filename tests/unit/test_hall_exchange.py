"""The hall terminal's voucher exchange against a fake service: the offline check and its key cache, refusals
that never reach the exchange endpoint, the Idempotency-Key kept across a lost reply, the printed ticket,
the card path, the journal lines and the command line."""

import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import date, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from click.testing import CliRunner
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from expo.clock import EXPO_TZ
from hall_terminals import card as card_steps
from hall_terminals import cli as cli_module
from hall_terminals import client as client_module
from hall_terminals.card import Tap, WriteReceipt
from hall_terminals.client import ServiceClient
from hall_terminals.errors import ServiceError, TerminalError
from hall_terminals.exchange import KEYS_FILE, Into, KeyCache, check_voucher
from hall_terminals.journal import EntryType, find_entry, pending_exchange_key
from hall_terminals.session import StaffSession, save_session
from hall_terminals.terminal import HallTerminal
from simcard.channel import CardChannel
from simcard.messages import CardInfo
from ticketing.qr import qr_png, read_qr
from ticketing.signed_codes import CodeKind, claim_for, grouped, sign_claim, verify_code
from ticketing.signing_keys import generate_keyring, load_keyring, public_document, rotate_keyring

NOW = datetime(2010, 6, 1, 10, 0, tzinfo=EXPO_TZ)
HALL = "Shanghai Xujiahui hall"
CSN = "0031000000000042"


@pytest.fixture(autouse=True)
def no_pause(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(client_module, "RETRY_PAUSE", 0)


@dataclass
class FakeService:
    """The two endpoints an exchange needs, as the contract describes them, over the platform's keyring."""

    ring_path: Path
    key_fetches: int = 0
    exchange_keys: list[str] = field(default_factory=list)
    bodies: list[dict[str, Any]] = field(default_factory=list)
    lose_replies: int = 0  # this many exchange replies are lost after the work is done
    refuse: dict[str, Any] | None = None  # the next exchange is refused with this problem document
    replies: dict[str, tuple[int, dict[str, Any]]] = field(default_factory=dict)
    exchanged: dict[int, dict[str, Any]] = field(default_factory=dict)

    def __call__(self, request: httpx.Request) -> httpx.Response:
        if request.method == "GET" and request.url.path == "/v1/ticket-keys":
            self.key_fetches += 1
            return httpx.Response(200, json=public_document(load_keyring(self.ring_path)))
        assert (request.method, request.url.path) == ("POST", "/v1/vouchers/exchange")
        key = request.headers["Idempotency-Key"]
        self.exchange_keys.append(key)
        if key not in self.replies:
            self.replies[key] = self._exchange(json.loads(request.content))
        if self.lose_replies:
            self.lose_replies -= 1
            raise httpx.ReadTimeout("the reply was lost", request=request)
        status, body = self.replies[key]
        return httpx.Response(status, json=body)

    def _exchange(self, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        self.bodies.append(body)
        if self.refuse is not None:
            problem, self.refuse = self.refuse, None
            return problem["status"], problem
        ring = load_keyring(self.ring_path)
        voucher = verify_code(body["code"], ring.public_keys())
        if voucher.ticket_id in self.exchanged:
            done = self.exchanged[voucher.ticket_id]
            return 409, {"code": "already_exchanged", "status": 409, "detail": "the voucher was exchanged", **done}
        self.exchanged[voucher.ticket_id] = {
            "exchanged_at": "2010-06-01T02:00:00+00:00", "province": "31", "hall": HALL, "into": body["into"],
        }  # fmt: skip
        physical = None
        if body["into"] == "physical":
            claim = replace(voucher, kind=CodeKind.PHYSICAL, kid=ring.current.kid)
            code = ring.sign(claim)
            physical = {"code": code, "code_grouped": grouped(code), "kid": claim.kid,
                        "first_day": str(claim.first_day), "last_day": str(claim.last_day)}  # fmt: skip
        return 201, {
            "ticket_id": voucher.ticket_id, "order_id": voucher.ticket_id + 1000, "into": body["into"],
            "msisdn": "13425540001", "ticket_type": voucher.ticket_type.value, "first_day": str(voucher.first_day),
            "last_day": str(voucher.last_day), "exchanged_at": "2010-06-01T02:00:00+00:00", "physical": physical,
        }  # fmt: skip


@pytest.fixture
def ring_path(tmp_path: Path) -> Path:
    path = tmp_path / "ring.json"
    generate_keyring(path, now=NOW)
    return path


@pytest.fixture
def service(ring_path: Path) -> FakeService:
    return FakeService(ring_path)


def _voucher(ring_path: Path, ticket_id: int = 7, *, ticket_type: str = "standard", day: date | None = None) -> str:
    ring = load_keyring(ring_path)
    claim = claim_for(CodeKind.VOUCHER, kid=ring.current.kid, ticket_id=ticket_id, ticket_type=ticket_type,
                      visit_day=day, upgrade_day=None)  # fmt: skip
    return ring.sign(claim)


def _session() -> StaffSession:
    return StaffSession(service="http://service", token="exs_t", staff_no="SH-C001", name="Li Wei", hall=HALL,
                        province_code="31", expires_at="2010-06-01T20:00:00+08:00")  # fmt: skip


@contextmanager
def _no_card() -> Iterator[CardChannel]:
    raise AssertionError("an exchange into a physical ticket touches no card")
    yield  # pragma: no cover


def _terminal(data_dir: Path, service: FakeService, *, now: datetime = NOW, connect: Any = _no_card) -> HallTerminal:
    client = ServiceClient("http://service", "exs_t", transport=httpx.MockTransport(service))
    return HallTerminal(data_dir=data_dir, session=_session(), client=client, connect=connect, clock=lambda: now)


def _refused(terminal: HallTerminal, code: str, into: Into = Into.PHYSICAL) -> TerminalError:
    with pytest.raises(TerminalError) as refused:
        terminal.exchange(code, into=into)
    return refused.value


def test_an_exchange_into_a_physical_ticket(tmp_path: Path, ring_path: Path, service: FakeService) -> None:
    terminal = _terminal(tmp_path, service)
    outcome = terminal.exchange(grouped(_voucher(ring_path)).lower(), into=Into.PHYSICAL)
    entry = outcome.exchange.entry
    assert (entry.type, entry.ticket_id, entry.order_id, entry.into, entry.amount_fen) == (
        EntryType.EXCHANGE, 7, 1007, "physical", 0,
    )  # fmt: skip
    assert service.bodies == [{"code": _voucher(ring_path), "into": "physical", "csn": None}]
    printed = outcome.exchange.ticket
    assert printed is not None
    assert printed.png.parent == tmp_path / "tickets"
    assert read_qr(printed.png) == entry.physical_code
    assert printed.pdf.read_bytes().startswith(b"%PDF")
    physical = verify_code(entry.physical_code or "", load_keyring(ring_path).public_keys())
    assert (physical.kind, physical.ticket_id) == (CodeKind.PHYSICAL, 7)
    assert "VOUCHER EXCHANGED" in outcome.exchange.text
    assert "INTO: PHYSICAL TICKET" in outcome.exchange.text
    assert outcome.exchange.png.is_file()


def test_the_keys_are_fetched_once_and_kept(tmp_path: Path, ring_path: Path, service: FakeService) -> None:
    _terminal(tmp_path, service).exchange(_voucher(ring_path, 7), into=Into.PHYSICAL)
    assert service.key_fetches == 1
    assert (tmp_path / KEYS_FILE).is_file()
    _terminal(tmp_path, service).exchange(_voucher(ring_path, 8), into=Into.PHYSICAL, out_dir=tmp_path / "out")
    assert service.key_fetches == 1  # the kept keys verified the second voucher and its physical code
    assert (tmp_path / "out" / "ticket-8.pdf").is_file()


def test_an_unreadable_key_file_is_fetched_again(tmp_path: Path, ring_path: Path, service: FakeService) -> None:
    (tmp_path / KEYS_FILE).write_text("{not json")
    keys = KeyCache(tmp_path, _terminal(tmp_path, service).client)
    assert set(keys.keys()) == {1}
    assert service.key_fetches == 1
    assert json.loads((tmp_path / KEYS_FILE).read_text())["kind"] == "expo-verify-keys"


def test_keys_are_refreshed_once_for_a_key_id_not_held(tmp_path: Path, ring_path: Path, service: FakeService) -> None:
    _terminal(tmp_path, service).exchange(_voucher(ring_path, 7), into=Into.PHYSICAL)
    rotate_keyring(ring_path, now=NOW)  # the platform rotated: new vouchers name key 2
    outcome = _terminal(tmp_path, service).exchange(_voucher(ring_path, 8), into=Into.PHYSICAL)
    assert service.key_fetches == 2
    assert outcome.exchange.entry.ticket_id == 8
    _terminal(tmp_path, service).exchange(_voucher(ring_path, 9), into=Into.PHYSICAL)
    assert service.key_fetches == 2  # key 2 is kept now


def test_a_key_id_the_platform_does_not_publish(tmp_path: Path, service: FakeService) -> None:
    stranger = tmp_path / "other-ring.json"
    generate_keyring(stranger, now=NOW)
    rotate_keyring(stranger, now=NOW)  # its key 2 is no platform key
    terminal = _terminal(tmp_path, service)
    assert _refused(terminal, _voucher(stranger)).code == "unknown_signing_key"
    assert service.key_fetches == 1  # fetched because none were kept; not again for the same need
    assert _refused(_terminal(tmp_path, service), _voucher(stranger)).code == "unknown_signing_key"
    assert service.key_fetches == 2  # kept keys: refreshed once, then refused
    assert service.exchange_keys == []


def _physical_code(ring_path: Path) -> str:
    ring = load_keyring(ring_path)
    claim = claim_for(CodeKind.PHYSICAL, kid=1, ticket_id=7, ticket_type="standard", visit_day=None, upgrade_day=None)
    return ring.sign(claim)


def _forged(ring_path: Path) -> str:
    claim = claim_for(CodeKind.VOUCHER, kid=1, ticket_id=7, ticket_type="standard", visit_day=None, upgrade_day=None)
    return sign_claim(claim, Ed25519PrivateKey.generate())


@pytest.mark.parametrize(
    ("make", "code"),
    [
        (_physical_code, "not_a_voucher"),
        (_forged, "code_forged"),
        (lambda ring: _voucher(ring)[:-3], "code_malformed"),
        (lambda ring: _voucher(ring).replace("A", "1", 1), "code_malformed"),
        (lambda ring: _voucher(ring, ticket_type="peak", day=date(2010, 5, 3)), "voucher_expired"),
    ],
    ids=["physical", "forged", "truncated", "not-base32", "expired"],
)
def test_refusals_never_reach_the_exchange(
    tmp_path: Path, ring_path: Path, service: FakeService, make: Any, code: str
) -> None:
    terminal = _terminal(tmp_path, service)
    assert _refused(terminal, make(ring_path)).code == code
    assert service.exchange_keys == []
    assert terminal.journal.entries() == []


def test_expiry_is_judged_on_the_expo_local_day(tmp_path: Path, ring_path: Path, service: FakeService) -> None:
    peak = _voucher(ring_path, ticket_type="peak", day=date(2010, 5, 3))
    keys = KeyCache(tmp_path, _terminal(tmp_path, service).client)
    assert check_voucher(peak, keys=keys, today=date(2010, 5, 3)).ticket_id == 7  # valid through its last day
    after_midnight = datetime.fromisoformat("2010-05-03T16:30:00+00:00")  # 00:30 on 05-04 in Shanghai
    assert _refused(_terminal(tmp_path, service, now=after_midnight), peak).code == "voucher_expired"
    before_midnight = datetime.fromisoformat("2010-05-03T15:59:00+00:00")  # 23:59 on 05-03 in Shanghai
    assert _terminal(tmp_path, service, now=before_midnight).exchange(peak, into=Into.PHYSICAL).exchange.ticket


def test_the_key_is_kept_across_a_lost_reply(tmp_path: Path, ring_path: Path, service: FakeService) -> None:
    voucher = _voucher(ring_path)
    service.lose_replies = client_module.RETRIES  # the exchange is done, every reply of this command is lost
    with pytest.raises(ServiceError) as lost:
        _terminal(tmp_path, service).exchange(voucher, into=Into.PHYSICAL)
    assert lost.value.code == "service_unreachable"
    [sent] = _terminal(tmp_path, service).journal.entries()
    assert sent.type == EntryType.EXCHANGE_SENT
    assert sent.idempotency_key
    key = sent.idempotency_key
    assert service.exchange_keys == [key] * client_module.RETRIES

    outcome = _terminal(tmp_path, service).exchange(voucher, into=Into.PHYSICAL)  # the clerk runs it again
    assert service.exchange_keys[-1] == key
    assert outcome.exchange.entry.idempotency_key == key
    assert len(service.bodies) == 1  # exchanged once
    assert outcome.exchange.ticket is not None
    entries = _terminal(tmp_path, service).journal.entries()
    assert [e.type for e in entries] == [EntryType.EXCHANGE_SENT, EntryType.EXCHANGE]
    assert pending_exchange_key(entries, ticket_id=7, into="physical", csn=None) is None


def test_already_exchanged_says_where_and_when(tmp_path: Path, ring_path: Path, service: FakeService) -> None:
    voucher = _voucher(ring_path)
    first = _terminal(tmp_path, service).exchange(voucher, into=Into.PHYSICAL)
    again = _refused(_terminal(tmp_path, service), voucher)
    assert again.code == "already_exchanged"
    assert again.message == (
        f"the voucher of ticket 7 was exchanged into physical at {HALL} (province 31) on 2010-06-01 10:00:00"
    )
    assert service.exchange_keys[-1] != first.exchange.entry.idempotency_key  # a new request, a new key
    refused = _terminal(tmp_path, service).journal.entries()[-1]
    assert (refused.type, refused.refusal) == (EntryType.EXCHANGE_REFUSED, "already_exchanged")
    assert find_entry(_terminal(tmp_path, service).journal.entries(), None).type == EntryType.EXCHANGE


def test_a_refusal_closes_its_key(tmp_path: Path, ring_path: Path, service: FakeService) -> None:
    voucher = _voucher(ring_path)
    service.refuse = {"code": "voucher_revoked", "status": 409, "detail": "the ticket was voided"}
    assert _refused(_terminal(tmp_path, service), voucher).code == "voucher_revoked"
    _terminal(tmp_path, service).exchange(voucher, into=Into.PHYSICAL)
    first, second = service.exchange_keys
    assert first != second  # the stored refusal is not replayed to the retry


def test_a_failure_of_the_service_keeps_its_key(tmp_path: Path, ring_path: Path, service: FakeService) -> None:
    voucher = _voucher(ring_path)
    service.refuse = {"code": "internal_error", "status": 500, "detail": "fault"}
    assert _refused(_terminal(tmp_path, service), voucher).code == "internal_error"
    service.replies.clear()  # a 5xx is not stored: the retry runs again
    _terminal(tmp_path, service).exchange(voucher, into=Into.PHYSICAL)
    first, second = service.exchange_keys
    assert first == second


def test_reprint_prints_the_ticket_again(tmp_path: Path, ring_path: Path, service: FakeService) -> None:
    terminal = _terminal(tmp_path, service)
    done = terminal.exchange(_voucher(ring_path), into=Into.PHYSICAL)
    again = terminal.reprint(None)
    assert again.entry.serial == done.exchange.entry.serial
    assert "*** REPRINT ***" in again.text
    assert again.ticket is not None
    assert again.ticket.png.name == "ticket-7-reprint.png"
    assert read_qr(again.ticket.png) == done.exchange.entry.physical_code
    batch_no, by_type, exchanges = terminal.totals()
    assert (batch_no, exchanges, by_type[EntryType.SALE].count) == (1, 1, 0)


class _Card:
    """A card channel nobody talks to: the tap and the write are replaced in these tests."""

    def transmit(self, apdu: bytes) -> bytes:
        raise AssertionError("the card steps are faked")


def _fake_card(monkeypatch: pytest.MonkeyPatch, *, province: str = "31", free: tuple[int, ...] = (1, 2)) -> list[int]:
    info = CardInfo(csn=bytes.fromhex(CSN), province=province, key_version=1, ctr=0)
    writes: list[int] = []

    def write(api: object, channel: object, ticket_id: int, *, tapped: Tap | None = None) -> WriteReceipt:
        assert tapped is not None
        assert tapped.csn == CSN
        writes.append(ticket_id)
        return WriteReceipt(ticket_id, 55, 1, CSN, free[0], None)

    monkeypatch.setattr(card_steps, "tap", lambda channel: Tap(info, free, ()))
    monkeypatch.setattr(card_steps, "write_ticket", write)
    return writes


@contextmanager
def _reader() -> Iterator[CardChannel]:
    yield _Card()


def test_an_exchange_onto_the_card_in_the_reader(
    tmp_path: Path, ring_path: Path, service: FakeService, monkeypatch: pytest.MonkeyPatch
) -> None:
    writes = _fake_card(monkeypatch)
    outcome = _terminal(tmp_path, service, connect=_reader).exchange(_voucher(ring_path), into=Into.EXPO_CARD)
    assert service.bodies == [{"code": _voucher(ring_path), "into": "expo_card", "csn": CSN}]
    assert writes == [7]
    assert outcome.exchange.ticket is None
    assert (outcome.exchange.entry.csn, outcome.exchange.entry.physical_code) == (CSN, None)
    assert outcome.write is not None
    written = outcome.write.entry
    assert (written.type, written.ticket_id, written.order_id, written.msisdn, written.slot) == (
        EntryType.WRITE, 7, 1007, "13425540001", 1,
    )  # fmt: skip
    assert "INTO: EXPO CARD" in outcome.exchange.text
    assert f"CARD: {CSN.upper()}\n" in outcome.exchange.text  # no slot yet on the exchange slip


@pytest.mark.parametrize(
    ("province", "free", "code"), [("44", (1,), "card_of_other_province"), ("31", (), "card_full")]
)
def test_a_card_that_cannot_take_the_ticket_is_refused_before_the_exchange(
    tmp_path: Path,
    ring_path: Path,
    service: FakeService,
    monkeypatch: pytest.MonkeyPatch,
    province: str,
    free: tuple[int, ...],
    code: str,
) -> None:
    _fake_card(monkeypatch, province=province, free=free)
    terminal = _terminal(tmp_path, service, connect=_reader)
    assert _refused(terminal, _voucher(ring_path), Into.EXPO_CARD).code == code
    assert service.exchange_keys == []


def test_a_failed_write_leaves_the_exchange_standing(
    tmp_path: Path, ring_path: Path, service: FakeService, monkeypatch: pytest.MonkeyPatch
) -> None:
    _fake_card(monkeypatch)

    def pulled(*args: object, **kwargs: object) -> WriteReceipt:
        raise TerminalError("card_removed", "the card was taken away")

    monkeypatch.setattr(card_steps, "write_ticket", pulled)
    outcome = _terminal(tmp_path, service, connect=_reader).exchange(_voucher(ring_path), into=Into.EXPO_CARD)
    assert isinstance(outcome.write_error, TerminalError)
    assert outcome.write is None
    again = _refused(_terminal(tmp_path, service, connect=_reader), _voucher(ring_path), Into.EXPO_CARD)
    assert again.code == "already_exchanged"
    assert again.message.endswith("if it is not on the card yet: expo terminal write --ticket 7")


def _logged_in(tmp_path: Path, service: FakeService, monkeypatch: pytest.MonkeyPatch) -> Path:
    data_dir = tmp_path / "terminal"
    save_session(data_dir, _session())

    def client(base_url: str, token: str | None = None) -> ServiceClient:
        return ServiceClient(base_url, token, transport=httpx.MockTransport(service))

    monkeypatch.setattr(cli_module, "ServiceClient", client)
    return data_dir


def test_the_command_line(
    tmp_path: Path, ring_path: Path, service: FakeService, monkeypatch: pytest.MonkeyPatch
) -> None:
    data_dir = _logged_in(tmp_path, service, monkeypatch)
    runner = CliRunner()
    base = ["--data-dir", str(data_dir), "--clock-at", "2010-06-01T10:00"]
    picture = tmp_path / "mms.png"
    picture.write_bytes(qr_png(_voucher(ring_path, 7)))
    done = runner.invoke(cli_module.terminal, [*base, "exchange", "--image", str(picture)])
    assert done.exit_code == 0, done.output
    code = service.replies[service.exchange_keys[-1]][1]["physical"]["code"]
    assert f"EXCHANGED ticket=7 into=physical code={grouped(code)}" in done.output
    assert f"ticket image: {data_dir / 'tickets' / 'ticket-7.png'}" in done.output
    assert f"ticket pdf: {data_dir / 'tickets' / 'ticket-7.pdf'}" in done.output

    typed = grouped(_voucher(ring_path, 8)).lower()
    out = tmp_path / "printed"
    done = runner.invoke(cli_module.terminal, [*base, "exchange", "--code", typed, "--out", str(out)])
    assert done.exit_code == 0, done.output
    assert (out / "ticket-8.png").is_file()

    expired = _voucher(ring_path, 9, ticket_type="peak", day=date(2010, 5, 3))
    done = runner.invoke(cli_module.terminal, [*base, "exchange", "--code", expired])
    assert done.exit_code == 1
    assert done.output.startswith("error voucher_expired: ")

    done = runner.invoke(cli_module.terminal, [*base, "exchange", "--code", _voucher(ring_path, 7)])
    assert done.exit_code == 1
    assert "error already_exchanged: the voucher of ticket 7 was exchanged into physical at" in done.output

    assert runner.invoke(cli_module.terminal, [*base, "exchange"]).exit_code == 2
    both = runner.invoke(cli_module.terminal, [*base, "exchange", "--code", "X", "--image", str(picture)])
    assert both.exit_code == 2
    assert runner.invoke(cli_module.terminal, [*base, "--clock-at", "soon", "stock"]).exit_code == 2

    totals = runner.invoke(cli_module.terminal, [*base, "totals"])
    assert "EXCHANGE     2  (vouchers, no money)" in totals.output
    reprint = runner.invoke(cli_module.terminal, [*base, "reprint"])
    assert str(data_dir / "tickets" / "ticket-8-reprint.png") in reprint.output


def test_a_picture_without_a_code(tmp_path: Path, service: FakeService, monkeypatch: pytest.MonkeyPatch) -> None:
    data_dir = _logged_in(tmp_path, service, monkeypatch)
    blank = tmp_path / "blank.png"
    blank.write_bytes(qr_png("x")[:20])
    done = CliRunner().invoke(cli_module.terminal, ["--data-dir", str(data_dir), "exchange", "--image", str(blank)])
    assert done.exit_code == 1
    assert done.output.startswith("error image_unreadable: ")
