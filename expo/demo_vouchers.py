"""The voucher part of the demo: a web buyer without an Expo card gets a QR exchange voucher by MMS, a hall
exchanges it for a printed physical ticket, another hall is refused the same voucher, and a park gate scans
the printed ticket offline.

The halls run the clerk's terminal program (`hall_terminals.terminal.HallTerminal`) against the service; the
gate is `gates.paper.PaperGate` over its own journal, synced like any gate.
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
from gates.paper import PaperGate
from gates.sync import GateSync
from hall_terminals.client import ServiceClient
from hall_terminals.errors import TerminalError
from hall_terminals.exchange import Into, voucher_text
from hall_terminals.session import StaffSession
from hall_terminals.terminal import HallTerminal
from simcard.channel import CardChannel

GATE_ID = 1002
ENTRANCE = "L1"


class VoucherDemo:
    """Drives the voucher's way from the MMS outbox through two halls to a gate."""

    def __init__(self, http: httpx.Client, *, admin: dict[str, str], folder: Path, start: datetime) -> None:
        self.http = http
        self.admin = admin
        self.folder = folder / "vouchers"
        self.folder.mkdir(parents=True, exist_ok=True)
        self.start = start

    def run(self, *, msisdn: str, halls: list[tuple[str, str, str]]) -> None:
        """The voucher texted to `msisdn`: exchanged at the first hall, tried again at the second, then at a gate.

        `halls` are (device token, staff number, password) of two hall clerks."""
        print("\nQR exchange voucher (the web buyer has no Expo card):")
        picture = self._voucher_from_outbox(msisdn)
        first, second = (self._terminal(*hall) for hall in halls)
        exchanged = first.exchange(voucher_text(image=picture), into=Into.PHYSICAL, out_dir=self.folder)
        ticket = exchanged.exchange.ticket
        assert ticket is not None
        what = first.session.hall + " reads the picture, checks it offline, exchanges it"
        printed = f"physical ticket {exchanged.exchange.entry.ticket_id}: {ticket.png.name}, {ticket.pdf.name}"
        print(f"  {what:<58} -> {printed}")
        try:
            second.exchange(voucher_text(image=picture), into=Into.PHYSICAL, out_dir=self.folder)
        except TerminalError as refused:
            print(
                f"  {second.session.hall + ' tries the same voucher':<58} -> REFUSED {refused.code}: {refused.message}"
            )
        with self._gate() as (gate, sync):
            print(f"  {'gate ' + str(GATE_ID) + ' at ' + ENTRANCE + ' syncs':<58} -> {sync.sync_once().summary()}")
            for what in ("the gate scans the printed ticket", "the same paper again"):
                result = gate.scan_picture(ticket.png)
                outcome = f"OPEN ticket {result.ticket_id}" if result.opens else f"REFUSED {result.code}"
                print(f"  {what:<58} -> {outcome}")
            print(f"  {'the gate uploads its journal':<58} -> {sync.sync_once().summary()}")

    def _voucher_from_outbox(self, msisdn: str) -> Path:
        """The buyer's MMS (the outbox stands in for the MMS centre): its QR picture saved as the phone would."""
        reply = self.http.get("/v1/mms-outbox", params={"msisdn": msisdn}, headers=self.admin)
        reply.raise_for_status()
        message: dict[str, Any] = reply.json()[0]
        image = self.http.get(f"/v1/mms-outbox/{message['id']}/image", headers=self.admin)
        image.raise_for_status()
        picture = self.folder / f"mms-{message['id']}.png"
        picture.write_bytes(image.content)
        print(f"  {'MMS to ' + msisdn + ': ' + message['subject']:<58} -> picture {picture.name}")
        return picture

    def _terminal(self, device_token: str, staff_no: str, password: str) -> HallTerminal:
        base = str(self.http.base_url)
        with ServiceClient(base) as login:
            reply = login.login(device_token=device_token, staff_no=staff_no, password=password)
        session = StaffSession(
            service=base, token=reply["token"], staff_no=reply["staff_no"], name=reply["name"],
            hall=reply["hall"] or "", province_code=reply["province_code"], expires_at=reply["expires_at"],
        )  # fmt: skip
        clock = FixedClock(self.start + timedelta(hours=1))
        return HallTerminal(
            data_dir=self.folder / f"terminal-{staff_no}",
            session=session,
            client=ServiceClient(base, session.token),
            connect=_no_reader,
            clock=clock.now,
        )

    @contextmanager
    def _gate(self) -> Iterator[tuple[PaperGate, GateSync]]:
        reply = self.http.post(
            "/v1/gates", json={"gate_id": GATE_ID, "entrance": ENTRANCE, "kind": "gate"}, headers=self.admin
        )
        reply.raise_for_status()
        journal = GateJournal(self.folder / f"gate-{GATE_ID}.db")
        client = GateClient(str(self.http.base_url), reply.json()["token"])
        try:
            clock = FixedClock(self.start + timedelta(hours=2))
            yield (
                PaperGate(gate_id=GATE_ID, journal=journal, clock=clock),
                GateSync(gate_id=GATE_ID, journal=journal, client=client),
            )
        finally:
            client.close()
            journal.close()


@contextmanager
def _no_reader() -> Iterator[CardChannel]:
    raise TerminalError("no_reader", "the demo's halls exchange into physical tickets: no card reader")
    yield  # pragma: no cover
