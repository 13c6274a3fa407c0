"""`expo terminal ...`: the hall clerk's terminal on the command line.

    expo terminal [--data-dir DIR] [--service URL] [--reader NAME] [--clock-at T] COMMAND

Every refusal, the service's or the card's or the reader's, is one line on stderr, `error <code>: <what>`,
and a non-zero exit status (1); a sale whose ticket did not reach the card prints its slip first.
"""

import functools
import sys
from collections.abc import Callable
from datetime import date, datetime
from pathlib import Path
from typing import Any, ParamSpec, TypeVar

import click

from expo.cli_support import parse_instant
from expo.clock import EXPO_TZ, OffsetClock
from expo.money import format_fen
from hall_terminals.client import ServiceClient
from hall_terminals.errors import ServiceError, TerminalError
from hall_terminals.exchange import Into, voucher_text
from hall_terminals.journal import EntryType
from hall_terminals.reader import pcsc_connector
from hall_terminals.session import StaffSession, drop_session, kept_device_token, load_session, save_session
from hall_terminals.terminal import HallTerminal, Printed, wall_clock
from simcard.session import CardError
from ticketing.signed_codes import grouped

P = ParamSpec("P")
R = TypeVar("R")
DEFAULT_SERVICE = "http://127.0.0.1:8000"
INTO = {"physical": Into.PHYSICAL, "card": Into.EXPO_CARD}


class Config:
    """The group's options, handed to every command."""

    def __init__(
        self, data_dir: Path, service: str | None, reader: str | None, card_wait: float, clock_at: str | None = None
    ) -> None:
        self.data_dir = data_dir
        self.service = service
        self.reader = reader
        self.card_wait = card_wait
        self.clock = terminal_clock(clock_at)

    def terminal(self) -> HallTerminal:
        """The terminal as the logged-in clerk."""
        session = load_session(self.data_dir)
        client = ServiceClient(self.service or session.service, session.token)
        connect = pcsc_connector(self.reader, wait=self.card_wait)
        return HallTerminal(data_dir=self.data_dir, session=session, client=client, connect=connect, clock=self.clock)


def terminal_clock(clock_at: str | None) -> Callable[[], datetime]:
    """The wall clock, or a running clock started at `clock_at` (a replayed Expo day, as the service's --clock)."""
    if clock_at is None:
        return wall_clock
    try:
        start = parse_instant(clock_at)
    except ValueError:
        raise click.BadParameter(f"{clock_at!r} is not an ISO instant", param_hint="--clock-at") from None
    return OffsetClock(start - datetime.now(EXPO_TZ)).now


def describe(error: Exception) -> tuple[str, str] | None:
    """(code, message) of a refusal the clerk can act on; None for a fault of the program itself."""
    if isinstance(error, TerminalError):
        return error.code, error.message
    if isinstance(error, CardError):
        hint = " (wrong AID: no Expo ticket applet on this card)" if error.code == "card_no_applet" else ""
        return error.code, f"{error.detail}{hint}"
    code = getattr(error, "code", None)  # simcard.pcsc errors: no_reader, no_card, card_removed, pcsc_error
    if isinstance(code, str) and type(error).__module__ == "simcard.pcsc":
        return code, str(error)
    return None


def fail(error: Exception, *, hint: str = "") -> None:
    """Print the one-line refusal and exit 1 (a program fault propagates with its traceback)."""
    described = describe(error)
    if described is None:
        raise error
    code, message = described
    click.echo(f"error {code}: {message}{hint}", err=True)
    sys.exit(1)


def refusals(command: Callable[P, R]) -> Callable[P, R]:
    """Run a command; a refusal becomes its one line and exit status 1; an ended session is forgotten."""

    @functools.wraps(command)
    def run(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return command(*args, **kwargs)
        except Exception as error:
            if isinstance(error, ServiceError) and error.code in ("session_expired", "invalid_token"):
                drop_session(click.get_current_context().find_object(Config).data_dir)  # type: ignore[union-attr]
            fail(error)
            raise

    return run


pass_config = click.make_pass_decorator(Config)


@click.group()
@click.option(
    "--data-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("terminal"),
    envvar="EXPO_TERMINAL_DIR",
    show_default=True,
    help="Journal, slips and session (EXPO_TERMINAL_DIR).",
)
@click.option("--service", default=None, envvar="EXPO_TERMINAL_SERVICE", help="The service's URL (login stores it).")
@click.option("--reader", default=None, envvar="EXPO_TERMINAL_READER", help="PC/SC reader (default: first vpcd one).")
@click.option("--card-wait", type=float, default=3.0, show_default=True, help="Seconds to wait for a card.")
@click.option(
    "--clock-at",
    default=None,
    envvar="EXPO_TERMINAL_CLOCK_AT",
    help="The terminal's clock runs from this instant (2010-10-16T09:00), like the service's --clock.",
)
@click.pass_context
def terminal(
    ctx: click.Context, data_dir: Path, service: str | None, reader: str | None, card_wait: float, clock_at: str | None
) -> None:
    """The hall clerk's terminal: sell, write to card, exchange vouchers, void, reprint, totals, day close."""
    ctx.obj = Config(data_dir, service, reader, card_wait, clock_at)


@terminal.command()
@click.option("--staff-no", required=True)
@click.option("--device-token", default=None, envvar="EXPO_DEVICE_TOKEN", help="The terminal's credential (kept).")
@click.password_option(envvar="EXPO_STAFF_PASSWORD", confirmation_prompt=False)
@pass_config
@refusals
def login(config: Config, staff_no: str, device_token: str | None, password: str) -> None:
    """Log the clerk in; the session token is kept in the data folder (0600), never shown."""
    token = kept_device_token(config.data_dir, device_token)
    service = config.service or DEFAULT_SERVICE
    with ServiceClient(service) as client:
        reply = client.login(device_token=token, staff_no=staff_no, password=password)
    session = StaffSession(
        service=service, token=reply["token"], staff_no=reply["staff_no"], name=reply["name"],
        hall=reply["hall"] or "", province_code=reply["province_code"], expires_at=reply["expires_at"],
    )  # fmt: skip
    save_session(config.data_dir, session)
    click.echo(f"{session.name} ({session.staff_no}) logged in at {session.hall} until {session.expires_at}")


@terminal.command()
@pass_config
@refusals
def stock(config: Config) -> None:
    """Peak-day stock: capacity, sold, available."""
    rows = config.terminal().client.stock()
    click.echo(f"{'DAY':<12}{'CAPACITY':>10}{'SOLD':>10}{'AVAILABLE':>11}")
    for row in rows:
        click.echo(f"{row['day']:<12}{row['capacity']:>10}{row['sold']:>10}{row['available']:>11}")


@terminal.command("register-card")
@click.option("--msisdn", required=True)
@pass_config
@refusals
def register_card(config: Config, msisdn: str) -> None:
    """SIM swap: register the card in the reader to the customer's number."""
    reply = config.terminal().register_card(msisdn)
    click.echo(f"card {reply['card']['csn'].upper()} registered to {reply['card']['msisdn']}")


@terminal.command()
@click.option("--msisdn", required=True)
@click.option("--type", "ticket_type", required=True, help="standard, peak, evening, pass_3, ...")
@click.option("--day", type=click.DateTime(["%Y-%m-%d"]), default=None, help="Visit day of a peak-day ticket.")
@click.option("--cash", is_flag=True, help="Paid in cash (the default).")
@click.option("--card-approval", default=None, help="Paid by bank card: the POS approval code.")
@pass_config
@refusals
def sell(config: Config, msisdn: str, ticket_type: str, day: Any, cash: bool, card_approval: str | None) -> None:
    """Sell a ticket and write it to the buyer's Expo card in the reader; print the slip, save its PNG."""
    if cash and card_approval:
        raise click.UsageError("--cash or --card-approval, not both")
    visit_day: date | None = day.date() if day else None
    outcome = config.terminal().sell(
        msisdn=msisdn, ticket_type=ticket_type, visit_day=visit_day, approval_code=card_approval
    )
    _show(outcome.sale)
    if outcome.write_error is not None:
        ticket = outcome.sale.entry.ticket_id
        fail(outcome.write_error, hint=f"; sold, not on the card yet: expo terminal write --ticket {ticket}")
    assert outcome.write is not None
    _written(outcome.write)


@terminal.command()
@click.option("--ticket", "ticket_id", type=int, required=True)
@pass_config
@refusals
def write(config: Config, ticket_id: int) -> None:
    """Write a sold ticket to the card in the reader (after a failed or interrupted write)."""
    _written(config.terminal().write(ticket_id))


@terminal.command()
@click.option(
    "--image",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    default=None,
    help="A photo or the MMS picture of the voucher's QR code.",
)
@click.option("--code", default=None, help="The voucher's code as typed (dashes, spaces and case do not matter).")
@click.option(
    "--into",
    "into",
    type=click.Choice(sorted(INTO)),
    default="physical",
    show_default=True,
    help="A printed physical ticket, or the Expo card in the reader.",
)
@click.option(
    "--out",
    "out_dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Folder of the printed ticket's PNG and PDF (default: DATA_DIR/tickets).",
)
@pass_config
@refusals
def exchange(config: Config, image: Path | None, code: str | None, into: str, out_dir: Path | None) -> None:
    """Exchange a QR voucher, checked offline first, into a physical ticket or onto the customer's Expo card."""
    if (image is None) == (code is None):
        raise click.UsageError("--image or --code, one of the two")
    text = voucher_text(image=image, code=code)
    outcome = config.terminal().exchange(text, into=INTO[into], out_dir=out_dir)
    _show(outcome.exchange)
    entry = outcome.exchange.entry
    if entry.physical_code is not None:
        click.echo(f"EXCHANGED ticket={entry.ticket_id} into=physical code={grouped(entry.physical_code)}")
        return
    click.echo(f"EXCHANGED ticket={entry.ticket_id} into=card csn={(entry.csn or '').upper()}")
    if outcome.write_error is not None:
        hint = f"; exchanged, not on the card yet: expo terminal write --ticket {entry.ticket_id}"
        fail(outcome.write_error, hint=hint)
    assert outcome.write is not None
    _written(outcome.write)


@terminal.command()
@click.option("--order", "order_id", type=int, required=True)
@pass_config
@refusals
def void(config: Config, order_id: int) -> None:
    """Void a sale of today before use."""
    _show(config.terminal().void(order_id))


@terminal.command()
@click.option("--serial", type=int, default=None, help="The journal serial (default: the last slip).")
@click.option(
    "--out",
    "out_dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Folder of a reprinted physical ticket (default: DATA_DIR/tickets).",
)
@pass_config
@refusals
def reprint(config: Config, serial: int | None, out_dir: Path | None) -> None:
    """Print a slip again (and the physical ticket of an exchange)."""
    _show(config.terminal().reprint(serial, out_dir=out_dir))


@terminal.command()
@pass_config
@refusals
def totals(config: Config) -> None:
    """Totals since the last day close, by transaction type."""
    batch_no, by_type, exchanges = config.terminal().totals()
    click.echo(f"BATCH {batch_no:06d} (open)")
    for kind, total in by_type.items():
        click.echo(f"{kind.value.upper():<8}{total.count:>6}  CNY {format_fen(total.amount_fen):>12}")
    click.echo(f"{'EXCHANGE':<8}{exchanges:>6}  (vouchers, no money)")
    net = by_type[EntryType.SALE].amount_fen - by_type[EntryType.VOID].amount_fen
    click.echo(f"{'NET':<8}{'':>6}  CNY {format_fen(net):>12}")


@terminal.command("close-day")
@pass_config
@refusals
def close_day(config: Config) -> None:
    """Upload the journal's open batch; the platform compares it with its own records."""
    closed = config.terminal().close_day()
    reply = closed.reply
    state = "matched" if reply["matched"] else f"MISMATCH ({len(reply['discrepancies'])} lines)"
    click.echo(f"batch {closed.batch_no:06d} closed: {state}")
    for side in ("terminal", "platform"):
        parts = [f"{k} {v['count']} / {format_fen(v['amount_fen'])}" for k, v in reply[side].items()]
        click.echo(f"  {side}: " + ", ".join(parts))
    for found in reply["discrepancies"]:
        click.echo(f"  {found['kind']}: {found['line_type']} {found['ref']} (serial {found['serial']})")


def _show(printed: Printed) -> None:
    click.echo(printed.text, nl=False)
    click.echo(f"slip image: {printed.png}")
    if printed.ticket is not None:
        click.echo(f"ticket image: {printed.ticket.png}")
        click.echo(f"ticket pdf: {printed.ticket.pdf}")


def _written(printed: Printed) -> None:
    entry = printed.entry
    click.echo(f"ticket {entry.ticket_id} written to card {(entry.csn or '').upper()} slot {entry.slot}")
