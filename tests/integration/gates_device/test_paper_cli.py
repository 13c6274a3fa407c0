"""`expo gate scan` in process: physical tickets' codes typed, in pictures and from a keyboard-wedge scanner,
decided offline with the keys `expo gate sync` pulled, journaled, annulled and uploaded like card taps."""

import io
import json
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from PIL import Image

from expo.cli import main
from gates import cli as gate_cli
from gates.client import GateClient
from gates.journal import JOURNAL_FILE, GateJournal
from simcard.keystore import export_sam_keys, write_sam_keys
from tests.integration.gates_device.conftest import BASE, GateServer
from tests.integration.gates_device.test_paper_sync import keyed_server  # noqa: F401  # the service with keys
from ticketing.qr import qr_png
from ticketing.signed_codes import CodeKind, claim_for, grouped
from ticketing.signing_keys import Keyring, load_keyring

CLOCK = "2010-06-01T10:00"


class PaperDevice:
    """A gate device's data folder, run through `expo gate` with the service behind the in-process transport."""

    def __init__(self, server: GateServer, folder: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        self.folder = folder
        self.sam = folder.parent / "sam-keys.json"
        write_sam_keys(self.sam, export_sam_keys(server.root))

        def client(device: gate_cli.Device) -> GateClient:
            return GateClient(device.config.service, device.config.token, transport=server.network())

        monkeypatch.setattr(gate_cli.Device, "client", client)

    def setup(self, token: str) -> list[str]:
        return ["--gate", "1001", "--entrance", "L3", "--service", BASE, "--token", token, "--sam", str(self.sam)]

    def run(self, *args: str, stdin: str | None = None) -> Result:
        return CliRunner().invoke(main, ["gate", args[0], "--data-dir", str(self.folder), *args[1:]], input=stdin)

    def scan(self, *args: str, stdin: str | None = None) -> Result:
        return self.run("scan", "--clock-at", CLOCK, *args, stdin=stdin)


def code_of(ring: Keyring, ticket_id: int, ticket_type: str = "standard", kind: CodeKind = CodeKind.PHYSICAL) -> str:
    claim = claim_for(
        kind, kid=ring.current.kid, ticket_id=ticket_id, ticket_type=ticket_type, visit_day=None, upgrade_day=None
    )
    return ring.sign(claim)


@pytest.fixture
def device(keyed_server: GateServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> PaperDevice:  # noqa: F811
    return PaperDevice(keyed_server, tmp_path / "gate", monkeypatch)


async def test_scan_decides_journals_and_prints_each_code(
    keyed_server: GateServer,  # noqa: F811
    device: PaperDevice,
    signing_key_file: Path,
    tmp_path: Path,
) -> None:
    ring = load_keyring(signing_key_file)
    token = keyed_server.register(1001, "L3")
    synced = device.run("sync", *device.setup(token))
    assert synced.exit_code == 0, synced.output
    assert synced.stdout.strip().endswith("ticket_keys 1")

    typed = device.scan("--code", grouped(code_of(ring, 1, "standard_concession")).lower())
    assert (typed.exit_code, typed.stdout) == (0, "OPEN gate=1001 ticket=1 type=standard_concession check_id\n")
    again = device.scan("--code", code_of(ring, 1, "standard_concession"))
    assert (again.exit_code, again.stdout) == (2, "REFUSED gate=1001 code=already_used ticket=1\n")

    picture = tmp_path / "ticket.png"
    picture.write_bytes(qr_png(code_of(ring, 2, "pass_3")))
    pictured = device.scan("--image", str(picture))
    assert (pictured.exit_code, pictured.stdout) == (0, "OPEN gate=1001 ticket=2 type=pass_3\n")
    blank = tmp_path / "blank.png"
    out = io.BytesIO()
    Image.new("L", (200, 200), 255).save(out, format="PNG")
    blank.write_bytes(out.getvalue())
    nothing = device.scan("--image", str(blank))
    assert (nothing.exit_code, nothing.stdout) == (2, "REFUSED gate=1001 code=no_code\n")

    scanner = "\n".join(
        [code_of(ring, 2, "pass_3"), "", code_of(ring, 3, kind=CodeKind.VOUCHER), "GARBAGE", code_of(ring, 4)]
    )
    wedge = device.scan("--stdin", stdin=scanner + "\n")
    assert wedge.exit_code == 0, wedge.output
    assert wedge.stdout.splitlines() == [
        "REFUSED gate=1001 code=already_entered_today ticket=2",
        "REFUSED gate=1001 code=voucher_not_ticket ticket=3",
        "REFUSED gate=1001 code=code_malformed",
        "OPEN gate=1001 ticket=4 type=standard",
    ]

    annulled = device.run("annul", "--clock-at", "2010-06-01T10:00:30")
    assert (annulled.exit_code, annulled.stdout) == (0, "ANNULLED gate=1001 seq=9 annuls=8 ticket=4\n")
    assert device.scan("--code", code_of(ring, 4)).exit_code == 0  # the turnstile did not turn: in again

    lines = GateJournal(device.folder / JOURNAL_FILE).lines()
    assert all(line.paper and line.csn is None for line in lines)
    synced = device.run("sync")
    assert synced.exit_code == 0, synced.output
    assert synced.stdout.startswith(f"stored {len(lines)} duplicates 0")
    shown = device.run("journal", "--day", "2010-06-01")
    local = json.loads(shown.stdout)
    assert local == keyed_server.counts("2010-06-01")  # the gate's counts are the service's
    [row] = local["gates"]
    assert (row["admitted"], row["annulled"], row["refused"], row["entries"]) == (4, 1, 5, 3)


@pytest.mark.parametrize("given", [[], ["--code", "X", "--stdin"], ["--code", "X", "--image", __file__]])
def test_scan_takes_exactly_one_source(device: PaperDevice, given: list[str]) -> None:
    done = device.scan(*given)
    assert done.exit_code == 2
    assert "give one of --image, --code and --stdin" in done.output
