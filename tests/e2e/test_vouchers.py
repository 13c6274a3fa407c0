"""QR exchange vouchers end to end: a web sale without a card, the voucher MMS in the outbox, its picture read by
`expo terminal exchange` at a hall, the printed physical ticket scanned by `expo gate scan`; the same voucher
written to an Expo card through real pcscd + vpcd instead and admitted by the handheld; and a voided order's
physical ticket refused by a gate that synced the revocation list. Every program is its own process talking
to a real `expo serve`, as at the Expo.
"""

import subprocess
from pathlib import Path
from typing import Any

import httpx
import pytest

from simcard.record import TicketRecord
from simcard.store import CardFile
from tests.e2e.gates import admin, counts, register_gate, sam_file
from tests.e2e.hall import Clerk, HallService, clerk, hall_service, registered_card
from tests.e2e.pcsc import CardRack, skip_without_pyscard
from tests.e2e.server import EXPO
from ticketing.qr import read_qr
from ticketing.signed_codes import CodeKind, verify_code
from ticketing.signing_keys import public_keys_from

skip_without_pyscard()
from simcard import pcsc  # noqa: E402  # after the check: pyscard is optional

__all__ = ["clerk", "hall_service"]  # fixtures used here

CLOCK = "2010-06-01T10:30"
APPROVED_CARD = "6222020000000001"


def _web(service: HallService) -> dict[str, str]:
    return {"Authorization": "Bearer " + service.secrets["tokens"]["web"]}


def _sell_voucher(service: HallService, msisdn: str, ticket_type: str = "standard") -> dict[str, Any]:
    """A web sale paid by online banking, its ticket on a QR voucher: the order."""
    body = {
        "msisdn": msisdn,
        "ticket_type": ticket_type,
        "carrier": "qr_voucher",
        "payment": {"method": "online_banking", "account": APPROVED_CARD},
    }
    headers = {**_web(service), "Idempotency-Key": f"web-{msisdn}"}
    reply = httpx.post(service.base + "/v1/orders", json=body, headers=headers, timeout=30)
    assert reply.status_code == 201, reply.text
    order: dict[str, Any] = reply.json()
    return order


def _voucher_picture(service: HallService, msisdn: str, folder: Path) -> Path:
    """The MMS the platform sent the buyer (the outbox is the gateway by default): its picture saved to a file."""
    reply = httpx.get(service.base + "/v1/mms-outbox", params={"msisdn": msisdn}, headers=admin(service))
    assert reply.status_code == 200, reply.text
    [message] = reply.json()
    assert "exchange" in message["text"].lower() or "换票" in message["text"]
    image = httpx.get(f"{service.base}/v1/mms-outbox/{message['id']}/image", headers=admin(service))
    assert image.status_code == 200
    assert image.headers["content-type"].startswith("image/png")
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"voucher-{msisdn}.png"
    path.write_bytes(image.content)
    return path


def _public_keys(service: HallService) -> Any:
    reply = httpx.get(service.base + "/v1/ticket-keys")
    assert reply.status_code == 200, reply.text
    return public_keys_from(reply.json())


class Gate:
    """A registered gate device at entrance L1 with its own data folder; each command is its own process."""

    def __init__(self, service: HallService, folder: Path, gate_id: int, *, kind: str = "gate") -> None:
        token = register_gate(service, gate_id, "L1", kind=kind)
        self.gate_id = gate_id
        self.device = ["--data-dir", str(folder), "--gate", str(gate_id), "--entrance", "L1", "--service",
                       service.base, "--token", token, "--sam", str(sam_file(service)),
                       "--reader", pcsc.vpcd_reader(0)]  # fmt: skip
        self.env = {key: value for key, value in service.env.items() if key != "EXPO_DATA_DIR"}

    def run(self, command: str, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([*EXPO, "gate", command, *self.device, *args], env=self.env, capture_output=True,
                              text=True, timeout=60, check=False)  # fmt: skip

    def sync(self) -> str:
        done = self.run("sync")
        assert done.returncode == 0, done.stderr
        return done.stdout

    def scan(self, picture: Path) -> str:
        done = self.run("scan", "--clock-at", CLOCK, "--image", str(picture))
        assert done.returncode in (0, 2), done.stderr
        return done.stdout.strip()


def _exchange(clerk: Clerk, *args: str) -> subprocess.CompletedProcess[str]:
    return clerk.run("--clock-at", CLOCK, "exchange", *args)


def _printed_ticket(out: str) -> Path:
    [line] = [line for line in out.splitlines() if line.startswith("ticket image:")]
    return Path(line.split(":", 1)[1].strip())


def test_web_voucher_to_physical_ticket_to_the_gate(clerk: Clerk, tmp_path: Path) -> None:
    service = clerk.service
    msisdn = service.number()
    order = _sell_voucher(service, msisdn)
    [ticket] = order["tickets"]
    picture = _voucher_picture(service, msisdn, tmp_path / "phone")
    voucher = verify_code(read_qr(picture), _public_keys(service))
    assert (voucher.kind, voucher.ticket_id) == (CodeKind.VOUCHER, ticket["id"])

    exchanged = _exchange(clerk, "--image", str(picture), "--out", str(tmp_path / "printed"))
    assert exchanged.returncode == 0, exchanged.stderr
    assert f"EXCHANGED ticket={ticket['id']} into=physical" in exchanged.stdout
    printed = _printed_ticket(exchanged.stdout)
    assert printed.with_suffix(".pdf").read_bytes().startswith(b"%PDF")
    physical = verify_code(read_qr(printed), _public_keys(service))
    assert (physical.kind, physical.ticket_id) == (CodeKind.PHYSICAL, ticket["id"])

    again = _exchange(clerk, "--image", str(picture))
    assert again.returncode == 1
    assert again.stderr.startswith("error already_exchanged:"), again.stderr
    assert "Shanghai Xujiahui hall" in again.stderr

    gate = Gate(service, tmp_path / "gate", 2001)
    gate.sync()  # the gate's first sync brings the platform's public keys and the revocation list
    assert gate.scan(printed) == f"OPEN gate=2001 ticket={ticket['id']} type=standard"
    assert gate.scan(printed) == f"REFUSED gate=2001 code=already_used ticket={ticket['id']}"
    assert gate.scan(picture).startswith("REFUSED gate=2001 code=voucher_not_ticket")
    assert "stored" in gate.sync()
    [row] = [row for row in counts(service, "2010-06-01")["gates"] if row["gate_id"] == 2001]
    assert (row["entries"], row["refused"]) == (1, 2)
    reply = httpx.get(f"{service.base}/v1/orders/{order['id']}", headers=_web(service))
    assert reply.json()["tickets"][0]["status"] == "used"


def test_web_voucher_written_to_an_expo_card_and_admitted(clerk: Clerk, cards: CardRack, tmp_path: Path) -> None:
    service = clerk.service
    card_file, msisdn = registered_card(clerk, cards)  # the buyer swapped the SIM at the hall: the card is in
    order = _sell_voucher(service, msisdn, "pass_3")
    [ticket] = order["tickets"]
    picture = _voucher_picture(service, msisdn, tmp_path / "phone")

    exchanged = _exchange(clerk, "--image", str(picture), "--into", "card")
    assert exchanged.returncode == 0, exchanged.stderr
    assert f"EXCHANGED ticket={ticket['id']} into=card" in exchanged.stdout
    assert f"ticket {ticket['id']} written to card" in exchanged.stdout
    raw = CardFile.load(card_file).slot(1)
    assert raw is not None
    assert TicketRecord.decode(raw).ticket_id == ticket["id"]
    cards.clear()

    handheld = Gate(service, tmp_path / "handheld", 3001, kind="handheld")
    handheld.sync()
    bridge = cards.insert(card_file)
    checked = handheld.run("check", "--clock-at", CLOCK)
    cards.remove(bridge)
    assert checked.returncode == 0, checked.stderr
    assert checked.stdout.strip() == f"OPEN gate=3001 ticket={ticket['id']} type=pass_3"


def test_a_voided_orders_physical_ticket_is_refused_at_a_synced_gate(clerk: Clerk, tmp_path: Path) -> None:
    service = clerk.service
    msisdn = service.number()
    order = _sell_voucher(service, msisdn)
    picture = _voucher_picture(service, msisdn, tmp_path / "phone")
    exchanged = _exchange(clerk, "--image", str(picture), "--out", str(tmp_path / "printed"))
    assert exchanged.returncode == 0, exchanged.stderr
    printed = _printed_ticket(exchanged.stdout)

    headers = {**_web(service), "Idempotency-Key": f"void-{order['id']}"}
    voided = httpx.post(f"{service.base}/v1/orders/{order['id']}/void", headers=headers, timeout=30)
    assert voided.status_code == 200, voided.text

    gate = Gate(service, tmp_path / "gate", 2002)
    gate.sync()
    ticket_id = order["tickets"][0]["id"]
    assert gate.scan(printed) == f"REFUSED gate=2002 code=revoked ticket={ticket_id}"
    reply = httpx.get(f"{service.base}/v1/orders/{order['id']}/voucher", headers=_web(service))
    assert (reply.status_code, reply.json()["code"]) == (409, "voucher_revoked")


@pytest.mark.parametrize("bad", ["truncated", "forged"])
def test_a_bad_typed_code_is_refused_before_the_service_is_asked(clerk: Clerk, bad: str) -> None:
    service = clerk.service
    msisdn = service.number()
    _sell_voucher(service, msisdn)
    reply = httpx.get(service.base + "/v1/mms-outbox", params={"msisdn": msisdn}, headers=admin(service))
    message_id = reply.json()[0]["id"]
    picture = httpx.get(f"{service.base}/v1/mms-outbox/{message_id}/image", headers=admin(service)).content
    code = read_qr(picture)
    typed = code[:-5] if bad == "truncated" else code[:40] + ("A" if code[40] != "A" else "B") + code[41:]
    done = _exchange(clerk, "--code", typed)
    assert done.returncode == 1
    expected = "code_malformed" if bad == "truncated" else "code_forged"
    assert done.stderr.startswith(f"error {expected}:"), done.stderr
