"""Idempotency keys: every request that creates or moves money runs once per (caller, key).

A key is claimed in its own short transaction; the work and the stored reply then commit together,
so a reply exists exactly when the work happened. A replay gets the stored reply; the same key with
another body is refused; a duplicate while the first is still running gets 409. A claim whose request
died (its work rolled back) is taken over once its lock has lapsed.
"""

import hashlib
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import msgspec
from sqlalchemy import LargeBinary, String, UniqueConstraint, delete, select, update
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Mapped, mapped_column

from expo.db import Base, Database
from expo.errors import Conflict, ExpoError

MAX_KEY_LENGTH = 100


class IdempotencyRecord(Base):
    """One caller's use of one Idempotency-Key, with the reply once the work is done."""

    __tablename__ = "idempotency_records"
    __table_args__ = (UniqueConstraint("scope", "key"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    scope: Mapped[str] = mapped_column(String(40))
    key: Mapped[str] = mapped_column(String(MAX_KEY_LENGTH))
    fingerprint: Mapped[bytes] = mapped_column(LargeBinary(32))
    state: Mapped[str] = mapped_column(String(10))
    response_status: Mapped[int | None]
    response_body: Mapped[bytes | None] = mapped_column(LargeBinary)
    created_at: Mapped[datetime]
    locked_until: Mapped[datetime]


@dataclass(frozen=True)
class StoredReply:
    """The reply given the first time, returned again on every replay."""

    status: int
    body: bytes


# Short secrets a body may carry (payment passwords, PINs, SMS codes). A fast hash of a body holding
# a six-digit password would give the password away to a brute force, so they are left out of the
# fingerprint: the same request with another password replays the caller's own earlier answer.
SECRET_FIELDS = frozenset({"password", "pin", "code"})


def fingerprint_of(*, method: str, path: str, body: bytes) -> bytes:
    """What makes two requests 'the same': method, path and the body, less any secret fields in it."""
    return hashlib.sha256(b"\0".join((method.encode(), path.encode(), _without_secrets(body)))).digest()


def _without_secrets(body: bytes) -> bytes:
    try:
        document = msgspec.json.decode(body)
    except (msgspec.DecodeError, RecursionError):
        return body
    if not _holds_secret(document):
        return body
    return msgspec.json.encode(_strip(document), order="sorted")


def _holds_secret(value: Any) -> bool:
    if isinstance(value, dict):
        return any(key in SECRET_FIELDS or _holds_secret(item) for key, item in value.items())
    if isinstance(value, list):
        return any(_holds_secret(item) for item in value)
    return False


def _strip(value: Any) -> Any:
    if isinstance(value, dict):
        return {key: _strip(item) for key, item in value.items() if key not in SECRET_FIELDS}
    if isinstance(value, list):
        return [_strip(item) for item in value]
    return value


def check_key(key: str | None) -> str:
    """A key is required, 1-100 printable ASCII characters."""
    if key is None or key == "":
        raise ExpoError("idempotency_key_required", "this request needs an Idempotency-Key header", status=400)
    if len(key) > MAX_KEY_LENGTH or not key.isascii() or not key.isprintable():
        raise ExpoError("invalid_idempotency_key", "an Idempotency-Key is 1-100 printable ASCII characters", status=400)
    return key


async def claim(
    db: Database, *, scope: str, key: str, fingerprint: bytes, now: datetime, lock: timedelta
) -> int | StoredReply:
    """Claim a key for this request (its record id), or return the reply already given for it."""
    try:
        async with db.write() as session:
            claimed = await session.scalar(
                _insert_new(db)
                .values(
                    scope=scope,
                    key=key,
                    fingerprint=fingerprint,
                    state="running",
                    created_at=now,
                    locked_until=now + lock,
                )
                .on_conflict_do_nothing(index_elements=["scope", "key"])
                .returning(IdempotencyRecord.id)
            )
            if claimed is not None:
                return int(claimed)
            record = await session.scalar(
                select(IdempotencyRecord)
                .where(IdempotencyRecord.scope == scope, IdempotencyRecord.key == key)
                .with_for_update()
            )
            if record is None:  # claimed and released again between our two statements
                raise Conflict("request_in_progress", "a request with this Idempotency-Key is still running")
            if record.fingerprint != fingerprint:
                raise ExpoError(
                    "idempotency_key_reused",
                    "this Idempotency-Key was used for a different request",
                    status=422,
                )
            if record.state == "done":
                assert record.response_status is not None
                assert record.response_body is not None
                return StoredReply(record.response_status, record.response_body)
            if record.locked_until > now:
                raise Conflict("request_in_progress", "a request with this Idempotency-Key is still running")
            # The earlier attempt died before its work committed: take the key over.
            record.locked_until = now + lock
            return record.id
    except IntegrityError as exc:
        raise Conflict("request_in_progress", "a request with this Idempotency-Key is still running") from exc


def _insert_new(db: Database) -> Any:
    """INSERT ... ON CONFLICT DO NOTHING, in the database's own dialect (both spell it alike)."""
    return (sqlite_insert if db.sqlite else postgresql_insert)(IdempotencyRecord)


async def complete(session: AsyncSession, *, record_id: int, status: int, body: bytes) -> None:
    """Store the reply in the same transaction as the work it describes."""
    await session.execute(
        update(IdempotencyRecord)
        .where(IdempotencyRecord.id == record_id, IdempotencyRecord.state == "running")
        .values(state="done", response_status=status, response_body=body)
    )


async def complete_alone(db: Database, *, record_id: int, status: int, body: bytes) -> None:
    """Store a refusal as the key's reply: a declined request is answered the same way on replay."""
    async with db.write() as session:
        await complete(session, record_id=record_id, status=status, body=body)


async def release(db: Database, *, record_id: int) -> None:
    """Free a key whose request failed unexpectedly, so the client may retry it."""
    async with db.write() as session:
        await session.execute(
            delete(IdempotencyRecord).where(IdempotencyRecord.id == record_id, IdempotencyRecord.state == "running")
        )
