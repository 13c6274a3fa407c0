"""Personalisation: a new, empty Expo card for a province, its keys diversified from the province keys.

Pure.
"""

from collections.abc import Mapping

from simcard.keys import KEY_TYPES, KeySet, card_key, province_bcd
from simcard.state import CardState

SERIAL_DIGITS = 12


def card_serial_number(province: str, serial: int) -> bytes:
    """CSN = province (2 bytes BCD, 00 dd) || serial (12 BCD digits, 6 bytes)."""
    if not 0 <= serial < 10**SERIAL_DIGITS:
        raise ValueError(f"a card serial has at most {SERIAL_DIGITS} digits")
    return province_bcd(province) + bytes.fromhex(f"{serial:0{SERIAL_DIGITS}d}")


def new_card_state(province: str, serial: int, prov_keys: Mapping[int, bytes], key_version: int = 1) -> CardState:
    """A fresh card: its CSN, K_card[t] = CMAC(K_prov[t], 01 || CSN || AID || t) for every type, CTR 0, empty slots."""
    csn = card_serial_number(province, serial)
    keys = KeySet({t: card_key(prov_keys[t], csn, t) for t in KEY_TYPES}, version=key_version)
    return CardState(csn=csn, province=province, key_version=key_version, keys=keys)
