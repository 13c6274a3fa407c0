"""The gate's SAM (in software): derives any Expo card's VALIDATE key from the VALIDATE root key.

Only cards of the 31 provincial companies exist, so a CSN naming any other province is `unknown_card`.
K_prov[VALIDATE] is derived once per province and kept, so a tap costs one CMAC for its card key.
"""

from pathlib import Path

from expo.provinces import PROVINCES
from gates.errors import GateError
from simcard.keys import KEY_VALIDATE, KeySet, card_key, province_key, province_of_csn
from simcard.keystore import SamKeys, export_sam_keys, load_sam_keys

__all__ = ["Sam", "SamKeys", "load_sam"]


class Sam:
    """A SAM holding the VALIDATE root key of one key version."""

    def __init__(self, keys: SamKeys) -> None:
        self.version = keys.version
        self._root = keys.validate_root
        self._province_keys: dict[str, bytes] = {}

    def __repr__(self) -> str:
        return f"Sam(version={self.version}, key hidden)"

    @classmethod
    def from_root(cls, root: KeySet) -> "Sam":
        """A SAM made straight from the root keys (the volume emulator and tests, which hold them anyway)."""
        return cls(export_sam_keys(root))

    def card_key(self, csn: bytes) -> bytes:
        """K_card[VALIDATE] of the card with this CSN; GateError `unknown_card` for a CSN of no province."""
        try:
            province = province_of_csn(csn)
        except ValueError:
            raise GateError("unknown_card", "the card's serial number names no province") from None
        prov_key = self._province_keys.get(province)
        if prov_key is None:
            if province not in PROVINCES:
                raise GateError("unknown_card", f"no provincial company {province} issues Expo cards")
            prov_key = self._province_keys[province] = province_key(self._root, province, KEY_VALIDATE)
        return card_key(prov_key, csn, KEY_VALIDATE)


def load_sam(path: Path | str) -> Sam:
    """The SAM of a SAM key file (`expo card keys export-sam`)."""
    return Sam(load_sam_keys(path))
