"""The SMS boundary and verification codes.

`SmsGateway` is what the platform texts through; `OutboxSms`, the default, keeps every text in the
database's outbox, where tests, the demo and an operator (`GET /v1/wallet/admin/sms`) can read it.
Verification codes are six random digits, stored salted and hashed, good for five minutes and five tries;
a wrong try is committed in its own transaction before the refusal, so it counts.
"""

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Protocol

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from expo.db import Database
from expo.errors import ExpoError
from wallet.models import SmsCode, SmsMessage

CODE_LIFETIME = timedelta(minutes=5)
MAX_CODE_ATTEMPTS = 5


class SmsGateway(Protocol):
    """Sends a text to a phone."""

    async def send(self, *, msisdn: str, text: str, now: datetime) -> None: ...


class OutboxSms:
    """The default gateway: texts go to the outbox table (a real SMS centre would pick them up from there)."""

    def __init__(self, db: Database) -> None:
        self._db = db

    async def send(self, *, msisdn: str, text: str, now: datetime) -> None:
        async with self._db.write() as session:
            record_text(session, direction="out", msisdn=msisdn, text=text, now=now)


def record_text(session: AsyncSession, *, direction: str, msisdn: str, text: str, now: datetime) -> None:
    """Keep a text sent or received."""
    session.add(SmsMessage(direction=direction, msisdn=msisdn, text=text[:500], created_at=now))


async def texts_for(session: AsyncSession, *, msisdn: str, limit: int = 50) -> list[SmsMessage]:
    """The latest texts to and from a phone, newest first."""
    rows = await session.scalars(
        select(SmsMessage).where(SmsMessage.msisdn == msisdn).order_by(SmsMessage.id.desc()).limit(limit)
    )
    return list(rows.all())


class CodePurpose(StrEnum):
    OPEN = "open"  # opening a wallet on the web
    PASSWORD = "password"  # noqa: S105 -- setting the payment password
    PAYMENT = "payment"  # confirming a held payment


@dataclass(frozen=True)
class IssuedCode:
    """A code to text: the id it is checked against and the digits (never stored, never returned by the API)."""

    code_id: int
    digits: str


def _digest(salt: bytes, digits: str) -> bytes:
    return salt + hashlib.sha256(salt + digits.encode()).digest()


async def issue_code(
    session: AsyncSession, *, msisdn: str, purpose: CodePurpose, transfer_id: int | None, now: datetime
) -> IssuedCode:
    """Make a fresh code for a phone and a purpose (and the held transfer it confirms)."""
    digits = f"{secrets.randbelow(1_000_000):06d}"
    row = SmsCode(
        msisdn=msisdn,
        purpose=purpose.value,
        transfer_id=transfer_id,
        code_hash=_digest(secrets.token_bytes(16), digits),
        attempts=0,
        created_at=now,
        expires_at=now + CODE_LIFETIME,
    )
    session.add(row)
    await session.flush()
    return IssuedCode(code_id=row.id, digits=digits)


async def use_code(
    db: Database,
    *,
    msisdn: str,
    purpose: CodePurpose,
    digits: str,
    now: datetime,
    transfer_id: int | None = None,
) -> None:
    """Spend the phone's latest code for a purpose (and transfer); wrong, used, expired or exhausted is refused."""
    async with db.write() as session:
        query = select(SmsCode).where(SmsCode.msisdn == msisdn, SmsCode.purpose == purpose.value)
        if transfer_id is not None:
            query = query.where(SmsCode.transfer_id == transfer_id)
        code = await session.scalar(query.order_by(SmsCode.id.desc()).limit(1).with_for_update())
        refusal = _refusal(code, now=now)
        if refusal is None:
            assert code is not None
            salt, stored = code.code_hash[:16], code.code_hash
            if hmac.compare_digest(_digest(salt, digits), stored):
                code.used_at = now
                return
            code.attempts += 1
            refusal = ExpoError(
                "wrong_code",
                "the SMS code is wrong",
                status=403,
                attempts_left=MAX_CODE_ATTEMPTS - code.attempts,
            )
    raise refusal


def _refusal(code: SmsCode | None, *, now: datetime) -> ExpoError | None:
    if code is None:
        return ExpoError("no_code", "no SMS code was sent for this", status=403)
    if code.used_at is not None:
        return ExpoError("code_used", "this SMS code was already used; ask for a new one", status=403)
    if code.expires_at <= now:
        return ExpoError("code_expired", "the SMS code has expired; ask for a new one", status=403)
    if code.attempts >= MAX_CODE_ATTEMPTS:
        return ExpoError("code_exhausted", "too many wrong tries; ask for a new code", status=403)
    return None
