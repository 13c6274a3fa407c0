"""What every load run needs: fresh phone numbers, sale bodies, the demo's credentials and the peak days.

Every sale needs a number without an unused mobile ticket, so numbers are dealt out of the shipped
number segments from a random starting point, never twice in one process; two runs against the same
database collide only if their random windows of ~1.5 billion numbers overlap.
"""

import json
import os
import secrets
import uuid
from bisect import bisect_right
from dataclasses import dataclass
from datetime import date, timedelta
from itertools import accumulate
from pathlib import Path
from typing import Any

from expo.provinces import load_shipped_segments

# The service clock of a load run: a working day of the Expo, before the October peak week.
EXPO_CLOCK = "2010-06-01T10:00"
# National Day week: the peak days load runs sell dated tickets for.
OCTOBER_PEAK_DAYS = tuple(date(2010, 10, 1) + timedelta(days=n) for n in range(7))
# The bank stand-in approves every card not ending in 0002, 0003 or 0004 (see expo/bank.py).
APPROVED_CARD = "6222020000000001"
NUMBERS_PER_SEGMENT = 10_000


class NumberSource:
    """Hands out distinct 11-digit mobile numbers from known segments, starting at a random point."""

    def __init__(self, *, start: int | None = None) -> None:
        ranges = load_shipped_segments()
        self._firsts = [int(r.first) for r in ranges]
        sizes = [(int(r.last) - int(r.first) + 1) * NUMBERS_PER_SEGMENT for r in ranges]
        self._starts = [0, *accumulate(sizes)][:-1]
        self._total = sum(sizes)
        self._next = secrets.randbelow(self._total) if start is None else start

    def next(self) -> str:
        """A number no earlier call returned (until ~1.5 billion calls wrap around)."""
        index = self._next % self._total
        self._next += 1
        which = bisect_right(self._starts, index) - 1
        segment, serial = divmod(index - self._starts[which], NUMBERS_PER_SEGMENT)
        return f"{self._firsts[which] + segment:07d}{serial:04d}"


def sale_body(
    *,
    msisdn: str,
    ticket_type: str,
    carrier: str,
    method: str,
    visit_day: date | None = None,
    account: str | None = None,
    quantity: int = 1,
) -> dict[str, Any]:
    """The JSON of POST /v1/orders."""
    payment: dict[str, Any] = {"method": method}
    if account is not None:
        payment["account"] = account
    body: dict[str, Any] = {"msisdn": msisdn, "ticket_type": ticket_type, "carrier": carrier, "payment": payment}
    if visit_day is not None:
        body["visit_day"] = visit_day.isoformat()
    if quantity != 1:
        body["quantity"] = quantity
    return body


def new_idempotency_key() -> str:
    """Every POST /v1/orders carries a key of its own."""
    return uuid.uuid4().hex


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@dataclass(frozen=True)
class Credentials:
    """The demo's device tokens and staff passwords, as `expo seed --demo-principals` wrote them."""

    tokens: dict[str, str]
    passwords: dict[str, str]

    @classmethod
    def load(cls, path: Path | None = None) -> "Credentials":
        """Read credentials.json from `path`, else EXPO_CREDENTIALS, else data/credentials.json."""
        where = path or Path(os.environ.get("EXPO_CREDENTIALS", "data/credentials.json"))
        secrets_file = json.loads(where.read_text())
        return cls(tokens=dict(secrets_file["tokens"]), passwords=dict(secrets_file["passwords"]))

    def login_body(self, staff_no: str) -> dict[str, str]:
        """The JSON of POST /v1/sessions for a staff member."""
        return {"staff_no": staff_no, "password": self.passwords[staff_no]}


def problem_code(status: int, payload: bytes) -> str:
    """The stable `code` of a problem reply, or http_<status> when the body carries none."""
    try:
        code = json.loads(payload).get("code")
    except (ValueError, AttributeError):
        code = None
    return str(code) if code else f"http_{status}"
