"""A card's whole persistent state (what the card file holds); immutable, so a failed commit changes nothing.

Pure.
"""

from collections.abc import Mapping
from dataclasses import dataclass, field, replace

from simcard.apdu import AID

SLOTS = 4
LOG_KEEP = 32
CTR_MAX = 0xFFFFFFFF


@dataclass(frozen=True)
class CardState:
    """Identity, keys (hidden from repr), the transaction counter, 4 ticket slots and the log (oldest first)."""

    csn: bytes
    province: str
    key_version: int
    keys: Mapping[int, bytes] = field(repr=False)
    ctr: int = 0
    slots: tuple[bytes | None, ...] = (None,) * SLOTS
    log: tuple[bytes, ...] = ()
    aid: bytes = AID

    def slot(self, number: int) -> bytes | None:
        """The record in slot 1-4, or None when empty or out of range."""
        return self.slots[number - 1] if 1 <= number <= len(self.slots) else None

    def with_slot(self, number: int, record: bytes, *, log_entry: bytes) -> "CardState":
        """A new state with slot `number` holding `record` and one more log entry: one commit."""
        slots = list(self.slots)
        slots[number - 1] = record
        return replace(self, slots=tuple(slots), log=(*self.log, log_entry)[-LOG_KEEP:])

    def with_next_ctr(self) -> "CardState":
        """The state with CTR + 1 (the caller checks CTR_MAX first)."""
        return replace(self, ctr=self.ctr + 1)

    def log_entry(self, newest: int) -> bytes | None:
        """The n-th newest log entry (1 = newest), or None."""
        return self.log[-newest] if 1 <= newest <= len(self.log) else None

    def occupied(self) -> tuple[int, ...]:
        """The numbers of the slots holding a record."""
        return tuple(number for number, raw in enumerate(self.slots, start=1) if raw is not None)
