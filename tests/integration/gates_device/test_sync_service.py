"""A gate's sync against the real service in process: an outage of any kind, for as long as it lasts, then
every journal line stored exactly once; refusals kept pending and reported; revocations reaching the gate."""

import asyncio
from collections.abc import Callable
from pathlib import Path

from gates.cli import local_counts
from gates.config import GateConfig
from gates.sync import BackgroundSync, GateSync, SyncReport
from gates.wire import Event
from simcard.applet import CardApplet
from simcard.channel import AppletChannel
from tests.integration.gates_device.conftest import BASE, GateServer, new_gate, same_lines

DAY = "2010-06-01"


async def test_a_gate_cut_off_for_a_long_time_lands_every_line_once(gate_server: GateServer, tmp_path: Path) -> None:
    token = gate_server.register(1001)
    gate = new_gate(gate_server, tmp_path, 1001)
    # Refused connections for a long while, proxies' 5xx pages, timeouts, then a reply lost after the
    # service stored a batch, more refusals, and finally a sound network.
    network = gate_server.network(
        [*(["refused"] * 12), 502, 503, "timeout", 500, "refused", None, "lost", "timeout", *(["refused"] * 5)]
    )
    sync = GateSync(gate_id=1001, journal=gate.journal, client=gate_server.client(token, network), batch=16)
    reports: list[SyncReport] = []
    waits: list[int] = []

    def delay(failures: int) -> float:
        waits.append(failures)
        return 0.002

    background = BackgroundSync(sync, interval=0.002, delay=delay, on_report=reports.append)
    background.start()
    cards = [gate_server.card(n) for n in range(1, 61)]
    for card in cards[:50]:  # the gate keeps deciding while the sync fails and retries
        assert gate.tap(card).event is Event.ADMITTED
    for card in cards[:5]:
        assert gate.tap(card).code == "already_used"  # a one-day ticket
    assert gate.validator.annul_last() > 0  # the 50th visitor's turnstile did not turn
    assert gate.tap(cards[49]).event is Event.ADMITTED  # annulled on the card, then admitted again
    forced = gate.validator.force(_channel(cards[0]), reason="ticket holder with a sick child", supervisor="SUP-7")
    assert forced.event is Event.FORCED
    for card in cards[50:]:
        assert gate.tap(card).event is Event.ADMITTED
    done = await _until(lambda: not gate.journal.pending(limit=1) and not network.script)
    assert done, [r.summary() for r in reports[-3:]]
    assert background.stop(timeout=10)

    lines = gate.journal.lines()
    assert {line.event for line in lines} == {Event.ADMITTED, Event.REFUSED, Event.ANNULLED, Event.FORCED}
    assert await gate_server.stored(1001) == same_lines(lines)  # exactly the journal, nothing more, nothing less
    # Only the batch whose reply was lost went up a second time: the service counted it as duplicates.
    lost_batch = sum(r.duplicates for r in reports)
    assert 1 <= lost_batch <= 16
    assert sum(r.stored for r in reports) + lost_batch == len(lines)
    assert waits[:17] == list(range(1, 18))  # the backoff grew with every failed round in a row
    config = GateConfig(gate_id=1001, entrance="L1", kind="gate", service=BASE, token=token, sam="")
    local = local_counts(
        config, gate_server.clock.now().date(), gate.journal.counts(day=gate_server.clock.now().date())
    )
    assert gate_server.counts(DAY) == local  # what `expo gate journal` shows is what the service counts
    assert local["total"] == 61  # 60 visitors, one of them annulled and admitted again, one forced in twice


def _channel(card: CardApplet) -> AppletChannel:
    card.power_on()
    return AppletChannel(card)


async def _until(done: Callable[[], bool], *, seconds: float = 30.0) -> bool:
    """Wait (without blocking the loop) until `done()` or for `seconds`."""
    deadline = asyncio.get_running_loop().time() + seconds
    while not done():
        if asyncio.get_running_loop().time() > deadline:
            return False
        await asyncio.sleep(0.01)
    return True


async def test_a_batch_the_service_refuses_stays_pending_with_its_code(gate_server: GateServer, tmp_path: Path) -> None:
    token = gate_server.register(1001)
    other = gate_server.register(1002, "W1")
    gate = new_gate(gate_server, tmp_path, 1001)
    for n in range(1, 6):
        gate.tap(gate_server.card(n))
    wrong = GateSync(gate_id=1001, journal=gate.journal, client=gate_server.client(other))
    report = wrong.sync_once()
    assert [(e.code, e.status) for e in report.errors] == [("not_this_gate", 403)]
    assert len(gate.journal.pending(limit=100)) == 5
    assert await gate_server.stored(1001) == []
    right = GateSync(gate_id=1001, journal=gate.journal, client=gate_server.client(token)).sync_once()
    assert right.ok
    assert await gate_server.stored(1001) == same_lines(gate.journal.lines())


async def test_a_line_the_service_cannot_take_is_held_and_the_others_still_land(
    gate_server: GateServer, tmp_path: Path
) -> None:
    token = gate_server.register(1001)
    gate = new_gate(gate_server, tmp_path, 1001)
    gate.tap(gate_server.card(1))
    # A line a faulty gate wrote: an admission without the card that made it.
    bad = gate.journal.append(event=Event.ADMITTED, at=gate_server.clock.now(), code="ok", ticket_id=99)
    gate.tap(gate_server.card(2))
    sync = GateSync(gate_id=1001, journal=gate.journal, client=gate_server.client(token))
    report = sync.sync_once()
    assert report.held == {bad.seq: "invalid_entry"}
    assert [line.seq for line in gate.journal.pending(limit=10)] == [bad.seq]  # kept, never dropped
    assert [line.seq for line in await gate_server.stored(1001)] == [bad.seq - 1, bad.seq + 1]
    assert sync.sync_once().held == {bad.seq: "invalid_entry"}


async def test_a_voided_ticket_reaches_the_gate_and_is_refused_there(gate_server: GateServer, tmp_path: Path) -> None:
    token = gate_server.register(1001)
    gate = new_gate(gate_server, tmp_path, 1001)
    voided = gate_server.sold_and_voided("13425540001")
    report = GateSync(gate_id=1001, journal=gate.journal, client=gate_server.client(token)).sync_once()
    assert report.ok
    assert report.revocations == 1
    assert gate.journal.is_revoked(voided)
    result = gate.tap(gate_server.card(voided))
    assert (result.event, result.code, result.ticket_id) == (Event.REFUSED, "revoked", voided)
    assert gate.tap(gate_server.card(voided + 1)).event is Event.ADMITTED
