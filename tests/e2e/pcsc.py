"""Helpers for end-to-end tests over real PC/SC: a private pcscd with vpcd, emulated cards and their bridges.

The pcscd comes from `simcard.pcscd.start_pcscd` (its own socket and config, see that module); cards are
card files made from fixed test province keys; each inserted card is a real `expo card insert` process,
so a test removes a card exactly as a user would: by ending that process.
"""

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from simcard.keys import KEY_TYPES
from simcard.pcscd import PcscdUnavailable, PcscStackMissing, PrivatePcscd, start_pcscd
from simcard.personalise import new_card_state
from simcard.store import CardFile
from tests.conftest import IN_CI

# Fixed, test-only province keys: tests derive the same card keys to build secured commands.
TEST_PROVINCE = "31"
TEST_PROV_KEYS = {t: bytes([0x30 + t]) * 16 for t in KEY_TYPES}
CARD_TIMEOUT = 10.0


def unavailable(reason: str) -> None:
    """Skip when the PC/SC stack is not installed here; under CI=true a missing stack is a failure."""
    if IN_CI:
        pytest.fail(f"the PC/SC stack is required under CI=true: {reason}")
    pytest.skip(f"{reason} (scripts/ensure-pcsc.sh installs it; run scripts/test.sh)")


def launch_pcscd(workdir: Path) -> PrivatePcscd:
    """Our own `pcscd -f` with the vpcd driver, or a skip (not installed, outside CI) / failure (else)."""
    try:
        import smartcard  # noqa: F401, PLC0415  # the `pcsc` extra
    except ImportError:
        unavailable("pyscard is not installed (the `pcsc` extra)")
    try:
        return start_pcscd(workdir)
    except PcscStackMissing as error:
        unavailable(str(error))
    except PcscdUnavailable as error:
        pytest.fail(f"pcscd is installed but could not be started: {error}")
    raise AssertionError("unreachable")


def make_card(path: Path, *, serial: int, province: str = TEST_PROVINCE) -> Path:
    """A fresh, personalised card file (empty slots, CTR 0) from the test province keys."""
    CardFile.save(path, new_card_state(province, serial, TEST_PROV_KEYS))
    return path


class BridgeProcess:
    """`expo card insert --card FILE --slot N` against the private pcscd, as its own process."""

    def __init__(self, card_file: Path, *, slot: int, pcscd: PrivatePcscd) -> None:
        self.card_file = card_file
        self.slot = slot
        command = [
            sys.executable, "-m", "expo.cli", "card", "insert",
            "--card", str(card_file), "--slot", str(slot), "--vpcd-port", str(pcscd.base_port),
        ]  # fmt: skip
        self.process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)

    def remove(self) -> None:
        """Take the card out (SIGTERM): the bridge must finish cleanly, having closed its socket."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        _, errors = self.process.communicate(timeout=15)
        assert self.process.returncode == 0, errors.decode(errors="replace")

    def kill(self) -> None:
        """The phone's battery dies: no goodbye, the socket just closes."""
        if self.process.poll() is None:
            self.process.kill()
        self.process.communicate(timeout=15)


class CardRack:
    """Cards and bridges for one test; everything inserted is removed at the end and the readers are empty."""

    def __init__(self, pcscd: PrivatePcscd, folder: Path) -> None:
        self.pcscd = pcscd
        self.folder = folder
        self.bridges: list[BridgeProcess] = []
        self._serial = 0

    def new_card(self, *, province: str = TEST_PROVINCE) -> Path:
        """A new card file with the next serial number."""
        self._serial += 1
        return make_card(self.folder / f"card-{self._serial}.json", serial=self._serial, province=province)

    def insert(self, card_file: Path, *, slot: int = 0) -> BridgeProcess:
        """Start the bridge and wait until pcscd sees the card in the slot's reader.

        pcscd's vpcd driver now and then misses a card put in right after one was taken out of the same slot
        (the new bridge's connection is never taken up): a card not seen after half the wait is taken out and
        put in again once, as a person would reseat it."""
        for wait in (CARD_TIMEOUT / 2, CARD_TIMEOUT):
            bridge = BridgeProcess(card_file, slot=slot, pcscd=self.pcscd)
            if self._seen(bridge, wait=wait):
                self.bridges.append(bridge)
                return bridge
            bridge.kill()
        raise AssertionError(f"no card in vpcd slot {slot} after putting it in twice")

    def _seen(self, bridge: BridgeProcess, *, wait: float) -> bool:
        from simcard import pcsc  # noqa: PLC0415  # pyscard is optional: imported once the stack is known

        reader = pcsc.vpcd_reader(bridge.slot)
        deadline = time.monotonic() + wait
        while not pcsc.card_present(reader):
            if bridge.process.poll() is not None:
                raise AssertionError(f"the bridge exited: {bridge.process.communicate()[1].decode()}")
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.05)
        return True

    def remove(self, bridge: BridgeProcess) -> None:
        """Take the card out and wait until the reader is empty."""
        from simcard import pcsc  # noqa: PLC0415

        bridge.remove()
        self.bridges.remove(bridge)
        assert pcsc.wait_for_removal(pcsc.vpcd_reader(bridge.slot), CARD_TIMEOUT)

    def kill(self, bridge: BridgeProcess) -> None:
        """The card vanishes without a goodbye (its process is killed); wait until the reader is empty."""
        from simcard import pcsc  # noqa: PLC0415

        bridge.kill()
        self.bridges.remove(bridge)
        assert pcsc.wait_for_removal(pcsc.vpcd_reader(bridge.slot), CARD_TIMEOUT)

    def clear(self) -> None:
        """Remove every card still inserted (a bridge that already died is only waited for)."""
        for bridge in list(self.bridges):
            if bridge.process.poll() is None:
                self.remove(bridge)
            else:
                self.kill(bridge)


@contextmanager
def thread_bridge(applet: Any, *, port: int, quickack: bool = True) -> Iterator[Any]:
    """A bridge serving an applet on a thread of this process (for stand-in applets and wire tests)."""
    from simcard.vpcd import VpcdBridge  # noqa: PLC0415

    bridge = VpcdBridge(applet, port=port, quickack=quickack)
    thread = threading.Thread(target=bridge.serve_forever, daemon=True)
    thread.start()
    try:
        yield bridge
    finally:
        bridge.stop()
        thread.join(timeout=10)


def client_env(pcscd: PrivatePcscd) -> dict[str, str]:
    """The environment for a client process (terminal, gate) that talks to this pcscd."""
    return {**os.environ, **pcscd.env}


def skip_without_pyscard() -> None:
    """Skip the calling test module when pyscard (the `pcsc` extra) is missing; under CI=true, fail instead."""
    try:
        import smartcard  # noqa: F401, PLC0415  # only whether it imports
    except ImportError:
        if IN_CI:
            raise
        pytest.skip("pyscard (the `pcsc` extra) is not installed", allow_module_level=True)
