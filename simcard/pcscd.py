"""A private `pcscd -f` with the vsmartcard-vpcd driver, for tests, benchmarks and demos.

pcscd's server socket is compiled in (`/run/pcscd/pcscd.comm` on Debian) and its reader configuration comes
from `/etc/reader.conf.d/` (the vsmartcard-vpcd package puts `vpcd` there: channel 0x8C7B, two slots). To
stay independent of a system pcscd that may already run, this starts pcscd with its own configuration
directory (`-c`, vpcd on the default ports when they are free, else on a free pair) and, where the kernel
allows it, in a private mount namespace whose `/run/pcscd` is a bind mount of a directory of ours: the
socket then lives in that directory and clients find it through `PCSCLITE_CSOCK_NAME` (libpcsclite reads
it; set it before the first PC/SC call of a process). Without namespaces it falls back to the default
socket, which needs that no other pcscd is running. A pcscd this module started for a process that has
since died (a killed test run) is stopped first; any other pcscd is left alone.
"""

import contextlib
import fcntl
import os
import re
import shutil
import signal
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

from simcard.vpcd import VPCD_BASE_PORT

SYSTEM_CONFIG = Path("/etc/reader.conf.d/vpcd")
DRIVER_CANDIDATES = (
    Path("/usr/lib/pcsc/drivers/serial/libifdvpcd.so"),
    Path("/usr/local/lib/pcsc/drivers/serial/libifdvpcd.so"),
)
SYSTEM_SOCKET = Path("/run/pcscd/pcscd.comm")
SOCKET_ENV = "PCSCLITE_CSOCK_NAME"
MARKER = "expo-pcscd"  # in the config directory's name: how a stale pcscd of ours is recognised
SLOTS = 2  # Debian's vpcd serves two slots per reader
START_LOCK = Path("/tmp/expo-pcscd.lock")  # noqa: S108  # one start at a time per machine: ports are chosen then bound
# Inside the namespace: give /run/pcscd our directory, then become pcscd (same pid as Popen's).
_NAMESPACE_SCRIPT = (
    "set -e; [ -d /run/pcscd ] || { mount -t tmpfs expo-pcscd /run; mkdir -p /run/pcscd; }; "
    'mount --bind "$0" /run/pcscd; exec "$@"'
)


class PcscStackMissing(RuntimeError):
    """pcscd or the vpcd driver is not installed (scripts/ensure-pcsc.sh installs them)."""


class PcscdUnavailable(RuntimeError):
    """pcscd is installed but could not be started here (another pcscd owns the socket, or it died)."""


def find_stack() -> tuple[Path, Path]:
    """The pcscd binary and the vpcd driver, or PcscStackMissing saying what to install."""
    found = shutil.which("pcscd") or next((p for p in ("/usr/sbin/pcscd", "/sbin/pcscd") if Path(p).exists()), None)
    if found is None:
        raise PcscStackMissing("pcscd is not installed (Debian: apt-get install pcscd; or scripts/ensure-pcsc.sh)")
    driver = _configured_driver() or next((p for p in DRIVER_CANDIDATES if p.exists()), None)
    if driver is None:
        raise PcscStackMissing("the vpcd driver is not installed (Debian: apt-get install vsmartcard-vpcd)")
    return Path(found), driver


def _configured_driver() -> Path | None:
    if not SYSTEM_CONFIG.exists():
        return None
    match = re.search(r"^\s*LIBPATH\s+(\S+)", SYSTEM_CONFIG.read_text(), re.MULTILINE)
    return Path(match.group(1)) if match and Path(match.group(1)).exists() else None


def listening_ports() -> set[int]:
    """TCP ports in LISTEN state on this host (read from /proc, so nothing connects to vpcd by accident)."""
    ports: set[int] = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with contextlib.suppress(OSError):
            for line in Path(table).read_text().splitlines()[1:]:
                fields = line.split()
                if fields[3] == "0A":
                    ports.add(int(fields[1].rsplit(":", 1)[1], 16))
    return ports


def _free_port_pair() -> int:
    """A base port whose SLOTS consecutive ports are all free: the default channel when it is."""
    busy = listening_ports()
    if not busy & set(range(VPCD_BASE_PORT, VPCD_BASE_PORT + SLOTS)):
        return VPCD_BASE_PORT
    for _ in range(50):
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            base = int(probe.getsockname()[1])
        if base + SLOTS <= 65535 and not busy & set(range(base, base + SLOTS)):
            return base
    raise PcscdUnavailable("no free pair of TCP ports for vpcd")


def _pcscd_processes() -> dict[int, list[str]]:
    found: dict[int, list[str]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError):
                argv = (entry / "cmdline").read_bytes().split(b"\0")
                if argv and Path(argv[0].decode(errors="replace")).name == "pcscd":
                    found[int(entry.name)] = [a.decode(errors="replace") for a in argv if a]
    return found


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def stop_stale_pcscd() -> list[int]:
    """Stop the pcscds this module started for processes that no longer exist; returns their pids."""
    stopped = []
    for pid, argv in _pcscd_processes().items():
        config = next((argv[i + 1] for i, arg in enumerate(argv[:-1]) if arg == "-c" and MARKER in argv[i + 1]), None)
        if config is None:
            continue
        owner_file = Path(config).parent / "owner.pid"
        owner = int(owner_file.read_text()) if owner_file.exists() else None
        if owner is None or not _alive(owner):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)
            stopped.append(pid)
    for pid in stopped:
        _wait_gone(pid, 5.0)
    return stopped


def _wait_gone(pid: int, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while _alive(pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    if _alive(pid):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)


@dataclass
class PrivatePcscd:
    """A running `pcscd -f` with vpcd on `base_port` (slot n on base_port + n); `env` points clients at it."""

    workdir: Path
    base_port: int
    socket_path: Path
    isolation: str  # "namespace" (own socket) or "default socket"
    process: subprocess.Popen[bytes] | None = None
    log_path: Path = field(init=False)

    def __post_init__(self) -> None:
        self.log_path = self.workdir / "pcscd.log"

    @property
    def env(self) -> dict[str, str]:
        """What a client process needs in its environment to reach this pcscd."""
        return {SOCKET_ENV: str(self.socket_path)} if self.socket_path != SYSTEM_SOCKET else {}

    def port(self, slot: int) -> int:
        """The TCP port a card for this slot connects to."""
        return self.base_port + slot

    def stop(self) -> None:
        """Stop pcscd (its process group), waiting for it; the readers and their cards go away."""
        if self.process is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=5)
        self.process = None

    def restart(self) -> None:
        """Stop and start again with the same socket and ports (cards reconnect by themselves)."""
        self.stop()
        self._launch(self.isolation)

    def _launch(self, isolation: str) -> None:
        pcscd, _ = find_stack()
        command = [str(pcscd), "-f", "-c", str(self.workdir / f"{MARKER}.conf.d")]
        if isolation == "namespace":
            run = self.socket_path.parent
            prefix = ["unshare", "--mount", "--propagation", "private"]
            if os.geteuid() != 0:
                prefix[1:1] = ["--user", "--map-root-user"]
            command = [*prefix, "sh", "-c", _NAMESPACE_SCRIPT, str(run), *command]
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(  # noqa: S603  # our binaries and our own paths
                command, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
            )
        self._wait_ready()

    def _wait_ready(self, timeout: float = 10.0) -> None:
        assert self.process is not None
        wanted = set(range(self.base_port, self.base_port + SLOTS))
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                tail = self.log_path.read_text(errors="replace")[-600:]
                self.process = None
                raise PcscdUnavailable(f"pcscd exited at start ({self.isolation}): {tail.strip()}")
            if self.socket_path.exists() and wanted <= listening_ports():
                return
            time.sleep(0.05)
        self.stop()
        raise PcscdUnavailable(f"pcscd did not open {self.socket_path} and ports {sorted(wanted)} in {timeout:g} s")


def start_pcscd(workdir: Path) -> PrivatePcscd:
    """Start a private pcscd with vpcd: own socket in a mount namespace if possible, else the default one."""
    find_stack()
    with START_LOCK.open("a") as lock:
        # Two test sessions starting at once would otherwise both pick the same free ports.
        fcntl.flock(lock, fcntl.LOCK_EX)
        return _start_locked(workdir)


def _start_locked(workdir: Path) -> PrivatePcscd:
    _, driver = find_stack()
    stop_stale_pcscd()
    workdir = workdir / f"{MARKER}-{os.getpid()}"
    (workdir / "run").mkdir(parents=True, exist_ok=True)
    (workdir / "owner.pid").write_text(str(os.getpid()))
    base_port = _free_port_pair()
    config = workdir / f"{MARKER}.conf.d"
    config.mkdir(exist_ok=True)
    (config / "vpcd").write_text(
        f'FRIENDLYNAME "Virtual PCD"\nDEVICENAME /dev/null:0x{base_port:04X}\n'
        f"LIBPATH {driver}\nCHANNELID 0x{base_port:04X}\n"
    )
    failures = []
    if shutil.which("unshare"):
        with contextlib.suppress(OSError):
            if os.geteuid() == 0:
                SYSTEM_SOCKET.parent.mkdir(parents=True, exist_ok=True)
        daemon = PrivatePcscd(workdir, base_port, workdir / "run" / "pcscd.comm", "namespace")
        try:
            daemon._launch("namespace")
            return daemon
        except PcscdUnavailable as error:
            failures.append(str(error))
    owner = _system_socket_owner()
    if owner is not None:
        failures.append(f"another pcscd (pid {owner}) owns {SYSTEM_SOCKET}; stop it to run without namespaces")
        raise PcscdUnavailable("; ".join(failures))
    daemon = PrivatePcscd(workdir, base_port, SYSTEM_SOCKET, "default socket")
    daemon._launch("default socket")
    return daemon


def _system_socket_owner() -> int | None:
    """The pid of a live pcscd serving the default socket, if any."""
    pid_file = SYSTEM_SOCKET.with_name("pcscd.pid")
    with contextlib.suppress(OSError, ValueError):
        pid = int(pid_file.read_text().strip())
        if _alive(pid):
            return pid
    running = _pcscd_processes()
    return next(iter(running), None) if SYSTEM_SOCKET.exists() and running else None
