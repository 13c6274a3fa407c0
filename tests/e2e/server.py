"""Starting the real server for end-to-end tests: `expo db upgrade`, `expo seed`, `expo serve` with 2 workers."""

import asyncio
import contextlib
import json
import os
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from expo.clock import EXPO_TZ
from tests.conftest import IN_CI, PG_ADMIN_URL, pg_admin, pg_reachable
from ticketing.signing_keys import generate_keyring

EXPO = [sys.executable, "-m", "expo.cli"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def run_expo(args: list[str], env: dict[str, str]) -> str:
    """Run one `expo` command to completion; its stdout (the test fails with its stderr if it fails)."""
    done = subprocess.run([*EXPO, *args], env=env, capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    return done.stdout


def serve(
    data: Path, url: str, *, env: dict[str, str] | None = None, clock: str = "2010-06-01T10:00"
) -> Iterator[tuple[str, dict[str, Any]]]:
    """A migrated, seeded server on a free port (its clock at `clock`): (base URL, demo credentials)."""
    port = free_port()
    env = {**os.environ, **(env or {}), "EXPO_DATA_DIR": str(data), "EXPO_DATABASE_URL": url}
    env.setdefault("EXPO_SIGNING_KEY_FILE", str(signing_keyring(data)))
    run_expo(["db", "upgrade"], env)
    seeded = run_expo(["seed", "--peak-capacity", "5", "--demo-principals"], env)
    assert "465 number-segment ranges" in seeded
    credentials = data / "credentials.json"
    assert oct(credentials.stat().st_mode & 0o777) == "0o600"
    secrets = json.loads(credentials.read_text())
    assert not any(token in seeded for token in secrets["tokens"].values())
    process = subprocess.Popen([*EXPO, "serve", "--port", str(port), "--workers", "2", "--clock", clock], env=env)
    base = f"http://127.0.0.1:{port}"
    try:
        wait_for(base, process)
        yield base, secrets
    finally:
        process.terminate()
        process.wait(timeout=20)


def signing_keyring(data: Path) -> Path:
    """The platform's voucher and physical-ticket signing keys for a test server (one per data folder)."""
    path = data / "signing-keys.json"
    if not path.exists():
        generate_keyring(path, now=datetime(2010, 4, 1, tzinfo=EXPO_TZ))
    return path


def wait_for(base: str, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        assert process.poll() is None, "the server exited"
        try:
            if httpx.get(base + "/health", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            time.sleep(0.2)
    pytest.fail("the server did not come up")


@contextlib.contextmanager
def database(backend: str) -> Iterator[str]:
    """'' (the embedded SQLite default) or a fresh PostgreSQL database, dropped afterwards."""
    if backend == "sqlite":
        yield ""
        return
    if not asyncio.run(pg_reachable()):
        if IN_CI:
            pytest.fail(f"PostgreSQL is required under CI=true but {PG_ADMIN_URL} is unreachable")
        pytest.skip(f"PostgreSQL not reachable at {PG_ADMIN_URL}")
    name = f"expo_e2e_{uuid.uuid4().hex[:12]}"
    asyncio.run(pg_admin(f"CREATE DATABASE {name}"))
    try:
        yield PG_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"
    finally:
        asyncio.run(pg_admin(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
