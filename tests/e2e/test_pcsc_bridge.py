"""The vpcd bridge through a real `pcscd -f`: cards appear in readers, answer through pyscard, leave, swap, persist."""

import random
import secrets

import pytest

from simcard.apdu import CommandApdu, split_response
from simcard.applet import ATR
from simcard.keys import KEY_ISSUE, KEY_VALIDATE, MacChain, SessionKeys, card_key
from simcard.messages import (
    CLA_SECURED,
    INS_WRITE_TICKET,
    SessionOpening,
    open_session_command,
    parse_fci,
    read_ticket_command,
    select_command,
)
from simcard.pcscd import PrivatePcscd
from simcard.record import TicketRecord, sign
from simcard.store import CardFile
from tests.e2e.pcsc import TEST_PROV_KEYS, CardRack, skip_without_pyscard, thread_bridge

skip_without_pyscard()
from simcard import pcsc  # noqa: E402  # after the check: pyscard is optional


@pytest.fixture
def reader0(pcscd: PrivatePcscd) -> str:
    return pcsc.vpcd_reader(0)


def _ok(card: pcsc.PcscCard, apdu: bytes) -> bytes:
    data, sw = split_response(card.transmit(apdu))
    assert sw == 0x9000, f"SW {sw:04X}"
    return data


def test_pcscd_shows_two_empty_vpcd_readers(pcscd: PrivatePcscd) -> None:
    readers = pcsc.vpcd_readers()
    assert len(readers) == 2
    assert [pcsc.vpcd_reader(slot) for slot in (0, 1)] == readers
    assert not any(pcsc.card_present(reader) for reader in readers)
    with pytest.raises(pcsc.NoCard):
        pcsc.wait_for_card(readers[0], 0.3)


def test_an_unknown_reader_is_no_reader(pcscd: PrivatePcscd) -> None:
    with pytest.raises(pcsc.NoReader):
        pcsc.wait_for_card("No Such Reader 00 00", 0.3)
    with pytest.raises(pcsc.NoReader):
        pcsc.vpcd_reader(7)


def test_an_inserted_card_shows_up_and_answers_select_with_its_fci(cards: CardRack, reader0: str) -> None:
    card_file = cards.new_card()
    cards.insert(card_file, slot=0)
    with pcsc.wait_for_card(reader0, 5) as card:
        assert card.atr == ATR
        info = parse_fci(_ok(card, select_command()))
    state = CardFile.load(card_file)
    assert (info.csn, info.province, info.ctr, info.occupied) == (state.csn, "31", 0, ())


def test_a_wrong_aid_and_random_bytes_get_status_words_and_the_card_stays(cards: CardRack, reader0: str) -> None:
    cards.insert(cards.new_card(), slot=0)
    noise = random.Random(2010)
    with pcsc.wait_for_card(reader0, 5) as card:
        wrong_aid = CommandApdu(0x00, 0xA4, 0x04, 0x00, bytes.fromhex("A000000003000000"), 256).encode()
        assert split_response(card.transmit(wrong_aid))[1] == 0x6A82
        for _ in range(50):
            apdu = bytes(noise.randrange(256) for _ in range(noise.randrange(4, 40)))
            assert len(card.transmit(apdu)) >= 2
        _ok(card, select_command())
    assert pcsc.card_present(reader0)


def test_removing_the_bridge_removes_the_card(cards: CardRack, reader0: str) -> None:
    bridge = cards.insert(cards.new_card(), slot=0)
    card = pcsc.wait_for_card(reader0, 5)
    try:
        _ok(card, select_command())
        cards.remove(bridge)
        assert not pcsc.card_present(reader0)
        with pytest.raises(pcsc.CardRemoved) as removed:
            card.transmit(select_command())
        assert removed.value.code == "card_removed"
    finally:
        card.close()
    with pytest.raises(pcsc.NoCard):
        pcsc.wait_for_card(reader0, 0.5)


def test_a_killed_bridge_is_a_removed_card(cards: CardRack, reader0: str) -> None:
    bridge = cards.insert(cards.new_card(), slot=0)
    cards.kill(bridge)
    assert not pcsc.card_present(reader0)


def test_swapping_cards_in_one_slot_needs_no_pcscd_restart(cards: CardRack, pcscd: PrivatePcscd, reader0: str) -> None:
    assert pcscd.process is not None
    daemon_pid = pcscd.process.pid
    first, second = cards.new_card(), cards.new_card()
    seen = []
    for card_file in (first, second, first):
        bridge = cards.insert(card_file, slot=0)
        with pcsc.wait_for_card(reader0, 5) as card:
            seen.append(parse_fci(_ok(card, select_command())).csn)
        cards.remove(bridge)
    csn_first, csn_second = CardFile.load(first).csn, CardFile.load(second).csn
    assert seen == [csn_first, csn_second, csn_first]
    assert pcscd.process is not None
    assert pcscd.process.pid == daemon_pid


def test_two_slots_hold_two_cards_at_once(cards: CardRack) -> None:
    files = [cards.new_card(), cards.new_card()]
    for slot, card_file in enumerate(files):
        cards.insert(card_file, slot=slot)
    connected = [pcsc.wait_for_card(pcsc.vpcd_reader(slot), 5) for slot in (0, 1)]
    try:
        for _ in range(3):  # interleaved: each reader keeps talking to its own card
            for card, card_file in zip(connected, files, strict=True):
                assert parse_fci(_ok(card, select_command())).csn == CardFile.load(card_file).csn
    finally:
        for card in connected:
            card.close()


def _write_ticket(card: pcsc.PcscCard, csn: bytes, *, slot: int, ticket_id: int) -> bytes:
    """What the platform does for a hall sale: an ISSUE session and a MAC'd WRITE TICKET; the record written."""
    issue_key = card_key(TEST_PROV_KEYS[KEY_ISSUE], csn, KEY_ISSUE)
    validate_key = card_key(TEST_PROV_KEYS[KEY_VALIDATE], csn, KEY_VALIDATE)
    record = sign(TicketRecord(ticket_id, 3, 31, 31, 1), validate_key, csn)
    rnd_t = secrets.token_bytes(8)
    opening = SessionOpening.parse(_ok(card, open_session_command(KEY_ISSUE, rnd_t)))
    keys = SessionKeys.derive(issue_key, rnd_t, opening.rnd_c, opening.ctr)
    assert opening.card_cryptogram == keys.card_cryptogram
    header = bytes((CLA_SECURED, INS_WRITE_TICKET, slot, 0))
    mac = MacChain(keys.s_mac).command_mac(header, record)
    _ok(card, CommandApdu(CLA_SECURED, INS_WRITE_TICKET, slot, 0, record + mac).encode())
    return record


def test_a_ticket_written_through_pcsc_survives_a_bridge_restart(cards: CardRack, reader0: str) -> None:
    card_file = cards.new_card()
    bridge = cards.insert(card_file, slot=0)
    with pcsc.wait_for_card(reader0, 5) as card:
        csn = parse_fci(_ok(card, select_command())).csn
        record = _write_ticket(card, csn, slot=2, ticket_id=4242)
    cards.remove(bridge)
    assert oct(card_file.stat().st_mode & 0o777) == "0o600"

    cards.insert(card_file, slot=0)
    with pcsc.wait_for_card(reader0, 5) as card:
        info = parse_fci(_ok(card, select_command()))
        assert (info.ctr, info.occupied) == (1, (2,))
        assert _ok(card, read_ticket_command(2)) == record


class EchoApplet:
    """A stand-in card: answers every command with its own data and 9000."""

    atr = bytes.fromhex("3B8080010101")

    def power_on(self) -> None: ...

    def power_off(self) -> None: ...

    def reset(self) -> None: ...

    def process(self, apdu: bytes) -> bytes:
        return apdu[5:] + b"\x90\x00"


def test_the_bridge_reconnects_when_pcscd_restarts(pcscd: PrivatePcscd) -> None:
    reader = pcsc.vpcd_reader(1)
    with thread_bridge(EchoApplet(), port=pcscd.port(1)):
        card = pcsc.wait_for_card(reader, 5)
        assert card.transmit(bytes.fromhex("0001000002ABCD")) == bytes.fromhex("ABCD9000")
        pcscd.restart()
        with pytest.raises(pcsc.CardRemoved):
            card.transmit(bytes.fromhex("0001000002ABCD"))
        card.close()
        with pcsc.wait_for_card(pcsc.vpcd_reader(1), 10) as card:
            assert card.transmit(bytes.fromhex("0001000001EE")) == bytes.fromhex("EE9000")
    assert pcsc.wait_for_removal(reader, 5)
