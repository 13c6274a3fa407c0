"""`expo wallet ...`: the wallet's operator commands."""

import sys

import click

from expo.cli_support import parse_instant, with_db
from expo.clock import SystemClock
from expo.db import Database
from wallet.audit import LedgerReport, audit_ledger
from wallet.bills import remind_bills
from wallet.sms import OutboxSms


@click.group()
def wallet() -> None:
    """The mobile wallet: ledger audit and housekeeping."""


@wallet.command("check")
def wallet_check() -> None:
    """Audit the ledger: balances equal their postings, every transfer sums to zero, nothing restricted below zero."""

    async def work(database: Database) -> LedgerReport:
        async with database.read() as session:
            return await audit_ledger(session)

    report = with_db(work)
    click.echo(
        f"{report.accounts} accounts, {report.transfers} transfers, {report.postings} postings; "
        f"all balances sum to {report.total_balance_fen} fen"
    )
    for problem in report.problems:
        click.echo(f"PROBLEM {problem}")
    click.echo("ledger OK" if report.ok else "ledger NOT OK")
    sys.exit(0 if report.ok else 1)


@wallet.command("remind-bills")
@click.option("--at", "at", default=None, help="ISO instant to remind as of (default: now; no zone: Shanghai time)")
def wallet_remind_bills(at: str | None) -> None:
    """Text every open bill due within three days that was not texted in the last 24 hours."""
    now = parse_instant(at) if at else SystemClock().now()

    async def work(database: Database) -> int:
        return await remind_bills(database, sms=OutboxSms(database), now=now)

    click.echo(f"{with_db(work)} bill reminders texted")
