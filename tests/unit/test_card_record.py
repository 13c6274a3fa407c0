"""The byte layouts: APDU codec, the 32-byte ticket record and its platform MAC, days, times, the FCI."""

from datetime import date, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from simcard.apdu import CommandApdu, MalformedApdu, response, split_response
from simcard.keys import KEY_VALIDATE
from simcard.messages import CardInfo, MalformedResponse, encode_fci, parse_fci, select_command
from simcard.record import (
    NO_DAY,
    TicketRecord,
    day_date,
    day_number,
    decode_time,
    encode_time,
    mac_is_valid,
    sign,
)
from tests.unit.card_support import key, record

CSN = bytes.fromhex("0031000000000042")
OTHER_CSN = bytes.fromhex("0031000000000043")


@pytest.mark.parametrize(
    ("raw", "parsed"),
    [
        ("00A40400", CommandApdu(0, 0xA4, 4, 0)),
        ("0084000008", CommandApdu(0, 0x84, 0, 0, le=8)),
        ("00B2010C00", CommandApdu(0, 0xB2, 1, 0x0C, le=256)),
        ("84DC010002AABB", CommandApdu(0x84, 0xDC, 1, 0, b"\xaa\xbb")),
        ("808A010002AABB00", CommandApdu(0x80, 0x8A, 1, 0, b"\xaa\xbb", 256)),
        ("00B20100000100", CommandApdu(0, 0xB2, 1, 0, le=256)),
        ("00B20100000000", CommandApdu(0, 0xB2, 1, 0, le=65536)),
        ("00DC01000000" + "02AABB", CommandApdu(0, 0xDC, 1, 0, b"\xaa\xbb")),
        ("00DC01000000" + "02AABB0010", CommandApdu(0, 0xDC, 1, 0, b"\xaa\xbb", 16)),
    ],
)
def test_apdu_cases(raw: str, parsed: CommandApdu) -> None:
    assert CommandApdu.parse(bytes.fromhex(raw)) == parsed


@pytest.mark.parametrize(
    "raw", ["", "00", "00A404", "84DC010003AABB", "84DC010001AABBCCDD", "00DC01000000", "00DC010000000201"]
)
def test_malformed_apdus(raw: str) -> None:
    with pytest.raises(MalformedApdu):
        CommandApdu.parse(bytes.fromhex(raw))


@given(
    st.integers(0, 255),
    st.integers(0, 255),
    st.binary(max_size=300),
    st.one_of(st.none(), st.integers(1, 65536)),
)
def test_apdu_encode_parse_round_trip(ins: int, p1: int, data: bytes, le: int | None) -> None:
    apdu = CommandApdu(0x84, ins, p1, 0, data, le)
    assert CommandApdu.parse(apdu.encode()) == apdu


def test_select_is_the_card_md_bytes() -> None:
    assert select_command().hex().upper() == "00A404000AF04558504F3230313001" + "00"


def test_response_split() -> None:
    assert split_response(response(b"\x01\x02", 0x6A83)) == (b"\x01\x02", 0x6A83)
    with pytest.raises(MalformedApdu):
        split_response(b"\x90")


def test_record_layout_is_docs_card_md() -> None:
    ticket = TicketRecord(
        ticket_id=0x01020304,
        ticket_type=6,
        first_day=0x0010,
        last_day=0x0012,
        entries_allowed=3,
        flags=0x01,
        upgrade_day=NO_DAY,
        channel=2,
        province="44",
        key_version=1,
        platform_mac=bytes.fromhex("A1A2A3A4A5A6A7A8"),
        entries_used=2,
        last_entry_day=0x0011,
        card_flags=1,
        last_gate=0x0A0B0C0D,
    )
    assert ticket.encode().hex().upper() == (
        "01020304" "06" "0010" "0012" "03" "01" "FFFF" "02" "44" "01" "A1A2A3A4A5A6A7A8" "02" "0011" "01" "0A0B0C0D"
    )  # fmt: skip
    assert TicketRecord.decode(ticket.encode()) == ticket


@given(st.binary(min_size=32, max_size=32))
def test_any_32_bytes_decode_and_encode_back(raw: bytes) -> None:
    assert TicketRecord.decode(raw).encode() == raw


def test_platform_mac_binds_the_record_to_the_card() -> None:
    raw = sign(record(), key(CSN, KEY_VALIDATE), CSN)
    assert mac_is_valid(raw, key(CSN, KEY_VALIDATE), CSN)
    assert not mac_is_valid(raw, key(OTHER_CSN, KEY_VALIDATE), OTHER_CSN)  # copied to another card
    tampered = bytearray(raw)
    tampered[9] = 7  # more entries
    assert not mac_is_valid(bytes(tampered), key(CSN, KEY_VALIDATE), CSN)
    card_part = bytearray(raw)
    card_part[24] = 1  # the card's own bytes are outside the MAC
    assert mac_is_valid(bytes(card_part), key(CSN, KEY_VALIDATE), CSN)


def test_days_count_from_the_first_expo_day() -> None:
    assert day_number(date(2010, 5, 1)) == 0
    assert day_number(date(2010, 10, 31)) == 183
    assert day_date(183) == date(2010, 10, 31)
    assert day_date(NO_DAY) is None
    with pytest.raises(ValueError, match="range"):
        day_number(date(2010, 4, 30))


def test_bcd_time() -> None:
    at = datetime(2010, 6, 1, 9, 5, 7)
    assert encode_time(at).hex() == "20100601090507"
    assert decode_time(encode_time(at)) == at
    with pytest.raises(ValueError, match="BCD"):
        decode_time(bytes.fromhex("201006010905AA"))


def test_fci_round_trip_and_damage() -> None:
    info = CardInfo(CSN, "31", 1, 77, (1, 3))
    assert parse_fci(encode_fci(info)) == info
    raw = encode_fci(info)
    for damaged in (raw[:-1], raw[:5], b"", bytes.fromhex("6F00")):
        with pytest.raises(MalformedResponse):
            parse_fci(damaged)
