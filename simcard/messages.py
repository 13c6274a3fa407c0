"""The applet's command and response layouts, built and parsed in one place for card and readers.

Pure. Instruction codes and parameter bytes come from CARD.md; the FCI's TLV layout and the OPEN
SESSION response come from docs/card.md.
"""

from dataclasses import dataclass, field

from simcard.apdu import AID, CommandApdu
from simcard.keys import MAC_BYTES, province_of_csn
from simcard.record import TIME_BYTES

CLA_PLAIN = 0x00
CLA_PROPRIETARY = 0x80
CLA_SECURED = 0x84

INS_SELECT = 0xA4
INS_GET_CHALLENGE = 0x84
INS_OPEN_SESSION = 0x8A
INS_WRITE_TICKET = 0xDC
INS_READ = 0xB2
INS_MARK_ENTRY = 0x8E

P2_READ_TICKET = 0x0C
P2_READ_LOG = 0x14
P2_ENTRY = 0x01
P2_SOUVENIR = 0x02
P2_ANNUL = 0x03  # docs/card.md: the project's extension, undo this gate's entry of a moment ago

CHALLENGE_BYTES = 8
OPENING_BYTES = 29
MARK_DATA_BYTES = 4 + TIME_BYTES

_TAG_FCI, _TAG_AID, _TAG_PROPRIETARY = 0x6F, 0x84, 0xA5
_TAG_CSN, _TAG_PROVINCE, _TAG_KEY_VERSION, _TAG_CTR, _TAG_SLOTS = 0xC0, 0xC1, 0xC2, 0xC3, 0xC4


class MalformedResponse(ValueError):
    """A card answer that does not have the documented layout."""


@dataclass(frozen=True)
class CardInfo:
    """What SELECT tells a reader: identity, key version, CTR and which slots hold a ticket."""

    csn: bytes
    province: str
    key_version: int
    ctr: int
    occupied: tuple[int, ...] = ()


def _tlv(tag: int, value: bytes) -> bytes:
    return bytes((tag, len(value))) + value


def _parse_tlvs(raw: bytes) -> dict[int, bytes]:
    out: dict[int, bytes] = {}
    at = 0
    while at < len(raw):
        if at + 2 > len(raw) or raw[at + 1] > 0x7F or at + 2 + raw[at + 1] > len(raw):
            raise MalformedResponse("a truncated TLV")
        out[raw[at]] = raw[at + 2 : at + 2 + raw[at + 1]]
        at += 2 + raw[at + 1]
    return out


def encode_fci(info: CardInfo) -> bytes:
    """6F { 84 AID, A5 { C0 CSN, C1 province(2, BCD), C2 key version, C3 CTR, C4 slot bitmap } }."""
    bitmap = sum(1 << (slot - 1) for slot in info.occupied)
    proprietary = (
        _tlv(_TAG_CSN, info.csn)
        + _tlv(_TAG_PROVINCE, info.csn[:2])
        + _tlv(_TAG_KEY_VERSION, bytes((info.key_version,)))
        + _tlv(_TAG_CTR, info.ctr.to_bytes(4, "big"))
        + _tlv(_TAG_SLOTS, bytes((bitmap,)))
    )
    return _tlv(_TAG_FCI, _tlv(_TAG_AID, AID) + _tlv(_TAG_PROPRIETARY, proprietary))


def parse_fci(raw: bytes) -> CardInfo:
    """The SELECT answer's data back into CardInfo; MalformedResponse when anything is missing."""
    outer = _parse_tlvs(raw)
    inner = _parse_tlvs(outer.get(_TAG_FCI, b""))
    fields = _parse_tlvs(inner.get(_TAG_PROPRIETARY, b""))
    try:
        csn, key_version, ctr, slots = (fields[tag] for tag in (_TAG_CSN, _TAG_KEY_VERSION, _TAG_CTR, _TAG_SLOTS))
        province = province_of_csn(csn)
    except (KeyError, ValueError) as error:
        raise MalformedResponse(f"an FCI without the Expo fields: {error}") from error
    if inner.get(_TAG_AID) != AID or len(key_version) != 1 or len(ctr) != 4 or len(slots) != 1:
        raise MalformedResponse("an FCI with the wrong AID or field lengths")
    occupied = tuple(slot for slot in range(1, 9) if slots[0] & (1 << (slot - 1)))
    return CardInfo(csn, province, key_version[0], int.from_bytes(ctr, "big"), occupied)


@dataclass(frozen=True)
class SessionOpening:
    """The OPEN SESSION answer: CSN(8) || RND_C(8) || CTR(4) || key version(1) || card cryptogram(8)."""

    csn: bytes
    rnd_c: bytes
    ctr: int
    key_version: int
    card_cryptogram: bytes = field(repr=False)

    def encode(self) -> bytes:
        """The 29 response bytes."""
        return self.csn + self.rnd_c + self.ctr.to_bytes(4, "big") + bytes((self.key_version,)) + self.card_cryptogram

    @classmethod
    def parse(cls, raw: bytes) -> "SessionOpening":
        """29 bytes back into their fields."""
        if len(raw) != OPENING_BYTES:
            raise MalformedResponse(f"an OPEN SESSION answer is {OPENING_BYTES} bytes, got {len(raw)}")
        return cls(raw[:8], raw[8:16], int.from_bytes(raw[16:20], "big"), raw[20], raw[21:29])


def select_command() -> bytes:
    """SELECT by AID: 00 A4 04 00 0A AID 00."""
    return CommandApdu(CLA_PLAIN, INS_SELECT, 0x04, 0x00, AID, 256).encode()


def get_challenge_command() -> bytes:
    """GET CHALLENGE: 00 84 00 00 08."""
    return CommandApdu(CLA_PLAIN, INS_GET_CHALLENGE, 0, 0, le=CHALLENGE_BYTES).encode()


def open_session_command(key_type: int, rnd_t: bytes) -> bytes:
    """OPEN SESSION: 80 8A t 00 08 RND_T 00."""
    return CommandApdu(CLA_PROPRIETARY, INS_OPEN_SESSION, key_type, 0, rnd_t, 256).encode()


def read_ticket_command(slot: int) -> bytes:
    """READ TICKET: 00 B2 slot 0C 20."""
    return CommandApdu(CLA_PLAIN, INS_READ, slot, P2_READ_TICKET, le=32).encode()


def read_log_command(newest: int) -> bytes:
    """READ LOG: 00 B2 n 14 10 (n = 1 is the newest entry)."""
    return CommandApdu(CLA_PLAIN, INS_READ, newest, P2_READ_LOG, le=16).encode()


def mark_entry_data(gate_id: int, time_bcd: bytes) -> bytes:
    """MARK ENTRY's data before its MAC: gate id(4) || time(7, BCD)."""
    if len(time_bcd) != TIME_BYTES:
        raise ValueError("the time is 7 BCD bytes")
    return gate_id.to_bytes(4, "big") + time_bcd


def split_mac(data: bytes) -> tuple[bytes, bytes]:
    """Secured command data split into the data and its trailing 8-byte MAC."""
    return data[:-MAC_BYTES], data[-MAC_BYTES:]
