"""Two gates cut off from the server: no card enters twice, and after reconnecting everything lands once.

A real `expo serve` on PostgreSQL; tickets sold and written to (in-process) cards by a hall clerk; two gate
devices (`Validator`, their own SQLite journals, the SAM key file) whose background syncs find the network
cut. Each gate admits its half of the visitors, then every visitor tries the other gate too; the card alone
refuses the second entry. When the network is back the journals land, and the server's counts per gate
equal the gates' own journals exactly; a replayed upload stores nothing new.
"""

import threading
import time
from collections import Counter
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import httpx
import pytest

from expo.clock import EXPO_TZ, FixedClock
from gates.client import GateClient
from gates.entrances import ENTRANCES
from gates.journal import GateJournal
from gates.sam import load_sam
from gates.sync import BackgroundSync, GateSync
from gates.validator import TapResult, Validator
from gates.wire import Event
from simcard.applet import CardApplet
from simcard.channel import AppletChannel
from tests.e2e.gates import Counter as HallCounter
from tests.e2e.gates import conflicts, counts, register_gate, sam_file
from tests.e2e.hall import HallService, run_hall_service
from tests.e2e.server import database

DAY = "2010-06-01"
GATE_TIME = datetime(2010, 6, 1, 11, 0, tzinfo=EXPO_TZ)
TICKETS = ["standard"] * 6 + ["standard_concession"] * 2 + ["pass_3"] * 2


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[HallService]:
    """The service on a fresh PostgreSQL database, with its card keys."""
    with database("postgres") as url:
        yield from run_hall_service(tmp_path_factory.mktemp("partition"), url, {})


class Partition(httpx.BaseTransport):
    """The network between a gate and the service: while `cut`, nothing gets through."""

    def __init__(self) -> None:
        self.cut = True
        self.refused = 0
        self._real = httpx.HTTPTransport()

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        if self.cut:
            self.refused += 1
            raise httpx.ConnectError("the network to the service is cut", request=request)
        return self._real.handle_request(request)


class Gate:
    """One gate device: its validator over its journal, and its sync running in the background."""

    def __init__(self, service: HallService, folder: Path, gate_id: int, entrance: str, network: Partition) -> None:
        token = register_gate(service, gate_id, entrance)
        self.journal = GateJournal(folder / f"gate-{gate_id}.db")
        sam = load_sam(sam_file(service))
        self.validator = Validator(
            gate_id=gate_id, entrance=entrance, sam=sam, journal=self.journal, clock=FixedClock(GATE_TIME)
        )
        self.client = GateClient(service.base, token, transport=network)
        self.sync = BackgroundSync(GateSync(gate_id=gate_id, journal=self.journal, client=self.client),
                                   interval=0.2, delay=lambda _failures: 0.05)  # fmt: skip

    def tap(self, card: CardApplet) -> TapResult:
        card.power_on()
        try:
            return self.validator.entry(AppletChannel(card))
        finally:
            card.power_off()


def _taps(gate: Gate, cards: list[CardApplet], into: list[tuple[int, TapResult]]) -> None:
    for card in cards:
        into.append((gate.validator.gate_id, gate.tap(card)))


def _at_both_gates(*queues: tuple[Gate, list[CardApplet]], into: list[tuple[int, TapResult]]) -> None:
    """The gates' queues of visitors tapping at the same time, each gate on its own thread."""
    runs = [threading.Thread(target=_taps, args=(gate, cards, into)) for gate, cards in queues]
    for run in runs:
        run.start()
    for run in runs:
        run.join()


def _wait_until_landed(gates: list[Gate], timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while any(gate.journal.pending(limit=1) for gate in gates):
        assert time.monotonic() < deadline, "the journals did not land after the network came back"
        time.sleep(0.1)


def test_gates_cut_off_admit_each_card_once_and_the_server_counts_equal_their_journals(
    service: HallService, tmp_path: Path
) -> None:
    counter = HallCounter.open(service)
    written = [counter.ticket_on_card(card_file, kind) for card_file, kind in
               zip(counter.new_cards(len(TICKETS)), TICKETS, strict=True)]  # fmt: skip
    cards = [card for card, _ in written]
    network = Partition()
    east, west = Gate(service, tmp_path, 1001, "L1", network), Gate(service, tmp_path, 4001, "L4", network)
    for gate in (east, west):
        gate.sync.start()

    # (gate id, result) of the first taps, then of everyone trying the other gate
    first: list[tuple[int, TapResult]] = []
    second: list[tuple[int, TapResult]] = []
    half = len(cards) // 2
    _at_both_gates((east, cards[:half]), (west, cards[half:]), into=first)
    _at_both_gates((west, cards[:half]), (east, cards[half:]), into=second)

    assert all(result.opens for _, result in first), [result.code for _, result in first]
    assert not any(result.opens for _, result in second)
    refusals = Counter(result.code for _, result in second)
    assert refusals == {"already_used": 8, "already_entered_today": 2}
    admitted = Counter(result.ticket_id for _, result in first + second if result.opens)
    assert admitted == {ticket_id: 1 for _, ticket_id in written}  # no ticket entered twice
    assert all(card.state.slot(1) is not None for card in cards)
    assert network.refused > 0
    assert east.sync.failures > 0

    network.cut = False
    _wait_until_landed([east, west])
    for gate in (east, west):
        assert gate.sync.stop()

    server = counts(service, DAY)
    assert server["total"] == len(TICKETS)
    by_gate = {row["gate_id"]: row for row in server["gates"]}
    for gate in (east, west):
        journal = gate.journal.counts()
        row = by_gate[gate.validator.gate_id]
        assert {name: row[name] for name in journal} == journal
        assert journal["entries"] == half
        assert journal["refused"] == half
    entrances = {row["entrance"]: row["entries"] for row in server["entrances"]}
    assert entrances == {code: half if code in ("L1", "L4") else 0 for code in ENTRANCES}
    assert conflicts(service, DAY) == []

    # A lost reply: the same lines again are all duplicates, nothing is stored twice.
    replay = east.client.upload(1001, east.journal.lines())
    assert (replay.stored, replay.duplicates) == (0, 2 * half)
    assert counts(service, DAY)["total"] == len(TICKETS)
    kinds = Counter(line.event for gate in (east, west) for line in gate.journal.lines())
    assert kinds == {Event.ADMITTED: len(TICKETS), Event.REFUSED: len(TICKETS)}
