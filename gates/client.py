"""The service's HTTP API as a gate device calls it: upload journal lines, pull the revocation list and the public
keys of ticket codes.

The gate authenticates with its own credential (role gate, bearer token). Every refusal becomes a
`ServiceError` with the problem document's `code` and the HTTP status; a service that cannot be reached
(connection refused, timeout, a reply cut off) is `service_unreachable`. Neither call is retried here: an
upload is idempotent on the server (gate id + seq), so the sync simply sends it again later.
"""

from collections.abc import Mapping
from typing import TypeVar

import httpx
import msgspec
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from gates.wire import GateBatch, GateEntry
from hall_terminals.client import ServiceClient
from hall_terminals.errors import ServiceError
from ticketing.signing_keys import public_keys_from

TIMEOUT = 5.0  # seconds; the sync retries later, so a slow service must not hold a gate's thread for long
REVOCATION_PAGE = 5000  # the server's own maximum page

T = TypeVar("T")


class Conflict(msgspec.Struct):
    """A line the server stored but reports (revoked ticket entered, forced admission, late upload, ...)."""

    seq: int
    code: str


class UploadReply(msgspec.Struct):
    """`POST /v1/gate-entries`: how many lines were new, how many the server already had, what it flagged."""

    gate_id: int
    stored: int
    duplicates: int
    conflicts: list[Conflict]


class Revocation(msgspec.Struct):
    """One voided or refunded ticket; `version` orders the list."""

    version: int
    ticket_id: int
    reason: str


class RevocationPage(msgspec.Struct):
    """`GET /v1/gate-revocations`: the revocations after `since`, up to `version`; `more` when cut at the limit."""

    version: int
    revocations: list[Revocation]
    more: bool


class GateClient(ServiceClient):
    """One kept-alive connection to the service, as one registered gate device."""

    def __init__(
        self, base_url: str, token: str, *, timeout: float = TIMEOUT, transport: httpx.BaseTransport | None = None
    ) -> None:
        super().__init__(base_url, token, timeout=timeout, transport=transport)

    def upload(self, gate_id: int, entries: list[GateEntry]) -> UploadReply:
        """Send journal lines; the server stores the new ones and counts the ones it already holds."""
        body = msgspec.to_builtins(GateBatch(gate_id=gate_id, entries=entries))
        return self._fetch("POST", "/v1/gate-entries", UploadReply, body)

    def revocations(self, *, since: int, limit: int = REVOCATION_PAGE) -> RevocationPage:
        """The tickets voided or refunded after revocation-list version `since`, oldest first."""
        return self._fetch("GET", f"/v1/gate-revocations?since={since}&limit={limit}", RevocationPage)

    def public_keys(self) -> Mapping[int, Ed25519PublicKey]:
        """The platform's public keys of vouchers and physical tickets by key id, retired ones included (their
        codes still verify); ServiceError `signing_keys_unavailable` (503) while the service has none."""
        try:
            return public_keys_from(self.ticket_keys())
        except ValueError as error:
            raise ServiceError("unexpected_reply", f"the service's reply is no key list: {error}") from None

    def _fetch(self, method: str, path: str, kind: type[T], body: object = None) -> T:
        # A 2xx the gate cannot read (a captive portal's page, another schema) is no success: nothing may be
        # marked uploaded on it.
        try:
            return msgspec.convert(self.call(method, path, body), kind)
        except (ValueError, msgspec.ValidationError) as error:
            raise ServiceError("unexpected_reply", f"the service's reply is no {kind.__name__}: {error}") from None
