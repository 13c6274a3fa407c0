"""Fixtures of the gates' end-to-end tests: registered gate devices, their SAM, and tickets on cards.

Tickets are sold and written to cards the platform's way (a hall clerk's sale, the three write steps of
`hall_terminals.card`); the cards are in process here, or in a vpcd reader for the PC/SC tests.
"""

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from hall_terminals import card as card_steps
from hall_terminals.client import ServiceClient, new_key
from simcard.applet import CardApplet
from simcard.channel import AppletChannel
from simcard.store import CardFile
from tests.e2e.hall import HallService
from tests.e2e.server import run_expo


def admin(service: HallService) -> dict[str, str]:
    return {"Authorization": "Bearer " + service.secrets["tokens"]["admin"]}


def register_gate(service: HallService, gate_id: int, entrance: str, *, kind: str = "gate") -> str:
    """A new gate device (`POST /v1/gates`, admin): its token, handed out once."""
    body = {"gate_id": gate_id, "entrance": entrance, "kind": kind}
    reply = httpx.post(service.base + "/v1/gates", json=body, headers=admin(service))
    assert reply.status_code == 201, reply.text
    token: str = reply.json()["token"]
    return token


def sam_file(service: HallService) -> Path:
    """The gates' SAM key file (`expo card keys export-sam`): the VALIDATE root key only."""
    path = service.folder / "sam-keys.json"
    if not path.exists():
        run_expo(["card", "keys", "export-sam", "--root", str(service.folder / "root-keys.json"), "--out", str(path)],
                 service.env)  # fmt: skip
    return path


def counts(service: HallService, day: str) -> dict[str, Any]:
    """The server's entry counts of a day, per entrance and per gate."""
    reply = httpx.get(service.base + "/v1/gate-entries/counts", params={"day": day}, headers=admin(service))
    assert reply.status_code == 200, reply.text
    found: dict[str, Any] = reply.json()
    return found


def conflicts(service: HallService, day: str) -> list[dict[str, Any]]:
    """The server's conflict report of a day."""
    reply = httpx.get(service.base + "/v1/gate-entries/conflicts", params={"day": day}, headers=admin(service))
    assert reply.status_code == 200, reply.text
    found: list[dict[str, Any]] = reply.json()["conflicts"]
    return found


@dataclass
class Counter:
    """A hall clerk (SH-C001) at a terminal of the Xujiahui hall, selling and writing tickets in process."""

    service: HallService
    client: ServiceClient

    @classmethod
    def open(cls, service: HallService) -> "Counter":
        client = ServiceClient(service.base)
        session = client.login(
            device_token=service.secrets["tokens"]["sh_hall"],
            staff_no="SH-C001",
            password=service.secrets["passwords"]["SH-C001"],
        )
        client.close()
        return cls(service, ServiceClient(service.base, session["token"]))

    def new_cards(self, count: int) -> list[Path]:
        """New Shanghai cards personalised by the platform (`expo card issue`): their files."""
        out = self.service.folder / f"cards-{new_key()[:8]}"
        run_expo(["card", "issue", "--province", "31", "--count", str(count), "--out-dir", str(out)], self.service.env)
        return sorted(out.iterdir())

    def ticket_on_card(self, card_file: Path, ticket_type: str) -> tuple[CardApplet, int]:
        """The card registered to a new number, a paid hall sale and the ticket written to it: (card, ticket id)."""
        applet = CardApplet(CardFile.load(card_file))
        msisdn = self.service.number()
        self.client.register_card(csn=applet.state.csn.hex(), msisdn=msisdn)
        sale: dict[str, Any] = {"msisdn": msisdn, "ticket_type": ticket_type, "carrier": "expo_card"}
        sale["payment"] = {"method": "cash"}
        if "concession" in ticket_type:
            sale["concession"] = {"category": "student", "id_last4": "123X"}
        ticket_id: int = self.client.sell(sale, key=new_key())["tickets"][0]["id"]
        applet.power_on()
        card_steps.write_ticket(self.client, AppletChannel(applet), ticket_id)
        applet.power_off()
        return applet, ticket_id


def journal_json(text: str) -> dict[str, Any]:
    """`expo gate journal`'s one JSON line."""
    found: dict[str, Any] = json.loads(text)
    return found
