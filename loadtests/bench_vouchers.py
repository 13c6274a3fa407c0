"""Voucher benchmark: offline verifications per second, and online exchanges per second through a real server.

    .venv/bin/python -m loadtests.bench_vouchers --codes 20000 --exchanges 2000 --db postgres --concurrency 16

Offline: a keyring is made in a temp folder, `--codes` vouchers of every ticket type are signed, then each is
verified as a hall terminal or gate does it (Ed25519 signature under its key id, kind, last valid day), and a
sample of their QR pictures is read back with zxing-cpp. Online: a fresh database and `expo serve` (2 workers);
the web front sells `--exchanges` QR-voucher tickets (online banking), their vouchers are fetched, and hall
clerks of two halls exchange every one into a physical ticket with `--concurrency` requests in flight; then
each is exchanged a second time from the other hall, and every second try must be refused `already_exchanged`.
"""

import argparse
import asyncio
import os
import platform
import random
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path

import httpx

from expo.clock import EXPO_TZ
from loadtests import bench_cpu
from loadtests.bench_server import BenchService
from loadtests.common import APPROVED_CARD, EXPO_CLOCK, Credentials, NumberSource, bearer, problem_code, sale_body
from ticketing.qr import qr_png, read_qr
from ticketing.rules import CATALOGUE, TicketType
from ticketing.signed_codes import CodeKind, claim_for, verify_code
from ticketing.signing_keys import generate_keyring

HALLS = (("sh_hall", "SH-C001"), ("bj_hall", "BJ-C001"))
PEAK_DAY = date(2010, 10, 2)
TODAY = date(2010, 6, 1)


def _arguments(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m loadtests.bench_vouchers", description=__doc__.splitlines()[0])
    parser.add_argument("--codes", type=int, default=20_000, help="vouchers verified offline")
    parser.add_argument("--pictures", type=int, default=300, help="QR pictures read back offline")
    parser.add_argument("--exchanges", type=int, default=2_000, help="vouchers exchanged online (0: offline only)")
    parser.add_argument("--db", choices=("sqlite", "postgres"), default="postgres")
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--workers", type=int, default=2, help="server worker processes")
    return parser.parse_args(argv)


def _percentiles(samples: list[float]) -> str:
    ordered = sorted(samples)
    if not ordered:
        return "no samples"
    pick = [ordered[min(len(ordered) - 1, int(f * len(ordered)))] for f in (0.5, 0.95, 0.99)]
    return "p50 {:.2f}  p95 {:.2f}  p99 {:.2f}".format(*pick)


def bench_offline(count: int, pictures: int) -> None:
    """Sign `count` vouchers, then time their offline verification and the reading of their QR pictures."""
    with tempfile.TemporaryDirectory() as folder:
        ring = generate_keyring(Path(folder) / "keys.json", now=datetime(2010, 4, 1, tzinfo=EXPO_TZ))
    kid = ring.current.kid
    kinds = list(CATALOGUE)
    codes = []
    for n in range(count):
        kind = kinds[n % len(kinds)]
        visit_day = PEAK_DAY if CATALOGUE[kind].dated else None
        claim = claim_for(
            CodeKind.VOUCHER, kid=kid, ticket_id=n + 1, ticket_type=kind.value, visit_day=visit_day, upgrade_day=None
        )
        codes.append(ring.sign(claim))
    public = ring.public_keys()
    started = time.perf_counter()
    for code in codes:
        claim = verify_code(code, public)
        if claim.kind is not CodeKind.VOUCHER or claim.last_day < TODAY:
            raise SystemExit(f"voucher {claim.ticket_id} refused")
    seconds = time.perf_counter() - started
    print(
        f"Offline verification: {count} vouchers in {seconds:.2f} s = {count / seconds:,.0f} verifications/s "
        f"({seconds / count * 1e6:.0f} µs each; one core, Ed25519 through `cryptography`/OpenSSL)"
    )
    sample = random.Random(1).sample(codes, min(pictures, len(codes)))
    images = [qr_png(code) for code in sample]
    started = time.perf_counter()
    for code, image in zip(sample, images, strict=True):
        if read_qr(image) != code:
            raise SystemExit("a QR picture read back wrong")
    seconds = time.perf_counter() - started
    print(
        f"QR pictures read (zxing-cpp, {len(images)} PNGs of {sum(map(len, images)) // len(images)} bytes): "
        f"{len(images) / seconds:,.0f} pictures/s ({seconds / len(images) * 1e3:.2f} ms each)"
    )


@dataclass
class Exchanges:
    """What the online run saw."""

    done: int = 0
    seconds: float = 0.0
    latencies_ms: list[float] = field(default_factory=list)
    errors: Counter[str] = field(default_factory=Counter)
    second_tries: Counter[str] = field(default_factory=Counter)


async def _sell_vouchers(client: httpx.AsyncClient, secrets: Credentials, count: int, concurrency: int) -> list[int]:
    """`count` web sales of a standard ticket on a QR voucher, paid by online banking: their order ids."""
    web = bearer(secrets.tokens["web"])
    numbers = NumberSource()
    orders: list[int] = []
    gate = asyncio.Semaphore(concurrency)

    async def sell() -> None:
        body = sale_body(
            msisdn=numbers.next(),
            ticket_type=TicketType.STANDARD.value,
            carrier="qr_voucher",
            method="online_banking",
            account=APPROVED_CARD,
        )
        async with gate:
            reply = await client.post("/v1/orders", json=body, headers={**web, "Idempotency-Key": os.urandom(8).hex()})
        reply.raise_for_status()
        orders.append(reply.json()["id"])

    await asyncio.gather(*(sell() for _ in range(count)))
    return orders


async def _voucher_codes(client: httpx.AsyncClient, secrets: Credentials, orders: list[int]) -> list[str]:
    web = bearer(secrets.tokens["web"])
    codes = []
    for order_id in orders:
        reply = await client.get(f"/v1/orders/{order_id}/voucher", headers=web)
        reply.raise_for_status()
        codes.append(reply.json()["code"])
    return codes


async def _clerks(client: httpx.AsyncClient, secrets: Credentials) -> list[dict[str, str]]:
    sessions = []
    for device, staff_no in HALLS:
        reply = await client.post(
            "/v1/sessions", json=secrets.login_body(staff_no), headers=bearer(secrets.tokens[device])
        )
        reply.raise_for_status()
        sessions.append(bearer(reply.json()["token"]))
    return sessions


async def _exchange_all(
    client: httpx.AsyncClient, clerks: list[dict[str, str]], codes: list[str], concurrency: int, seen: Exchanges
) -> None:
    gate = asyncio.Semaphore(concurrency)

    async def exchange(n: int, code: str) -> None:
        headers = {**clerks[n % 2], "Idempotency-Key": os.urandom(8).hex()}
        async with gate:
            started = time.perf_counter()
            reply = await client.post("/v1/vouchers/exchange", json={"code": code, "into": "physical"}, headers=headers)
            seen.latencies_ms.append((time.perf_counter() - started) * 1000)
        if reply.status_code == 201:
            seen.done += 1
        else:
            seen.errors[problem_code(reply.status_code, reply.content)] += 1

    started = time.perf_counter()
    await asyncio.gather(*(exchange(n, code) for n, code in enumerate(codes)))
    seen.seconds = time.perf_counter() - started


async def _second_tries(
    client: httpx.AsyncClient, clerks: list[dict[str, str]], codes: list[str], seen: Exchanges
) -> None:
    for n, code in enumerate(codes):
        headers = {**clerks[(n + 1) % 2], "Idempotency-Key": os.urandom(8).hex()}
        reply = await client.post("/v1/vouchers/exchange", json={"code": code, "into": "physical"}, headers=headers)
        seen.second_tries[problem_code(reply.status_code, reply.content) if reply.status_code != 201 else "201"] += 1


async def _online(args: argparse.Namespace, service: BenchService, secrets: Credentials) -> Exchanges:
    limits = httpx.Limits(max_connections=args.concurrency, max_keepalive_connections=args.concurrency)
    seen = Exchanges()
    async with httpx.AsyncClient(base_url=service.base_url, limits=limits, timeout=60) as client:
        orders = await _sell_vouchers(client, secrets, args.exchanges, args.concurrency)
        codes = await _voucher_codes(client, secrets, orders)
        clerks = await _clerks(client, secrets)
        assert service.server is not None
        before = bench_cpu.snapshot(service.server.pid)
        await _exchange_all(client, clerks, codes, args.concurrency, seen)
        after = bench_cpu.snapshot(service.server.pid)
        await _second_tries(client, clerks, codes[: min(len(codes), 500)], seen)
    print(
        f"Online exchanges: {seen.done} in {seen.seconds:.2f} s = {seen.done / seen.seconds:,.0f} exchanges/s "
        f"({args.concurrency} in flight, clerks of two halls, into physical tickets signed on the server)"
    )
    print(f"Latency (ms): {_percentiles(seen.latencies_ms)}")
    print(f"Refused: {', '.join(f'{c} {n}' for c, n in seen.errors.most_common()) or 'none'}")
    print(bench_cpu.describe(before, after))
    print(
        f"Second exchange of {sum(seen.second_tries.values())} vouchers from the other hall: {dict(seen.second_tries)}"
    )
    return seen


def main(argv: list[str] | None = None) -> int:
    """Offline figures, then (unless --exchanges 0) the online run; exit 0 when every exchange went once."""
    args = _arguments(argv)
    print(
        f"Machine: {os.cpu_count()} cores, {platform.machine()}, Python {platform.python_version()}, "
        f"load average {os.getloadavg()[0]:.2f}; clock {EXPO_CLOCK}"
    )
    bench_offline(args.codes, args.pictures)
    if args.exchanges <= 0:
        return 0
    service = BenchService(db_kind=args.db, workers=args.workers)
    try:
        secrets = service.prepare(peak_capacity=1000)
        service.start()
        seen = asyncio.run(_online(args, service, secrets))
    finally:
        service.close()
    once = seen.done == args.exchanges and set(seen.second_tries) == {"already_exchanged"}
    return 0 if once else 1


if __name__ == "__main__":
    sys.exit(main())
