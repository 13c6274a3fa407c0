"""Where the machine's CPU went during a run: this load generator, the server's processes, PostgreSQL."""

import os
import time
from dataclasses import dataclass

import psutil  # type: ignore[import-untyped]  # comes with locust (the `load` extra)


def _cpu_seconds(process: psutil.Process) -> float:
    try:
        times = process.cpu_times()
    except (psutil.NoSuchProcess, psutil.AccessDenied):
        return 0.0
    return float(times.user + times.system)


def _server_tree(pid: int) -> dict[int, float]:
    try:
        root = psutil.Process(pid)
        tree = [root, *root.children(recursive=True)]
    except psutil.NoSuchProcess:
        return {}
    return {p.pid: _cpu_seconds(p) for p in tree}


def _postgres() -> dict[int, float]:
    return {p.pid: _cpu_seconds(p) for p in psutil.process_iter(["name"]) if p.info["name"] == "postgres"}


@dataclass(frozen=True)
class CpuSnapshot:
    wall: float
    machine_busy: float
    own: float
    server: dict[int, float]
    postgres: dict[int, float]


def snapshot(server_pid: int) -> CpuSnapshot:
    """CPU seconds used so far by the machine (non-idle), this process, the server tree and PostgreSQL."""
    total = psutil.cpu_times()
    busy = float(sum(total)) - float(total.idle) - float(getattr(total, "iowait", 0.0))
    own = _cpu_seconds(psutil.Process(os.getpid()))
    return CpuSnapshot(time.perf_counter(), busy, own, _server_tree(server_pid), _postgres())


def _grown(before: dict[int, float], after: dict[int, float]) -> float:
    # Processes born during the run (new database backends) count from zero.
    return sum(seconds - before.get(pid, 0.0) for pid, seconds in after.items())


def describe(before: CpuSnapshot, after: CpuSnapshot) -> str:
    """One line: each party's share of the machine's cores over the run."""
    wall = after.wall - before.wall
    cores = psutil.cpu_count() or 1

    def share(seconds: float) -> str:
        return f"{seconds / wall * 100:.0f}%"

    busy = after.machine_busy - before.machine_busy
    own = after.own - before.own
    server = _grown(before.server, after.server)
    postgres = _grown(before.postgres, after.postgres)
    parts = [
        f"machine busy {share(busy)} of {cores * 100}%",
        f"load generator {share(own)}",
        f"server workers {share(server)}",
        f"postgres {share(postgres)}",
        # Kernel networking, and anything else running on the machine: a noisy neighbour shows up here.
        f"other {share(max(0.0, busy - own - server - postgres))}",
    ]
    return "CPU (100% = one core): " + ", ".join(parts)
