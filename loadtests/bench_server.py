"""The benchmark's service: a fresh database, migrated and seeded by the `expo` CLI, and a server process.

Everything made here is undone by `BenchService.close()`: the server's process group is stopped, the
PostgreSQL database dropped and the temporary data folder removed.
"""

import asyncio
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import asyncpg
import httpx

from expo.clock import EXPO_TZ
from loadtests.common import EXPO_CLOCK, Credentials
from ticketing.signing_keys import generate_keyring

PG_SERVER = os.environ.get("EXPO_BENCH_PG", "postgres@127.0.0.1:5432")


def free_port() -> int:
    """A TCP port nobody listens on right now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


async def _admin_sql(statement: str) -> None:
    connection = await asyncpg.connect(f"postgresql://{PG_SERVER}/postgres")
    try:
        await connection.execute(statement)
    finally:
        await connection.close()


@dataclass
class BenchService:
    """A migrated, seeded database and (once started) a server over it."""

    db_kind: str
    workers: int
    data_dir: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="expo_bench_")))
    pg_name: str | None = None
    port: int = 0
    server: subprocess.Popen[bytes] | None = None
    # More EXPO_* settings for the CLI and the server, e.g. EXPO_WALLET_LIMITS_FILE.
    extra_env: dict[str, str] = field(default_factory=dict)

    @property
    def database_url(self) -> str:
        if self.pg_name is not None:
            return f"postgresql+asyncpg://{PG_SERVER}/{self.pg_name}"
        return f"sqlite+aiosqlite:///{self.data_dir / 'expo.db'}"

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def env(self) -> dict[str, str]:
        return {
            **os.environ,
            "EXPO_SIGNING_KEY_FILE": str(self.signing_keys()),
            "EXPO_DATA_DIR": str(self.data_dir),
            "EXPO_DATABASE_URL": self.database_url,
            "EXPO_WORKERS": str(self.workers),
            **self.extra_env,
        }

    def signing_keys(self) -> Path:
        """The platform's signing keyring for vouchers and physical tickets, made on first use."""
        path = self.data_dir / "signing-keys.json"
        if not path.exists():
            generate_keyring(path, now=datetime(2010, 4, 1, tzinfo=EXPO_TZ))
        return path

    def prepare(self, *, peak_capacity: int) -> Credentials:
        """Create the database, run `expo db upgrade` and `expo seed --demo-principals`; the demo's secrets."""
        if self.db_kind == "postgres":
            self.pg_name = f"expo_bench_{uuid.uuid4().hex[:10]}"
            asyncio.run(_admin_sql(f'CREATE DATABASE "{self.pg_name}"'))
        self._expo("db", "upgrade")
        self._expo("seed", "--peak-capacity", str(peak_capacity), "--demo-principals")
        return Credentials.load(self.data_dir / "credentials.json")

    def _expo(self, *args: str) -> None:
        subprocess.run([sys.executable, "-m", "expo.cli", *args], env=self.env(), check=True, stdout=subprocess.DEVNULL)

    def start(self, *, profile_to: Path | None = None) -> None:
        """Start `expo serve` on a free port inside the Expo's 2010 and wait for /health."""
        self.port = free_port()
        serve = ["-m", "expo.cli", "serve", "--port", str(self.port), "--workers", str(self.workers)]
        # cProfile sees only the process it runs in: profiling needs --workers 1 (uvicorn serves in-process).
        profiler = ["-m", "cProfile", "-o", str(profile_to)] if profile_to else []
        self.server = subprocess.Popen(
            [sys.executable, *profiler, *serve, "--clock", EXPO_CLOCK],
            env=self.env(),
            start_new_session=True,  # its own process group: Ctrl-C reaches us, and we stop it and its workers
        )
        self._wait_until_up()

    def _wait_until_up(self) -> None:
        assert self.server is not None
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.server.poll() is not None:
                raise RuntimeError(f"the server exited with {self.server.returncode}")
            try:
                if httpx.get(self.base_url + "/health", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        raise RuntimeError("the server did not come up within 30 s")

    def stop(self) -> None:
        """SIGINT the server's process group (uvicorn and its workers), as Ctrl-C would; SIGKILL after 20 s.

        uvicorn re-raises the signal once shut down: SIGINT ends in KeyboardInterrupt, which lets cProfile
        write its file, where SIGTERM would end the process before it does.
        """
        if self.server is None or self.server.poll() is not None:
            return
        group = os.getpgid(self.server.pid)
        os.killpg(group, signal.SIGINT)
        try:
            self.server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(group, signal.SIGKILL)
            self.server.wait()

    def close(self) -> None:
        """Stop the server, drop the PostgreSQL database, remove the data folder; safe to call twice."""
        try:
            self.stop()
        finally:
            try:
                if self.pg_name is not None:
                    asyncio.run(_admin_sql(f'DROP DATABASE IF EXISTS "{self.pg_name}" WITH (FORCE)'))
                    self.pg_name = None
            finally:
                shutil.rmtree(self.data_dir, ignore_errors=True)
