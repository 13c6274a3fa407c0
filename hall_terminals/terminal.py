"""What a hall terminal does, command by command: sell and write, retry a write, void, reprint, totals, close.

Each operation talks to the service (`ServiceClient`), the card in the reader (`Connect`) and the local
journal, and returns what the clerk is shown. A sale to an Expo card checks the card first (applet,
province, free slot, registered to the buyer), so nothing is sold for a card that cannot take it; once
sold, the sale is journaled and its slip saved before the write, and a write that fails leaves the ticket
writable (`write --ticket`).
"""

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Any

from expo.clock import EXPO_TZ
from expo.errors import ExpoError
from expo.provinces import normalize_msisdn
from hall_terminals import card as card_steps
from hall_terminals.client import ServiceClient, new_key
from hall_terminals.errors import TerminalError
from hall_terminals.journal import (
    Entry,
    EntryType,
    Journal,
    TypeTotal,
    find_entry,
    open_batch,
    open_batch_no,
    sale_of_ticket,
    totals_of,
    upload_entries,
)
from hall_terminals.reader import Connect
from hall_terminals.session import StaffSession
from hall_terminals.slips import Header, render_png, slip_text

SLIP_DIR = "slips"


def wall_clock() -> datetime:
    return datetime.now(EXPO_TZ)


@dataclass(frozen=True)
class Printed:
    """A slip: its journal line, its text and the PNG saved for it."""

    entry: Entry
    text: str
    png: Path


@dataclass(frozen=True)
class SaleOutcome:
    """A sale and, if it reached the card, its write; `write_error` when the ticket is still to be written."""

    sale: Printed
    write: Printed | None = None
    write_error: Exception | None = None


@dataclass(frozen=True)
class DayClose:
    """The platform's comparison of the closed batch (the reply of POST /v1/terminal-batches)."""

    batch_no: int
    reply: dict[str, Any]


class HallTerminal:
    """One terminal: its data folder (journal, slips), the logged-in clerk, the service and the card reader."""

    def __init__(
        self,
        *,
        data_dir: Path,
        session: StaffSession,
        client: ServiceClient,
        connect: Connect,
        clock: Callable[[], datetime] = wall_clock,
    ) -> None:
        self.data_dir = data_dir
        self.session = session
        self.client = client
        self.connect = connect
        self.clock = clock
        self.journal = Journal(data_dir)
        self.header = Header(hall=session.hall, clerk=session.staff_no)

    def sell(self, *, msisdn: str, ticket_type: str, visit_day: date | None, approval_code: str | None) -> SaleOutcome:
        """Sell one ticket to the buyer's Expo card in the reader (cash, or bank card with its approval code)."""
        number = _number(msisdn)
        with self.connect() as channel:
            tapped = card_steps.tap(channel)
            registered = self.client.card(tapped.csn).get("msisdn")
            card_steps.check_card_for_sale(
                tapped, province=self.session.province_code, registered_msisdn=registered, msisdn=number
            )
            payment = {"method": "bank_card", "approval_code": approval_code} if approval_code else {"method": "cash"}
            body: dict[str, Any] = {
                "msisdn": number, "ticket_type": ticket_type, "carrier": "expo_card", "payment": payment,
            }  # fmt: skip
            if visit_day is not None:
                body["visit_day"] = visit_day.isoformat()
            order = self.client.sell(body, key=new_key())
            ticket = order["tickets"][0]
            sale = self._print(
                EntryType.SALE,
                order_id=order["id"],
                ticket_id=ticket["id"],
                amount_fen=order["amount_fen"],
                payment=payment["method"],
                approval_code=approval_code,
                msisdn=number,
                ticket_type=order["ticket_type"],
                visit_day=order["visit_day"],
            )
            try:
                receipt = card_steps.write_ticket(self.client, channel, ticket["id"], tapped=tapped)
            except Exception as error:  # the sale stands; the clerk retries the write
                return SaleOutcome(sale, write_error=error)
        return SaleOutcome(sale, write=self._journal_write(receipt, sale.entry))

    def write(self, ticket_id: int) -> Printed:
        """Write (again) a paid ticket to the card in the reader; a write that landed earlier is confirmed once."""
        with self.connect() as channel:
            receipt = card_steps.write_ticket(self.client, channel, ticket_id)
        return self._journal_write(receipt, sale_of_ticket(self.journal.entries(), ticket_id))

    def register_card(self, msisdn: str) -> dict[str, Any]:
        """A SIM swap: the card in the reader becomes the number's Expo card."""
        with self.connect() as channel:
            tapped = card_steps.tap(channel)
        return self.client.register_card(csn=tapped.csn, msisdn=_number(msisdn))

    def void(self, order_id: int) -> Printed:
        """Void a sale of today before use; the money goes back and the void is journaled."""
        order = self.client.void(order_id, key=new_key())
        ticket = order["tickets"][0] if order["tickets"] else {}
        return self._print(
            EntryType.VOID,
            order_id=order["id"],
            ticket_id=ticket.get("id"),
            amount_fen=order["amount_fen"],
            msisdn=order["msisdn"],
            ticket_type=order["ticket_type"],
        )

    def reprint(self, serial: int | None) -> Printed:
        """The slip of a journal line again (the last one by default), marked as a reprint."""
        entry = find_entry(self.journal.entries(), serial)
        text = slip_text(entry, self.header, reprint=True)
        png = render_png(text, self.data_dir / SLIP_DIR / f"{entry.serial:06d}-reprint.png")
        return Printed(entry, text, png)

    def totals(self) -> tuple[int, dict[EntryType, TypeTotal]]:
        """The open batch's number and its totals by transaction type (since the last day close)."""
        entries = self.journal.entries()
        return open_batch_no(entries), totals_of(open_batch(entries))

    def close_day(self) -> DayClose:
        """Upload the open batch; the platform compares it with its records and the batch is closed here too."""
        entries = self.journal.entries()
        number = open_batch_no(entries)
        reply = self.client.close_batch(batch_no=number, entries=upload_entries(open_batch(entries)))
        self.journal.append(
            EntryType.CLOSE,
            at=self.clock(),
            clerk=self.session.staff_no,
            matched=reply["matched"],
            discrepancies=len(reply["discrepancies"]),
        )
        return DayClose(number, reply)

    def _journal_write(self, receipt: card_steps.WriteReceipt, sale: Entry | None) -> Printed:
        return self._print(
            EntryType.WRITE,
            order_id=sale.order_id if sale else None,
            ticket_id=receipt.ticket_id,
            msisdn=sale.msisdn if sale else None,
            csn=receipt.csn,
            slot=receipt.slot,
        )

    def _print(self, entry_type: EntryType, **fields: Any) -> Printed:
        entry = self.journal.append(entry_type, at=self.clock(), clerk=self.session.staff_no, **fields)
        text = slip_text(entry, self.header)
        return Printed(entry, text, render_png(text, self.data_dir / SLIP_DIR / f"{entry.serial:06d}.png"))


def _number(msisdn: str) -> str:
    try:
        return normalize_msisdn(msisdn)
    except ExpoError as error:
        raise TerminalError(error.code, error.detail) from error
