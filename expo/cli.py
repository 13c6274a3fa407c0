"""The `expo` command: serve, migrate, seed, manage credentials, sweep orders, run the demo."""

import json
import os
import sys
from datetime import datetime
from pathlib import Path

import click
import uvicorn

from expo.access.rules import Role
from expo.access.service import create_credential, create_staff
from expo.bank import InMemoryBank
from expo.bootstrap import create_demo_principals, load_reference_data
from expo.cli_card import card
from expo.cli_settle import settle
from expo.cli_signing import ticket_keys
from expo.cli_support import parse_instant, with_db
from expo.cli_wallet import wallet
from expo.clock import EXPO_TZ, SystemClock
from expo.db import Database
from expo.demo import run_demo
from expo.migrate import new_revision, upgrade
from expo.provinces import parse_segment_csv
from expo.settings import Settings
from gates.cli import gate
from hall_terminals.cli import terminal
from ticketing.sweeps import sweep_unpaid


def _settings() -> Settings:
    return Settings.from_env()


@click.group()
def main() -> None:
    """The Expo mobile-ticket and wallet platform."""


@main.command()
@click.option("--host", default=None, help="Address to listen on (EXPO_HOST).")
@click.option("--port", type=int, default=None, help="Port (EXPO_PORT).")
@click.option("--workers", type=int, default=None, help="Worker processes (EXPO_WORKERS, default 2).")
@click.option("--clock", "clock_at", default=None, help="Start the service clock at this instant (2010-06-01T09:00).")
def serve(host: str | None, port: int | None, workers: int | None, clock_at: str | None) -> None:
    """Run the service with uvicorn (stateless workers over one database)."""

    settings = _settings()
    if clock_at is not None:
        offset = parse_instant(clock_at) - datetime.now(EXPO_TZ)
        # Every worker reads the same offset, so they agree on the time.
        os.environ["EXPO_CLOCK_OFFSET_SECONDS"] = str(offset.total_seconds())
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    uvicorn.run(
        "expo.app:app_from_env",
        factory=True,
        host=host or settings.host,
        port=port or settings.port,
        workers=workers or settings.workers,
        log_level="warning",
        access_log=False,
    )


@main.group()
def db() -> None:
    """Database schema."""


@db.command("upgrade")
def db_upgrade() -> None:
    """Apply the migrations up to the newest schema."""

    settings = _settings()
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    upgrade(settings.effective_database_url)
    click.echo("schema is up to date")


@db.command("revision")
@click.option("-m", "--message", required=True)
def db_revision(message: str) -> None:
    """Autogenerate a migration from the models (developers)."""

    new_revision(_settings().effective_database_url, message)


@main.command()
@click.option("--peak-capacity", type=int, default=100_000, show_default=True, help="Tickets per peak day.")
@click.option("--segments", "segments_file", type=click.Path(exists=True, dir_okay=False), default=None)
@click.option("--demo-principals", is_flag=True, help="Also create the demo's terminals, desks and staff.")
def seed(peak_capacity: int, segments_file: str | None, demo_principals: bool) -> None:
    """Load reference data (number segments, peak-day stock); optionally the demo's callers."""

    settings = _settings()
    ranges = parse_segment_csv(Path(segments_file).read_text()) if segments_file else None

    async def work(database: Database) -> None:
        count = await load_reference_data(database, peak_capacity=peak_capacity, segments=ranges)
        click.echo(f"loaded {count} number-segment ranges; peak days stocked with {peak_capacity} each")
        if demo_principals:
            made = await create_demo_principals(database, now=SystemClock().now())
            path = write_secrets(settings.data_dir, {"tokens": made.tokens, "passwords": made.passwords})
            click.echo(f"demo credentials written to {path} (mode 0600)")

    with_db(work)


def write_secrets(data_dir: Path, secrets: dict[str, dict[str, str]]) -> Path:
    """Secrets go to a file only its owner can read, never to the terminal or a log."""
    data_dir.mkdir(parents=True, exist_ok=True)
    path = data_dir / "credentials.json"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as out:
        json.dump(secrets, out, indent=2)
    os.chmod(path, 0o600)
    return path


@main.group()
def credential() -> None:
    """Device and service API keys."""


@credential.command("create")
@click.option(
    "--role",
    required=True,
    type=click.Choice(["admin", "hall_terminal", "hotline_desk", "web", "courier", "sms_gateway", "finance", "bureau"]),
)
@click.option("--label", required=True)
@click.option("--province", default=None, help="Two-digit province code (GB/T 2260).")
@click.option("--hall", default=None)
def credential_create(role: str, label: str, province: str | None, hall: str | None) -> None:
    """Issue an API key; the token is printed once, here, and stored only hashed."""

    async def work(database: Database) -> str:
        async with database.write() as session:
            _, token = await create_credential(
                session, role=Role(role), label=label, province_code=province, hall=hall, now=SystemClock().now()
            )
        return token

    click.echo(with_db(work))


@main.group()
def staff() -> None:
    """Clerks and 12580 agents."""


@staff.command("create")
@click.option("--staff-no", required=True)
@click.option("--name", required=True)
@click.option("--role", required=True, type=click.Choice(["hall_clerk", "hotline_agent"]))
@click.option("--province", required=True)
@click.option("--hall", default=None)
@click.password_option(envvar="EXPO_STAFF_PASSWORD")
def staff_create(staff_no: str, name: str, role: str, province: str, hall: str | None, password: str) -> None:
    """Register a clerk or agent (the password is prompted for, or read from EXPO_STAFF_PASSWORD)."""

    async def work(database: Database) -> None:
        async with database.write() as session:
            await create_staff(
                session,
                staff_no=staff_no,
                name=name,
                role=Role(role),
                province_code=province,
                hall=hall,
                password=password,
                now=SystemClock().now(),
            )

    with_db(work)
    click.echo(f"registered {staff_no}")


@main.group()
def orders() -> None:
    """Order housekeeping."""


@orders.command("sweep")
@click.option("--at", "at_text", default=None, help="Sweep as of this instant (default: now).")
def orders_sweep(at_text: str | None) -> None:
    """Ask the bank about silent payments and expire unpaid orders past their window."""

    now = parse_instant(at_text) if at_text else SystemClock().now()

    report = with_db(lambda database: sweep_unpaid(database, bank=InMemoryBank(), now=now))
    click.echo(f"paid {report.paid}, expired {report.expired}")


@main.command()
@click.option("--port", type=int, default=8765, show_default=True)
@click.option("--workers", type=int, default=2, show_default=True)
def demo(port: int, workers: int) -> None:
    """Start the service on a fresh SQLite database, sell through every channel, print what happened."""

    sys.exit(run_demo(port=port, workers=workers))


main.add_command(wallet)
main.add_command(card)
main.add_command(ticket_keys)
main.add_command(terminal)
main.add_command(gate)
main.add_command(settle)

if __name__ == "__main__":
    main()
