"""Fixtures of the hall terminal's end-to-end tests: a real `expo serve` holding card keys, platform-issued
card files, and a clerk running `expo terminal ...` as a process at a hall terminal of its own."""

import dataclasses
import os
import subprocess
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from simcard.keys import KeySet
from simcard.keystore import load_root_keys
from simcard.pcscd import PrivatePcscd
from simcard.store import CardFile
from tests.e2e.pcsc import CardRack
from tests.e2e.server import EXPO, run_expo, serve

HALL = "Shanghai Xujiahui hall"
SEGMENT = "1342554"  # a Shanghai mobile number segment (1342554-1342873)


@dataclass
class HallService:
    """The running service, its demo credentials and the environment `expo` commands run in."""

    base: str
    secrets: dict[str, Any]
    env: dict[str, str]
    root: KeySet
    folder: Path
    _issued: int = 0

    def issue_card(self, *, province: str = "31") -> Path:
        """A new card, personalised by the platform (`expo card issue`): its card file."""
        out = self.folder / f"cards-{uuid.uuid4().hex[:6]}"
        run_expo(["card", "issue", "--province", province, "--count", "1", "--out-dir", str(out)], self.env)
        [card_file] = out.iterdir()
        return card_file

    def new_device(self) -> str:
        """A new hall terminal credential in the Xujiahui hall (each test's terminal has its own batches)."""
        body = {"role": "hall_terminal", "label": f"hall-{uuid.uuid4().hex[:6]}", "province_code": "31", "hall": HALL}
        headers = {"Authorization": "Bearer " + self.secrets["tokens"]["admin"]}
        reply = httpx.post(self.base + "/v1/admin/credentials", json=body, headers=headers)
        assert reply.status_code == 201, reply.text
        token: str = reply.json()["token"]
        return token

    def number(self) -> str:
        """A fresh Shanghai mobile number."""
        self._issued += 1
        return f"{SEGMENT}{self._issued:04d}"


@dataclass
class Clerk:
    """SH-C001 at a terminal of their own: `expo terminal` processes over one data folder."""

    service: HallService
    data_dir: Path
    env: dict[str, str]

    def run(self, *args: str, reader: str | None = None) -> subprocess.CompletedProcess[str]:
        """One `expo terminal` command; its completed process (exit status, stdout, stderr)."""
        options = ["--data-dir", str(self.data_dir), "--card-wait", "1", *(["--reader", reader] if reader else [])]
        return subprocess.run(
            [*EXPO, "terminal", *options, *args], env=self.env, capture_output=True, text=True, timeout=60, check=False
        )

    def ok(self, *args: str) -> str:
        """A command that must succeed: its stdout."""
        done = self.run(*args)
        assert done.returncode == 0, done.stderr + done.stdout
        return done.stdout

    def refused(self, *args: str, reader: str | None = None) -> str:
        """A command that must be refused with one `error <code>: ...` line and exit status 1: the code."""
        done = self.run(*args, reader=reader)
        assert done.returncode == 1, done.stderr + done.stdout
        lines = done.stderr.strip().splitlines()
        assert len(lines) == 1, done.stderr
        assert lines[0].startswith("error "), done.stderr
        return lines[0].split()[1].rstrip(":")


def run_hall_service(data: Path, url: str, env: dict[str, str]) -> Iterator[HallService]:
    """The service on a database ('' = SQLite) with its national root keys, on the Expo's 2010-06-01."""
    root_file = data / "root-keys.json"
    run_expo(["card", "keys", "generate", "--out", str(root_file)], dict(os.environ))
    env = {**env, "EXPO_DATA_DIR": str(data), "EXPO_KEY_FILE": str(root_file), "EXPO_DATABASE_URL": url}
    for base, secrets in serve(data, url, env=env):
        yield HallService(base, secrets, env, load_root_keys(root_file), data)


@pytest.fixture(scope="module")
def hall_service(tmp_path_factory: pytest.TempPathFactory, pcscd: PrivatePcscd) -> Iterator[HallService]:
    """The service (SQLite) with its national root keys, its clients on the tests' pcscd."""
    yield from run_hall_service(tmp_path_factory.mktemp("hall"), "", {**os.environ, **pcscd.env})


@pytest.fixture
def clerk(hall_service: HallService, tmp_path: Path) -> Clerk:
    """SH-C001 logged in at a new terminal of the hall."""
    env = {**hall_service.env, "EXPO_STAFF_PASSWORD": hall_service.secrets["passwords"]["SH-C001"]}
    env.pop("EXPO_DATA_DIR")  # the terminal has no business with the service's data folder
    me = Clerk(hall_service, tmp_path / "terminal", env)
    token = hall_service.new_device()
    out = me.ok("--service", hall_service.base, "login", "--staff-no", "SH-C001", "--device-token", token)
    assert "Wang Fang (SH-C001) logged in at Shanghai Xujiahui hall" in out
    assert token not in out
    return me


def with_aid(card_file: Path, aid: bytes) -> Path:
    """The card with its applet under another AID (a SELECT of the Expo AID finds nothing: 6A82)."""
    CardFile.save(card_file, dataclasses.replace(CardFile.load(card_file), aid=aid))
    return card_file


def filled(card_file: Path) -> Path:
    """The card with every ticket slot taken."""
    junk = bytes(range(24)) + bytes([0, 0xFF, 0xFF, 0, 0, 0, 0, 0])
    CardFile.save(card_file, dataclasses.replace(CardFile.load(card_file), slots=(junk,) * 4))
    return card_file


def registered_card(clerk: Clerk, cards: CardRack) -> tuple[Path, str]:
    """A new Shanghai card in the reader, registered (a SIM swap at the terminal) to a new number."""
    card_file = clerk.service.issue_card()
    cards.insert(card_file)
    msisdn = clerk.service.number()
    assert "registered to " + msisdn in clerk.ok("register-card", "--msisdn", msisdn)
    return card_file, msisdn
