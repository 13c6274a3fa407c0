"""The QR exchange terminal's offline half: read a voucher, verify it with the platform's public keys, refuse early.

The terminal keeps the platform's public keys (`GET /v1/ticket-keys`) in its data folder. It fetches them
when the file is missing or unreadable, and once more when a code names a key id it does not hold (the
platform rotated its key since); a code still naming an unknown key is refused. A genuine code is refused
here, before anything is asked of the service, when it is a physical ticket's (`not_a_voucher`) or its
last valid day is before the terminal's Expo-local today (`voucher_expired`).
"""

import json
from collections.abc import Mapping
from datetime import date, datetime
from enum import StrEnum
from pathlib import Path
from typing import Any, Protocol

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from expo.clock import expo_local
from hall_terminals.errors import ServiceError, TerminalError
from hall_terminals.session import write_private
from ticketing.qr import read_qr
from ticketing.signed_codes import CodeKind, CodeRefused, TicketClaim, normalize, verify_code
from ticketing.signing_keys import public_keys_from

KEYS_FILE = "ticket-keys.json"


class Into(StrEnum):
    """What a voucher is exchanged into (the values of the exchange request's `into`)."""

    PHYSICAL = "physical"
    EXPO_CARD = "expo_card"


class KeySource(Protocol):
    """Where the public keys come from (hall_terminals.client.ServiceClient)."""

    def ticket_keys(self) -> dict[str, Any]: ...


class KeyCache:
    """The platform's public keys as this terminal keeps them: fetched when missing, refreshed once per need."""

    def __init__(self, data_dir: Path, source: KeySource) -> None:
        self.path = data_dir / KEYS_FILE
        self.source = source
        self._keys: Mapping[int, Ed25519PublicKey] | None = None
        self._fetched = False

    def keys(self) -> Mapping[int, Ed25519PublicKey]:
        """The kept keys; fetched (and kept) when there are none or the file is unreadable."""
        if self._keys is None:
            self._keys = self._kept()
        if self._keys is None:
            self._keys = self._fetch()
        return self._keys

    def verify(self, text: str) -> TicketClaim:
        """The claim of a genuine code; a code naming a key not kept fetches the keys once before it is refused.

        TerminalError `code_malformed`, `unknown_signing_key`, `code_forged`."""
        try:
            return self._verified(text)
        except CodeRefused as refused:
            raise TerminalError(refused.code, refused.message) from None

    def _verified(self, text: str) -> TicketClaim:
        try:
            return verify_code(text, self.keys())
        except CodeRefused as refused:
            if refused.code != "unknown_signing_key" or self._fetched:
                raise
        self._keys = self._fetch()  # the platform may have rotated its key since the keys were kept
        return verify_code(text, self._keys)

    def _kept(self) -> Mapping[int, Ed25519PublicKey] | None:
        try:
            return public_keys_from(json.loads(self.path.read_text()))
        except (OSError, ValueError):
            return None

    def _fetch(self) -> Mapping[int, Ed25519PublicKey]:
        document = self.source.ticket_keys()
        self._fetched = True
        try:
            keys = public_keys_from(document)
        except ValueError as error:
            raise TerminalError("ticket_keys_invalid", f"the service's public keys are unusable: {error}") from None
        write_private(self.path, document)
        return keys


def voucher_text(*, image: Path | None = None, code: str | None = None) -> str:
    """The code of a voucher: read from a picture (a camera photo or the MMS image) or as typed.

    TerminalError `image_unreadable`, `no_code`, `several_codes` for a picture."""
    if (image is None) == (code is None):
        raise ValueError("a voucher is read from a picture or typed, one of the two")
    if code is not None:
        return normalize(code)
    assert image is not None
    try:
        return normalize(read_qr(image))
    except CodeRefused as refused:
        raise TerminalError(refused.code, refused.message) from None


def check_voucher(text: str, *, keys: KeyCache, today: date) -> TicketClaim:
    """A voucher the service may exchange: genuine, a voucher (not a physical ticket), not expired on `today`."""
    claim = keys.verify(text)
    if claim.kind is not CodeKind.VOUCHER:
        raise TerminalError(
            "not_a_voucher", f"this is the code of physical ticket {claim.ticket_id}, not an exchange voucher"
        )
    if claim.last_day < today:
        raise TerminalError(
            "voucher_expired", f"the voucher of ticket {claim.ticket_id} was valid until {claim.last_day}"
        )
    return claim


def explained(error: ServiceError, *, ticket_id: int) -> TerminalError:
    """The service's refusal for the clerk; `already_exchanged` says where, when and into what."""
    if error.code != "already_exchanged":
        return error
    extra = error.extra
    into = extra.get("into")
    where = f"{extra.get('hall') or 'a hall'} (province {extra.get('province')})"
    hint = f"; if it is not on the card yet: expo terminal write --ticket {ticket_id}" if into == Into.EXPO_CARD else ""
    message = (
        f"the voucher of ticket {ticket_id} was exchanged into {into} at {where}"
        f" on {_local(extra.get('exchanged_at'))}{hint}"
    )
    return TerminalError("already_exchanged", message, **extra)


def _local(instant: object) -> str:
    try:
        return f"{expo_local(datetime.fromisoformat(str(instant))):%Y-%m-%d %H:%M:%S}"
    except ValueError:
        return str(instant)
