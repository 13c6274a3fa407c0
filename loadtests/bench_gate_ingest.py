"""Gate ingestion benchmark: entries per second of batched gate uploads against a real server.

    .venv/bin/python -m loadtests.bench_gate_ingest --db postgres|sqlite --entries 100000 --batch 500 --gates 13

Creates a fresh database like loadtests.bench_sales, seeds `--entries` issued Expo-card tickets with bulk
INSERTs, starts `expo serve --workers 2 --clock 2010-06-01T10:00`, registers `--gates` gates spread over
the 13 entrances, and builds each gate's journal untimed: one admission per ticket (each on its own card,
marked on the card) and, every 50th line, a refused tap. Timed: every gate uploads its batches back to
back, one in flight per gate, as a gate catching up after a partition does. Prints entries per second
against the peak day's need (1,032,700 entries in ~12 opening hours, about 24/s), batch latency and the
CPU split; then checks that the server's counts equal what was uploaded, that every ticket is used and
that a re-upload stores nothing.
"""

import argparse
import asyncio
import os
import platform
import signal
import sys
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import httpx
import msgspec
from sqlalchemy import func, insert, select

from expo.access.models import Credential
from expo.clock import EXPO_TZ
from expo.db import Database
from gates.entrances import ENTRANCES
from gates.wire import Event, GateBatch, GateEntry
from loadtests import bench_cpu
from loadtests.bench_sales import _percentile, _run, _stop_on_signal
from loadtests.bench_server import BenchService
from loadtests.common import EXPO_CLOCK, Credentials, bearer
from ticketing.models import Order, Ticket

PEAK_DAY_ENTRIES = 1_032_700  # 16 Oct 2010
OPENING_HOURS = 12  # about 09:00 to 21:00 with late admissions
REFUSED_EVERY = 50
SEED_CHUNK = 10_000


def _arguments(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m loadtests.bench_gate_ingest", description=__doc__.splitlines()[0])
    parser.add_argument("--db", choices=("sqlite", "postgres"), default="postgres")
    parser.add_argument("--entries", type=int, default=100_000, help="admissions uploaded (one ticket each)")
    parser.add_argument("--batch", type=int, default=500, help="lines per upload (1..1000; gates send 500)")
    parser.add_argument("--gates", type=int, default=13, help="gates uploading at once")
    parser.add_argument("--workers", type=int, default=2, help="server worker processes")
    parser.add_argument(
        "--seed-only",
        metavar="DATABASE_URL",
        default=None,
        help="only seed --entries tickets into this (migrated, seeded) database and print their first and last id",
    )
    args = parser.parse_args(argv)
    if not 1 <= args.batch <= 1000:
        parser.error("--batch is 1..1000")
    return args


async def seed_tickets(database_url: str, *, count: int, now: datetime) -> list[int]:
    """`count` issued Expo-card tickets (each its own number), in seed orders of up to SEED_CHUNK tickets, by
    bulk INSERT; their ids."""
    db = Database(database_url)
    ids: list[int] = []
    try:
        async with db.write() as session:
            credential_id = await session.scalar(select(func.min(Credential.id)))
            # Numbers nobody else in a load run uses: 139 and a serial (the sales runs deal out real segments).
            first = int(await session.scalar(select(func.count()).select_from(Ticket)) or 0)
            for start in range(0, count, SEED_CHUNK):
                size = min(SEED_CHUNK, count - start)
                order = _seed_order(credential_id, size=size, key=f"gate-bench-{first + start}", now=now)
                session.add(order)
                await session.flush()
                rows = [
                    {
                        "order_id": order.id,
                        "msisdn": f"139{first + n:08d}",
                        "home_province": "31",
                        "ticket_type": "standard",
                        "carrier": "expo_card",
                        "status": "issued",
                        "entries_used": 0,
                        "created_at": now,
                    }
                    for n in range(start, start + size)
                ]
                await session.execute(insert(Ticket), rows)
                ids += await session.scalars(select(Ticket.id).where(Ticket.order_id == order.id).order_by(Ticket.id))
        return ids
    finally:
        await db.dispose()


def _seed_order(credential_id: int | None, *, size: int, key: str, now: datetime) -> Order:
    """A paid hall order of `size` standard tickets, standing in for that many sales."""
    return Order(
        credential_id=credential_id,
        idempotency_key=key,
        channel="hall",
        sale_province="31",
        msisdn="13900000000",
        home_province="31",
        product="standard",
        quantity=size,
        unit_price_fen=16000,
        amount_fen=16000 * size,
        carrier="expo_card",
        payment_method="cash",
        status="paid",
        created_at=now,
        paid_at=now,
    )


@dataclass
class GateRun:
    """One gate's registration and its journal, cut into upload bodies (encoded before the clock starts)."""

    gate_id: int
    headers: dict[str, str]
    bodies: list[bytes] = field(default_factory=list)
    lines: int = 0
    admitted: int = 0


def build_journal(gate: GateRun, tickets: list[int], *, batch: int, at: datetime) -> None:
    """One admission per ticket, each ticket on its own card; every REFUSED_EVERY-th tap a refused card."""
    lines: list[GateEntry] = []
    seq = 0
    for ticket_id in tickets:
        seq += 1
        if seq % REFUSED_EVERY == 0:
            lines.append(GateEntry(seq=seq, event=Event.REFUSED, at=at, code="no_ticket", csn=f"{seq:016x}"))
            seq += 1
        lines.append(
            GateEntry(
                seq=seq,
                event=Event.ADMITTED,
                at=at,
                code="ok",
                csn=f"0031{ticket_id:012x}",
                ctr=1,
                ticket_id=ticket_id,
                slot=1,
                card_marked=True,
            )
        )
    gate.lines, gate.admitted = len(lines), len(tickets)
    gate.bodies = [
        msgspec.json.encode(GateBatch(gate_id=gate.gate_id, entries=lines[start : start + batch]))
        for start in range(0, len(lines), batch)
    ]


async def register_gates(client: httpx.AsyncClient, admin: dict[str, str], count: int) -> list[GateRun]:
    entrances = list(ENTRANCES)
    gates = []
    for n in range(count):
        body = {"gate_id": 1000 + n, "entrance": entrances[n % len(entrances)], "kind": "gate"}
        reply = await client.post("/v1/gates", json=body, headers=admin)
        reply.raise_for_status()
        gates.append(
            GateRun(gate_id=1000 + n, headers={**bearer(reply.json()["token"]), "Content-Type": "application/json"})
        )
    return gates


@dataclass
class Outcome:
    stored: int = 0
    duplicates: int = 0
    conflicts: int = 0
    latencies_ms: list[float] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


async def upload_all(client: httpx.AsyncClient, gate: GateRun, outcome: Outcome) -> None:
    for body in gate.bodies:
        started = time.perf_counter()
        reply = await client.post("/v1/gate-entries", content=body, headers=gate.headers)
        outcome.latencies_ms.append((time.perf_counter() - started) * 1000)
        if reply.status_code != 200:
            outcome.errors.append(f"gate {gate.gate_id}: {reply.status_code} {reply.text[:200]}")
            continue
        result = reply.json()
        outcome.stored += result["stored"]
        outcome.duplicates += result["duplicates"]
        outcome.conflicts += len(result["conflicts"])


async def _bench(args: argparse.Namespace, service: BenchService, secrets: Credentials, tickets: list[int]) -> bool:
    admin = bearer(secrets.tokens["admin"])
    limits = httpx.Limits(max_connections=args.gates, max_keepalive_connections=args.gates)
    async with httpx.AsyncClient(base_url=service.base_url, limits=limits, timeout=120) as client:
        gates = await register_gates(client, admin, args.gates)
        # The server's clock started at EXPO_CLOCK a moment ago: decisions "just now", not late uploads.
        at = datetime.fromisoformat(EXPO_CLOCK).replace(tzinfo=EXPO_TZ) + timedelta(seconds=1)
        for n, gate in enumerate(gates):
            build_journal(gate, tickets[n :: len(gates)], batch=args.batch, at=at)
        lines = sum(g.lines for g in gates)
        print(f"Setup: {len(tickets)} tickets seeded, {len(gates)} gates registered, {lines} journal lines built")
        outcome = Outcome()
        assert service.server is not None
        before = bench_cpu.snapshot(service.server.pid)
        started = time.perf_counter()
        await asyncio.gather(*(upload_all(client, gate, outcome) for gate in gates))
        elapsed = time.perf_counter() - started
        after = bench_cpu.snapshot(service.server.pid)
        _print_figures(outcome, lines=lines, elapsed=elapsed, admitted=sum(g.admitted for g in gates))
        print(bench_cpu.describe(before, after))
        return await _check(client, admin, gates, outcome, lines=lines, tickets=tickets, db_url=service.database_url)


def _print_figures(outcome: Outcome, *, lines: int, elapsed: float, admitted: int) -> None:
    ordered = sorted(outcome.latencies_ms)
    p50, p95, p99 = (_percentile(ordered, f) for f in (0.50, 0.95, 0.99))
    need = PEAK_DAY_ENTRIES / (OPENING_HOURS * 3600)
    rate = admitted / elapsed
    print(
        f"Uploaded: {lines} lines ({admitted} admissions) in {len(ordered)} batches in {elapsed:.1f} s = "
        f"{lines / elapsed:.0f} lines/s, {rate:.0f} entries/s"
    )
    print(
        f"Peak day (16 Oct 2010): {PEAK_DAY_ENTRIES} entries need {need:.1f}/s over {OPENING_HOURS} h; "
        f"at this rate the whole day ingests in {PEAK_DAY_ENTRIES / rate / 60:.1f} min ({rate / need:.0f}x the need)"
    )
    print(f"Batch latency (ms): p50 {p50:.0f}  p95 {p95:.0f}  p99 {p99:.0f}")
    print(f"Stored {outcome.stored}, duplicates {outcome.duplicates}, conflicts {outcome.conflicts}")
    for error in outcome.errors[:10]:
        print("  ERROR " + error)


async def _check(
    client: httpx.AsyncClient,
    admin: dict[str, str],
    gates: list[GateRun],
    outcome: Outcome,
    *,
    lines: int,
    tickets: list[int],
    db_url: str,
) -> bool:
    """The server's counts equal the journals, every ticket is used, and a re-upload stores nothing."""
    reply = await client.get("/v1/gate-entries/counts", params={"day": EXPO_CLOCK[:10]}, headers=admin)
    counts = reply.json()
    per_gate = {g["gate_id"]: g["entries"] for g in counts["gates"]}
    counts_ok = all(per_gate.get(g.gate_id) == g.admitted for g in gates) and counts["total"] == len(tickets)
    again = await client.post("/v1/gate-entries", content=gates[0].bodies[0], headers=gates[0].headers)
    replay_ok = again.status_code == 200 and again.json()["stored"] == 0
    db = Database(db_url)
    try:
        async with db.read() as session:
            used = await session.scalar(
                select(func.count()).select_from(Ticket).where(Ticket.id.in_(tickets[:5000]), Ticket.status == "used")
            )
    finally:
        await db.dispose()
    used_ok = used == min(len(tickets), 5000)
    print(
        f"Checks: counts per gate and total ({counts['total']}) equal the journals: {'yes' if counts_ok else 'NO'}; "
        f"first 5000 tickets used: {'yes' if used_ok else 'NO'}; re-upload stores nothing: "
        f"{'yes' if replay_ok else 'NO'}; every line stored once: {'yes' if outcome.stored == lines else 'NO'}"
    )
    return counts_ok and replay_ok and used_ok and outcome.stored == lines and not outcome.errors


def main(argv: list[str] | None = None) -> int:
    """Set up, run, report, clean up; exit status 0 only when every check holds."""
    args = _arguments(argv)
    now = datetime.fromisoformat(EXPO_CLOCK).replace(tzinfo=EXPO_TZ)
    if args.seed_only is not None:
        seeded = asyncio.run(seed_tickets(args.seed_only, count=args.entries, now=now))
        print(seeded[0], seeded[-1])
        return 0
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, _stop_on_signal)
    print(
        f"Machine: {os.cpu_count()} cores, {platform.machine()}, Python {platform.python_version()}, "
        f"load average {os.getloadavg()[0]:.2f}; database {args.db}; server workers {args.workers}; "
        f"{args.gates} gates, batches of {args.batch}; httpx from one asyncio process"
    )
    service = BenchService(db_kind=args.db, workers=args.workers)
    try:
        secrets = service.prepare(peak_capacity=100)
        tickets = asyncio.run(seed_tickets(service.database_url, count=args.entries, now=now))
        service.start()
        ok = _run(_bench(args, service, secrets, tickets))
    except KeyboardInterrupt:
        print("interrupted; cleaning up", file=sys.stderr)
        return 130
    finally:
        service.close()
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
