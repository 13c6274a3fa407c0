"""A gate tap through real PC/SC: pyscard -> pcscd -> vpcd -> `VpcdBridge` -> the emulated card, and back.

    .venv/bin/python -m loadtests.bench_gate_tap --taps 500

Starts its own `pcscd -f` with the vpcd driver (simcard.pcscd) and a bridge process serving a card whose
standard-day ticket is fresh again at every tap (the card's counter keeps counting), then runs
the gate's whole decision `--taps` times: connect to the card, SELECT, OPEN SESSION (VALIDATE, the SAM's
key, the card's cryptogram checked), READ TICKET, the rules, MARK ENTRY (the command MAC, the card's answer
MAC checked), the journal line committed (fsynced) and the card released. Prints p50/p99 of the tap and of
its connect, then the same decision in process (no PC/SC) for what PC/SC adds. The aim: p99 at most 50 ms
(the 2010 card took about 300 ms, the fastest transit gates take 200 ms).
"""

import argparse
import os
import platform
import signal
import subprocess
import sys
import tempfile
import time as timer
from dataclasses import replace
from datetime import datetime, time
from pathlib import Path

from expo.clock import EXPO_TZ, FixedClock
from gates.emulator import CardFactory
from gates.journal import GateJournal
from gates.sam import Sam
from gates.validator import Validator
from loadtests.bench_sales import _percentile
from simcard.applet import CardApplet
from simcard.channel import AppletChannel, CardChannel
from simcard.keys import KEY_BYTES, KEY_TYPES, KeySet
from simcard.pcscd import start_pcscd
from simcard.state import CardState
from simcard.store import CardFile
from simcard.vpcd import VpcdBridge
from ticketing.rules import TicketType, expo_days, is_peak_day

WARM_UP = 10
GATE_ID = 1001
# A card enters once a day (the card and the gate's journal both say so): tap n is on the n-th standard day,
# and after the last one a new gate (with a new journal) takes over.
STANDARD_DAYS = [day for day in expo_days() if not is_peak_day(day)]


class FreshTicketCard:
    """The card of a visitor who has a new ticket at every tap: its slots are restored at each power-on."""

    def __init__(self, state: CardState) -> None:
        self.applet = CardApplet(state)
        self.atr = self.applet.atr
        self._slots = state.slots

    def _fresh(self) -> None:
        self.applet.state = replace(self.applet.state, slots=self._slots)

    def power_on(self) -> None:
        self._fresh()
        self.applet.power_on()

    def power_off(self) -> None:
        self.applet.power_off()

    def reset(self) -> None:
        self._fresh()
        self.applet.reset()

    def process(self, apdu: bytes) -> bytes:
        return self.applet.process(apdu)


def _arguments(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m loadtests.bench_gate_tap", description=__doc__.splitlines()[0])
    parser.add_argument("--taps", type=int, default=500)
    parser.add_argument("--serve-card", type=Path, help=argparse.SUPPRESS)  # the bridge child process
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def _serve(card_file: Path, port: int) -> int:
    """The bridge child: serve the card until SIGTERM."""
    bridge = VpcdBridge(FreshTicketCard(CardFile.load(card_file)), port=port)
    signal.signal(signal.SIGTERM, lambda _signum, _frame: bridge.stop())
    bridge.serve_forever()
    return 0


class Gates:
    """The gate of tap n: its clock on the n-th standard day at 10:00, a new gate after every standard day."""

    def __init__(self, root: KeySet, folder: Path, name: str) -> None:
        self._sam = Sam.from_root(root)
        self._folder = folder
        self._name = name
        self._gate: Validator | None = None
        self._clock = FixedClock(datetime.combine(STANDARD_DAYS[0], time(10), tzinfo=EXPO_TZ))

    def at_tap(self, n: int) -> Validator:
        turn, index = divmod(n, len(STANDARD_DAYS))
        if self._gate is None or index == 0:
            self.close()
            journal = GateJournal(self._folder / f"{self._name}-{turn}.db")
            self._gate = Validator(gate_id=GATE_ID + turn, entrance="L1", sam=self._sam, journal=journal,
                                   clock=self._clock)  # fmt: skip
        self._clock.set(datetime.combine(STANDARD_DAYS[index], time(10), tzinfo=EXPO_TZ))
        return self._gate

    def close(self) -> None:
        if self._gate is not None:
            self._gate.journal.close()


def _report(label: str, ordered: list[float]) -> None:
    p50, p99 = _percentile(ordered, 0.50), _percentile(ordered, 0.99)
    mean = sum(ordered) / len(ordered)
    print(f"  {label:<44} n={len(ordered):<5} p50 {p50:7.2f}  p99 {p99:7.2f}  mean {mean:7.2f}  max {ordered[-1]:7.2f}")


def _tap_once(gate: Validator, channel: CardChannel) -> None:
    result = gate.entry(channel)
    if not result.opens:
        raise SystemExit(f"the gate refused the fresh ticket: {result.code}")


def _through_pcsc(root: KeySet, folder: Path, card_file: Path, port: int, taps: int) -> None:
    from simcard import pcsc  # noqa: PLC0415  # after PCSCLITE_CSOCK_NAME is set (libpcsclite reads it once)

    bridge = subprocess.Popen([sys.executable, "-m", "loadtests.bench_gate_tap", "--serve-card", str(card_file),
                               "--port", str(port)])  # fmt: skip
    gates = Gates(root, folder, "pcsc")
    try:
        reader = pcsc.vpcd_reader(0)
        pcsc.wait_for_card(reader, 30).close()
        connects, totals = [], []
        for n in range(WARM_UP + taps):
            gate = gates.at_tap(n)
            started = timer.perf_counter()
            with pcsc.PcscCard.connect(reader) as card:
                connected = timer.perf_counter()
                _tap_once(gate, card)
            done = timer.perf_counter()
            if n >= WARM_UP:
                connects.append((connected - started) * 1000)
                totals.append((done - started) * 1000)
        _report("gate tap through pcscd, connect to release (ms)", sorted(totals))
        _report("  of which connect (ms)", sorted(connects))
        print(f"  aim p99 <= 50 ms: {'met' if _percentile(sorted(totals), 0.99) <= 50 else 'NOT met'}")
    finally:
        gates.close()
        bridge.send_signal(signal.SIGTERM)
        bridge.wait(timeout=15)


def _in_process(root: KeySet, folder: Path, card: CardState, taps: int) -> None:
    gates = Gates(root, folder, "in-process")
    fresh = FreshTicketCard(card)
    times = []
    for n in range(WARM_UP + taps):
        gate = gates.at_tap(n)
        fresh.power_on()
        started = timer.perf_counter()
        _tap_once(gate, AppletChannel(fresh))
        if n >= WARM_UP:
            times.append((timer.perf_counter() - started) * 1000)
    gates.close()
    _report("the same decision in process, no PC/SC (ms)", sorted(times))


def main(argv: list[str] | None = None) -> int:
    """Start pcscd and a bridge, time gate taps through PC/SC and in process, print the figures."""
    args = _arguments(argv)
    if args.serve_card is not None:
        return _serve(args.serve_card, args.port)
    root = KeySet({t: os.urandom(KEY_BYTES) for t in KEY_TYPES})
    card = CardFactory(root).card(42, TicketType.STANDARD).state
    with tempfile.TemporaryDirectory(prefix="bench-gate-tap-") as scratch:
        folder = Path(scratch)
        card_file = folder / "card.json"
        CardFile.save(card_file, card)
        daemon = start_pcscd(folder)
        os.environ.update(daemon.env)
        try:
            print(f"Gate taps on {platform.node()} (Python {platform.python_version()}, {os.cpu_count()} CPUs)")
            print(f"pcscd -f with vpcd on port {daemon.base_port} ({daemon.isolation}); one bridge process")
            _through_pcsc(root, folder, card_file, daemon.port(0), args.taps)
            _in_process(root, folder, card, args.taps)
        finally:
            daemon.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
