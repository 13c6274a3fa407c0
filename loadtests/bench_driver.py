"""The benchmark's load: wallet-free hall cash sales from one asyncio process, timed and counted.

`concurrency` coroutines each sell back to back over a shared keep-alive pool, round-robin over
several clerk sessions. A share of the sales are peak-day tickets spread over National Day week.
"""

import asyncio
import random
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import date

import httpx

from loadtests.common import (
    OCTOBER_PEAK_DAYS,
    Credentials,
    NumberSource,
    bearer,
    new_idempotency_key,
    problem_code,
    sale_body,
)

CLERK_DEVICE, CLERK = "sh_hall", "SH-C001"


@dataclass
class SaleOutcomes:
    """What the load run saw: latency of every sale request, sales made and refusals by code."""

    latencies_ms: list[float] = field(default_factory=list)
    sales: int = 0
    peak_sales: Counter[date] = field(default_factory=Counter)
    errors: Counter[str] = field(default_factory=Counter)
    seconds: float = 0.0


async def log_in_clerks(client: httpx.AsyncClient, secrets: Credentials, *, count: int) -> list[dict[str, str]]:
    """`count` sessions of the Shanghai hall clerk at the Shanghai hall terminal."""
    device = bearer(secrets.tokens[CLERK_DEVICE])
    sessions = []
    for _ in range(count):
        reply = await client.post("/v1/sessions", json=secrets.login_body(CLERK), headers=device)
        reply.raise_for_status()
        sessions.append(bearer(reply.json()["token"]))
    return sessions


async def drive_sales(
    client: httpx.AsyncClient,
    sessions: list[dict[str, str]],
    *,
    seconds: float,
    concurrency: int,
    peak_share: float,
    numbers: NumberSource,
) -> SaleOutcomes:
    """Sell for `seconds` with `concurrency` requests in flight; every request gets a fresh number and key."""
    outcomes = SaleOutcomes()
    started = time.perf_counter()
    deadline = started + seconds
    rng = random.Random(20101001)  # a reproducible mix

    async def seller(worker: int) -> None:
        auth = sessions[worker % len(sessions)]
        while time.perf_counter() < deadline:
            day = rng.choice(OCTOBER_PEAK_DAYS) if rng.random() < peak_share else None
            body = sale_body(
                msisdn=numbers.next(),
                ticket_type="peak" if day else "standard",
                carrier="expo_card",
                method="cash",
                visit_day=day,
            )
            await _sell_once(client, auth, body, day=day, outcomes=outcomes)

    await asyncio.gather(*(seller(n) for n in range(concurrency)))
    outcomes.seconds = time.perf_counter() - started
    return outcomes


async def _sell_once(
    client: httpx.AsyncClient,
    auth: dict[str, str],
    body: dict[str, object],
    *,
    day: date | None,
    outcomes: SaleOutcomes,
) -> None:
    headers = {**auth, "Idempotency-Key": new_idempotency_key()}
    sent = time.perf_counter()
    try:
        reply = await client.post("/v1/orders", json=body, headers=headers)
    except httpx.HTTPError as exc:
        # A timed-out sale may still commit on the server: the oversell check would then report it.
        outcomes.errors[type(exc).__name__] += 1
        return
    outcomes.latencies_ms.append((time.perf_counter() - sent) * 1000)
    if reply.status_code == 201:
        outcomes.sales += 1
        if day is not None:
            outcomes.peak_sales[day] += 1
    else:
        outcomes.errors[problem_code(reply.status_code, reply.content)] += 1


async def read_stock(client: httpx.AsyncClient, secrets: Credentials) -> dict[date, tuple[int, int]]:
    """(capacity, sold) of every stocked peak day, as the admin sees it."""
    reply = await client.get("/v1/stock", headers=bearer(secrets.tokens["admin"]))
    reply.raise_for_status()
    return {date.fromisoformat(row["day"]): (row["capacity"], row["sold"]) for row in reply.json()}


def check_no_oversell(stock: dict[date, tuple[int, int]], outcomes: SaleOutcomes) -> tuple[bool, list[str]]:
    """Every peak day: sold equals the successful sales the client counted for it, and never exceeds capacity."""
    lines, ok = [], True
    for day, (capacity, sold) in sorted(stock.items()):
        counted = outcomes.peak_sales.get(day, 0)
        good = sold == counted and sold <= capacity
        ok = ok and good
        if counted or sold or day in OCTOBER_PEAK_DAYS:
            verdict = "ok" if good else "MISMATCH"
            lines.append(f"{day}: sold {sold} / capacity {capacity}, client counted {counted} -> {verdict}")
    return ok, lines
