"""`expo settle ...`: the finance office's commands, run on the server against the configured database.

`month` closes a month with a progress bar, `payouts` runs the T+1 merchant payouts day by day, `commission`
shows the commission accrued so far and, with `--final`, settles it once after ticket sales ended; `statement`
and `payout-file` write the documents a party files.
"""

import getpass
from collections.abc import Awaitable, Callable
from datetime import date, datetime
from pathlib import Path
from typing import TypeVar

import click

from expo.cli_support import parse_instant, with_db
from expo.clock import SystemClock
from expo.db import Database
from expo.errors import ExpoError
from expo.money import format_fen
from expo.settings import Settings
from reconciliation import payout_file, settlement, statements
from reconciliation.payouts import run_payouts
from reconciliation.rules import Month, parse_rates
from reconciliation.statement_export import Statement, statement_csv
from reconciliation.statement_pdf import statement_pdf
from reconciliation.statement_rules import FINAL_DOCUMENT, balances, check_party

T = TypeVar("T")
AT = click.option("--at", "at_text", default=None, help="Act as of this instant (default: now), e.g. 2010-07-01T09:00.")


def _now(at_text: str | None) -> datetime:
    return parse_instant(at_text) if at_text else SystemClock().now()


def _run(work: Callable[[Database], Awaitable[T]]) -> T:
    """Run the work; a refusal is printed with its stable code and the command fails."""
    try:
        return with_db(work)
    except ExpoError as error:
        raise click.ClickException(f"[{error.code}] {error.detail}") from error


def _by() -> str:
    return f"expo settle ({getpass.getuser()})"


@click.group("settle")
def settle() -> None:
    """Settlement: close months, pay merchants T+1, settle the commission, write statements."""


@settle.command("month")
@click.argument("month_text", metavar="MONTH")
@AT
def settle_month(month_text: str, at_text: str | None) -> None:
    """Close MONTH (YYYY-MM): its payouts, commission, proceeds, wallet settlement, adjustments and matching."""
    month = _month(month_text)
    rates = parse_rates(Settings.from_env().commission_rates)
    now = _now(at_text)

    async def work(database: Database) -> settlement.ClosedMonth:
        with click.progressbar(length=settlement.progress_steps(month), label=f"settling {month}") as bar:

            def step(name: str) -> None:
                bar.label = f"settling {month}: {name}"
                bar.update(1)

            return await settlement.settle_month(database, month=month, rates=rates, now=now, by=_by(), progress=step)

    closed = _run(work)
    click.echo(f"{month} closed: {len(closed.lines)} statement lines, window {closed.window}")
    click.echo(f"payout days run: {closed.payout_days}; discrepancies found: {closed.discrepancies}")


@settle.command("payouts")
@click.option("--through", "through", required=True, type=click.DateTime(["%Y-%m-%d"]), help="The last payout day.")
@AT
def settle_payouts(through: datetime, at_text: str | None) -> None:
    """Run the T+1 merchant payouts of every working day not yet run, through the given day."""
    now = _now(at_text)

    async def work(database: Database) -> list[tuple[date, int, int]]:
        async with database.write() as session:
            runs = await run_payouts(session, from_day=through.date().replace(day=1), through=through.date(), now=now)
        return [(run.payout_day, run.merchants, run.amount_fen) for run in runs]

    for day, merchants, amount in _run(work):
        click.echo(f"{day}: {merchants} merchants paid {format_fen(amount)} yuan")


@settle.command("commission")
@click.option("--final", is_flag=True, help="Settle it now, once: bureau -> Shanghai -> each province.")
@AT
def settle_commission(final: bool, at_text: str | None) -> None:
    """Show the commission each company accrued in the closed months; with --final, settle it."""
    now = _now(at_text)

    async def work(database: Database) -> list[str]:
        if final:
            async with database.write() as session:
                lines = await settlement.settle_commission_final(session, now=now, by=_by())
        else:
            async with database.read() as session:
                lines = await settlement.accrued_commission(session)
        return [f"{line.payer} -> {line.payee}: {format_fen(line.amount_fen)} yuan ({line.item})" for line in lines]

    for text in _run(work):
        click.echo(text)
    click.echo("commission settled" if final else "nothing settled (run with --final once ticket sales have ended)")


@settle.command("statement")
@click.argument("document")
@click.option("--party", required=True, help="bureau, platform or a province code such as 44.")
@click.option("--format", "fmt", type=click.Choice(["csv", "pdf"]), default="pdf", show_default=True)
@click.option("--out", "out", required=True, type=click.Path(dir_okay=False, path_type=Path))
def settle_statement(document: str, party: str, fmt: str, out: Path) -> None:
    """Write a party's statement of a closed month (YYYY-MM) or of the final commission ("commission-final")."""

    async def work(database: Database) -> statements.PartyStatement:
        check_party(party)
        if document != FINAL_DOCUMENT:
            Month.parse(document)
        async with database.read() as session:
            return await statements.read_statement(session, document=document, party=party)

    found = _run(work)
    printable = Statement(found.document, found.party, "closed", found.closed_at, found.lines, SystemClock().now())
    if fmt == "csv":
        out.write_text(statement_csv(printable), encoding="utf-8")
    else:
        out.write_bytes(statement_pdf(printable))
    net = sum(b.net_fen for b in balances(found.lines, party))
    click.echo(f"{out}: {len(found.lines)} lines, net {format_fen(net)} yuan for {party}")


@settle.command("payout-file")
@click.argument("day", type=click.DateTime(["%Y-%m-%d"]))
@click.option("--out", "out", required=True, type=click.Path(dir_okay=False, path_type=Path))
def settle_payout_file(day: datetime, out: Path) -> None:
    """Write a payout day's file (CSV) for the bank."""

    async def work(database: Database) -> str:
        async with database.read() as session:
            return payout_file.payout_file_csv(await payout_file.payout_file(session, payout_day=day.date()))

    out.write_text(_run(work), encoding="utf-8")
    click.echo(f"{out} written")


def _month(text: str) -> Month:
    try:
        return Month.parse(text)
    except ExpoError as error:
        raise click.BadParameter(f"[{error.code}] {error.detail}", param_hint="MONTH") from error
