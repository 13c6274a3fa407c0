"""The 13 entrances of the Expo park (8 by land, 1 underground, 4 by water) and the kinds of gate device.

Pure. Codes are the project's own: L1-L8 land gates, U1 the Metro Line 13 station, W1-W4 the ferry piers.
"""

from collections.abc import Mapping
from enum import StrEnum
from types import MappingProxyType

ENTRANCES: Mapping[str, str] = MappingProxyType(
    {
        **{f"L{n}": f"Land entrance {n}" for n in range(1, 9)},
        "U1": "Metro Line 13 (underground)",
        **{f"W{n}": f"Ferry pier {n} (water)" for n in range(1, 5)},
    }
)

GATE_ID_MAX = 0xFFFFFFFF  # the card logs a gate id as 4 bytes; 0 means "no gate"


class DeviceKind(StrEnum):
    """What a registered gate device is: a turnstile gate, a handheld check terminal or a souvenir terminal."""

    GATE = "gate"
    HANDHELD = "handheld"
    SOUVENIR = "souvenir"


def is_entrance(code: str) -> bool:
    """Only the park's 13 entrances exist."""
    return code in ENTRANCES
