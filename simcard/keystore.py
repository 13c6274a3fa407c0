"""Key files: the national root keys, a province's exported keys and a gate SAM's keys, JSON with mode 0600.

A key file is created exclusively (never overwritten) and refused on load when its mode lets anyone
but its owner read it. Keys travel as `KeySet`, whose repr never shows the bytes.
"""

import json
import os
import secrets
import stat
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from simcard.keys import KEY_BYTES, KEY_TYPES, KEY_VALIDATE, KeySet, province_bcd, province_key

KIND_ROOT = "expo-root-keys"
KIND_PROVINCE = "expo-province-keys"
KIND_SAM = "expo-sam-keys"


class KeyFileError(ValueError):
    """A key file that is missing, malformed, of the wrong kind or readable by others."""


@dataclass(frozen=True)
class ProvinceKeys:
    """A province centre's keys: K_prov for every key type, for one province and key version."""

    province: str
    keys: KeySet


@dataclass(frozen=True)
class SamKeys:
    """What a gate's SAM holds: the VALIDATE root key (to derive any card's VALIDATE key) and its version."""

    version: int
    validate_root: bytes = field(repr=False)


def write_new_key_file(path: Path, document: dict[str, object]) -> None:
    """Create a 0600 key file; an existing file is never overwritten."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError as error:
        raise KeyFileError(f"{path} exists; key files are never overwritten") from error
    with os.fdopen(fd, "w") as out:
        os.fchmod(out.fileno(), 0o600)
        json.dump(document, out, indent=1)
        out.flush()
        os.fsync(out.fileno())


def replace_key_file(path: Path, document: dict[str, object]) -> None:
    """Replace a key file atomically (a new 0600 file renamed over it): a reader sees the old or the new one."""
    staged = path.with_name(f".{path.name}.new")
    staged.unlink(missing_ok=True)
    write_new_key_file(staged, document)
    os.replace(staged, path)


def read_key_file(path: Path, kind: str) -> dict[str, object]:
    """A key file's document, refused when others may read it or it is not of `kind`."""
    try:
        mode = path.stat().st_mode
        if stat.S_IMODE(mode) & 0o077:
            raise KeyFileError(f"{path} is readable by others (mode {stat.S_IMODE(mode):o}); chmod 600 it")
        document = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as error:
        raise KeyFileError(f"{path}: cannot read a key file ({type(error).__name__})") from error
    if not isinstance(document, dict) or document.get("kind") != kind:
        raise KeyFileError(f"{path} is not a {kind} file")
    return document


def _keys_to_json(keys: KeySet) -> dict[str, str]:
    return {f"{key_type:02x}": keys[key_type].hex() for key_type in KEY_TYPES}


def _keys_from_json(document: dict[str, object], path: Path) -> KeySet:
    try:
        raw = document["keys"]
        version = document["key_version"]
        if not isinstance(raw, dict) or not isinstance(version, int):
            raise TypeError("keys is an object and key_version a number")
        keys = KeySet({key_type: bytes.fromhex(raw[f"{key_type:02x}"]) for key_type in KEY_TYPES}, version=version)
    except (KeyError, TypeError, ValueError) as error:
        raise KeyFileError(f"{path}: malformed keys ({type(error).__name__})") from error
    if any(len(key) != KEY_BYTES for key in keys.values()) or not 0 <= version <= 0xFF:
        raise KeyFileError(f"{path}: keys are AES-128 (16 bytes) with a one-byte version")
    return keys


def generate_root_keys(path: Path | str, *, key_version: int = 1) -> KeySet:
    """Three fresh random AES-128 root keys (ISSUE, VALIDATE, AUDIT) in a new 0600 file."""
    keys = KeySet({key_type: secrets.token_bytes(KEY_BYTES) for key_type in KEY_TYPES}, version=key_version)
    write_new_key_file(Path(path), {"kind": KIND_ROOT, "key_version": key_version, "keys": _keys_to_json(keys)})
    return keys


def load_root_keys(path: Path | str) -> KeySet:
    """The root keys from a root key file."""
    return _keys_from_json(read_key_file(Path(path), KIND_ROOT), Path(path))


def export_province_keys(root: Mapping[int, bytes], province: str) -> KeySet:
    """K_prov[t] for one province from the root keys, for t = ISSUE, VALIDATE, AUDIT."""
    version = root.version if isinstance(root, KeySet) else 1
    return KeySet({t: province_key(root[t], province, t) for t in KEY_TYPES}, version=version)


def write_province_keys(path: Path | str, province: str, keys: KeySet) -> None:
    """A new 0600 province key file."""
    province_bcd(province)
    document = {"kind": KIND_PROVINCE, "province": province, "key_version": keys.version, "keys": _keys_to_json(keys)}
    write_new_key_file(Path(path), document)


def load_province_keys(path: Path | str) -> ProvinceKeys:
    """A province's keys from its key file."""
    document = read_key_file(Path(path), KIND_PROVINCE)
    province = document.get("province")
    if not isinstance(province, str):
        raise KeyFileError(f"{path}: no province")
    return ProvinceKeys(province, _keys_from_json(document, Path(path)))


def export_sam_keys(root: KeySet) -> SamKeys:
    """The SAM's share of the root keys: VALIDATE only, so a stolen gate can neither issue nor audit."""
    return SamKeys(version=root.version, validate_root=root[KEY_VALIDATE])


def write_sam_keys(path: Path | str, keys: SamKeys) -> None:
    """A new 0600 SAM key file."""
    document = {"kind": KIND_SAM, "key_version": keys.version, "validate_root": keys.validate_root.hex()}
    write_new_key_file(Path(path), document)


def load_sam_keys(path: Path | str) -> SamKeys:
    """A SAM's keys from its key file."""
    document = read_key_file(Path(path), KIND_SAM)
    try:
        version, raw = document["key_version"], document["validate_root"]
        if not isinstance(version, int) or not isinstance(raw, str):
            raise TypeError("key_version is a number and validate_root a hex string")
        key = bytes.fromhex(raw)
    except (KeyError, TypeError, ValueError) as error:
        raise KeyFileError(f"{path}: malformed SAM keys ({type(error).__name__})") from error
    if len(key) != KEY_BYTES or not 0 <= version <= 0xFF:
        raise KeyFileError(f"{path}: the SAM key is AES-128 (16 bytes) with a one-byte version")
    return SamKeys(version=version, validate_root=key)
