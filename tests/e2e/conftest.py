"""End-to-end fixtures over real PC/SC: one private `pcscd -f` with the vpcd driver per test session.

The pcscd gets its own reader configuration and, where namespaces allow, its own socket (see
`simcard.pcscd`); this process reaches it through PCSCLITE_CSOCK_NAME, set before its first PC/SC call.
Without pcscd or vpcd installed the PC/SC tests skip, or fail under CI=true.
"""

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from simcard.pcscd import SOCKET_ENV, PrivatePcscd
from tests.e2e.pcsc import CardRack, launch_pcscd


@pytest.fixture(scope="session")
def pcscd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PrivatePcscd]:
    """The session's pcscd; stopped (with its process group) at the end."""
    daemon = launch_pcscd(tmp_path_factory.mktemp("pcsc"))
    previous = os.environ.get(SOCKET_ENV)
    os.environ.update(daemon.env)
    try:
        yield daemon
    finally:
        daemon.stop()
        if previous is None:
            os.environ.pop(SOCKET_ENV, None)
        else:
            os.environ[SOCKET_ENV] = previous


@pytest.fixture
def cards(pcscd: PrivatePcscd, tmp_path: Path) -> Iterator[CardRack]:
    """Card files and `expo card insert` bridges for one test; the readers are empty again afterwards."""
    rack = CardRack(pcscd, tmp_path)
    try:
        yield rack
    finally:
        rack.clear()
