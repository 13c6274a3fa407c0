"""Signed ticket codes (vouchers and physical tickets): the claim round trip for every ticket type, and every
way a code that is not a genuine one is refused, with its stable code."""

import base64
import struct
from datetime import date

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import given, settings
from hypothesis import strategies as st

from ticketing.card_rules import STANDARD_FIRST_DAY, STANDARD_LAST_DAY
from ticketing.rules import EXPO_FIRST_DAY, EXPO_LAST_DAY, TicketType
from ticketing.signed_codes import (
    CODE_CHARS,
    GROUP,
    CodeKind,
    CodeRefused,
    TicketClaim,
    claim_for,
    grouped,
    normalize,
    sign_claim,
    verify_code,
)

KEY = Ed25519PrivateKey.from_private_bytes(bytes(range(32)))
OTHER = Ed25519PrivateKey.from_private_bytes(bytes(range(1, 33)))
KEYS = {1: KEY.public_key()}
ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"
PEAK_DAY = date(2010, 10, 3)
LAYOUT = ">BBHIBHHH"  # kind, format, kid, ticket id, type code, first, last, upgrade day (days since 2010-05-01)


def _claim(ticket_type: TicketType = TicketType.STANDARD, **changes: object) -> TicketClaim:
    dated = ticket_type in (TicketType.PEAK, TicketType.PEAK_CONCESSION)
    fields: dict[str, object] = {
        "kid": 1, "ticket_id": 4711, "ticket_type": ticket_type, "visit_day": PEAK_DAY if dated else None,
        "upgrade_day": None,
    }  # fmt: skip
    fields.update(changes)
    return claim_for(CodeKind.VOUCHER, **fields)  # type: ignore[arg-type]


def _code(claim: TicketClaim | None = None, key: Ed25519PrivateKey = KEY) -> str:
    return sign_claim(claim or _claim(), key)


def _signed_raw(packed: bytes, key: Ed25519PrivateKey = KEY) -> str:
    """A code of arbitrary claim bytes, genuinely signed: what a key holder could make of a bad claim."""
    return base64.b32encode(packed + key.sign(packed)).decode().rstrip("=")


def _refusal(text: str, keys: object = KEYS) -> str:
    with pytest.raises(CodeRefused) as refused:
        verify_code(text, keys)  # type: ignore[arg-type]
    return refused.value.code


@pytest.mark.parametrize("ticket_type", list(TicketType))
@pytest.mark.parametrize("kind", list(CodeKind))
def test_every_ticket_type_round_trips(ticket_type: TicketType, kind: CodeKind) -> None:
    claim = _claim(ticket_type)
    claim = TicketClaim(kind, claim.kid, claim.ticket_id, claim.ticket_type, claim.first_day, claim.last_day)
    code = _code(claim)
    assert len(code) == CODE_CHARS == 127
    assert set(code) <= set(ALPHABET)
    assert verify_code(code, KEYS) == claim


@pytest.mark.parametrize(
    ("ticket_type", "first", "last"),
    [
        (TicketType.PEAK, PEAK_DAY, PEAK_DAY),
        (TicketType.PEAK_CONCESSION, PEAK_DAY, PEAK_DAY),
        (TicketType.STANDARD, STANDARD_FIRST_DAY, STANDARD_LAST_DAY),
        (TicketType.STANDARD_CONCESSION, STANDARD_FIRST_DAY, STANDARD_LAST_DAY),
        (TicketType.EVENING, STANDARD_FIRST_DAY, STANDARD_LAST_DAY),
        (TicketType.PASS_3, EXPO_FIRST_DAY, EXPO_LAST_DAY),
        (TicketType.PASS_7, EXPO_FIRST_DAY, EXPO_LAST_DAY),
    ],
)
def test_the_valid_days_are_those_of_the_card_record(ticket_type: TicketType, first: date, last: date) -> None:
    claim = verify_code(_code(_claim(ticket_type)), KEYS)
    assert (claim.first_day, claim.last_day, claim.upgrade_day) == (first, last, None)


@pytest.mark.parametrize("upgrade_day", [date(2010, 10, 3), date(2010, 10, 31)])
def test_an_upgraded_standard_ticket_carries_its_peak_day(upgrade_day: date) -> None:
    claim = _claim(TicketType.STANDARD, upgrade_day=upgrade_day)
    verified = verify_code(_code(claim), KEYS)
    assert verified.upgrade_day == upgrade_day
    assert verified.first_day == STANDARD_FIRST_DAY
    assert verified.last_day == max(STANDARD_LAST_DAY, upgrade_day)  # 10-31 lies after the last standard day


def test_a_code_as_typed_verifies() -> None:
    code = _code()
    typed = "  " + grouped(code).lower().replace("-", " - ") + "\n"
    assert normalize(typed) == code
    assert verify_code(typed, KEYS).ticket_id == 4711


def test_grouped_shows_groups_of_six() -> None:
    code = _code()
    groups = grouped(code).split("-")
    assert len(groups) == -(-CODE_CHARS // GROUP) == 22
    assert all(len(group) == GROUP for group in groups[:-1])
    assert groups[-1] == code[-1]
    assert "".join(groups) == code


@pytest.mark.parametrize(
    ("text", "code"),
    [
        ("", "code_malformed"),
        ("TRUNCATED", "code_malformed"),
        ("A" * (CODE_CHARS + 1), "code_malformed"),
        ("0" * CODE_CHARS, "code_malformed"),  # 0, 1, 8, 9 are not base32
        ("8" * CODE_CHARS, "code_malformed"),
        ("=" * CODE_CHARS, "code_malformed"),
        ("é" * CODE_CHARS, "code_malformed"),
    ],
)
def test_what_is_not_a_code_is_malformed(text: str, code: str) -> None:
    assert _refusal(text) == code


def test_truncated_or_extended_genuine_codes_are_malformed() -> None:
    code = _code()
    assert _refusal(code[:-1]) == "code_malformed"
    assert _refusal(code[:100]) == "code_malformed"
    assert _refusal(code + "A") == "code_malformed"
    assert _refusal(code + code) == "code_malformed"


def test_a_non_base32_character_in_a_genuine_code() -> None:
    code = _code()
    assert _refusal(code[:50] + "1" + code[51:]) == "code_malformed"


@pytest.mark.parametrize("position", range(CODE_CHARS))
def test_one_character_changed_anywhere_is_refused(position: int) -> None:
    code = _code()
    for other in ALPHABET:
        if other == code[position]:
            continue
        changed = code[:position] + other + code[position + 1 :]
        assert _refusal(changed) in ("code_malformed", "unknown_signing_key", "code_forged"), (position, other)


def test_a_signature_of_another_key_with_the_same_kid_is_forged() -> None:
    assert _refusal(_code(key=OTHER)) == "code_forged"


def test_an_unknown_key_id() -> None:
    code = _code(_claim(kid=2))
    assert _refusal(code) == "unknown_signing_key"
    assert _refusal(_code(), keys={}) == "unknown_signing_key"
    assert verify_code(code, {2: KEY.public_key()}).kid == 2


def _packed(**changes: int) -> bytes:
    fields = {"kind": ord("V"), "format": 1, "kid": 1, "ticket_id": 9, "type": 3, "first": 3, "last": 176,
              "upgrade": 0xFFFF}  # fmt: skip
    fields.update(changes)
    return struct.pack(LAYOUT, *fields.values())


def test_genuine_bytes_of_a_known_layout_verify() -> None:
    assert verify_code(_signed_raw(_packed()), KEYS).ticket_type == TicketType.STANDARD


@pytest.mark.parametrize(
    "changes",
    [
        {"format": 2},  # an unknown format byte
        {"format": 0},
        {"kind": ord("X")},  # an unknown kind
        {"type": 0x09},  # an unknown ticket type code
        {"type": 0x00},
        {"first": 0xFFFF},  # no first day
        {"last": 0xFFFF},
        {"ticket_id": 0},
    ],
    ids=["format-2", "format-0", "kind-X", "type-9", "type-0", "no-first-day", "no-last-day", "ticket-0"],
)
def test_a_genuinely_signed_claim_of_an_unknown_layout_is_malformed(changes: dict[str, int]) -> None:
    assert _refusal(_signed_raw(_packed(**changes))) == "code_malformed"


def test_a_claim_field_out_of_range_cannot_be_signed() -> None:
    with pytest.raises(ValueError, match="key id"):
        _code(_claim(kid=70000))
    with pytest.raises(ValueError, match="out of range"):
        _code(_claim(ticket_id=2**32))


GENUINE = _code()


@settings(max_examples=300, deadline=None)
@given(position=st.integers(0, CODE_CHARS - 1), replacement=st.sampled_from(ALPHABET))
def test_any_single_character_change_of_a_genuine_code_is_refused(position: int, replacement: str) -> None:
    changed = GENUINE[:position] + replacement + GENUINE[position + 1 :]
    if changed == GENUINE:
        return
    with pytest.raises(CodeRefused):
        verify_code(changed, KEYS)
