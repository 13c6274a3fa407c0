"""APDU round trip through real PC/SC: pyscard -> pcscd -> vpcd -> `VpcdBridge` -> the emulated card, and back.

    .venv/bin/python -m loadtests.bench_apdu --apdus 2000

Starts its own `pcscd -f` with the vpcd driver (simcard.pcscd: private socket and ports, nothing shared
with a system pcscd) and a bridge process serving a real card file with a ticket in slot 1, then times
SELECT and READ TICKET with TCP_QUICKACK re-armed around the bridge's reads (the default) and without it
(Debian's vpcd writes header and body separately, so every APDU waits for a delayed ACK: fewer APDUs are
timed in that mode unless --apdus-without-quickack says otherwise). The in-process applet is timed too,
to show what the PC/SC path adds. Figures, not a pass/fail test.
"""

import argparse
import os
import platform
import secrets
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from loadtests.bench_sales import _percentile
from simcard.applet import open_card
from simcard.keys import KEY_TYPES, KEY_VALIDATE
from simcard.messages import read_ticket_command, select_command
from simcard.pcscd import PrivatePcscd, start_pcscd
from simcard.personalise import new_card_state
from simcard.record import EVENT_WRITTEN, LogEntry, TicketRecord, sign
from simcard.store import CardFile
from simcard.vpcd import VpcdBridge

WARM_UP = 20


def _arguments(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--apdus", type=int, default=2000, help="APDUs timed per command with TCP_QUICKACK")
    parser.add_argument("--apdus-without-quickack", type=int, default=200, help="the same without (about 45 ms each)")
    parser.add_argument("--serve-card", type=Path, help=argparse.SUPPRESS)  # the bridge child process
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--quickack", choices=("on", "off"), default="on", help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def _make_card(path: Path) -> None:
    """A card with random keys and a signed ticket in slot 1, so READ TICKET answers 9000 with 32 bytes."""
    state = new_card_state("31", 1, {t: secrets.token_bytes(16) for t in KEY_TYPES})
    record = sign(TicketRecord(1, 3, 31, 31, 1), state.keys[KEY_VALIDATE], state.csn)
    CardFile.save(path, state.with_slot(1, record, log_entry=LogEntry(0, EVENT_WRITTEN, 1).encode()))


def _serve(card_file: Path, port: int, *, quickack: bool) -> int:
    """The bridge child: serve the card until SIGTERM."""
    bridge = VpcdBridge(open_card(card_file), port=port, quickack=quickack)
    signal.signal(signal.SIGTERM, lambda _signum, _frame: bridge.stop())
    bridge.serve_forever()
    return 0


def _time(send: Callable[[bytes], bytes], apdu: bytes, count: int) -> list[float]:
    """Round-trip times (ms) of `count` sends of one APDU, after a warm-up; every answer must be 9000."""
    for _ in range(WARM_UP):
        send(apdu)
    times = []
    for _ in range(count):
        started = time.perf_counter()
        answer = send(apdu)
        times.append((time.perf_counter() - started) * 1000)
        if answer[-2:] != b"\x90\x00":
            raise SystemExit(f"the card answered {answer[-2:].hex()} to {apdu.hex()}")
    return sorted(times)


def _report(label: str, ordered: list[float]) -> None:
    p50, p99 = _percentile(ordered, 0.50), _percentile(ordered, 0.99)
    mean = sum(ordered) / len(ordered)
    print(f"  {label:<36} n={len(ordered):<5} p50 {p50:8.3f}  p99 {p99:8.3f}  mean {mean:8.3f}  max {ordered[-1]:8.3f}")


def _through_pcsc(daemon: PrivatePcscd, card_file: Path, *, quickack: bool, count: int) -> None:
    from simcard import pcsc  # noqa: PLC0415  # after PCSCLITE_CSOCK_NAME is set (libpcsclite reads it once)

    command = [sys.executable, "-m", "loadtests.bench_apdu", "--serve-card", str(card_file)]
    command += ["--port", str(daemon.port(0)), "--quickack", "on" if quickack else "off"]
    bridge = subprocess.Popen(command)
    try:
        with pcsc.wait_for_card(pcsc.vpcd_reader(0), 30) as card:
            mode = "TCP_QUICKACK on " if quickack else "TCP_QUICKACK off"
            for name, apdu in (("SELECT", select_command()), ("READ TICKET", read_ticket_command(1))):
                _report(f"{name}, {mode} (ms)", _time(card.transmit, apdu, count))
    finally:
        bridge.send_signal(signal.SIGTERM)
        bridge.wait(timeout=15)
        # pcscd notices a removal at its next poll: the next run must not find this card still listed.
        pcsc.wait_for_removal(pcsc.vpcd_reader(0), 10)


def _in_process(card_file: Path, count: int) -> None:
    applet = open_card(card_file)
    applet.power_on()
    for name, apdu in (("SELECT", select_command()), ("READ TICKET", read_ticket_command(1))):
        _report(f"{name}, in-process applet (ms)", _time(applet.process, apdu, count))


def main(argv: list[str] | None = None) -> int:
    """Start pcscd and a bridge, time APDU round trips with and without TCP_QUICKACK, print the figures."""
    args = _arguments(argv)
    if args.serve_card is not None:
        return _serve(args.serve_card, args.port, quickack=args.quickack == "on")
    with tempfile.TemporaryDirectory(prefix="bench-apdu-") as folder:
        card_file = Path(folder) / "card.json"
        _make_card(card_file)
        daemon = start_pcscd(Path(folder))
        os.environ.update(daemon.env)
        try:
            print(f"APDU round trips on {platform.node()} (Python {platform.python_version()}, {os.cpu_count()} CPUs)")
            print(f"pcscd -f with vpcd on port {daemon.base_port} ({daemon.isolation}); one bridge process")
            _through_pcsc(daemon, card_file, quickack=True, count=args.apdus)
            _through_pcsc(daemon, card_file, quickack=False, count=args.apdus_without_quickack)
            _in_process(card_file, args.apdus)
        finally:
            daemon.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
