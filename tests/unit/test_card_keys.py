"""Known-answer and cross-implementation tests for the card's key derivation and secure messaging.

Which published vectors apply:
- RFC 4493 AES-CMAC examples 1-4: `aes_cmac`.
- NXP AN10922 AES-128 diversification (K=0011..FF, M=04782E..75 -> A8DD63A3...): `aes_cmac` over 01 || M, and
  an independent AN10922 implementation in this file (its own padding and K1/K2 subkeys) that reproduces the
  vector and then agrees with `province_key` (17 input bytes) and `card_key` (20 input bytes, CARD.md's input).
- NIST SP 800-108 CAVP, KDF in counter mode, CMAC-AES128, 8-bit counter (BEFORE/MIDDLE/AFTER_FIXED, 128-bit
  output): the generic `counter_mode_kdf` under `kdf`. CARD.md's own layout (00*11 || c || 00 || L || i || ctx)
  cannot hold CAVP's random fixed input, so `kdf` itself is checked by:
- GlobalPlatform SCP03 session keys (default keys 40..4F, host challenge A7F76C713F0A713D, card challenge
  31900058C1C451A2, as published in openjavacard's SCP03DerivationTest): `kdf` with the CARD.md layout, whose
  only difference from SCP03 is the longer context; and an independent re-implementation here.
"""

import pytest
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from simcard.apdu import AID
from simcard.keys import (
    KEY_AUDIT,
    KEY_ISSUE,
    KEY_VALIDATE,
    KeySet,
    MacChain,
    SessionKeys,
    aes_cmac,
    card_key,
    counter_mode_kdf,
    kdf,
    province_bcd,
    province_key,
    province_of_csn,
    sam_card_key,
)

RFC4493_KEY = bytes.fromhex("2b7e151628aed2a6abf7158809cf4f3c")
RFC4493_MESSAGE = bytes.fromhex(
    "6bc1bee22e409f96e93d7e117393172aae2d8a571e03ac9c9eb76fac45af8e51"
    "30c81c46a35ce411e5fbc1191a0a52eff69f2445df4f9b17ad2b417be66c3710"
)


@pytest.mark.parametrize(
    ("length", "tag"),
    [
        (0, "bb1d6929e95937287fa37d129b756746"),
        (16, "070a16b46b4d4144f79bdd9dd04a287c"),
        (40, "dfa66747de9ae63030ca32611497c827"),
        (64, "51f0bebf7e3b9d92fc49741779363cfe"),
    ],
)
def test_aes_cmac_matches_rfc4493(length: int, tag: str) -> None:
    assert aes_cmac(RFC4493_KEY, RFC4493_MESSAGE[:length]).hex() == tag


# --- AN10922 ------------------------------------------------------------------------------------------

AN10922_KEY = bytes.fromhex("00112233445566778899AABBCCDDEEFF")
AN10922_M = bytes.fromhex("04782E21801D803042F54E585020416275")
AN10922_DIVERSIFIED = bytes.fromhex("A8DD63A3B89D54B37CA802473FDA9175")


def _aes_block(key: bytes, block: bytes) -> bytes:
    encryptor = Cipher(algorithms.AES(key), modes.ECB()).encryptor()  # one raw block, as CMAC needs
    return encryptor.update(block) + encryptor.finalize()


def _double(block: bytes) -> bytes:
    value = int.from_bytes(block, "big") << 1
    if value >> 128:
        value = (value & ((1 << 128) - 1)) ^ 0x87
    return value.to_bytes(16, "big")


def an10922_diversify(master: bytes, m: bytes) -> bytes:
    """AN10922 section 2.2 as written there: D = 01 || M, padded 80 00.. to 32 bytes, K2 if padded else K1."""
    assert 1 <= len(m) <= 31
    k1 = _double(_aes_block(master, bytes(16)))
    k2 = _double(k1)
    data = b"\x01" + m
    padded = len(data) < 32
    data = (data + b"\x80").ljust(32, b"\x00") if padded else data
    last = bytes(a ^ b for a, b in zip(data[16:], k2 if padded else k1, strict=True))
    first = _aes_block(master, data[:16])
    return _aes_block(master, bytes(a ^ b for a, b in zip(first, last, strict=True)))


def test_an10922_vector_through_aes_cmac() -> None:
    assert aes_cmac(AN10922_KEY, b"\x01" + AN10922_M) == AN10922_DIVERSIFIED


def test_independent_an10922_reproduces_the_published_vector() -> None:
    assert an10922_diversify(AN10922_KEY, AN10922_M) == AN10922_DIVERSIFIED


@pytest.mark.parametrize("key_type", [KEY_ISSUE, KEY_VALIDATE, KEY_AUDIT])
def test_card_key_is_an10922_over_csn_aid_and_type(key_type: int) -> None:
    csn = bytes.fromhex("0031000000000042")
    expected = an10922_diversify(AN10922_KEY, csn + AID + bytes((key_type,)))
    assert card_key(AN10922_KEY, csn, key_type) == expected
    assert card_key(AN10922_KEY, csn, key_type) == aes_cmac(AN10922_KEY, b"\x01" + csn + AID + bytes((key_type,)))


@pytest.mark.parametrize("key_type", [KEY_ISSUE, KEY_VALIDATE, KEY_AUDIT])
def test_province_key_is_an10922_over_province_type_and_label(key_type: int) -> None:
    expected = an10922_diversify(AN10922_KEY, b"\x00\x31" + bytes((key_type,)) + b"EXPO2010-PROV")
    assert province_key(AN10922_KEY, "31", key_type) == expected


def test_keys_differ_by_type_province_and_card() -> None:
    root = bytes(range(16))
    derived = {
        province_key(root, "31", KEY_ISSUE),
        province_key(root, "31", KEY_VALIDATE),
        province_key(root, "32", KEY_ISSUE),
        card_key(root, bytes.fromhex("0031000000000001"), KEY_ISSUE),
        card_key(root, bytes.fromhex("0031000000000002"), KEY_ISSUE),
    }
    assert len(derived) == 5


def test_sam_derives_the_same_card_key_as_the_province_centre() -> None:
    root = KeySet({t: bytes([t]) * 16 for t in (1, 2, 3)})
    csn = bytes.fromhex("0044000000000123")
    for t in (1, 2, 3):
        assert sam_card_key(root, csn, t) == card_key(province_key(root[t], "44", t), csn, t)


@pytest.mark.parametrize("bad", ["3", "031", "ab", "3a", "", "３１"])
def test_province_codes_are_two_ascii_digits(bad: str) -> None:
    with pytest.raises(ValueError, match="two digits"):
        province_bcd(bad)


def test_province_of_csn() -> None:
    assert province_of_csn(bytes.fromhex("0031000000000042")) == "31"
    with pytest.raises(ValueError, match="BCD"):
        province_of_csn(bytes.fromhex("3100000000000042"))


def test_unknown_key_type_is_refused() -> None:
    with pytest.raises(ValueError, match="key type"):
        card_key(bytes(16), bytes(8), 4)


# --- SP 800-108 / SCP03 -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("key", "before", "after", "ko"),
    [
        (  # CMAC_AES128_BEFORE_FIXED_8_BITS: the counter first
            "dff1e50ac0b69dc40f1051d46c2b069c",
            "",
            "c16e6e02c5a3dcc8d78b9ac1306877761310455b4e41469951d9e6c2245a064b"
            "33fd8c3b01203a7824485bf0a64060c4648b707d2607935699316ea5",
            "8be8f0869b3c0ba97b71863d1b9f7813",
        ),
        (  # CMAC_AES128_MIDDLE_FIXED_8_BITS: the counter between fixed input, as in CARD.md
            "b6e04abd1651f8794d4326f4c684e631",
            "93612f7256c46a3d856d3e951e32dbf15fe11159d0b389ad38d603850fee6d18d22031435ed36ee20da76745fbea4b10fe1e",
            "99322aae605a5f01e32b",
            "dcb1db87a68762c6b3354779fa590bef",
        ),
        (  # CMAC_AES128_AFTER_FIXED_8_BITS: the counter last
            "e61a51e1633e7d0de704dcebbd8f962f",
            "5eef88f8cb188e63e08e23c957ee424a3345da88400c567548b57693931a847501f8e1bce1c37a09ef8c6e2ad553dd0f"
            "603b52cc6d4e4cbb76eb6c8f",
            "",
            "63a5647d0fe69d21fc420b1a8ce34cc1",
        ),
    ],
)
def test_counter_mode_kdf_matches_nist_cavp(key: str, before: str, after: str, ko: str) -> None:
    assert counter_mode_kdf(bytes.fromhex(key), bytes.fromhex(before), bytes.fromhex(after), 128).hex() == ko


SCP03_KEY = bytes(range(0x40, 0x50))
SCP03_CONTEXT = bytes.fromhex("A7F76C713F0A713D") + bytes.fromhex("31900058C1C451A2")


@pytest.mark.parametrize(
    ("constant", "expected"),
    [
        (0x04, "258a78866f41482bef482dc8ca976ccd"),  # S-ENC
        (0x06, "053db6abc7fdf3b63a0d965ee16b0255"),  # S-MAC
        (0x07, "eda0b4f2ec0345bfc50f3bc59cfef936"),  # S-RMAC
    ],
)
def test_kdf_reproduces_scp03_session_keys(constant: int, expected: str) -> None:
    assert kdf(SCP03_KEY, constant, SCP03_CONTEXT, 128).hex() == expected


def straightforward_kdf(key: bytes, constant: int, context: bytes, bits: int) -> bytes:
    """CARD.md's formula typed out byte by byte, one CMAC per 16 output bytes."""
    out = b""
    i = 1
    while len(out) * 8 < bits:
        label = b"\x00" * 11 + bytes([constant])
        message = label + b"\x00" + bytes([bits >> 8, bits & 0xFF]) + bytes([i]) + context
        out += aes_cmac(key, message)
        i += 1
    return out[: bits // 8]


@pytest.mark.parametrize("bits", [64, 128, 192, 256, 384])
@pytest.mark.parametrize("constant", [0x00, 0x01, 0x04, 0x06])
def test_kdf_agrees_with_a_straightforward_reimplementation(bits: int, constant: int) -> None:
    key = bytes.fromhex("0f1e2d3c4b5a69788796a5b4c3d2e1f0")
    context = bytes(range(20))
    assert kdf(key, constant, context, bits) == straightforward_kdf(key, constant, context, bits)


def test_session_keys_follow_card_md() -> None:
    k = bytes.fromhex("00112233445566778899aabbccddeeff")
    rnd_t, rnd_c, ctr = bytes.fromhex("0102030405060708"), bytes.fromhex("1112131415161718"), 0x01020304
    ctx = rnd_t + rnd_c + bytes.fromhex("01020304")
    keys = SessionKeys.derive(k, rnd_t, rnd_c, ctr)
    assert keys.s_mac == straightforward_kdf(k, 0x06, ctx, 128)
    assert keys.s_enc == straightforward_kdf(k, 0x04, ctx, 128)
    assert keys.card_cryptogram == straightforward_kdf(keys.s_mac, 0x00, ctx, 64)
    assert keys.terminal_cryptogram == straightforward_kdf(keys.s_mac, 0x01, ctx, 64)
    assert SessionKeys.derive(k, rnd_t, rnd_c, ctr + 1).s_mac != keys.s_mac
    assert keys.s_mac.hex() not in repr(keys)
    assert keys.s_enc.hex() not in repr(keys)


def test_mac_chain_starts_at_zero_and_chains_full_macs() -> None:
    s_mac = bytes(range(16))
    chain = MacChain(s_mac)
    header, data = bytes.fromhex("84DC0100"), b"record"
    mac1 = chain.command_mac(header, data)
    full1 = aes_cmac(s_mac, bytes(16) + header + data)
    assert mac1 == full1[:8]
    response = chain.response_mac(b"answer")
    assert response == aes_cmac(s_mac, full1 + b"answer")[:8]
    assert chain.response_mac(b"answer") == response  # a response MAC does not move the chain
    mac2 = chain.command_mac(header, data)
    assert mac2 == aes_cmac(s_mac, full1 + header + data)[:8]
    assert mac2 != mac1


def test_keyset_repr_hides_the_bytes() -> None:
    keys = KeySet({1: bytes.fromhex("aa" * 16)}, version=3)
    assert "aa" * 4 not in repr(keys)
    assert "aa" * 4 not in str(keys)
    assert "version=3" in repr(keys)
