"""The gates part of the demo: tickets written to Expo cards at the counter, then a park gate, a handheld and the
souvenir terminal deciding offline on the cards, and their journals synced to the service.

The cards are emulated in this process (the same applet code pcscd would reach through vpcd); the gate,
the handheld and the souvenir terminal are `gates.validator.Validator`s with their own SQLite journals.
"""

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import httpx

from expo.clock import FixedClock
from gates.client import GateClient
from gates.journal import GateJournal
from gates.sam import Sam
from gates.souvenir_ticket import save_souvenir_ticket
from gates.sync import GateSync
from gates.validator import TapResult, Validator
from hall_terminals import card as card_steps
from hall_terminals.client import ServiceClient, new_key
from simcard.applet import CardApplet
from simcard.channel import AppletChannel
from simcard.keys import KeySet
from simcard.state import CardState

ENTRANCE = "L1"


class GateDemo:
    """Drives a hall clerk's card writes over HTTP, then the devices of entrance L1 on the written cards."""

    def __init__(
        self, http: httpx.Client, *, admin: dict[str, str], clerk_token: str, root: KeySet, folder: Path
    ) -> None:
        self.http = http
        self.admin = admin
        self.counter = ServiceClient(str(http.base_url), clerk_token)
        self.sam = Sam.from_root(root)
        self.folder = folder

    def run(self, *, cards: list[CardState], numbers: list[str], start: datetime) -> None:
        """Write four tickets, tap them at the gate, void one, hand out a souvenir, sync, print the counts."""
        print("\nExpo cards at the counter, then entrance L1 (offline decisions, synced afterwards):")
        standard, pass_3, concession, voided = (
            self._ticket_on_card(state, msisdn, kind)
            for state, msisdn, kind in zip(
                cards, numbers, ("standard", "pass_3", "standard_concession", "standard"), strict=True
            )
        )
        clock = FixedClock(start)
        with self._device(1001, "gate", clock) as (gate, sync):
            self._tap(gate, standard, "the standard ticket")
            self._tap(gate, standard, "the same card again")
            self._tap(gate, concession, "a concession ticket (the gate signals: check ID)")
            order = self.counter.void(voided[2], key=new_key())
            print(f"  {'void order ' + str(order['id']) + '; the gate pulls the revocation list':<58}"
                  f" -> version {sync.sync_once().revocation_version}")  # fmt: skip
            self._tap(gate, voided, "the voided ticket's card")
            clock.set(start + timedelta(days=1))
            self._tap(gate, pass_3, "next day: the 3-visit pass")
            self._tap(gate, standard, "next day: the standard ticket")
            print(f"  {'the gate uploads its journal':<58} -> {sync.sync_once().summary()}")
        with self._device(9001, "souvenir", clock) as (souvenir, sync):
            for what in ("souvenir terminal: the pass", "souvenir terminal: the pass again"):
                self._tap(souvenir, pass_3, what, souvenir=True)
            sync.sync_once()
        self._print_counts(start, "the gate's first day")

    def _ticket_on_card(self, state: CardState, msisdn: str, kind: str) -> tuple[CardApplet, int, int]:
        """Register the card to the number, sell the ticket at the counter and write it: (card, ticket, order)."""
        applet = CardApplet(state)
        self.counter.register_card(csn=state.csn.hex(), msisdn=msisdn)
        sale: dict[str, Any] = {"msisdn": msisdn, "ticket_type": kind, "carrier": "expo_card"}
        sale["payment"] = {"method": "cash"}
        if "concession" in kind:
            sale["concession"] = {"category": "student", "id_last4": "123X"}
        order = self.counter.sell(sale, key=new_key())
        ticket_id: int = order["tickets"][0]["id"]
        applet.power_on()
        written = card_steps.write_ticket(self.counter, AppletChannel(applet), ticket_id)
        applet.power_off()
        print(f"  {kind + ' ticket ' + str(ticket_id) + ' sold and written':<58}"
              f" -> card {written.csn.upper()} slot {written.slot}")  # fmt: skip
        return applet, ticket_id, int(order["id"])

    @contextmanager
    def _device(self, gate_id: int, kind: str, clock: FixedClock) -> Iterator[tuple[Validator, GateSync]]:
        """A device of entrance L1, registered with the service: its validator and its sync."""
        reply = self.http.post("/v1/gates", json={"gate_id": gate_id, "entrance": ENTRANCE, "kind": kind},
                               headers=self.admin)  # fmt: skip
        reply.raise_for_status()
        journal = GateJournal(self.folder / f"{kind}-{gate_id}.db")
        client = GateClient(str(self.http.base_url), reply.json()["token"])
        try:
            yield (
                Validator(gate_id=gate_id, entrance=ENTRANCE, sam=self.sam, journal=journal, clock=clock),
                GateSync(gate_id=gate_id, journal=journal, client=client),
            )
        finally:
            client.close()
            journal.close()

    def _tap(self, device: Validator, card: tuple[CardApplet, int, int], what: str, *, souvenir: bool = False) -> None:
        applet = card[0]
        applet.power_on()
        try:
            channel = AppletChannel(applet)
            result = device.souvenir(channel) if souvenir else device.entry(channel)
        finally:
            applet.power_off()
        print(f"  {what:<58} -> {self._outcome(device, result, souvenir=souvenir)}")

    def _outcome(self, device: Validator, result: TapResult, *, souvenir: bool) -> str:
        if not result.opens and not (souvenir and result.code == "ok"):
            return f"REFUSED {result.code}"
        if souvenir:
            image = save_souvenir_ticket(result, out_dir=self.folder, gate_id=device.gate_id, entrance=ENTRANCE)
            return f"souvenir ticket {image}"
        used = f" (entry {result.record.entries_used} of {result.record.entries_allowed})" if result.record else ""
        return f"OPEN ticket {result.ticket_id}{used}" + (", check ID" if result.check_id else "")

    def _print_counts(self, start: datetime, what: str) -> None:
        day = start.date().isoformat()
        reply = self.http.get("/v1/gate-entries/counts", params={"day": day}, headers=self.admin)
        reply.raise_for_status()
        counts = reply.json()
        gates = ", ".join(f"gate {row['gate_id']}: {row['entries']} in, {row['refused']} refused"
                          for row in counts["gates"])  # fmt: skip
        print(f"  {'the service counts ' + what + ' (' + day + ')':<58} -> {counts['total']} entries; {gates}")
