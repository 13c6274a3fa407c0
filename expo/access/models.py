"""Credentials, staff and staff sessions; secrets are stored only as hashes."""

from datetime import datetime

from sqlalchemy import ForeignKey, LargeBinary, String
from sqlalchemy.orm import Mapped, mapped_column

from expo.db import Base


class Credential(Base):
    """A device or service API key: a hall terminal, a 12580 desk, the web front, a courier, an admin."""

    __tablename__ = "credentials"

    id: Mapped[int] = mapped_column(primary_key=True)
    key_id: Mapped[str] = mapped_column(String(32), unique=True)
    secret_hash: Mapped[bytes] = mapped_column(LargeBinary(32))
    role: Mapped[str] = mapped_column(String(20))
    label: Mapped[str] = mapped_column(String(100))
    province_code: Mapped[str | None] = mapped_column(String(2))
    hall: Mapped[str | None] = mapped_column(String(64))
    merchant_code: Mapped[str | None] = mapped_column(String(32))
    active: Mapped[bool] = mapped_column(default=True)
    created_at: Mapped[datetime]


class Staff(Base):
    """A hall clerk or a 12580 agent, who logs in at a device of their province."""

    __tablename__ = "staff"

    id: Mapped[int] = mapped_column(primary_key=True)
    staff_no: Mapped[str] = mapped_column(String(32), unique=True)
    name: Mapped[str] = mapped_column(String(100))
    role: Mapped[str] = mapped_column(String(20))
    province_code: Mapped[str] = mapped_column(String(2))
    hall: Mapped[str | None] = mapped_column(String(64))
    password_hash: Mapped[str] = mapped_column(String(200))
    failed_logins: Mapped[int] = mapped_column(default=0)
    locked_until: Mapped[datetime | None]
    active: Mapped[bool] = mapped_column(default=True)
    created_at: Mapped[datetime]


class StaffSession(Base):
    """A clerk's or agent's login at one device; its token is the bearer credential until it expires."""

    __tablename__ = "staff_sessions"

    id: Mapped[int] = mapped_column(primary_key=True)
    token_id: Mapped[str] = mapped_column(String(32), unique=True)
    secret_hash: Mapped[bytes] = mapped_column(LargeBinary(32))
    staff_id: Mapped[int] = mapped_column(ForeignKey("staff.id"), index=True)
    credential_id: Mapped[int] = mapped_column(ForeignKey("credentials.id"), index=True)
    created_at: Mapped[datetime]
    expires_at: Mapped[datetime]
    ended_at: Mapped[datetime | None]
