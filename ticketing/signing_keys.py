"""The platform's signing keys for vouchers and physical tickets: a keyring file, and its public half.

The keyring file (kind `expo-signing-keys`, JSON, mode 0600) holds Ed25519 private keys by key id; the
newest key that is not retired signs. Rotating adds a key and retires the one before: a retired key signs
nothing new but stays in the file, and its public half stays published, so codes it signed verify until
they expire. Terminals and gates hold only the public keys (`GET /v1/ticket-keys`, kind `expo-verify-keys`).
"""

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from types import MappingProxyType
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat, PublicFormat

from simcard.keystore import KeyFileError, read_key_file, replace_key_file, write_new_key_file
from ticketing.signed_codes import MAX_KID, CodeKind, TicketClaim, claim_for, sign_claim

KIND_KEYRING = "expo-signing-keys"
KIND_PUBLIC = "expo-verify-keys"


@dataclass(frozen=True)
class SigningKey:
    """One Ed25519 key of the ring; its private half never shows in a repr."""

    kid: int
    private: Ed25519PrivateKey = field(repr=False)
    created_at: datetime
    retired_at: datetime | None = None

    @property
    def public_bytes(self) -> bytes:
        """The 32-byte raw public key."""
        return self.private.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)


@dataclass(frozen=True)
class Keyring:
    """The signing keys by id; `current` signs."""

    keys: tuple[SigningKey, ...]

    @property
    def current(self) -> SigningKey:
        """The newest key that is not retired."""
        live = [key for key in self.keys if key.retired_at is None]
        if not live:
            raise KeyFileError("the keyring has no key that is not retired")
        return max(live, key=lambda key: key.kid)

    def sign(self, claim: TicketClaim) -> str:
        """The code of a claim, signed by the current key (the claim must name it)."""
        key = self.current
        if claim.kid != key.kid:
            raise ValueError(f"the claim names key {claim.kid}, the current key is {key.kid}")
        return sign_claim(claim, key.private)

    def sign_ticket(
        self, kind: CodeKind, *, ticket_id: int, ticket_type: str, visit_day: date | None, upgrade_day: date | None
    ) -> tuple[TicketClaim, str]:
        """A ticket's claim of `kind` under the current key, and its code."""
        claim = claim_for(
            kind,
            kid=self.current.kid,
            ticket_id=ticket_id,
            ticket_type=ticket_type,
            visit_day=visit_day,
            upgrade_day=upgrade_day,
        )
        return claim, self.sign(claim)

    def public_keys(self) -> Mapping[int, Ed25519PublicKey]:
        """Every key's public half, retired ones included (their codes still verify)."""
        return MappingProxyType({key.kid: key.private.public_key() for key in self.keys})


def _raw_private(key: Ed25519PrivateKey) -> str:
    return key.private_bytes(Encoding.Raw, PrivateFormat.Raw, NoEncryption()).hex()


def _document(keys: tuple[SigningKey, ...]) -> dict[str, object]:
    return {
        "kind": KIND_KEYRING,
        "keys": [
            {
                "kid": key.kid,
                "private": _raw_private(key.private),
                "created_at": key.created_at.isoformat(),
                "retired_at": None if key.retired_at is None else key.retired_at.isoformat(),
            }
            for key in keys
        ],
    }


def generate_keyring(path: Path | str, *, now: datetime) -> Keyring:
    """A new 0600 keyring file with one fresh key, id 1."""
    ring = Keyring((SigningKey(1, Ed25519PrivateKey.generate(), now),))
    write_new_key_file(Path(path), _document(ring.keys))
    return ring


def rotate_keyring(path: Path | str, *, now: datetime) -> Keyring:
    """Add a fresh key (the next id) and retire the keys before it; the file is replaced atomically."""
    ring = load_keyring(path)
    kid = max(key.kid for key in ring.keys) + 1
    if kid > MAX_KID:
        raise KeyFileError(f"{path}: no key id left")
    retired = tuple(
        key if key.retired_at is not None else SigningKey(key.kid, key.private, key.created_at, now)
        for key in ring.keys
    )
    rotated = Keyring((*retired, SigningKey(kid, Ed25519PrivateKey.generate(), now)))
    replace_key_file(Path(path), _document(rotated.keys))
    return rotated


def load_keyring(path: Path | str) -> Keyring:
    """The keyring in a keyring file."""
    document = read_key_file(Path(path), KIND_KEYRING)
    try:
        entries = document["keys"]
        if not isinstance(entries, list) or not entries:
            raise TypeError("keys is a non-empty list")
        keys = tuple(_key(entry) for entry in entries)
    except (KeyError, TypeError, ValueError) as error:
        raise KeyFileError(f"{path}: malformed signing keys ({type(error).__name__})") from error
    if len({key.kid for key in keys}) != len(keys):
        raise KeyFileError(f"{path}: a key id is there twice")
    return Keyring(keys)


def _key(entry: Any) -> SigningKey:
    kid = entry["kid"]
    if not isinstance(kid, int) or not 1 <= kid <= MAX_KID:
        raise ValueError("kid is 1..65535")
    retired = entry.get("retired_at")
    return SigningKey(
        kid=kid,
        private=Ed25519PrivateKey.from_private_bytes(bytes.fromhex(entry["private"])),
        created_at=datetime.fromisoformat(entry["created_at"]),
        retired_at=None if retired is None else datetime.fromisoformat(retired),
    )


def public_document(ring: Keyring) -> dict[str, Any]:
    """The public keys as published to terminals and gates (no private key in it)."""
    return {
        "kind": KIND_PUBLIC,
        "keys": [
            {"kid": key.kid, "public": key.public_bytes.hex(), "retired": key.retired_at is not None}
            for key in ring.keys
        ],
    }


def public_keys_from(document: Any) -> Mapping[int, Ed25519PublicKey]:
    """The public keys of a published document; ValueError when it is not one."""
    try:
        if document["kind"] != KIND_PUBLIC:
            raise ValueError(f"not a {KIND_PUBLIC} document")
        keys = {int(e["kid"]): Ed25519PublicKey.from_public_bytes(bytes.fromhex(e["public"])) for e in document["keys"]}
    except (KeyError, TypeError) as error:
        raise ValueError(f"malformed public keys ({type(error).__name__})") from error
    return MappingProxyType(keys)
