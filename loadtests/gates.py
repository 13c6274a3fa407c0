"""Locust users of the gates' server side: gates at the 13 entrances uploading their journals and pulling the
revocation list.

Two profiles (both run unless one is named after the options, e.g. `... --host URL PeakDayReplayGate`):
- `OpeningRushGate`: 09:00 on a busy day. A gate lets a visitor in every couple of seconds and syncs every
  1-3 s, so it uploads small batches (10-40 lines) and pulls revocation deltas now and then.
- `PeakDayReplayGate`: the peak day (16 Oct 2010, 1,032,700 entries) replayed as fast as the server takes
  it: 500-line batches back to back, as gates catching up after a partition send them.

Run from the repository root against a running server seeded with `expo seed --demo-principals`, serving
inside 2010 from the clock the lines are dated by (`EXPO_GATE_CLOCK`, default 2010-06-01T10:00, counted
from when locust starts; start the server just before, or lines arrive as late uploads):

    EXPO_CREDENTIALS=data/credentials.json EXPO_DATABASE_URL=<the server's> \\
    .venv/bin/locust -f loadtests/gates.py --headless -u 13 -r 13 -t 15s --host http://127.0.0.1:8000

Admissions name real issued tickets: with `EXPO_GATE_TICKETS=first-last` those ids, else (when
`EXPO_DATABASE_URL` is set) the run seeds `EXPO_GATE_SEED` (200,000) tickets first with
`loadtests.bench_gate_ingest --seed-only`. Each ticket enters once, on a card of its own; when they run
out, or without either variable, gates upload refused taps. Every user registers a gate of its own (admin).
"""

import importlib.util
import itertools
import os
import random
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import datetime, timedelta
from functools import cache
from pathlib import Path
from typing import Any

from locust import HttpUser, between, constant, events, task
from locust.env import Environment
from locust.exception import StopUser

from expo.clock import EXPO_TZ
from loadtests.common import EXPO_CLOCK, Credentials, bearer, problem_code


def entrance_codes() -> list[str]:
    """The 13 entrances of gates.entrances. Locust imports this file as the module `gates`, which hides the
    package of that name, so the package's module is loaded from its file."""
    path = Path(__file__).resolve().parent.parent / "gates" / "entrances.py"
    spec = importlib.util.spec_from_file_location("expo_gate_entrances", path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return list(module.ENTRANCES)


STARTED = time.monotonic()
GATE_CLOCK = datetime.fromisoformat(os.environ.get("EXPO_GATE_CLOCK", EXPO_CLOCK)).replace(tzinfo=EXPO_TZ)
# Gate ids of this run: a random block, so runs against one database do not collide.
GATE_IDS = itertools.count(random.randrange(1, 2**31))
ENTRANCE_CYCLE = itertools.cycle(entrance_codes())


class TicketPool:
    """Ticket ids handed to admissions, each once; None when there are none (left)."""

    def __init__(self) -> None:
        self._ids: Iterator[int] = iter(())

    def fill(self, first: int, last: int) -> None:
        self._ids = iter(range(first, last + 1))

    def next(self) -> int | None:
        return next(self._ids, None)


TICKETS = TicketPool()


def take_tickets(environment: Environment, **_kwargs: Any) -> None:
    """Take the ticket range from EXPO_GATE_TICKETS, or seed one into EXPO_DATABASE_URL."""
    given = os.environ.get("EXPO_GATE_TICKETS")
    database_url = os.environ.get("EXPO_DATABASE_URL")
    if given:
        first, _, last = given.partition("-")
        TICKETS.fill(int(first), int(last))
    elif database_url:
        count = os.environ.get("EXPO_GATE_SEED", "200000")
        seed = [sys.executable, "-m", "loadtests.bench_gate_ingest", "--seed-only", database_url, "--entries", count]
        first, last = subprocess.run(seed, check=True, capture_output=True, text=True).stdout.split()
        TICKETS.fill(int(first), int(last))


events.test_start.add_listener(take_tickets)  # type: ignore[no-untyped-call]


@cache
def credentials() -> Credentials:
    return Credentials.load()


def gate_clock() -> datetime:
    """Now on the gates' clock: EXPO_GATE_CLOCK plus the time since this process started."""
    return GATE_CLOCK + timedelta(seconds=time.monotonic() - STARTED)


class Gate(HttpUser):
    """A gate registered at one entrance; subclasses say how it uploads."""

    abstract = True
    profile = ""

    def on_start(self) -> None:
        self.gate_id = next(GATE_IDS)
        self.seq = 0
        self.version = 0
        body = {"gate_id": self.gate_id, "entrance": next(ENTRANCE_CYCLE), "kind": "gate"}
        with self.client.post(
            "/v1/gates",
            json=body,
            headers=bearer(credentials().tokens["admin"]),
            name="POST /v1/gates",
            catch_response=True,
        ) as reply:
            if reply.status_code != 201:
                reply.failure(f"registration refused: {problem_code(reply.status_code, reply.content)}")
                raise StopUser
            self.auth = bearer(reply.json()["token"])

    def lines(self, count: int) -> list[dict[str, Any]]:
        """The gate's next journal lines: admissions of fresh tickets, a refused tap now and then."""
        at = gate_clock().isoformat()
        made = []
        for _ in range(count):
            self.seq += 1
            ticket_id = TICKETS.next()
            if ticket_id is None or self.seq % 50 == 0:
                made.append({"seq": self.seq, "event": "refused", "at": at, "code": "no_ticket"})
                continue
            made.append(
                {
                    "seq": self.seq,
                    "event": "admitted",
                    "at": at,
                    "code": "ok",
                    "csn": f"0031{ticket_id:012x}",
                    "ctr": 1,
                    "ticket_id": ticket_id,
                    "slot": 1,
                    "card_marked": True,
                }
            )
        return made

    def upload(self, count: int) -> None:
        body = {"gate_id": self.gate_id, "entries": self.lines(count)}
        name = f"POST /v1/gate-entries [{self.profile}]"
        with self.client.post(
            "/v1/gate-entries", json=body, headers=self.auth, name=name, catch_response=True
        ) as reply:
            if reply.status_code != 200:
                reply.failure(f"{reply.status_code} {problem_code(reply.status_code, reply.content)}")
            elif reply.json()["stored"] != count:
                reply.failure(f"stored {reply.json()['stored']} of {count} new lines")

    @task(1)
    def pull_revocations(self) -> None:
        """Revocation deltas since the version this gate holds."""
        with self.client.get(
            "/v1/gate-revocations",
            params={"since": self.version},
            headers=self.auth,
            name=f"GET /v1/gate-revocations [{self.profile}]",
            catch_response=True,
        ) as reply:
            if reply.status_code != 200:
                reply.failure(f"{reply.status_code} {problem_code(reply.status_code, reply.content)}")
                return
            self.version = int(reply.json()["version"])


class OpeningRushGate(Gate):
    """Small, frequent uploads while the queues at the entrance are longest."""

    profile = "rush"
    wait_time = between(1, 3)

    @task(6)
    def sync(self) -> None:
        self.upload(random.randint(10, 40))


class PeakDayReplayGate(Gate):
    """Full batches back to back: the peak day's journal as fast as the server takes it."""

    profile = "replay"
    wait_time = constant(0)

    @task(10)
    def sync(self) -> None:
        self.upload(500)
