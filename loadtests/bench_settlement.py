"""A month of 10 million tickets and 10 million wallet payments settled on PostgreSQL, with the time printed.

    .venv/bin/python -m loadtests.bench_settlement --tickets 10000000 --payments 10000000

June 2010 is generated straight into a fresh database (`loadtests.settlement_data`), then closed by
`reconciliation.settlement.settle_month`, the code `expo settle month 2010-06` runs: its T+1 payouts, commission,
proceeds, wallet settlement, adjustments and matching, each step timed. The figures are then checked against
plain SQL sums over the generated rows, and the ledger's balance.
"""

import argparse
import asyncio
import sys
import time
from datetime import datetime

from sqlalchemy import text

from expo.clock import EXPO_TZ
from expo.db import Database
from loadtests.bench_server import BenchService
from loadtests.settlement_data import generate_month
from reconciliation.rules import CommissionRates, Month
from reconciliation.settlement import settle_month
from reconciliation.statement_rules import Line, Section

JUNE = Month(2010, 6)
CLOSE_AT = datetime(2010, 7, 1, 2, 0, tzinfo=EXPO_TZ)


def _arguments(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tickets", type=int, default=10_000_000)
    parser.add_argument("--payments", type=int, default=10_000_000)
    parser.add_argument("--users", type=int, default=500_000)
    parser.add_argument("--merchants", type=int, default=2_000)
    return parser.parse_args(argv)


async def _close(url: str) -> list[Line]:
    database = Database(url)
    started = time.perf_counter()
    last, payout_days, payout_seconds = started, 0, 0.0

    def step(name: str) -> None:
        nonlocal last, payout_days, payout_seconds
        now = time.perf_counter()
        if name.startswith("payouts "):
            payout_days, payout_seconds = payout_days + 1, payout_seconds + now - last
        else:
            if payout_days:
                print(f"    {f'payouts ({payout_days} days)':<24} {payout_seconds:7.2f} s", flush=True)
                payout_days = 0
            print(f"    {name:<24} {now - last:7.2f} s", flush=True)
        last = now

    try:
        closed = await settle_month(
            database, month=JUNE, rates=CommissionRates(), now=CLOSE_AT, by="bench", progress=step
        )
        elapsed = time.perf_counter() - started
        print(
            f"  closed {JUNE} in {elapsed:,.1f} s: {len(closed.lines)} lines, {closed.payout_days} payout days, "
            f"{closed.discrepancies} discrepancies"
        )
        await _check(database, closed.lines)
        return closed.lines
    finally:
        await database.dispose()


async def _check(database: Database, lines: list[Line]) -> None:
    """The statement's totals against plain sums over the generated rows; the ledger still balances."""
    async with database.read() as session:
        charges = int(
            await session.scalar(
                text(
                    "SELECT sum(CASE WHEN kind = 'charge' THEN amount_fen ELSE -amount_fen END) FROM payments "
                    "WHERE status = 'confirmed' AND settled_at < :end"
                ),
                {"end": CLOSE_AT},
            )
            or 0
        )
        fees = int(
            await session.scalar(
                text("SELECT sum(fee_fen) FROM wallet_transfers WHERE kind = 'payment' AND finished_at < :end"),
                {"end": CLOSE_AT},
            )
            or 0
        )
        unbalanced = int(
            await session.scalar(
                text(
                    "SELECT count(*) FROM (SELECT transfer_id FROM wallet_postings GROUP BY transfer_id "
                    "HAVING sum(amount_fen) <> 0) x"
                )
            )
            or 0
        )
        drift = int(
            await session.scalar(
                text(
                    "SELECT count(*) FROM wallet_accounts a LEFT JOIN (SELECT account_id, sum(amount_fen) s "
                    "FROM wallet_postings GROUP BY account_id) p ON p.account_id = a.id "
                    "WHERE a.balance <> coalesce(p.s, 0)"
                )
            )
            or 0
        )
        codes = (
            await session.execute(text("SELECT code, count(*) FROM discrepancies GROUP BY code ORDER BY code"))
        ).all()
    print("  discrepancies: " + (", ".join(f"{count} {code}" for code, count in codes) or "none"))
    proceeds = sum(x.amount_fen for x in lines if x.section is Section.PROCEEDS and x.payee == "bureau")
    fee_lines = sum(x.amount_fen for x in lines if x.section is Section.WALLET_FEES)
    print(
        f"  proceeds to the bureau {proceeds:,} fen, generated {charges:,}: {'ok' if proceeds == charges else 'DIFFER'}"
    )
    print(f"  wallet fee shares {fee_lines:,} fen, generated fees {fees:,}: {'ok' if fee_lines == fees else 'DIFFER'}")
    print(f"  ledger: {unbalanced} unbalanced transfers, {drift} accounts off their postings")


def main(argv: list[str] | None = None) -> int:
    args = _arguments(argv)
    service = BenchService(db_kind="postgres", workers=1)
    try:
        service.prepare(peak_capacity=100_000)
        url = service.database_url
        raw = url.replace("postgresql+asyncpg://", "postgresql://")
        print(f"generating June 2010: {args.tickets:,} tickets, {args.payments:,} wallet payments")
        started = time.perf_counter()
        asyncio.run(
            generate_month(
                raw, tickets=args.tickets, payments=args.payments, users=args.users, merchants=args.merchants, say=print
            )
        )
        print(f"  generated in {time.perf_counter() - started:,.0f} s")
        print("settling June 2010 (settle_month, as `expo settle month 2010-06`):")
        asyncio.run(_close(url))
    finally:
        service.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
