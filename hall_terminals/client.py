"""The service's HTTP API as the hall terminal calls it: login, stock, sales, voids, card writes, voucher
exchanges and the public keys that verify them, day close.

Every refusal becomes a `ServiceError` with the problem document's `code`; a service that cannot be reached
is `service_unreachable`. Money-moving calls carry an Idempotency-Key and are retried with the same key when
the connection fails or the service is still busy with it, so a lost reply never sells twice.
"""

import time
import uuid
from types import TracebackType
from typing import Any, Self

import httpx

from hall_terminals.errors import ServiceError

RETRIES = 3
RETRY_PAUSE = 0.3  # seconds between tries of an idempotent call


def new_key() -> str:
    """A fresh Idempotency-Key for one sale, void or exchange."""
    return uuid.uuid4().hex


class ServiceClient:
    """One connection (kept alive) to the service, as the logged-in clerk (or the device, to log in)."""

    def __init__(
        self,
        base_url: str,
        token: str | None = None,
        *,
        timeout: float = 10.0,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        self.http = httpx.Client(base_url=base_url, headers=headers, timeout=timeout, transport=transport)

    def close(self) -> None:
        """Close the connection."""
        self.http.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, value: BaseException | None, traceback: TracebackType | None
    ) -> None:
        self.close()

    def call(
        self, method: str, path: str, body: Any = None, *, key: str | None = None, headers: dict[str, str] | None = None
    ) -> Any:
        """The JSON reply of a 2xx answer; ServiceError otherwise. With a key, retried on lost connections."""
        sent = {**(headers or {}), **({"Idempotency-Key": key} if key else {})}
        for attempt in range(1, RETRIES + 1):
            try:
                reply = self.http.request(method, path, json=body, headers=sent)
            except httpx.HTTPError as error:
                if key is None or attempt == RETRIES:
                    raise ServiceError(
                        "service_unreachable", f"the service at {self.http.base_url} did not answer: {error}"
                    ) from error
                time.sleep(RETRY_PAUSE)
                continue
            if (
                reply.status_code == 409
                and key is not None
                and attempt < RETRIES
                and _code(reply) == "request_in_progress"
            ):
                time.sleep(RETRY_PAUSE)
                continue
            return _checked(reply)
        raise AssertionError("unreachable")

    def login(self, *, device_token: str, staff_no: str, password: str) -> dict[str, Any]:
        """A clerk logs in at this device: the session (token, staff, hall, province, expiry)."""
        body = {"staff_no": staff_no, "password": password}
        reply: dict[str, Any] = self.call(
            "POST", "/v1/sessions", body, headers={"Authorization": f"Bearer {device_token}"}
        )
        return reply

    def stock(self) -> list[dict[str, Any]]:
        """Capacity, sold and available tickets of every peak day."""
        rows: list[dict[str, Any]] = self.call("GET", "/v1/stock")
        return rows

    def card(self, csn: str) -> dict[str, Any]:
        """A card's registry entry: province, status, the number it is registered to."""
        entry: dict[str, Any] = self.call("GET", f"/v1/cards/{csn}")
        return entry

    def register_card(self, *, csn: str, msisdn: str) -> dict[str, Any]:
        """A SIM swap: the card becomes the number's active card."""
        reply: dict[str, Any] = self.call("POST", "/v1/cards/registrations", {"csn": csn, "msisdn": msisdn})
        return reply

    def sell(self, sale: dict[str, Any], *, key: str) -> dict[str, Any]:
        """A hall sale (POST /v1/orders): the paid order with its ticket."""
        order: dict[str, Any] = self.call("POST", "/v1/orders", sale, key=key)
        return order

    def void(self, order_id: int, *, key: str) -> dict[str, Any]:
        """Void a sale of today, before use: the void order."""
        order: dict[str, Any] = self.call("POST", f"/v1/orders/{order_id}/void", {}, key=key)
        return order

    def start_write(self, ticket_id: int, tap: dict[str, Any]) -> dict[str, Any]:
        """Write step 2: the card as read -> a new attempt and its OPEN SESSION (or `state: confirmed`)."""
        step: dict[str, Any] = self.call("POST", f"/v1/tickets/{ticket_id}/card-writes", tap)
        return step

    def write_session(self, write_id: int, response: bytes) -> dict[str, Any]:
        """Write step 3: the card's OPEN SESSION answer -> WRITE TICKET and READ TICKET."""
        step: dict[str, Any] = self.call("POST", f"/v1/card-writes/{write_id}/session", {"response": response.hex()})
        return step

    def write_result(self, write_id: int, *, sw: str, record: str | None) -> dict[str, Any]:
        """Write step 4: the write's status word and the slot read back -> confirmed."""
        step: dict[str, Any] = self.call("POST", f"/v1/card-writes/{write_id}/result", {"sw": sw, "record": record})
        return step

    def ticket_keys(self) -> dict[str, Any]:
        """The platform's public keys for voucher and physical-ticket codes (kind `expo-verify-keys`)."""
        document: dict[str, Any] = self.call("GET", "/v1/ticket-keys")
        return document

    def exchange_voucher(self, *, code: str, into: str, csn: str | None, key: str) -> dict[str, Any]:
        """Redeem a voucher, exactly once: into a physical ticket (its new code) or for the Expo card `csn`."""
        body = {"code": code, "into": into, "csn": csn}
        reply: dict[str, Any] = self.call("POST", "/v1/vouchers/exchange", body, key=key)
        return reply

    def close_batch(self, *, batch_no: int, entries: list[dict[str, Any]]) -> dict[str, Any]:
        """The day close: the open batch of the journal, compared by the platform with its own records."""
        reply: dict[str, Any] = self.call("POST", "/v1/terminal-batches", {"batch_no": batch_no, "entries": entries})
        return reply


def _code(reply: httpx.Response) -> str | None:
    try:
        body = reply.json()
    except ValueError:
        return None
    return body.get("code") if isinstance(body, dict) else None


def _checked(reply: httpx.Response) -> Any:
    if reply.is_success:
        return reply.json()
    try:
        problem = reply.json()
    except ValueError:
        problem = {}
    if not isinstance(problem, dict):
        problem = {}
    code = problem.get("code") or f"http_{reply.status_code}"
    detail = problem.get("detail") or reply.reason_phrase
    known = {"type", "title", "status", "detail", "code", "instance"}
    extra = {k: v for k, v in problem.items() if k not in known}
    raise ServiceError(str(code), str(detail), status=reply.status_code, **extra)
