"""The terminal's side of writing a ticket to an Expo card: tap, relay the platform's script, read back, report.

The terminal holds no card keys. A write (docs/card.md, "Writing a ticket"):
1. tap: SELECT the applet, READ TICKET every slot;
2. the platform answers the card as read with OPEN SESSION (its RND_T), which the terminal sends;
3. the card's answer goes back; the platform answers WRITE TICKET and READ TICKET, which the terminal sends;
4. the write's status word and the slot read back go to the platform, which confirms.
A card taken away mid-write raises `CardRemoved` (simcard.pcsc): the ticket stays writable and the next
write reads the slots again, so an attempt that did land is confirmed instead of written twice.
"""

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from hall_terminals.errors import TerminalError
from simcard.apdu import SW_OK, split_response
from simcard.channel import CardChannel
from simcard.messages import CardInfo
from simcard.session import read_ticket, select
from simcard.state import SLOTS


@dataclass(frozen=True)
class Tap:
    """A card as one tap found it: its FCI, its empty slots and the records of the occupied ones."""

    info: CardInfo
    free_slots: tuple[int, ...]
    records: tuple[tuple[int, bytes], ...]

    @property
    def csn(self) -> str:
        return self.info.csn.hex()

    def start_body(self, *, report_records: bool = True) -> dict[str, Any]:
        """Step 2's body: the CSN, the free slots and (normally) every record read."""
        body: dict[str, Any] = {"csn": self.csn, "free_slots": list(self.free_slots)}
        if report_records:
            body["records"] = [{"slot": slot, "record": record.hex()} for slot, record in self.records]
        return body


class WriteApi(Protocol):
    """The platform's write steps (hall_terminals.client.ServiceClient)."""

    def start_write(self, ticket_id: int, tap: dict[str, Any]) -> dict[str, Any]: ...

    def write_session(self, write_id: int, response: bytes) -> dict[str, Any]: ...

    def write_result(self, write_id: int, *, sw: str, record: str | None) -> dict[str, Any]: ...


@dataclass(frozen=True)
class WriteReceipt:
    """A confirmed write: the ticket is on this card, in this slot."""

    ticket_id: int
    write_id: int
    attempt: int
    csn: str
    slot: int
    record: bytes | None  # as read back (None when an earlier attempt's record was confirmed from the tap)


def tap(channel: CardChannel) -> Tap:
    """SELECT the Expo applet, then READ TICKET every slot (CardError `card_no_applet` on 6A82)."""
    info = select(channel.transmit)
    free: list[int] = []
    records: list[tuple[int, bytes]] = []
    for slot in range(1, SLOTS + 1):
        record = read_ticket(channel.transmit, slot)
        if record is None:
            free.append(slot)
        else:
            records.append((slot, record))
    return Tap(info, tuple(free), tuple(records))


def check_card_for_sale(tapped: Tap, *, province: str, registered_msisdn: str | None, msisdn: str) -> None:
    """Before money is taken: the card is of the clerk's province, has a free slot and is the buyer's card."""
    check_card_takes_ticket(tapped, province=province)
    if registered_msisdn != msisdn:
        raise TerminalError(
            "card_not_registered", f"card {tapped.csn.upper()} is not registered to {msisdn}: register it first"
        )


def check_card_takes_ticket(tapped: Tap, *, province: str) -> None:
    """Before a ticket is bound to a card: the card is of the clerk's province and has a free slot."""
    if tapped.info.province != province:
        raise TerminalError(
            "card_of_other_province",
            f"card {tapped.csn.upper()} is a province {tapped.info.province} card; this hall writes {province} cards",
        )
    if not tapped.free_slots:
        raise TerminalError("card_full", f"card {tapped.csn.upper()} has no free ticket slot")


def write_and_read_back(channel: CardChannel, write_apdu: str, read_apdu: str) -> tuple[str, str | None]:
    """Step 4 on the card: WRITE TICKET, then READ TICKET of its slot -> (write SW, record read back or None)."""
    written = channel.transmit(bytes.fromhex(write_apdu))
    read = channel.transmit(bytes.fromhex(read_apdu))
    data, sw = split_response(read)
    return written[-2:].hex().upper(), data.hex() if sw == SW_OK else None


def write_ticket(api: WriteApi, channel: CardChannel, ticket_id: int, *, tapped: Tap | None = None) -> WriteReceipt:
    """Write one paid ticket to the card in the reader, every step relayed; the confirmed write.

    `tapped` is this tap's reading if the caller has just made it. ServiceError when the platform refuses,
    CardError / PcscError when the card does."""
    tapped = tapped or tap(channel)
    started = api.start_write(ticket_id, tapped.start_body())
    if started["state"] == "confirmed":  # an earlier attempt's record is on the card: confirmed, not rewritten
        return _receipt(started, _record_in(tapped.records, started["slot"]))
    opened = channel.transmit(bytes.fromhex(started["open_session_apdu"]))
    step = api.write_session(started["write_id"], opened)
    sw, record = write_and_read_back(channel, step["write_apdu"], step["read_apdu"])
    confirmed = api.write_result(step["write_id"], sw=sw, record=record)
    return _receipt(confirmed, bytes.fromhex(record) if record else None)


def _record_in(records: Sequence[tuple[int, bytes]], slot: int) -> bytes | None:
    return next((record for at, record in records if at == slot), None)


def _receipt(step: dict[str, Any], record: bytes | None) -> WriteReceipt:
    return WriteReceipt(step["ticket_id"], step["write_id"], step["attempt"], step["csn"], step["slot"], record)
