"""The peak-day replay: 16 Oct 2010's 1,032,700 entries through emulated gates and cards, in process.

    .venv/bin/python -m loadtests.bench_gates [--entries 1032700] [--per-entrance 8] [--workers 2] [--no-durable]

Plans the day (gates.emulator.plan_day: arrivals by hour from 09:00, the ticket mix of a standard day,
every visitor a new card of one of the 31 provinces) and runs it on `--workers` processes, each owning
every `workers`-th gate of the 13 entrances. Every tap is the gate's whole decision on an emulated card:
SELECT, OPEN SESSION with the SAM's key, READ TICKET, the rules, MARK ENTRY with both MACs checked and
the journal line committed to the gate's SQLite file (fsynced; `--no-durable`: synchronous=NORMAL).
Prints entries/s, the total time, tap times and outcomes. No PC/SC: `bench_gate_tap` times that path.
"""

import argparse
import os
import platform
import tempfile
import time
from collections import Counter
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

from gates.emulator import PEAK_DAY_ENTRIES, Park, WorkerFigures, run_gates
from loadtests.bench_sales import _percentile
from simcard.keys import KEY_BYTES, KEY_TYPES, KeySet


def _arguments(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m loadtests.bench_gates", description=__doc__.splitlines()[0])
    parser.add_argument("--entries", type=int, default=PEAK_DAY_ENTRIES)
    parser.add_argument("--per-entrance", type=int, default=8, help="gates at each of the 13 entrances")
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 2, help="processes")
    parser.add_argument("--no-durable", action="store_true", help="journal with synchronous=NORMAL (no fsync)")
    parser.add_argument("--keep", type=Path, help="keep the gates' journals in this folder")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    """Run the planned day on the worker processes and print the figures."""
    args = _arguments(argv)
    park = Park(per_entrance=args.per_entrance)
    root = KeySet({t: os.urandom(KEY_BYTES) for t in KEY_TYPES})
    durable = not args.no_durable
    print(f"Peak-day replay on {platform.node()} (Python {platform.python_version()}, {os.cpu_count()} CPUs)")
    print(
        f"{args.entries:,} taps, {park.gates} gates ({args.per_entrance} at each of 13 entrances), "
        f"{args.workers} worker processes, journals {'fsynced (synchronous=FULL)' if durable else 'synchronous=NORMAL'}"
    )
    with tempfile.TemporaryDirectory(prefix="bench-gates-") as scratch:
        folder = args.keep or Path(scratch)
        folder.mkdir(parents=True, exist_ok=True)
        started = time.perf_counter()
        with ProcessPoolExecutor(args.workers) as pool:
            runs = [
                pool.submit(
                    run_gates,
                    worker=worker,
                    workers=args.workers,
                    entries=args.entries,
                    park=park,
                    root=root,
                    folder=folder,
                    durable=durable,
                )
                for worker in range(args.workers)
            ]
            figures: list[WorkerFigures] = [run.result() for run in runs]
        elapsed = time.perf_counter() - started
    _print(figures, elapsed=elapsed, entries=args.entries)
    return 0


def _print(figures: list[WorkerFigures], *, elapsed: float, entries: int) -> None:
    outcomes: Counter[str] = Counter()
    for worker in figures:
        outcomes.update(worker.outcomes)
    taps = sorted(ms for worker in figures for ms in worker.tap_ms)
    opened = outcomes["ok"]
    print(f"Total: {len(taps):,} taps in {elapsed:.1f} s = {len(taps) / elapsed:,.0f} taps/s ({opened:,} admitted)")
    print(f"Aim: {entries:,} in at most 600 s; {'met' if elapsed <= 600 and len(taps) == entries else 'NOT met'}")
    p50, p99 = _percentile(taps, 0.50), _percentile(taps, 0.99)
    print(f"Tap (decision + card + journal, ms): p50 {p50:.3f}  p99 {p99:.3f}  max {taps[-1]:.3f}")
    for n, worker in enumerate(figures):
        busy = sum(worker.tap_ms) / 1000
        print(
            f"  worker {n}: {len(worker.tap_ms):,} taps, {worker.seconds:.1f} s "
            f"(taps {busy:.1f} s, making cards {worker.card_seconds:.1f} s, planning and the rest "
            f"{worker.seconds - busy - worker.card_seconds:.1f} s)"
        )
    print("Outcomes: " + ", ".join(f"{code} {count:,}" for code, count in outcomes.most_common()))


if __name__ == "__main__":
    raise SystemExit(main())
