"""The signed codes of tickets without a card: the QR exchange voucher and the physical ticket. Pure.

A code is 15 bytes of claim and an Ed25519 signature over them, in base32 (RFC 4648, no padding): 127
characters of A-Z and 2-7, which QR's alphanumeric mode carries compactly and a clerk can type. The claim:

    kind 1 ('V' voucher, 'P' physical ticket) | format 1 | key id 2 | ticket id 4 | ticket type 1
    | first day 2 | last day 2 | upgrade day 2            (big-endian; days as on the card, FFFF = none)

The key id names the platform signing key, so keys rotate while codes signed by an older key verify for
as long as that key's public half is kept (until the last code it signed has expired). A terminal or gate
verifies offline with the public keys it synced; nothing but the signature makes a code genuine.
"""

import base64
import binascii
import struct
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from enum import IntEnum
from types import MappingProxyType

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from simcard.record import NO_DAY, day_date, day_number
from ticketing.card_rules import TYPE_CODES, valid_span
from ticketing.rules import TicketType

FORMAT = 1
_CLAIM = struct.Struct(">BBHIBHHH")
CLAIM_BYTES = _CLAIM.size
SIGNATURE_BYTES = 64
CODE_BYTES = CLAIM_BYTES + SIGNATURE_BYTES
CODE_CHARS = -(-CODE_BYTES * 8 // 5)
MAX_KID = 0xFFFF
GROUP = 6  # characters per group when a code is shown for typing

TICKET_TYPES: Mapping[int, TicketType] = MappingProxyType({code: kind for kind, code in TYPE_CODES.items()})


class CodeKind(IntEnum):
    VOUCHER = ord("V")  # exchanged in a hall for a physical ticket or a write to an Expo card
    PHYSICAL = ord("P")  # a paper ticket, shown at the gate


class CodeRefused(ValueError):
    """A code that is not a genuine one: `code` is the stable refusal code."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass(frozen=True)
class TicketClaim:
    """What a code says: its kind, the key that signed it, and the ticket with the days it is good for."""

    kind: CodeKind
    kid: int
    ticket_id: int
    ticket_type: TicketType
    first_day: date
    last_day: date
    upgrade_day: date | None = None

    def pack(self) -> bytes:
        """The 15 signed bytes; ValueError for a field out of range."""
        if not 0 <= self.kid <= MAX_KID:
            raise ValueError(f"key id {self.kid} is not 0..{MAX_KID}")
        try:
            return _CLAIM.pack(
                self.kind,
                FORMAT,
                self.kid,
                self.ticket_id,
                TYPE_CODES[self.ticket_type],
                day_number(self.first_day),
                day_number(self.last_day),
                NO_DAY if self.upgrade_day is None else day_number(self.upgrade_day),
            )
        except struct.error as error:
            raise ValueError(f"a claim field is out of range: {error}") from error


def claim_for(
    kind: CodeKind, *, kid: int, ticket_id: int, ticket_type: str, visit_day: date | None, upgrade_day: date | None
) -> TicketClaim:
    """The claim of a ticket: its valid days are the ones its card record would carry (`valid_span`)."""
    kind_type = TicketType(ticket_type)
    first, last = valid_span(kind_type, visit_day=visit_day, upgrade_day=upgrade_day)
    return TicketClaim(kind, kid, ticket_id, kind_type, first, last, upgrade_day)


def sign_claim(claim: TicketClaim, key: Ed25519PrivateKey) -> str:
    """The code of a claim: its bytes and their signature, in base32 without padding."""
    packed = claim.pack()
    return base64.b32encode(packed + key.sign(packed)).decode("ascii").rstrip("=")


def normalize(text: str) -> str:
    """A code as typed: spaces, dashes and case do not matter."""
    return "".join(text.split()).replace("-", "").upper()


def grouped(code: str) -> str:
    """A code in groups of six for a person to read or type."""
    return "-".join(code[i : i + GROUP] for i in range(0, len(code), GROUP))


def verify_code(text: str, public_keys: Mapping[int, Ed25519PublicKey]) -> TicketClaim:
    """The claim of a genuine code. Refusals: `code_malformed` (truncated, not base32, unknown format or
    fields), `unknown_signing_key` (a key id this side does not hold), `code_forged` (the signature fails)."""
    raw = _decoded(normalize(text))
    packed, signature = raw[:CLAIM_BYTES], raw[CLAIM_BYTES:]
    kind, version, kid, ticket_id, type_code, first, last, upgrade = _CLAIM.unpack(packed)
    if version != FORMAT or kind not in CodeKind._value2member_map_:
        raise CodeRefused("code_malformed", "the code is not an Expo ticket code of a known format")
    key = public_keys.get(kid)
    if key is None:
        raise CodeRefused("unknown_signing_key", f"the code is signed with key {kid}, which is not a platform key")
    try:
        key.verify(signature, packed)
    except InvalidSignature:
        raise CodeRefused("code_forged", "the code's signature does not verify") from None
    ticket_type = TICKET_TYPES.get(type_code)
    first_day, last_day = day_date(first), day_date(last)
    if ticket_type is None or first_day is None or last_day is None or ticket_id == 0:
        raise CodeRefused("code_malformed", "the code names no ticket type or valid days")
    return TicketClaim(CodeKind(kind), kid, ticket_id, ticket_type, first_day, last_day, day_date(upgrade))


def _decoded(code: str) -> bytes:
    if len(code) != CODE_CHARS:
        raise CodeRefused("code_malformed", f"an Expo ticket code has {CODE_CHARS} characters, this one {len(code)}")
    try:
        raw = base64.b32decode(code + "=" * (-len(code) % 8))
    except (binascii.Error, ValueError):
        raise CodeRefused("code_malformed", "the code has characters other than A-Z and 2-7") from None
    if len(raw) != CODE_BYTES:
        raise CodeRefused("code_malformed", "the code has the wrong length")
    # The last character carries 3 spare bits the decoder ignores: a code has exactly one written form.
    if base64.b32encode(raw).decode("ascii").rstrip("=") != code:
        raise CodeRefused("code_malformed", "the code is not in its one written form")
    return raw
