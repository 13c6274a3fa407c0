"""Sell-and-write at the hall counter through real PC/SC: the whole transaction of `expo terminal sell`.

    .venv/bin/python -m loadtests.bench_card_write --transactions 50 [--db postgres]

Starts a fresh service holding card keys (`expo serve --workers 2`, SQLite or PostgreSQL), its own
`pcscd -f` with vpcd (simcard.pcscd) and platform-issued cards put into the reader one after another by
`expo card insert`. Each timed transaction is `HallTerminal.sell` as the CLI runs it: connect to the card,
SELECT and READ TICKET x4, the registry check, the sale (POST /v1/orders), the three write steps with
OPEN SESSION, WRITE TICKET and READ TICKET relayed, two journal lines (fsynced) and two slips (PNG). The
SIM swap before each sale (a new number onto the card) and the card swaps every four tickets are not
timed. Prints p50/p99 of the transaction and of its parts: HTTP, APDUs, the rest (connect, journal, slips).
"""

import argparse
import os
import platform
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hall_terminals.client import ServiceClient
from hall_terminals.reader import pcsc_connector
from hall_terminals.session import StaffSession
from hall_terminals.terminal import HallTerminal
from loadtests.bench_sales import _percentile
from loadtests.bench_server import BenchService
from loadtests.common import Credentials, NumberSource
from simcard.channel import CardChannel
from simcard.keystore import generate_root_keys
from simcard.pcscd import PrivatePcscd, start_pcscd
from simcard.state import SLOTS

WARM_UP = 3


@dataclass
class Split:
    """Time spent in each part of the transaction being timed (seconds)."""

    http: float = 0.0
    apdu: float = 0.0
    rows: list[tuple[float, float, float]] = field(default_factory=list)  # total, http, apdu (ms)


class TimedClient(ServiceClient):
    """The service client, adding the time of every call to the split."""

    def __init__(self, split: Split, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.split = split

    def call(self, *args: Any, **kwargs: Any) -> Any:
        started = time.perf_counter()
        try:
            return super().call(*args, **kwargs)
        finally:
            self.split.http += time.perf_counter() - started


class TimedChannel:
    """The card, adding the time of every APDU round trip to the split."""

    def __init__(self, card: CardChannel, split: Split) -> None:
        self.card = card
        self.split = split

    def transmit(self, apdu: bytes) -> bytes:
        started = time.perf_counter()
        try:
            return self.card.transmit(apdu)
        finally:
            self.split.apdu += time.perf_counter() - started


class Reader:
    """Cards into the vpcd reader of slot 0, one `expo card insert` process at a time."""

    def __init__(self, daemon: PrivatePcscd, env: dict[str, str]) -> None:
        self.daemon = daemon
        self.env = env
        self.bridge: subprocess.Popen[bytes] | None = None

    def insert(self, card_file: Path) -> None:
        from simcard import pcsc  # noqa: PLC0415  # after PCSCLITE_CSOCK_NAME is set

        self.remove()
        command = [sys.executable, "-m", "expo.cli", "card", "insert", "--card", str(card_file)]
        command += ["--vpcd-port", str(self.daemon.base_port)]
        self.bridge = subprocess.Popen(command, env=self.env, stderr=subprocess.DEVNULL)
        pcsc.wait_for_card(pcsc.vpcd_reader(0), 30).close()

    def remove(self) -> None:
        from simcard import pcsc  # noqa: PLC0415

        if self.bridge is not None:
            self.bridge.send_signal(signal.SIGTERM)
            self.bridge.wait(timeout=15)
            self.bridge = None
            pcsc.wait_for_removal(pcsc.vpcd_reader(0), 10)


def _arguments(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--transactions", type=int, default=50, help="timed sell-and-write transactions")
    parser.add_argument("--db", choices=("sqlite", "postgres"), default="sqlite")
    return parser.parse_args(argv)


def _terminal(service: BenchService, credentials: Credentials, folder: Path, split: Split) -> HallTerminal:
    """SH-C001 logged in at the Xujiahui hall terminal, its card steps and HTTP calls timed."""
    with ServiceClient(service.base_url) as client:
        reply = client.login(device_token=credentials.tokens["sh_hall"], **credentials.login_body("SH-C001"))
    session = StaffSession(
        service.base_url, reply["token"], reply["staff_no"], reply["name"], reply["hall"], "31", reply["expires_at"]
    )
    connect = pcsc_connector(None, wait=5)

    @contextmanager
    def timed_connect() -> Iterator[CardChannel]:
        with connect() as card:
            yield TimedChannel(card, split)

    client = TimedClient(split, service.base_url, session.token)
    return HallTerminal(data_dir=folder / "terminal", session=session, client=client, connect=timed_connect)


def _run(terminal: HallTerminal, reader: Reader, cards: list[Path], split: Split, count: int) -> None:
    numbers = NumberSource()
    for n in range(WARM_UP + count):
        if n % SLOTS == 0:
            reader.insert(cards[n // SLOTS])
        msisdn = numbers.next()
        terminal.register_card(msisdn)  # the SIM swap: not part of the sale
        split.http = split.apdu = 0.0
        started = time.perf_counter()
        outcome = terminal.sell(msisdn=msisdn, ticket_type="standard", visit_day=None, approval_code=None)
        total = time.perf_counter() - started
        if outcome.write is None:
            raise SystemExit(f"transaction {n}: the ticket was not written: {outcome.write_error!r}")
        if n >= WARM_UP:
            split.rows.append((total * 1000, split.http * 1000, split.apdu * 1000))


def _report(split: Split) -> None:
    columns = {
        "sell-and-write transaction": [total for total, _, _ in split.rows],
        "  of which HTTP (5 calls)": [http for _, http, _ in split.rows],
        "  of which APDUs (8)": [apdu for _, _, apdu in split.rows],
        "  the rest (connect, journal, slips)": [total - http - apdu for total, http, apdu in split.rows],
    }
    for label, values in columns.items():
        ordered = sorted(values)
        p50, p99 = _percentile(ordered, 0.50), _percentile(ordered, 0.99)
        print(f"  {label:<38} n={len(ordered):<4} p50 {p50:8.2f}  p99 {p99:8.2f}  max {ordered[-1]:8.2f} ms")


def main(argv: list[str] | None = None) -> int:
    """Start the service, pcscd and cards; time sell-and-write transactions; print the figures."""
    args = _arguments(argv)
    with tempfile.TemporaryDirectory(prefix="bench-card-write-") as name:
        folder = Path(name)
        generate_root_keys(folder / "root-keys.json")
        service = BenchService(args.db, workers=2, extra_env={"EXPO_KEY_FILE": str(folder / "root-keys.json")})
        daemon = start_pcscd(folder)
        os.environ.update(daemon.env)
        reader = Reader(daemon, {**service.env(), **daemon.env})
        try:
            credentials = service.prepare(peak_capacity=100)
            count = -(-(WARM_UP + args.transactions) // SLOTS)
            out = folder / "cards"
            subprocess.run(
                [sys.executable, "-m", "expo.cli", "card", "issue", "--province", "31", "--count", str(count),
                 "--out-dir", str(out)], env=service.env(), check=True, stdout=subprocess.DEVNULL,
            )  # fmt: skip
            service.start()
            split = Split()
            terminal = _terminal(service, credentials, folder, split)
            print(f"Sell-and-write on {platform.node()} (Python {platform.python_version()}, {os.cpu_count()} CPUs)")
            print(f"expo serve --workers 2 on {args.db}; pcscd -f with vpcd ({daemon.isolation}); one card at a time")
            _run(terminal, reader, sorted(out.iterdir()), split, args.transactions)
            _report(split)
        finally:
            reader.remove()
            daemon.stop()
            service.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
