"""The hall terminal end to end: `expo terminal` processes, a real `expo serve`, real pcscd + vpcd, emulated cards
(`expo card insert`) issued by the platform; the terminal reaches the card only through pyscard."""

import re
import stat
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from PIL import Image

from hall_terminals.client import ServiceClient
from hall_terminals.session import load_session
from hall_terminals.terminal import HallTerminal
from simcard.channel import CardChannel
from simcard.keys import KEY_VALIDATE, sam_card_key
from simcard.messages import INS_OPEN_SESSION, INS_WRITE_TICKET
from simcard.record import TicketRecord, mac_is_valid
from simcard.session import read_ticket, select
from simcard.store import CardFile
from tests.e2e.hall import Clerk, HallService, clerk, filled, hall_service, registered_card, with_aid
from tests.e2e.pcsc import CardRack, skip_without_pyscard

skip_without_pyscard()
from simcard import pcsc  # noqa: E402  # after the check: pyscard is optional

__all__ = ["clerk", "hall_service"]  # fixtures used here


def _field(out: str, name: str) -> int:
    found = re.search(rf"^{name}: (\d+)", out, re.MULTILINE)
    assert found, out
    return int(found.group(1))


def _read_back(hall: HallService, slot: int) -> TicketRecord:
    """The card in the reader as a gate reads it through pyscard: the record, its platform MAC checked."""
    with pcsc.wait_for_card(pcsc.vpcd_reader(0), 5) as card:
        info = select(card.transmit)
        raw = read_ticket(card.transmit, slot)
    assert raw is not None
    assert mac_is_valid(raw, sam_card_key(hall.root, info.csn, KEY_VALIDATE), info.csn)
    return TicketRecord.decode(raw)


def test_a_day_at_the_counter(clerk: Clerk, cards: CardRack) -> None:
    card_file, msisdn = registered_card(clerk, cards)
    assert stat.S_IMODE((clerk.data_dir / "session.json").stat().st_mode) == 0o600
    assert "2010-10-03" in clerk.ok("stock")

    sold = clerk.ok("sell", "--msisdn", msisdn, "--type", "pass_3", "--card-approval", "A1B2C3")
    assert "TICKET SALE" in sold
    assert "PAID: BANK CARD (APPROVAL A1B2C3)" in sold
    assert "PHONE: 134****0" in sold
    order_id, ticket_id = _field(sold, "ORDER"), _field(sold, "TICKET")
    assert f"ticket {ticket_id} written to card {card_file.stem.upper()} slot 1" in sold
    png = Path(sold.split("slip image: ")[1].split()[0])
    with Image.open(png) as image:
        assert image.format == "PNG"
        assert image.height > 200
    record = _read_back(clerk.service, 1)
    assert (record.ticket_id, record.ticket_type, record.entries_allowed, record.is_fresh()) == (ticket_id, 6, 3, True)

    voided = clerk.ok("void", "--order", str(order_id))
    assert "VOID" in voided
    assert "RETURNED: CNY 400.00" in voided
    last = clerk.ok("reprint")
    assert "*** REPRINT ***" in last
    assert "RETURNED: CNY 400.00" in last
    first = clerk.ok("reprint", "--serial", "1")
    assert "*** REPRINT ***" in first
    assert "TICKET SALE" in first

    totals = clerk.ok("totals")
    for line in (r"SALE\s+1\s+CNY\s+400.00", r"WRITE\s+1\s", r"VOID\s+1\s+CNY\s+400.00", r"NET\s+CNY\s+0.00"):
        assert re.search(line, totals), totals
    closed = clerk.ok("close-day")
    assert "batch 000001 closed: matched" in closed
    assert "terminal: sale 1 / 400.00, void 1 / 400.00, write 1 / 0.00" in closed
    assert "BATCH 000002 (open)" in clerk.ok("totals")
    assert "batch 000002 closed: matched" in clerk.ok("close-day")  # an empty day matches an empty day


def _pulling(channel: CardChannel, *, after_ins: int, pull: Callable[[], None]) -> CardChannel:
    """The card, taken out of the reader right after it answered the command `after_ins`."""

    class Pulled:
        def transmit(self, apdu: bytes) -> bytes:
            answer = channel.transmit(apdu)
            if apdu[1] == after_ins:
                pull()
            return answer

    return Pulled()


@pytest.mark.parametrize("after_ins", [INS_OPEN_SESSION, INS_WRITE_TICKET], ids=["before-write", "after-write"])
def test_a_card_pulled_mid_write_is_written_once_by_the_retry(clerk: Clerk, cards: CardRack, after_ins: int) -> None:
    card_file, msisdn = registered_card(clerk, cards)
    [bridge] = cards.bridges

    @contextmanager
    def connect() -> Iterator[CardChannel]:
        with pcsc.wait_for_card(pcsc.vpcd_reader(0), 5) as card:
            yield _pulling(card, after_ins=after_ins, pull=lambda: cards.kill(bridge))

    session = load_session(clerk.data_dir)
    with ServiceClient(session.service, session.token) as client:
        terminal = HallTerminal(data_dir=clerk.data_dir, session=session, client=client, connect=connect)
        outcome = terminal.sell(msisdn=msisdn, ticket_type="standard", visit_day=None, approval_code=None)
    assert isinstance(outcome.write_error, pcsc.CardRemoved)
    ticket_id = outcome.sale.entry.ticket_id
    assert CardFile.load(card_file).occupied() == ((1,) if after_ins == INS_WRITE_TICKET else ())

    assert clerk.refused("write", "--ticket", str(ticket_id)) == "no_card"
    cards.insert(card_file)
    assert f"ticket {ticket_id} written to card {card_file.stem.upper()} slot 1" in clerk.ok(
        "write", "--ticket", str(ticket_id)
    )
    assert clerk.refused("write", "--ticket", str(ticket_id)) == "already_written"
    assert CardFile.load(card_file).occupied() == (1,)
    assert _read_back(clerk.service, 1).ticket_id == ticket_id
    assert "closed: matched" in clerk.ok("close-day")


def test_what_the_terminal_refuses(clerk: Clerk, cards: CardRack) -> None:
    hall = clerk.service
    msisdn = hall.number()
    sell = ("sell", "--msisdn", msisdn, "--type", "standard", "--cash")
    assert clerk.refused(*sell) == "no_card"
    assert clerk.refused(*sell, reader="No Such Reader 00 00") == "no_reader"

    for card_file, code in (
        (with_aid(hall.issue_card(), bytes.fromhex("F04558504F3230313002")), "card_no_applet"),
        (hall.issue_card(province="11"), "card_of_other_province"),
        (filled(hall.issue_card()), "card_full"),
        (hall.issue_card(), "card_not_registered"),
    ):
        bridge = cards.insert(card_file)
        assert clerk.refused(*sell) == code
        cards.remove(bridge)
    assert re.search(r"SALE\s+0\s", clerk.ok("totals"))  # nothing was sold for a card that could not take it

    assert clerk.refused("void", "--order", "999999") == "order_not_found"
    assert clerk.refused("write", "--ticket", "999999") == "no_card"
    assert clerk.refused("reprint") == "no_slip"
    assert clerk.refused("sell", "--msisdn", "12345", "--type", "standard") == "invalid_msisdn"
    _, registered = registered_card(clerk, cards)
    assert clerk.refused("sell", "--msisdn", registered, "--type", "no_such_type") == "unknown_ticket_type"
    assert clerk.refused("write", "--ticket", "999999") == "ticket_not_found"
