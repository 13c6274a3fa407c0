"""`expo gate ...`: register a gate device (server side) and run one (the turnstile, handheld, souvenir terminal).

    expo gate register --gate ID --entrance NAME [--kind gate|handheld|souvenir]     (on the server's database)
    expo gate run      [DEVICE OPTIONS] [--taps N] [--sync-interval S]
    expo gate check    [DEVICE OPTIONS] [--force --reason TEXT --supervisor STAFF]
    expo gate souvenir [DEVICE OPTIONS] --out-dir DIR
    expo gate scan     [DEVICE OPTIONS] (--image FILE | --code TEXT | --stdin)     (a physical ticket)
    expo gate annul | sync | journal [--day YYYY-MM-DD]    [DEVICE OPTIONS]

A device's options (`--gate --entrance --service --token --sam`) are kept in its data folder after the
first use (`gates.config`). Each tap prints one line, flushed: `OPEN gate=<id> ticket=<id> type=<type>[
check_id]`, `REFUSED gate=<id> code=<code>[ ticket=<id>]`, `FORCED ...` or `SOUVENIR ... image=<path>`.
A refusal of the program itself (no reader, no card, no config, the service's codes) is one line on stderr,
`error <code>: <what>`, exit status 1; a one-tap command whose card was refused exits with status 2.
"""

import functools
import json
import logging
import signal
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import closing, contextmanager
from datetime import date, datetime
from pathlib import Path
from types import FrameType
from typing import Any

import click

from expo.cli_support import parse_instant, with_db
from expo.clock import EXPO_TZ, Clock, OffsetClock, SystemClock
from expo.db import Database
from expo.errors import ExpoError
from gates.client import GateClient
from gates.config import GateConfig, Given, kept_config
from gates.entrances import ENTRANCES, DeviceKind
from gates.errors import GateError
from gates.journal import JOURNAL_FILE, GateJournal
from gates.paper import PaperGate
from gates.reader import PcscReader, Tap, one_tap, run_taps
from gates.sam import load_sam
from gates.souvenir_ticket import save_souvenir_ticket
from gates.sync import INTERVAL, BackgroundSync, GateSync
from gates.validator import TapResult, Validator
from gates.wire import Event
from hall_terminals.errors import TerminalError
from simcard.keystore import KeyFileError
from simcard.session import CardError

REFUSED_EXIT = 2


@click.group()
def gate() -> None:
    """Gate devices: the turnstile gate, the handheld check terminal and the souvenir terminal."""


@gate.command()
@click.option("--gate", "gate_id", type=int, required=True, help="The gate's number (1 .. 2^32-1).")
@click.option("--entrance", required=True, type=click.Choice(list(ENTRANCES)))
@click.option("--kind", type=click.Choice([k.value for k in DeviceKind]), default=DeviceKind.GATE.value)
def register(gate_id: int, entrance: str, kind: str) -> None:
    """Register a gate device on the server's database; its token is printed once (stdout), here only."""
    from gates.devices import register_gate  # noqa: PLC0415  # the server side: SQLAlchemy only where it is used

    async def work(database: Database) -> str:
        async with database.write() as session:
            _, token = await register_gate(
                session, gate_id=gate_id, entrance=entrance, kind=DeviceKind(kind), now=SystemClock().now()
            )
        return token

    try:
        token = with_db(work)
    except ExpoError as error:
        click.echo(f"error {error.code}: {error.detail}", err=True)
        sys.exit(1)
    click.echo(f"{kind} {gate_id} registered at {entrance}; its token follows, shown this once", err=True)
    click.echo(token)


def tap_line(gate_id: int, result: TapResult, *, image: Path | None = None) -> str:
    """The one line a tap prints: what the gate did and why."""
    ticket = f" ticket={result.ticket_id} type={result.ticket_type}" if result.ticket_id is not None else ""
    check = " check_id" if result.check_id else ""
    if result.event is Event.ADMITTED:
        return f"OPEN gate={gate_id}{ticket}{check}"
    if result.event is Event.FORCED:
        return f"FORCED gate={gate_id} code={result.code}{ticket}{check}"
    if result.event is Event.SOUVENIR:
        return f"SOUVENIR gate={gate_id}{ticket} image={image}"
    refused_ticket = f" ticket={result.ticket_id}" if result.ticket_id is not None else ""
    return f"REFUSED gate={gate_id} code={result.code}{refused_ticket}"


class Device:
    """A device's pieces from its options: the kept config, its clock, journal, SAM, reader and service."""

    def __init__(self, options: "DeviceOptions", kind: DeviceKind) -> None:
        self.options = options
        self.config: GateConfig = kept_config(options.data_dir, options.given, kind=kind)
        self.clock = gate_clock(options.clock_at)

    @contextmanager
    def validator(self) -> Iterator[Validator]:
        """The device's decision maker over its journal (closed at the end)."""
        try:
            sam = load_sam(self.config.sam)
        except KeyFileError as error:
            raise GateError("bad_sam_keys", str(error)) from None
        with closing(GateJournal(self.options.data_dir / JOURNAL_FILE)) as journal:
            yield Validator(
                gate_id=self.config.gate_id, entrance=self.config.entrance, sam=sam, journal=journal, clock=self.clock
            )

    def client(self) -> GateClient:
        """The service, as this gate."""
        return GateClient(self.config.service, self.config.token)

    def reader(self) -> PcscReader:
        """The card reader."""
        return PcscReader(self.options.reader)


class DeviceOptions:
    """The options every device command takes."""

    def __init__(self, data_dir: Path, given: Given, reader: str | None, clock_at: str | None) -> None:
        self.data_dir = data_dir
        self.given = given
        self.reader = reader
        self.clock_at = clock_at


def gate_clock(clock_at: str | None) -> Clock:
    """The system clock, or a running clock started at `clock_at` (a replayed Expo day)."""
    if clock_at is None:
        return SystemClock()
    return OffsetClock(parse_instant(clock_at) - datetime.now(EXPO_TZ))


def device_command(command: Callable[..., None]) -> Callable[..., None]:
    """Add the device options; the command gets them as `options`, and its refusals become one line."""
    decorators = [
        click.option(
            "--data-dir",
            type=click.Path(file_okay=False, path_type=Path),
            default=Path("gate"),
            envvar="EXPO_GATE_DIR",
            show_default=True,
            help="Journal and kept setup (EXPO_GATE_DIR).",
        ),
        click.option("--gate", "gate_id", type=int, default=None, help="The gate's number (kept)."),
        click.option("--entrance", default=None, help="L1-L8, U1, W1-W4 (kept)."),
        click.option("--service", default=None, envvar="EXPO_GATE_SERVICE", help="The service's URL (kept)."),
        click.option(
            "--token", default=None, envvar="EXPO_GATE_TOKEN", help="The gate's credential (kept, never shown)."
        ),
        click.option("--sam", type=click.Path(exists=True, dir_okay=False), default=None, help="SAM key file (kept)."),
        click.option(
            "--reader", default=None, envvar="EXPO_GATE_READER", help="PC/SC reader (default: first vpcd one)."
        ),
        click.option("--clock-at", default=None, help="The gate's clock runs from this instant (2010-10-16T09:00)."),
    ]

    @functools.wraps(command)
    def run(
        data_dir: Path,
        gate_id: int | None,
        entrance: str | None,
        service: str | None,
        token: str | None,
        sam: str | None,
        reader: str | None,
        clock_at: str | None,
        **rest: Any,
    ) -> None:
        given = Given(gate_id=gate_id, entrance=entrance, service=service, token=token, sam=sam)
        try:
            command(DeviceOptions(data_dir, given, reader, clock_at), **rest)
        except Exception as error:
            described = describe(error)
            if described is None:
                raise
            click.echo(f"error {described[0]}: {described[1]}", err=True)
            sys.exit(1)

    for decorator in reversed(decorators):
        run = decorator(run)
    return run


def describe(error: Exception) -> tuple[str, str] | None:
    """(code, message) of a refusal the operator can act on; None for a fault of the program itself."""
    if isinstance(error, (GateError, TerminalError, CardError)):
        return error.code, str(error)
    code = getattr(error, "code", None)  # simcard.pcsc errors: no_reader, no_card, card_removed, pcsc_error
    if isinstance(code, str) and type(error).__module__ == "simcard.pcsc":
        return code, str(error)
    return None


@contextmanager
def stop_on_signals(stop: threading.Event) -> Iterator[None]:
    """SIGTERM and SIGINT ask the loop to stop (after the tap in progress); a second one interrupts."""

    def handle(number: int, frame: FrameType | None) -> None:
        if stop.is_set():
            raise KeyboardInterrupt
        stop.set()

    previous = {number: signal.signal(number, handle) for number in (signal.SIGTERM, signal.SIGINT)}
    try:
        yield
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler)


def _log_to_stderr() -> None:
    # The sync's and the taps' reports go to stderr; stdout carries only the tap lines.
    logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(asctime)s %(levelname)s %(message)s")
    logging.getLogger("httpx").setLevel(logging.WARNING)  # one line per request would drown the rest


def _echo(line: str) -> None:
    click.echo(line)
    sys.stdout.flush()  # a tap's line must be seen at once, even through a pipe


@gate.command()
@device_command
@click.option("--taps", type=int, default=None, help="Stop after N taps (default: until SIGTERM or SIGINT).")
@click.option("--sync-interval", type=float, default=INTERVAL, show_default=True, help="Seconds between syncs.")
def run(options: DeviceOptions, taps: int | None, sync_interval: float) -> None:
    """The turnstile gate: tap after tap, decide offline, journal, print OPEN or REFUSED; sync in the background."""
    device = Device(options, DeviceKind.GATE)
    gate_id = device.config.gate_id
    reader = device.reader()
    _log_to_stderr()
    stop = threading.Event()
    with stop_on_signals(stop), device.validator() as validator, closing(device.client()) as client:
        sync = GateSync(gate_id=gate_id, journal=validator.journal, client=client)
        background = BackgroundSync(sync, interval=sync_interval)
        background.start()
        click.echo(f"gate {gate_id} at {device.config.entrance} ready on {reader.name}", err=True)
        count = 0
        try:
            count = run_taps(
                reader, validator.entry, show=lambda result: _echo(tap_line(gate_id, result)), stop=stop, taps=taps
            )
        finally:
            last = sync.sync_once() if background.stop() else None
            summary = last.summary() if last is not None else "not attempted (the sync thread is still busy)"
            click.echo(f"gate {gate_id} stopped after {count} taps; last sync: {summary}", err=True)


@gate.command()
@device_command
@click.option("--force", is_flag=True, help="Admit on a supervisor's authority (needs --reason, --supervisor).")
@click.option("--reason", default=None, help="Why the supervisor admits (recorded).")
@click.option("--supervisor", default=None, help="The supervisor's staff number (recorded).")
@click.option("--card-wait", type=float, default=10.0, show_default=True, help="Seconds to wait for the card.")
def check(options: DeviceOptions, force: bool, reason: str | None, supervisor: str | None, card_wait: float) -> None:
    """The handheld check terminal: one tap, the gate's own decision; with --force, a recorded admission."""
    if force != bool(reason and supervisor) or (not force and (reason or supervisor)):
        raise click.UsageError("--force goes with both --reason and --supervisor")
    device = Device(options, DeviceKind.HANDHELD)
    with device.validator() as validator:
        result = one_tap(device.reader(), handheld_tap(validator, reason, supervisor), wait=card_wait)
    _echo(tap_line(device.config.gate_id, result))
    if not result.opens:
        sys.exit(REFUSED_EXIT)


def handheld_tap(validator: Validator, reason: str | None, supervisor: str | None) -> Tap:
    """The gate's own decision, or with a supervisor's reason and staff number a forced admission."""
    if reason is None or supervisor is None:
        return validator.entry
    return functools.partial(validator.force, reason=reason, supervisor=supervisor)


@gate.command()
@device_command
@click.option("--out-dir", type=click.Path(file_okay=False, path_type=Path), required=True, help="Where images go.")
@click.option("--card-wait", type=float, default=10.0, show_default=True, help="Seconds to wait for the card.")
def souvenir(options: DeviceOptions, out_dir: Path, card_wait: float) -> None:
    """The souvenir terminal: one tap of an entered ticket marks its souvenir and saves the souvenir ticket."""
    device = Device(options, DeviceKind.SOUVENIR)
    with device.validator() as validator:
        result = one_tap(device.reader(), validator.souvenir, wait=card_wait)
    if result.event is not Event.SOUVENIR:
        _echo(tap_line(device.config.gate_id, result))
        sys.exit(REFUSED_EXIT)
    image = save_souvenir_ticket(
        result, out_dir=out_dir, gate_id=device.config.gate_id, entrance=device.config.entrance
    )
    _echo(tap_line(device.config.gate_id, result, image=image))


@gate.command()
@device_command
@click.option("--image", type=click.Path(exists=True, dir_okay=False, path_type=Path), help="A picture of the code.")
@click.option("--code", default=None, help="The code as printed (dashes, spaces and case do not matter).")
@click.option("--stdin", "from_stdin", is_flag=True, help="One code per line until EOF (a keyboard-wedge scanner).")
def scan(options: DeviceOptions, image: Path | None, code: str | None, from_stdin: bool) -> None:
    """A physical ticket: decide its code offline, journal it, print OPEN or REFUSED (one code: exit 2 if refused)."""
    if (image is not None) + (code is not None) + from_stdin != 1:
        raise click.UsageError("give one of --image, --code and --stdin")
    device = Device(options, DeviceKind.GATE)
    gate_id = device.config.gate_id
    with closing(GateJournal(options.data_dir / JOURNAL_FILE)) as journal:
        paper = PaperGate(gate_id=gate_id, journal=journal, clock=device.clock)
        if from_stdin:
            for text in sys.stdin:
                if text.strip():
                    _echo(tap_line(gate_id, paper.scan(text)))
            return
        result = paper.scan_picture(image) if image is not None else paper.scan(code or "")
    _echo(tap_line(gate_id, result))
    if not result.opens:
        sys.exit(REFUSED_EXIT)


@gate.command()
@device_command
def annul(options: DeviceOptions) -> None:
    """The turnstile did not turn: annul the gate's last entry (within 120 s); the card follows on its next tap."""
    device = Device(options, DeviceKind.GATE)
    with device.validator() as validator:
        line = validator.journal.line(validator.annul_last())
    assert line is not None
    _echo(f"ANNULLED gate={device.config.gate_id} seq={line.seq} annuls={line.annuls_seq} ticket={line.ticket_id}")


@gate.command()
@device_command
def sync(options: DeviceOptions) -> None:
    """Upload the pending journal lines and pull the revocation list, once; prints what the server said."""
    device = Device(options, DeviceKind.GATE)
    with closing(GateJournal(options.data_dir / JOURNAL_FILE)) as journal, closing(device.client()) as client:
        report = GateSync(gate_id=device.config.gate_id, journal=journal, client=client).sync_once()
    _echo(report.summary())
    if report.errors:
        raise report.errors[0]
    if report.held:
        raise GateError("lines_held", f"the service refused {len(report.held)} lines; they stay pending")


@gate.command()
@device_command
@click.option("--day", type=click.DateTime(["%Y-%m-%d"]), default=None, help="The Expo day (default: today).")
@click.option("--all-days", is_flag=True, help="Every line of the journal, whatever the day.")
def journal(options: DeviceOptions, day: datetime | None, all_days: bool) -> None:
    """The journal's counts in the shape of the server's `GET /v1/gate-entries/counts` (JSON)."""
    device = Device(options, DeviceKind.GATE)
    the_day: date | None = None if all_days else (day.date() if day else device.clock.now().date())
    with closing(GateJournal(options.data_dir / JOURNAL_FILE)) as kept:
        counts = kept.counts(day=the_day)
    _echo(json.dumps(local_counts(device.config, the_day, counts)))


def local_counts(config: GateConfig, day: date | None, counts: dict[str, int]) -> dict[str, Any]:
    """This device's counts as the server reports a day: total, every entrance (in the park's order), the gate."""
    return {
        "day": day.isoformat() if day else None,
        "total": counts["entries"],
        "entrances": [
            {"entrance": code, "entries": counts["entries"] if code == config.entrance else 0} for code in ENTRANCES
        ],
        "gates": [{"gate_id": config.gate_id, "entrance": config.entrance, "kind": config.kind, **counts}],
    }
