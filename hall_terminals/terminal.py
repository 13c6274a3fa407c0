"""What a hall terminal does, command by command: sell and write, retry a write, exchange a voucher, void,
reprint, totals, close.

Each operation talks to the service (`ServiceClient`), the card in the reader (`Connect`) and the local
journal, and returns what the clerk is shown. A sale to an Expo card checks the card first (applet,
province, free slot, registered to the buyer), so nothing is sold for a card that cannot take it; once
sold, the sale is journaled and its slip saved before the write, and a write that fails leaves the ticket
writable (`write --ticket`). A voucher is checked offline before it is exchanged (hall_terminals.exchange);
into an Expo card, the card is checked (province, free slot) before the exchange binds the ticket to it.
"""

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Any

from expo.clock import EXPO_TZ, expo_local
from expo.errors import ExpoError
from expo.provinces import normalize_msisdn
from hall_terminals import card as card_steps
from hall_terminals.client import ServiceClient, new_key
from hall_terminals.errors import ServiceError, TerminalError
from hall_terminals.exchange import Into, KeyCache, check_voucher, explained
from hall_terminals.journal import (
    Entry,
    EntryType,
    Journal,
    TypeTotal,
    exchanges_of,
    find_entry,
    open_batch,
    open_batch_no,
    pending_exchange_key,
    sale_of_ticket,
    totals_of,
    upload_entries,
)
from hall_terminals.physical_print import PhysicalTicket, PrintedTicket, print_physical_ticket
from hall_terminals.reader import Connect
from hall_terminals.session import StaffSession
from hall_terminals.slips import Header, render_png, slip_text
from ticketing.signed_codes import CodeKind, normalize

SLIP_DIR = "slips"
TICKET_DIR = "tickets"


def wall_clock() -> datetime:
    return datetime.now(EXPO_TZ)


@dataclass(frozen=True)
class Printed:
    """A slip: its journal line, its text and the PNG saved for it (an exchange: the physical ticket's files)."""

    entry: Entry
    text: str
    png: Path
    ticket: PrintedTicket | None = None


@dataclass(frozen=True)
class SaleOutcome:
    """A sale and, if it reached the card, its write; `write_error` when the ticket is still to be written."""

    sale: Printed
    write: Printed | None = None
    write_error: Exception | None = None


@dataclass(frozen=True)
class ExchangeOutcome:
    """A voucher exchanged (its slip; into physical, the printed ticket) and, into a card, the write or its error."""

    exchange: Printed
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

    def exchange(self, code: str, *, into: Into, out_dir: Path | None = None) -> ExchangeOutcome:
        """Exchange a voucher once, checked offline first: into a physical ticket printed to `out_dir`, or onto
        the Expo card in the reader (of this province, with a free slot, registered to the ticket's number)."""
        code = normalize(code)
        keys = KeyCache(self.data_dir, self.client)
        claim = check_voucher(code, keys=keys, today=expo_local(self.clock()).date())
        if into is Into.PHYSICAL:
            exchanged = self._redeem(code, ticket_id=claim.ticket_id, into=into, csn=None)
            return ExchangeOutcome(self._with_ticket(exchanged, keys=keys, out_dir=out_dir, reprint=False))
        with self.connect() as channel:
            tapped = card_steps.tap(channel)
            card_steps.check_card_takes_ticket(tapped, province=self.session.province_code)
            exchanged = self._redeem(code, ticket_id=claim.ticket_id, into=into, csn=tapped.csn)
            try:
                receipt = card_steps.write_ticket(self.client, channel, claim.ticket_id, tapped=tapped)
            except Exception as error:  # the exchange stands; the clerk retries the write
                return ExchangeOutcome(exchanged, write_error=error)
        return ExchangeOutcome(exchanged, write=self._journal_write(receipt, exchanged.entry))

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

    def reprint(self, serial: int | None, *, out_dir: Path | None = None) -> Printed:
        """The slip of a journal line again (the last one by default), marked as a reprint; an exchange into a
        physical ticket prints the ticket again too (the same code: the gates admit it once)."""
        entry = find_entry(self.journal.entries(), serial)
        text = slip_text(entry, self.header, reprint=True)
        png = render_png(text, self.data_dir / SLIP_DIR / f"{entry.serial:06d}-reprint.png")
        printed = Printed(entry, text, png)
        if entry.type != EntryType.EXCHANGE or entry.into != Into.PHYSICAL:
            return printed
        return self._with_ticket(printed, keys=KeyCache(self.data_dir, self.client), out_dir=out_dir, reprint=True)

    def totals(self) -> tuple[int, dict[EntryType, TypeTotal], int]:
        """The open batch's number, its totals by transaction type and its voucher exchanges (no money moves)."""
        entries = self.journal.entries()
        batch = open_batch(entries)
        return open_batch_no(entries), totals_of(batch), exchanges_of(batch)

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

    def _redeem(self, code: str, *, ticket_id: int, into: Into, csn: str | None) -> Printed:
        """Ask the service to exchange; the key is journaled first, so a command run again after a lost reply
        asks with the same key (and gets the first answer), and a refusal closes it (a retry asks anew)."""
        key = pending_exchange_key(self.journal.entries(), ticket_id=ticket_id, into=into, csn=csn)
        if key is None:
            key = new_key()
            self._journal(EntryType.EXCHANGE_SENT, ticket_id=ticket_id, into=into, csn=csn, idempotency_key=key)
        try:
            reply = self.client.exchange_voucher(code=code, into=into, csn=csn, key=key)
        except ServiceError as error:
            if error.status is not None and 400 <= error.status < 500 and error.code != "request_in_progress":
                self._journal(
                    EntryType.EXCHANGE_REFUSED, ticket_id=ticket_id, into=into, csn=csn, idempotency_key=key,
                    refusal=error.code,
                )  # fmt: skip
            raise explained(error, ticket_id=ticket_id) from None
        physical = reply.get("physical") or {}
        return self._print(
            EntryType.EXCHANGE,
            order_id=reply.get("order_id"),
            ticket_id=reply["ticket_id"],
            msisdn=reply.get("msisdn"),
            ticket_type=reply.get("ticket_type"),
            into=into,
            csn=csn,
            idempotency_key=key,
            physical_code=physical.get("code"),
        )

    def _with_ticket(self, printed: Printed, *, keys: KeyCache, out_dir: Path | None, reprint: bool) -> Printed:
        """The exchange's slip with its physical ticket printed (its code verified first, like any code)."""
        entry, code = printed.entry, printed.entry.physical_code
        claim = keys.verify(code) if code else None
        if code is None or claim is None or claim.kind is not CodeKind.PHYSICAL or claim.ticket_id != entry.ticket_id:
            raise TerminalError(
                "bad_physical_code", f"the service sent no physical-ticket code of ticket {entry.ticket_id}"
            )
        ticket = PhysicalTicket(claim, code, hall=self.header.hall, at=entry.at, reprint=reprint)
        files = print_physical_ticket(ticket, out_dir=out_dir or self.data_dir / TICKET_DIR)
        return Printed(entry, printed.text, printed.png, ticket=files)

    def _journal(self, entry_type: EntryType, **fields: Any) -> Entry:
        return self.journal.append(entry_type, at=self.clock(), clerk=self.session.staff_no, **fields)

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
        entry = self._journal(entry_type, **fields)
        text = slip_text(entry, self.header)
        return Printed(entry, text, render_png(text, self.data_dir / SLIP_DIR / f"{entry.serial:06d}.png"))


def _number(msisdn: str) -> str:
    try:
        return normalize_msisdn(msisdn)
    except ExpoError as error:
        raise TerminalError(error.code, error.detail) from error
