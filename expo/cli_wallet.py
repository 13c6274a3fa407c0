"""`expo wallet ...`: the wallet's operator commands."""

import sys

import click

from expo.bank import InMemoryBank
from expo.cli_support import parse_instant, with_db
from expo.clock import SystemClock
from expo.db import Database
from wallet.audit import LedgerReport, audit_ledger
from wallet.bills import remind_bills
from wallet.recharge_cards import IssuedCard, issue_recharge_cards
from wallet.sms import OutboxSms
from wallet.sweeps import sweep_wallet


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


@wallet.command("sweep")
@click.option("--at", "at", default=None, help="ISO instant to sweep as of (default: now; no zone: Shanghai time)")
def wallet_sweep(at: str | None) -> None:
    """Void lapsed SMS payment holds; settle waiting bank top-ups and withdrawals by asking the bank."""
    now = parse_instant(at) if at else SystemClock().now()
    report = with_db(lambda database: sweep_wallet(database, bank=InMemoryBank(), now=now))
    click.echo(
        f"holds voided {report.holds_voided}; top-ups posted {report.top_ups_posted}, voided {report.top_ups_voided}; "
        f"withdrawals paid {report.withdrawals_paid}, failed {report.withdrawals_failed}"
    )


@wallet.group("recharge-cards")
def recharge_cards() -> None:
    """Prepaid recharge cards."""


@recharge_cards.command("issue")
@click.option("--count", type=int, required=True, help="How many cards.")
@click.option("--face-value-fen", type=int, required=True, help="Each card's face value in fen.")
@click.option("--batch", required=True, help="The batch name (issued once).")
def recharge_cards_issue(count: int, face_value_fen: int, batch: str) -> None:
    """Issue a batch of cards and print each serial and PIN, once: only the PINs' digests are kept."""
    now = SystemClock().now()

    async def work(database: Database) -> list[IssuedCard]:
        async with database.write() as session:
            return await issue_recharge_cards(session, count=count, face_value_fen=face_value_fen, batch=batch, now=now)

    for card in with_db(work):
        click.echo(f"{card.serial} {card.pin}")
