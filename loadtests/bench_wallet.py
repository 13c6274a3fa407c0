"""Wallet benchmark: a fresh database and server, wallet payments for N seconds, figures and a ledger audit.

    .venv/bin/python -m loadtests.bench_wallet --db sqlite|postgres --seconds 20 --concurrency 32 [--hot] [--remote]

Creates a fresh database like loadtests.bench_sales (with risk limits no run reaches, so limits are not
what is measured), starts `expo serve --workers 2 --clock 2010-06-01T10:00`, then, untimed, registers
merchants and one POS terminal per concurrent payer and opens and tops up `--users` real-name wallets
spread over the provinces. Timed: card-tap payments at the terminals (`--hot`: every terminal belongs
to one merchant, so every payment credits one account), or with `--remote` web payments confirmed with
the payment password. Prints throughput, latency, refusals and the CPU split; then audits the ledger
and checks that each merchant's balance is the sum of the nets of the payments the client saw posted.
`--profile FILE` runs one worker under cProfile (setup included: use fewer `--users`).
"""

import argparse
import asyncio
import json
import os
import platform
import pstats
import signal
import sys
import time
from pathlib import Path

import httpx
import psutil  # type: ignore[import-untyped]  # comes with locust (the `load` extra)

from loadtests import bench_cpu
from loadtests.bench_driver import log_in_clerks
from loadtests.bench_sales import _percentile, _run, _stop_on_signal
from loadtests.bench_server import BenchService
from loadtests.common import EXPO_CLOCK, Credentials, bearer
from loadtests.wallet_driver import (
    HOT_MERCHANT,
    PAYMENT_PASSWORD,
    Payer,
    PaymentOutcomes,
    audit_ledger,
    drive_payments,
    generous_limits,
    merchant_balance,
    open_wallets,
    pos_fleet,
    spread_numbers,
    web_fronts,
)

PEAK_CAPACITY = 100_000  # tickets are not sold here; the seed wants a capacity


def _arguments(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m loadtests.bench_wallet", description=__doc__.splitlines()[0])
    parser.add_argument("--db", choices=("sqlite", "postgres"), default="sqlite")
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--concurrency", type=int, default=32, help="payers, one request in flight each")
    parser.add_argument("--workers", type=int, default=2, help="server worker processes")
    parser.add_argument("--users", type=int, default=None, help="wallets paying (default 2000; 500 with --remote)")
    parser.add_argument("--hot", action="store_true", help="every terminal belongs to one merchant")
    parser.add_argument("--remote", action="store_true", help="web payments with the password instead of taps")
    parser.add_argument("--sessions", type=int, default=4, help="clerk sessions the setup is spread over")
    parser.add_argument("--profile", type=Path, default=None, help="cProfile one server worker to this file")
    parser.add_argument(
        "--wait-idle", type=float, default=0.0, help="after the setup, wait up to this long for an idle machine"
    )
    args = parser.parse_args(argv)
    if args.hot and args.remote:
        parser.error("--hot loads the POS path; --remote pays remote merchants")
    if args.users is None:
        args.users = 500 if args.remote else 2000  # remote payers' openings hash a password each (scrypt)
    if args.profile is not None:
        args.workers = 1
    return args


async def _bench(args: argparse.Namespace, service: BenchService, secrets: Credentials) -> bool:
    admin = bearer(secrets.tokens["admin"])
    limits = httpx.Limits(max_connections=args.concurrency, max_keepalive_connections=args.concurrency)
    async with httpx.AsyncClient(base_url=service.base_url, limits=limits, timeout=60) as client:
        started = time.perf_counter()
        payers: list[Payer]
        if args.remote:
            payers = [*await web_fronts(client, admin, bearer(secrets.tokens["web"]), count=args.concurrency)]
        else:
            payers = [*await pos_fleet(client, admin, count=args.concurrency, hot=args.hot)]
        clerks = await log_in_clerks(client, secrets, count=args.sessions)
        numbers = spread_numbers(args.users)
        password = PAYMENT_PASSWORD if args.remote else None
        await open_wallets(client, clerks, numbers, password=password, concurrency=args.concurrency)
        setup = time.perf_counter() - started
        print(f"Setup: {len(payers)} payers, {len(numbers)} wallets opened and topped up in {setup:.1f} s")
        if args.wait_idle:
            print(await _wait_for_idle(args.wait_idle))
        assert service.server is not None
        before = bench_cpu.snapshot(service.server.pid)
        outcomes = await drive_payments(client, payers, numbers, seconds=args.seconds)
        after = bench_cpu.snapshot(service.server.pid)
        _print_figures(outcomes)
        print(bench_cpu.describe(before, after))
        report = await audit_ledger(client, admin)
        balances = {code: await merchant_balance(client, admin, code) for code in outcomes.net_by_merchant}
    print(
        f"Ledger audit: {'ok' if report['ok'] else 'FAILED'} ({report['accounts']} accounts, "
        f"{report['transfers']} transfers, {report['postings']} postings)"
    )
    for problem in report["problems"]:
        print("  " + problem)
    return bool(report["ok"]) and _check_balances(outcomes, balances, hot=args.hot)


async def _wait_for_idle(at_most: float) -> str:
    """On a shared machine: wait until the other processes leave the cores (> 90 % idle for 5 s)."""
    deadline = time.perf_counter() + at_most
    while True:
        idle = (await asyncio.to_thread(psutil.cpu_times_percent, interval=5)).idle
        if idle >= 90 or time.perf_counter() > deadline:
            waited = at_most - max(deadline - time.perf_counter(), 0)
            return f"Waited {waited:.0f} s for an idle machine: {idle:.0f}% idle, load average {os.getloadavg()[0]:.2f}"


def _check_balances(outcomes: PaymentOutcomes, balances: dict[str, int], *, hot: bool) -> bool:
    """Every merchant paid is owed exactly the nets (amount less fee) of the payments the client saw posted."""
    wrong = {code: (balances[code], net) for code, net in outcomes.net_by_merchant.items() if balances[code] != net}
    if hot:
        net = outcomes.net_by_merchant[HOT_MERCHANT]
        verdict = "MISMATCH" if wrong else "ok"
        print(
            f"Hot merchant {HOT_MERCHANT}: balance {balances.get(HOT_MERCHANT, 0)} fen, sum of the nets of "
            f"{outcomes.payments} posted payments {net} fen -> {verdict}"
        )
    else:
        print(f"Merchant balances equal to the client's sum of nets: {len(balances) - len(wrong)} of {len(balances)}")
    for code, (balance, net) in sorted(wrong.items()):
        print(f"  {code}: balance {balance} fen, client counted {net} fen")
    return not wrong


def _print_figures(outcomes: PaymentOutcomes) -> None:
    ordered = sorted(outcomes.latencies_ms)
    p50, p95, p99 = (_percentile(ordered, f) for f in (0.50, 0.95, 0.99))
    rate = outcomes.payments / outcomes.seconds
    print(f"Payments: {outcomes.payments} in {outcomes.seconds:.1f} s = {rate:.1f} payments/s")
    print(f"Latency of {len(ordered)} payment requests (ms): p50 {p50:.1f}  p95 {p95:.1f}  p99 {p99:.1f}")
    refused = ", ".join(f"{code} {count}" for code, count in outcomes.errors.most_common()) or "none"
    print(f"Errors by code: {refused}")


def _print_setup(args: argparse.Namespace) -> None:
    if args.remote:
        what = "web payments (payment password, scrypt) to remote merchants, one per payer"
    elif args.hot:
        what = f"POS card taps, every terminal of the one merchant {HOT_MERCHANT}"
    else:
        what = "POS card taps, one terminal per merchant, merchants across the provinces"
    print(
        f"Machine: {os.cpu_count()} cores, {platform.machine()}, Python {platform.python_version()}, "
        f"load average {os.getloadavg()[0]:.2f} before the run; "
        f"database {args.db}; server workers {args.workers}; clock {EXPO_CLOCK}"
    )
    print(
        f"Load: {args.concurrency} concurrent payers for {args.seconds:g} s: {what}; {args.users} wallets; "
        "httpx from one asyncio process"
    )
    print("Note: the load generator shares the machine's cores with the server and the database.")


def main(argv: list[str] | None = None) -> int:
    """Set up, run, report, clean up; exit status 0 only when the ledger audit and the balances hold."""
    args = _arguments(argv)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, _stop_on_signal)
    _print_setup(args)
    service = BenchService(db_kind=args.db, workers=args.workers)
    limits_file = service.data_dir / "wallet_limits.json"
    limits_file.write_text(json.dumps(generous_limits()))
    service.extra_env["EXPO_WALLET_LIMITS_FILE"] = str(limits_file)
    try:
        secrets = service.prepare(peak_capacity=PEAK_CAPACITY)
        service.start(profile_to=args.profile)
        ok = _run(_bench(args, service, secrets))
    except KeyboardInterrupt:
        print("interrupted; cleaning up", file=sys.stderr)
        return 130
    finally:
        service.close()
    if args.profile is not None:
        pstats.Stats(str(args.profile)).sort_stats("tottime").print_stats(25)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
