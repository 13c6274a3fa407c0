"""The gate end to end: a ticket sold and written at the hall counter, then `expo gate run` and `expo gate
souvenir` as processes reading the card through real pcscd + vpcd, their journals synced to a real server.

Day one: the standard ticket and the 3-visit pass are admitted, the standard ticket's second tap refused.
Day two: the standard ticket is refused, the pass admitted again. The souvenir terminal honours the pass
once. The server's counts equal the gate's own journal, and the cards say what happened.
"""

import json
import queue
import signal
import subprocess
import threading
from pathlib import Path

import pytest
from PIL import Image

from simcard.record import TicketRecord
from simcard.store import CardFile
from tests.e2e.gates import counts, register_gate, sam_file
from tests.e2e.hall import Clerk, HallService, clerk, hall_service, registered_card
from tests.e2e.pcsc import CardRack, skip_without_pyscard
from tests.e2e.server import EXPO

skip_without_pyscard()
from simcard import pcsc  # noqa: E402  # after the check: pyscard is optional

__all__ = ["clerk", "hall_service"]  # fixtures used here

LINE_TIMEOUT = 20  # seconds for a gate to answer a tap


class GateProcess:
    """`expo gate run` as its own process, its tap lines read as they come."""

    def __init__(self, device: list[str], env: dict[str, str], *, clock_at: str) -> None:
        command = [*EXPO, "gate", "run", *device, "--clock-at", clock_at, "--sync-interval", "0.5"]
        self.process = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        self.lines: queue.Queue[str] = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.put(line.strip())

    def tap(self, cards: CardRack, card_file: Path) -> str:
        """Put the card on the reader, wait for the gate's line, take the card away."""
        bridge = cards.insert(card_file)
        try:
            return self.lines.get(timeout=LINE_TIMEOUT)
        except queue.Empty:
            pytest.fail(f"the gate said nothing: {self.stop()}")
        finally:
            cards.remove(bridge)

    def stop(self) -> str:
        """SIGTERM: the gate stops after a last sync; its stderr."""
        self.process.send_signal(signal.SIGTERM)
        _, errors = self.process.communicate(timeout=30)
        assert self.process.returncode == 0, errors
        return errors


def _device(service: HallService, folder: Path, gate_id: int, *, kind: str) -> list[str]:
    token = register_gate(service, gate_id, "L1", kind=kind)
    return ["--data-dir", str(folder), "--gate", str(gate_id), "--entrance", "L1", "--service", service.base,
            "--token", token, "--sam", str(sam_file(service)), "--reader", pcsc.vpcd_reader(0)]  # fmt: skip


def _sold(clerk: Clerk, cards: CardRack, ticket_type: str) -> tuple[Path, int]:
    """A card registered at the counter, a ticket sold and written to it; the card is taken out again."""
    card_file, msisdn = registered_card(clerk, cards)
    sold = clerk.ok("sell", "--msisdn", msisdn, "--type", ticket_type, "--card-approval", "A1B2C3")
    ticket_id = int(sold.split("TICKET: ")[1].split()[0])
    assert f"ticket {ticket_id} written to card" in sold
    cards.clear()
    return card_file, ticket_id


def _record(card_file: Path) -> TicketRecord:
    raw = CardFile.load(card_file).slot(1)
    assert raw is not None
    return TicketRecord.decode(raw)


def _journal(device: list[str], env: dict[str, str], day: str) -> dict[str, int]:
    """`expo gate journal`: the gate's own counts of a day, in the server's shape; its one gate's row."""
    done = subprocess.run([*EXPO, "gate", "journal", *device[:2], "--day", day], env=env, capture_output=True,
                          text=True, timeout=60, check=True)  # fmt: skip
    [row] = json.loads(done.stdout)["gates"]
    found: dict[str, int] = row
    return found


def test_a_ticket_from_the_counter_through_the_gate_and_the_souvenir_terminal(
    clerk: Clerk, cards: CardRack, tmp_path: Path
) -> None:
    service = clerk.service
    env = {key: value for key, value in service.env.items() if key != "EXPO_DATA_DIR"}
    standard, standard_id = _sold(clerk, cards, "standard")
    pass_3, pass_id = _sold(clerk, cards, "pass_3")
    gate = _device(service, tmp_path / "gate", 1001, kind="gate")

    first_day = GateProcess(gate, env, clock_at="2010-06-01T10:30")
    assert first_day.tap(cards, standard) == f"OPEN gate=1001 ticket={standard_id} type=standard"
    assert first_day.tap(cards, standard) == f"REFUSED gate=1001 code=already_used ticket={standard_id}"
    assert first_day.tap(cards, pass_3) == f"OPEN gate=1001 ticket={pass_id} type=pass_3"
    assert "last sync: stored" in first_day.stop()

    second_day = GateProcess(gate, env, clock_at="2010-06-02T09:15")
    assert second_day.tap(cards, standard) == f"REFUSED gate=1001 code=already_used ticket={standard_id}"
    assert second_day.tap(cards, pass_3) == f"OPEN gate=1001 ticket={pass_id} type=pass_3"
    second_day.stop()

    souvenir = _device(service, tmp_path / "souvenir", 9001, kind="souvenir")
    out = tmp_path / "souvenirs"
    command = [*EXPO, "gate", "souvenir", *souvenir, "--clock-at", "2010-06-02T12:00", "--out-dir", str(out)]
    bridge = cards.insert(pass_3)
    handed = subprocess.run(command, env=env, capture_output=True, text=True, timeout=60, check=False)
    again = subprocess.run(command, env=env, capture_output=True, text=True, timeout=60, check=False)
    cards.remove(bridge)
    assert handed.returncode == 0, handed.stderr
    assert handed.stdout.startswith(f"SOUVENIR gate=9001 ticket={pass_id} type=pass_3 image=")
    with Image.open(handed.stdout.split("image=")[1].strip()) as image:
        assert image.format == "PNG"
    assert again.returncode == 2, again.stderr
    assert again.stdout.strip() == f"REFUSED gate=9001 code=souvenir_taken ticket={pass_id}"

    subprocess.run([*EXPO, "gate", "sync", *souvenir[:2]], env=env, capture_output=True, timeout=60, check=True)
    assert (_record(standard).entries_used, _record(standard).souvenir_collected) == (1, False)
    assert (_record(pass_3).entries_used, _record(pass_3).souvenir_collected) == (2, True)
    for day, admitted, refused in (("2010-06-01", 2, 1), ("2010-06-02", 1, 1)):
        local = _journal(gate, env, day)
        [row] = [row for row in counts(service, day)["gates"] if row["gate_id"] == 1001]
        assert (local["entries"], local["refused"]) == (admitted, refused)
        assert row == local
    [souvenirs] = [row for row in counts(service, "2010-06-02")["gates"] if row["gate_id"] == 9001]
    assert (souvenirs["souvenirs"], souvenirs["refused"]) == (1, 1)
