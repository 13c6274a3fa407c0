"""The card file: one card's state as JSON (docs/card.md), replaced atomically, readable by its owner only.

A save writes a temporary file in the same folder, fsyncs it, renames it over the old file and fsyncs
the folder, so a crash at any point leaves either the old or the new card, never a mix.
"""

import contextlib
import json
import os
import tempfile
from pathlib import Path
from typing import Any

from simcard.keys import KEY_BYTES, KEY_TYPES, KeySet
from simcard.record import LOG_BYTES, RECORD_BYTES
from simcard.state import CTR_MAX, LOG_KEEP, SLOTS, CardState

FILE_MODE = 0o600


class CardFileError(ValueError):
    """A card file that is not a valid Expo card."""


def state_to_json(state: CardState) -> dict[str, Any]:
    """The card file's JSON document for a state."""
    return {
        "aid": state.aid.hex(),
        "csn": state.csn.hex(),
        "province": state.province,
        "key_version": state.key_version,
        "keys": {f"{key_type:02x}": key.hex() for key_type, key in sorted(state.keys.items())},
        "ctr": state.ctr,
        "slots": [None if raw is None else raw.hex() for raw in state.slots],
        "log": [entry.hex() for entry in state.log],
    }


def _hex(value: object, size: int, what: str) -> bytes:
    if not isinstance(value, str):
        raise CardFileError(f"{what} must be a hex string")
    try:
        raw = bytes.fromhex(value)
    except ValueError as error:
        raise CardFileError(f"{what} is not hex") from error
    if len(raw) != size:
        raise CardFileError(f"{what} must be {size} bytes")
    return raw


def state_from_json(document: object) -> CardState:
    """A state from the card file's JSON document; CardFileError naming the first bad field."""
    if not isinstance(document, dict):
        raise CardFileError("a card file is a JSON object")
    try:
        keys = KeySet(
            {int(name, 16): _hex(value, KEY_BYTES, f"key {name}") for name, value in dict(document["keys"]).items()},
            version=int(document["key_version"]),
        )
        slots, log, ctr = list(document["slots"]), list(document["log"]), document["ctr"]
        state = CardState(
            csn=_hex(document["csn"], 8, "csn"),
            province=str(document["province"]),
            key_version=keys.version,
            keys=keys,
            ctr=ctr,
            slots=tuple(None if raw is None else _hex(raw, RECORD_BYTES, "slot") for raw in slots),
            log=tuple(_hex(entry, LOG_BYTES, "log entry") for entry in log),
            aid=_hex(document["aid"], 10, "aid"),
        )
    except (KeyError, TypeError, ValueError) as error:
        raise CardFileError(f"not an Expo card file: {error}") from error
    if set(keys) - set(KEY_TYPES) or not isinstance(ctr, int) or not 0 <= ctr <= CTR_MAX:
        raise CardFileError("unknown key types or a CTR out of range")
    if len(state.slots) != SLOTS or len(state.log) > LOG_KEEP or not 0 <= state.key_version <= 0xFF:
        raise CardFileError(f"a card has {SLOTS} slots, at most {LOG_KEEP} log entries and a one-byte key version")
    return state


class CardFile:
    """Load and save card files."""

    @staticmethod
    def load(path: Path | str) -> CardState:
        """The card in the file at path."""
        try:
            document = json.loads(Path(path).read_text())
        except json.JSONDecodeError as error:
            raise CardFileError(f"{path}: not JSON") from error
        return state_from_json(document)

    @staticmethod
    def save(path: Path | str, state: CardState) -> None:
        """Replace the file atomically with this state (temp file, fsync, os.replace, mode 0600)."""
        write_atomically(Path(path), json.dumps(state_to_json(state), indent=1).encode())


def write_atomically(path: Path, content: bytes) -> None:
    """Write content to path so a crash leaves the old file or the new one, with mode 0600."""
    folder = path.parent
    fd, temp_name = tempfile.mkstemp(dir=folder, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as out:
            os.fchmod(out.fileno(), FILE_MODE)
            out.write(content)
            out.flush()
            os.fsync(out.fileno())
        os.replace(temp_name, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temp_name)
        raise
    _fsync_folder(folder)


def _fsync_folder(folder: Path) -> None:
    # The rename is durable only once the folder's entry is on disk.
    with contextlib.suppress(OSError):
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
