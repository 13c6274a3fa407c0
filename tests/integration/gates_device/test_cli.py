"""`expo gate ...` in process: registration on the database, and the device commands with the service behind
the in-process transport and the card reader replaced by a tray of emulated cards (no PC/SC here)."""

import asyncio
import json
import logging
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest
from click.testing import CliRunner, Result
from PIL import Image

from expo.cli import main
from expo.db import Database
from gates import cli as gate_cli
from gates import reader as reader_module
from gates.client import GateClient
from gates.errors import GateError
from gates.journal import JOURNAL_FILE, GateJournal
from gates.reader import run_taps
from simcard.applet import CardApplet
from simcard.channel import AppletChannel, CardChannel
from simcard.keystore import export_sam_keys, write_sam_keys
from tests.integration.gates_device.conftest import BASE, GateServer, new_gate, same_lines
from ticketing.rules import TicketType

CLOCK = "2010-06-01T10:00"
REGISTER = ["gate", "register", "--gate"]


class Tray:
    """The reader of an in-process device: the cards laid on it, one per tap, each taken away at once."""

    def __init__(self, cards: list[CardApplet]) -> None:
        self.cards = list(cards)
        self.name = "tray"

    @contextmanager
    def card(self, wait: float) -> Iterator[CardChannel]:
        if not self.cards:
            raise GateError("no_card", "no card on the tray")
        applet = self.cards.pop(0)
        applet.power_on()
        yield AppletChannel(applet)

    def removed(self, wait: float) -> bool:
        return True


class Device:
    """One gate device's data folder, run through `expo gate` with the tray and the network patched in."""

    def __init__(self, server: GateServer, folder: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        self.server = server
        self.folder = folder
        self.tray = Tray([])
        self.network: httpx.BaseTransport = server.network()
        self.sam = folder.parent / "sam-keys.json"
        write_sam_keys(self.sam, export_sam_keys(server.root))
        monkeypatch.setattr(gate_cli.Device, "reader", lambda _: self.tray)
        monkeypatch.setattr(
            gate_cli.Device, "client", lambda d: GateClient(d.config.service, d.config.token, transport=self.network)
        )

    def run(self, *args: str, cards: list[CardApplet] | None = None) -> Result:
        self.tray.cards = list(cards or [])
        return CliRunner().invoke(main, ["gate", *args[:1], "--data-dir", str(self.folder), *args[1:]])

    def journal(self) -> GateJournal:
        return GateJournal(self.folder / JOURNAL_FILE)


def setup(token: str, device: Device) -> list[str]:
    return ["--gate", "1001", "--entrance", "L3", "--service", BASE, "--token", token, "--sam", str(device.sam)]


@pytest.fixture
def device(gate_server: GateServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Device:
    return Device(gate_server, tmp_path / "gate", monkeypatch)


async def test_register_prints_the_token_once_and_refuses_a_taken_gate_id(
    gate_server: GateServer, db: Database
) -> None:
    env = {"EXPO_DATABASE_URL": db.url}
    done = await asyncio.to_thread(CliRunner().invoke, main, [*REGISTER, "77", "--entrance", "U1"], env=env)
    assert done.exit_code == 0, done.output
    token = done.stdout.strip()
    assert token not in done.stderr
    assert "gate 77 registered at U1" in done.stderr
    page = gate_server.client(token).revocations(since=0)  # the token is the gate's credential
    assert page.revocations == []
    again = await asyncio.to_thread(CliRunner().invoke, main, [*REGISTER, "77", "--entrance", "L1"], env=env)
    assert again.exit_code == 1
    assert again.stderr.startswith("error gate_exists: ")


async def test_run_prints_one_line_per_tap_and_the_last_sync_lands_the_journal(
    gate_server: GateServer, device: Device
) -> None:
    token = gate_server.register(1001, "L3")
    one = gate_server.card(1)
    cards = [one, gate_server.card(2), one, gate_server.card(3, TicketType.STANDARD_CONCESSION)]
    done = device.run("run", *setup(token, device), "--clock-at", CLOCK, "--taps", "4", cards=cards)
    assert done.exit_code == 0, done.output
    assert done.stdout.splitlines() == [
        "OPEN gate=1001 ticket=1 type=standard",
        "OPEN gate=1001 ticket=2 type=standard",
        "REFUSED gate=1001 code=already_used ticket=1",
        "OPEN gate=1001 ticket=3 type=standard_concession check_id",
    ]
    assert "stopped after 4 taps; last sync: stored 4" in done.stderr
    assert token not in done.output
    journal = device.journal()
    assert await gate_server.stored(1001) == same_lines(journal.lines())
    assert journal.pending(limit=10) == []
    kept = device.folder / "gate.json"
    assert oct(kept.stat().st_mode & 0o777) == "0o600"
    assert oct(device.folder.stat().st_mode & 0o777) == "0o700"


async def test_the_kept_setup_serves_later_commands_and_belongs_to_one_gate(
    gate_server: GateServer, device: Device
) -> None:
    token = gate_server.register(1001, "L3")
    ran = device.run("run", *setup(token, device), "--clock-at", CLOCK, "--taps", "1", cards=[gate_server.card(5)])
    assert ran.exit_code == 0, ran.output
    annulled = device.run("annul", "--clock-at", "2010-06-01T10:00:30")  # half a minute later
    assert annulled.exit_code == 0, annulled.output
    assert annulled.stdout.startswith("ANNULLED gate=1001 seq=2 annuls=1 ticket=5")
    twice = device.run("annul", "--clock-at", "2010-06-01T10:00:40")
    assert (twice.exit_code, twice.stderr.split(":")[0]) == (1, "error nothing_to_annul")
    synced = device.run("sync")
    assert (synced.exit_code, synced.stdout.split()[:2]) == (0, ["stored", "1"])  # the annulment; run sent the rest
    shown = device.run("journal", "--day", "2010-06-01")
    assert json.loads(shown.stdout) == gate_server.counts("2010-06-01")
    assert json.loads(shown.stdout)["gates"][0]["entries"] == 0
    other = device.run("sync", "--gate", "1002")
    assert (other.exit_code, other.stderr.split(":")[0]) == (1, "error other_gate")


async def test_sync_without_the_service_keeps_everything_and_says_why(gate_server: GateServer, device: Device) -> None:
    token = gate_server.register(1001, "L3")
    cards = [gate_server.card(n) for n in (1, 2, 3)]
    device.network = gate_server.network(["refused"] * 100)
    done = device.run(
        "run", *setup(token, device), "--clock-at", CLOCK, "--taps", "3", "--sync-interval", "0.01", cards=cards
    )
    assert done.exit_code == 0, done.output
    assert len(done.stdout.splitlines()) == 3  # the gate admitted all the same
    away = device.run("sync")
    assert away.exit_code == 1
    assert away.stderr.startswith("error service_unreachable: ")
    assert len(device.journal().pending(limit=10)) == 3
    device.network = gate_server.network()
    back = device.run("sync")
    assert back.exit_code == 0, back.output
    assert back.stdout.startswith("stored 3 duplicates 0")
    assert await gate_server.stored(1001) == same_lines(device.journal().lines())


async def test_the_handheld_decides_like_a_gate_and_a_supervisor_can_force(
    gate_server: GateServer, device: Device
) -> None:
    token = gate_server.register(1001, "L3", kind="handheld")
    card = gate_server.card(8)
    first = device.run("check", *setup(token, device), "--clock-at", CLOCK, cards=[card])
    assert (first.exit_code, first.stdout) == (0, "OPEN gate=1001 ticket=8 type=standard\n")
    refused = device.run("check", "--clock-at", CLOCK, cards=[card])
    assert (refused.exit_code, refused.stdout) == (2, "REFUSED gate=1001 code=already_used ticket=8\n")
    half = device.run("check", "--force", "--reason", "lost wristband", cards=[card])
    assert half.exit_code == 2  # a usage error: --force needs both
    forced = device.run(
        "check", "--clock-at", CLOCK, "--force", "--reason", "child re-entering", "--supervisor", "SUP-3", cards=[card]
    )
    assert (forced.exit_code, forced.stdout) == (0, "FORCED gate=1001 code=already_used ticket=8 type=standard\n")
    nothing = device.run("check", "--clock-at", CLOCK, "--card-wait", "0", cards=[])
    assert (nothing.exit_code, nothing.stderr.split(":")[0]) == (1, "error no_card")
    assert device.run("sync").exit_code == 0
    conflicts = gate_server.http.get("/v1/gate-entries/conflicts?day=2010-06-01", headers=gate_server.admin).json()
    assert "forced_admission" in {c["code"] for c in conflicts["conflicts"]}
    assert json.loads(device.run("journal", "--day", "2010-06-01").stdout)["gates"][0]["kind"] == "handheld"


async def test_the_souvenir_terminal_takes_an_entered_ticket_once(
    gate_server: GateServer, device: Device, tmp_path: Path
) -> None:
    token = gate_server.register(1001, "L3", kind="souvenir")
    fresh, card = gate_server.card(11), gate_server.card(12)
    gate = device.run("check", *setup(token, device), "--clock-at", CLOCK, cards=[card])
    assert gate.exit_code == 0, gate.output
    out = tmp_path / "souvenirs"
    taken = device.run("souvenir", "--clock-at", CLOCK, "--out-dir", str(out), cards=[card])
    assert taken.exit_code == 0, taken.output
    line = taken.stdout.strip()
    assert line.startswith("SOUVENIR gate=1001 ticket=12 type=standard image=")
    image = Path(line.split("image=")[1])
    assert image.parent == out
    with Image.open(image) as png:
        assert png.format == "PNG"
    again = device.run("souvenir", "--clock-at", CLOCK, "--out-dir", str(out), cards=[card])
    assert (again.exit_code, again.stdout) == (2, "REFUSED gate=1001 code=souvenir_taken ticket=12\n")
    never = device.run("souvenir", "--clock-at", CLOCK, "--out-dir", str(out), cards=[fresh])
    assert (never.exit_code, never.stdout) == (2, "REFUSED gate=1001 code=not_entered ticket=11\n")


async def test_a_bad_sam_key_file_is_a_clear_refusal(gate_server: GateServer, device: Device) -> None:
    token = gate_server.register(1001, "L3")
    device.sam.write_text('{"kind": "expo-sam-keys", "key_version": 1, "validate_root": "zz"}')
    done = device.run("check", *setup(token, device), cards=[gate_server.card(1)])
    assert (done.exit_code, done.stderr.split(":")[0]) == (1, "error bad_sam_keys")


class FlakyTray(Tray):
    """A tray whose reader goes away (pcscd restarting) for a few looks before each card."""

    def __init__(self, cards: list[CardApplet], *, gone: int) -> None:
        super().__init__(cards)
        self.gone = gone
        self.looks = 0

    @contextmanager
    def card(self, wait: float) -> Iterator[CardChannel]:
        self.looks += 1
        if self.looks <= self.gone:
            raise GateError("no_reader", "pcscd is not running")
        with super().card(wait) as channel:
            yield channel


def test_the_gate_loop_waits_for_a_reader_that_went_away(
    gate_server: GateServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(reader_module, "READER_RETRY", 0.001)
    gate = new_gate(gate_server, tmp_path, 1001)
    tray = FlakyTray([gate_server.card(1), gate_server.card(2)], gone=3)
    shown: list[str] = []
    with caplog.at_level(logging.INFO, logger="gates.reader"):
        done = run_taps(tray, gate.validator.entry, show=lambda r: shown.append(gate_cli.tap_line(1001, r)),
                        stop=threading.Event(), taps=2)  # fmt: skip
    assert done == 2
    assert shown == ["OPEN gate=1001 ticket=1 type=standard", "OPEN gate=1001 ticket=2 type=standard"]
    assert "the card reader is gone (no_reader" in caplog.text
    assert "the card reader is back" in caplog.text


def test_a_card_error_the_loop_does_not_know_stops_it(gate_server: GateServer, tmp_path: Path) -> None:
    class Broken(Tray):
        @contextmanager
        def card(self, wait: float) -> Iterator[CardChannel]:
            raise GateError("no_pcsc", "pyscard is not installed")
            yield AppletChannel(gate_server.card(1))

    gate = new_gate(gate_server, tmp_path, 1001)
    with pytest.raises(GateError) as stopped:
        run_taps(Broken([]), gate.validator.entry, show=print, stop=threading.Event(), taps=1)
    assert stopped.value.code == "no_pcsc"
