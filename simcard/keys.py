"""Key derivation and secure messaging of the Expo card, exactly as CARD.md and docs/card.md fix them.

Pure. K_prov and K_card are AN10922 AES diversification (AES-CMAC over 17-32 input bytes); session
keys and cryptograms come from the SCP03-style NIST SP 800-108 counter-mode KDF; command MACs chain.
Key bytes never appear in a repr.
"""

import hmac
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from functools import cached_property

from cryptography.hazmat.primitives.ciphers import algorithms
from cryptography.hazmat.primitives.cmac import CMAC

from simcard import apdu

AID = apdu.AID  # the applet's AID, part of every card key's input

KEY_ISSUE = 1
KEY_VALIDATE = 2
KEY_AUDIT = 3
KEY_TYPES = (KEY_ISSUE, KEY_VALIDATE, KEY_AUDIT)
KEY_NAMES = {KEY_ISSUE: "ISSUE", KEY_VALIDATE: "VALIDATE", KEY_AUDIT: "AUDIT"}

KEY_BYTES = 16
PROVINCE_LABEL = b"EXPO2010-PROV"
DIVERSIFY = b"\x01"

KDF_S_ENC = 0x04
KDF_S_MAC = 0x06
KDF_CARD_CRYPTOGRAM = 0x00
KDF_TERMINAL_CRYPTOGRAM = 0x01

MAC_BYTES = 8


class KeySet(dict[int, bytes]):
    """Keys by key type; its repr names the types and the version, never the bytes."""

    def __init__(self, keys: Mapping[int, bytes] | Iterable[tuple[int, bytes]] = (), *, version: int = 1) -> None:
        super().__init__(keys)
        self.version = version

    def __repr__(self) -> str:
        return f"KeySet(types={sorted(self)}, version={self.version}, bytes hidden)"

    __str__ = __repr__


def aes_cmac(key: bytes, data: bytes) -> bytes:
    """The 16-byte AES-CMAC (RFC 4493) of data under key."""
    mac = CMAC(algorithms.AES(key))
    mac.update(data)
    return mac.finalize()


def province_bcd(province: str) -> bytes:
    """A GB/T 2260 two-digit province code as the card's 2 BCD bytes (Shanghai "31" -> 00 31)."""
    if len(province) != 2 or not province.isascii() or not province.isdigit():
        raise ValueError(f"a province code is two digits, got {province!r}")
    return bytes.fromhex("00" + province)


def province_of_csn(csn: bytes) -> str:
    """The issuing province's two digits from the first two CSN bytes."""
    text = csn[:2].hex()
    if len(csn) != 8 or not text.startswith("00") or not text.isdigit():
        raise ValueError("a CSN is 8 bytes starting with the province as BCD 00 dd")
    return text[2:]


def _check_key_type(key_type: int) -> bytes:
    if key_type not in KEY_TYPES:
        raise ValueError(f"unknown key type {key_type}")
    return bytes((key_type,))


def province_key(root: bytes, province: str, key_type: int) -> bytes:
    """K_prov[t] = AES-CMAC(K_root[t], 01 || province(2) || t || "EXPO2010-PROV")."""
    return aes_cmac(root, DIVERSIFY + province_bcd(province) + _check_key_type(key_type) + PROVINCE_LABEL)


def card_key(prov_key: bytes, csn: bytes, key_type: int) -> bytes:
    """K_card[t] = AES-CMAC(K_prov[t], 01 || CSN(8) || AID(10) || t)."""
    if len(csn) != 8:
        raise ValueError("a CSN is 8 bytes")
    return aes_cmac(prov_key, DIVERSIFY + csn + AID + _check_key_type(key_type))


def sam_card_key(root_keys: Mapping[int, bytes], csn: bytes, key_type: int) -> bytes:
    """What a gate's SAM does: any card's key from the root keys and the province in its CSN."""
    return card_key(province_key(root_keys[key_type], province_of_csn(csn), key_type), csn, key_type)


def kdf(key: bytes, constant: int, context: bytes, bits: int) -> bytes:
    """First `bits` bits of CMAC(K, 00*11 || c || 00 || L(2) || i || ctx) for i = 1, 2, ... (SP 800-108)."""
    if bits <= 0 or bits % 8 or bits > 0xFFFF:
        raise ValueError("the KDF output is a whole number of bytes, at most 65535 bits")
    before = bytes(11) + bytes((constant,)) + b"\x00" + bits.to_bytes(2, "big")
    return counter_mode_kdf(key, before, context, bits)


def counter_mode_kdf(key: bytes, before_counter: bytes, after_counter: bytes, bits: int) -> bytes:
    """SP 800-108 KDF in counter mode, CMAC-AES PRF, an 8-bit counter between the two parts of the fixed input."""
    blocks = -(-bits // 128)
    if blocks > 0xFF:
        raise ValueError("an 8-bit counter gives at most 255 blocks")
    out = b"".join(aes_cmac(key, before_counter + bytes((i,)) + after_counter) for i in range(1, blocks + 1))
    return out[: bits // 8]


def session_context(rnd_t: bytes, rnd_c: bytes, ctr: int) -> bytes:
    """ctx = RND_T(8) || RND_C(8) || CTR(4): what binds a session to its tap."""
    if len(rnd_t) != 8 or len(rnd_c) != 8:
        raise ValueError("RND_T and RND_C are 8 bytes each")
    return rnd_t + rnd_c + ctr.to_bytes(4, "big")


@dataclass(frozen=True)
class SessionKeys:
    """One session's keys and both cryptograms. S-ENC and the terminal cryptogram are derived only when asked
    for: a gate's tap needs neither, and each costs two AES-CMACs."""

    s_mac: bytes = field(repr=False)
    card_cryptogram: bytes
    _card_key: bytes = field(repr=False)
    _context: bytes = field(repr=False)

    @classmethod
    def derive(cls, card_key: bytes, rnd_t: bytes, rnd_c: bytes, ctr: int) -> "SessionKeys":
        """S-MAC from the card key and the card cryptogram from S-MAC, over ctx = RND_T || RND_C || CTR."""
        ctx = session_context(rnd_t, rnd_c, ctr)
        s_mac = kdf(card_key, KDF_S_MAC, ctx, 128)
        return cls(s_mac, kdf(s_mac, KDF_CARD_CRYPTOGRAM, ctx, 64), card_key, ctx)

    @cached_property
    def s_enc(self) -> bytes:
        """S-ENC = KDF(K_card, 04, ctx, 128)."""
        return kdf(self._card_key, KDF_S_ENC, self._context, 128)

    @cached_property
    def terminal_cryptogram(self) -> bytes:
        """The terminal cryptogram = KDF(S-MAC, 01, ctx, 64)."""
        return kdf(self.s_mac, KDF_TERMINAL_CRYPTOGRAM, self._context, 64)


class MacChain:
    """The session's MAC chain: chain_0 = 16 zero bytes, chain_i = the full MAC_i of command i."""

    def __init__(self, s_mac: bytes) -> None:
        self._s_mac = s_mac
        self.chain = bytes(16)

    def __repr__(self) -> str:
        return "MacChain(key hidden)"

    def command_mac(self, header4: bytes, data: bytes) -> bytes:
        """MAC_i = CMAC(S-MAC, chain_{i-1} || CLA INS P1 P2 || data); advances the chain; 8 bytes are sent."""
        if len(header4) != 4:
            raise ValueError("a command header is 4 bytes")
        self.chain = aes_cmac(self._s_mac, self.chain + header4 + data)
        return self.chain[:MAC_BYTES]

    def response_mac(self, data: bytes) -> bytes:
        """First 8 bytes of CMAC(S-MAC, chain_i || response data); the chain does not move."""
        return aes_cmac(self._s_mac, self.chain + data)[:MAC_BYTES]


def macs_equal(expected: bytes, given: bytes) -> bool:
    """Constant-time comparison of two MACs."""
    return hmac.compare_digest(expected, given)
