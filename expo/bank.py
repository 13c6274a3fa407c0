"""The bank gateway boundary: card and online-banking charges, payouts to cards, status queries and refunds.

Banks de-duplicate on the merchant's reference, so repeating a charge with the same reference never
charges twice. `InMemoryBank` stands in for a real acquirer; like a payment provider's test cards, the
last four digits of the account choose its behaviour, so every worker of a server agrees on the outcome:
  ...0002 declines; ...0003 charges but the answer times out (a query later says approved);
  ...0004 answers "pending" and confirms late (by query or by a signed notification);
  anything else approves at once.
A payout (a wallet withdrawal to a card) to ...0002 is declined at once; any other is accepted as "pending"
and paid within working days, so a later query says approved.
"""

import asyncio
import hashlib
import hmac
from dataclasses import dataclass
from enum import StrEnum
from typing import Protocol


class BankStatus(StrEnum):
    APPROVED = "approved"
    DECLINED = "declined"
    PENDING = "pending"


@dataclass(frozen=True)
class BankResult:
    """What the bank said about one reference."""

    status: BankStatus
    bank_ref: str | None = None
    reason: str | None = None


class BankTimeout(Exception):
    """The bank did not answer in time; the charge may or may not have happened."""


class BankGateway(Protocol):
    """A bank or acquirer reached over the network."""

    async def charge(self, *, reference: str, account: str, amount_fen: int) -> BankResult: ...

    async def query(self, *, reference: str, account: str) -> BankResult:
        """The bank's current answer for a reference; `account` is the masked account the platform kept."""
        ...

    async def refund(self, *, reference: str, amount_fen: int) -> BankResult: ...

    async def payout(self, *, reference: str, account: str, amount_fen: int) -> BankResult:
        """Pay money out to a card or account; banks answer "pending" and pay within 1-3 working days."""
        ...


def mask_account(account: str) -> str:
    """Only the last four digits of a card or account are ever stored."""
    return "*" * 4 + account[-4:]


def _bank_ref(reference: str) -> str:
    return "B" + hashlib.sha256(reference.encode()).hexdigest()[:15].upper()


class InMemoryBank:
    """A deterministic bank for tests, the demo and load runs; see the module docstring for its cards."""

    def __init__(self, *, latency_seconds: float = 0.0) -> None:
        self._latency = latency_seconds

    async def charge(self, *, reference: str, account: str, amount_fen: int) -> BankResult:
        if self._latency:
            await asyncio.sleep(self._latency)
        if amount_fen <= 0:
            return BankResult(BankStatus.DECLINED, reason="invalid_amount")
        if account.endswith("0002"):
            return BankResult(BankStatus.DECLINED, reason="insufficient_funds")
        if account.endswith("0003"):
            raise BankTimeout(reference)
        if account.endswith("0004"):
            return BankResult(BankStatus.PENDING, bank_ref=_bank_ref(reference))
        return BankResult(BankStatus.APPROVED, bank_ref=_bank_ref(reference))

    async def query(self, *, reference: str, account: str) -> BankResult:
        if account.endswith("0002"):
            return BankResult(BankStatus.DECLINED, reason="insufficient_funds")
        return BankResult(BankStatus.APPROVED, bank_ref=_bank_ref(reference))

    async def refund(self, *, reference: str, amount_fen: int) -> BankResult:
        return BankResult(BankStatus.APPROVED, bank_ref=_bank_ref("refund:" + reference))

    async def payout(self, *, reference: str, account: str, amount_fen: int) -> BankResult:
        if self._latency:
            await asyncio.sleep(self._latency)
        if amount_fen <= 0:
            return BankResult(BankStatus.DECLINED, reason="invalid_amount")
        if account.endswith("0002"):
            return BankResult(BankStatus.DECLINED, reason="account_closed")
        return BankResult(BankStatus.PENDING, bank_ref=_bank_ref("payout:" + reference))


def sign_notification(secret: str, body: bytes) -> str:
    """The HMAC-SHA256 a bank puts on its asynchronous payment notifications."""
    return hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def notification_is_genuine(secret: str, body: bytes, signature: str) -> bool:
    """Check a notification's signature; without a configured secret nothing is genuine."""
    if not secret:
        return False
    # Compare bytes: compare_digest refuses str with non-ASCII characters, and the header is the sender's.
    return hmac.compare_digest(sign_notification(secret, body).encode(), signature.encode())
