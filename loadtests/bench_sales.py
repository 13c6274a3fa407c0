"""Sales benchmark: a fresh database and server, wallet-free hall cash sales for N seconds, figures printed.

    .venv/bin/python -m loadtests.bench_sales --db sqlite|postgres --seconds 20 --concurrency 32

Creates a fresh database (an SQLite file in a temp folder, or PostgreSQL `expo_bench_<random>`), runs
`expo db upgrade` and `expo seed --demo-principals`, starts `expo serve --workers 2 --clock 2010-06-01T10:00`,
sells from one asyncio process with httpx, prints throughput, latency and refusals, and checks that no
peak day was oversold. The server is stopped and the database dropped at the end, on error or Ctrl-C too.
`--peak-capacity 500` makes National Day week sell out, to show the check holding under contention;
`--profile FILE` runs one worker under cProfile and prints its hottest functions.
"""

import argparse
import asyncio
import os
import platform
import pstats
import signal
import sys
from collections.abc import Coroutine
from pathlib import Path
from typing import Any, TypeVar

import httpx
import uvloop

from loadtests import bench_cpu
from loadtests.bench_driver import SaleOutcomes, check_no_oversell, drive_sales, log_in_clerks, read_stock
from loadtests.bench_server import BenchService
from loadtests.common import EXPO_CLOCK, Credentials, NumberSource

T = TypeVar("T")


def _arguments(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m loadtests.bench_sales", description=__doc__.splitlines()[0])
    parser.add_argument("--db", choices=("sqlite", "postgres"), default="sqlite")
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--workers", type=int, default=2, help="server worker processes")
    parser.add_argument("--sessions", type=int, default=8, help="clerk sessions the load is spread over")
    parser.add_argument("--peak-share", type=float, default=0.5, help="share of sales that are peak-day tickets")
    parser.add_argument("--peak-capacity", type=int, default=100_000, help="tickets per peak day")
    parser.add_argument("--profile", type=Path, default=None, help="cProfile one server worker to this file")
    args = parser.parse_args(argv)
    if args.profile is not None:
        args.workers = 1
    return args


def _run(coroutine: Coroutine[Any, Any, T]) -> T:
    """Run on uvloop (installed with uvicorn[standard]): less client CPU taken from the server's cores."""
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        return runner.run(coroutine)


async def _bench(args: argparse.Namespace, service: BenchService, secrets: Credentials) -> bool:
    limits = httpx.Limits(max_connections=args.concurrency, max_keepalive_connections=args.concurrency)
    async with httpx.AsyncClient(base_url=service.base_url, limits=limits, timeout=60) as client:
        sessions = await log_in_clerks(client, secrets, count=args.sessions)
        assert service.server is not None
        before = bench_cpu.snapshot(service.server.pid)
        outcomes = await drive_sales(
            client,
            sessions,
            seconds=args.seconds,
            concurrency=args.concurrency,
            peak_share=args.peak_share,
            numbers=NumberSource(),
        )
        after = bench_cpu.snapshot(service.server.pid)
        stock = await read_stock(client, secrets)
    _print_figures(outcomes)
    print(bench_cpu.describe(before, after))
    ok, lines = check_no_oversell(stock, outcomes)
    print("No oversell: " + ("yes" if ok else "NO"))
    for line in lines:
        print("  " + line)
    return ok


def _percentile(ordered: list[float], fraction: float) -> float:
    if not ordered:
        return float("nan")
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def _print_figures(outcomes: SaleOutcomes) -> None:
    ordered = sorted(outcomes.latencies_ms)
    p50, p95, p99 = (_percentile(ordered, f) for f in (0.50, 0.95, 0.99))
    print(f"Sales: {outcomes.sales} in {outcomes.seconds:.1f} s = {outcomes.sales / outcomes.seconds:.1f} sales/s")
    print(f"Latency of {len(ordered)} sale requests (ms): p50 {p50:.1f}  p95 {p95:.1f}  p99 {p99:.1f}")
    refused = ", ".join(f"{code} {count}" for code, count in outcomes.errors.most_common()) or "none"
    print(f"Errors by code: {refused} (sold_out is the expected refusal once a day is full)")


def _print_setup(args: argparse.Namespace) -> None:
    print(
        f"Machine: {os.cpu_count()} cores, {platform.machine()}, Python {platform.python_version()}, "
        f"load average {os.getloadavg()[0]:.2f} before the run; "
        f"database {args.db}; server workers {args.workers}; clock {EXPO_CLOCK}"
    )
    print(
        f"Load: {args.concurrency} concurrent hall cash sales over {args.sessions} clerk sessions for "
        f"{args.seconds:g} s, {args.peak_share:.0%} peak-day tickets over 2010-10-01..07 "
        f"(capacity {args.peak_capacity} each); httpx from one asyncio process"
    )
    print("Note: the load generator shares the machine's cores with the server and the database.")


def _stop_on_signal(signum: int, _frame: object) -> None:
    raise KeyboardInterrupt(signal.Signals(signum).name)


def main(argv: list[str] | None = None) -> int:
    """Set up, run, report, clean up; exit status 0 only when no peak day was oversold."""
    args = _arguments(argv)
    # Ctrl-C and SIGTERM both end in the cleanup below, even when started as a background job
    # (which would otherwise inherit SIGINT ignored).
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, _stop_on_signal)
    _print_setup(args)
    service = BenchService(db_kind=args.db, workers=args.workers)
    try:
        secrets = service.prepare(peak_capacity=args.peak_capacity)
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
