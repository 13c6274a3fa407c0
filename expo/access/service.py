"""Issuing credentials, staff logins and authenticating each request's bearer token."""

import asyncio
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from expo.access.models import Credential, Staff, StaffSession
from expo.access.rules import (
    CREDENTIAL_ROLES,
    KEY_PREFIX,
    MAX_FAILED_LOGINS,
    MERCHANT_ROLES,
    SESSION_PREFIX,
    STAFF_ROLES,
    Principal,
    Role,
    hash_password,
    may_log_in,
    new_token,
    password_matches,
    secret_matches,
    split_token,
)
from expo.db import Database
from expo.errors import ExpoError, Unauthorized

LOCKOUT = timedelta(minutes=15)


async def create_credential(
    session: AsyncSession,
    *,
    role: Role,
    label: str,
    province_code: str | None,
    hall: str | None,
    now: datetime,
    merchant_code: str | None = None,
) -> tuple[Credential, str]:
    """Issue an API key for a device or service; the token is returned once and stored only hashed."""
    if role not in CREDENTIAL_ROLES:
        raise ExpoError("invalid_role", f"{role} is not a device or service role")
    if role in (Role.HALL_TERMINAL, Role.HOTLINE_DESK) and province_code is None:
        raise ExpoError("province_required", "a hall terminal or 12580 desk belongs to a province")
    if role == Role.BUREAU and province_code is not None:
        raise ExpoError("province_not_allowed", "the Expo bureau belongs to no province")
    if role == Role.HALL_TERMINAL and not hall:
        raise ExpoError("hall_required", "a hall terminal belongs to a hall")
    if (role in MERCHANT_ROLES) != (merchant_code is not None):
        raise ExpoError("merchant_required", "merchant systems and terminals, and only they, belong to a merchant")
    key_id, token, secret_hash = new_token(KEY_PREFIX)
    credential = Credential(
        key_id=key_id,
        secret_hash=secret_hash,
        role=role.value,
        label=label,
        province_code=province_code,
        hall=hall,
        merchant_code=merchant_code,
        active=True,
        created_at=now,
    )
    session.add(credential)
    await session.flush()
    return credential, token


async def create_staff(
    session: AsyncSession,
    *,
    staff_no: str,
    name: str,
    role: Role,
    province_code: str,
    hall: str | None,
    password: str,
    now: datetime,
) -> Staff:
    """Register a clerk or agent; the password is kept only as an scrypt hash."""
    if role not in STAFF_ROLES:
        raise ExpoError("invalid_role", f"{role} is not a staff role")
    if role == Role.HALL_CLERK and not hall:
        raise ExpoError("hall_required", "a hall clerk belongs to a hall")
    if len(password) < 8:
        raise ExpoError("weak_password", "a staff password has at least 8 characters")
    exists = await session.scalar(select(Staff.id).where(Staff.staff_no == staff_no))
    if exists is not None:
        raise ExpoError("staff_exists", f"staff number {staff_no} is taken", status=409)
    staff = Staff(
        staff_no=staff_no,
        name=name,
        role=role.value,
        province_code=province_code,
        hall=hall,
        password_hash=hash_password(password),
        failed_logins=0,
        active=True,
        created_at=now,
    )
    session.add(staff)
    await session.flush()
    return staff


class LoginRefused(Unauthorized):
    """A refused login; raised after the failure count has been saved."""


async def log_in(
    session: AsyncSession,
    *,
    device: Principal,
    staff_no: str,
    password_correct: bool,
    now: datetime,
    ttl: timedelta,
) -> tuple[str, datetime, Staff]:
    """A clerk or agent logs in at their device; five wrong passwords lock the account for 15 minutes.

    The password was checked beforehand (`password_correct`), outside any lock. A refusal says only
    `invalid_login` (or `account_locked`) so that staff numbers cannot be probed. The caller must commit
    even when LoginRefused is raised, so the failure count sticks.
    """
    staff = await session.scalar(select(Staff).where(Staff.staff_no == staff_no).with_for_update())
    if staff is None or not staff.active:
        raise LoginRefused("invalid_login", "unknown staff number or wrong password")
    if staff.locked_until is not None and staff.locked_until > now:
        raise LoginRefused("account_locked", "too many failed logins; try again later")
    if not password_correct:
        staff.failed_logins += 1
        if staff.failed_logins >= MAX_FAILED_LOGINS:
            staff.locked_until = now + LOCKOUT
            staff.failed_logins = 0
        raise LoginRefused("invalid_login", "unknown staff number or wrong password")
    if not may_log_in(
        staff_role=Role(staff.role), staff_province=staff.province_code, staff_hall=staff.hall, device=device
    ):
        raise ExpoError("wrong_device", "this staff member cannot log in at this device", status=403)
    staff.failed_logins = 0
    staff.locked_until = None
    token_id, token, secret_hash = new_token(SESSION_PREFIX)
    expires_at = now + ttl
    session.add(
        StaffSession(
            token_id=token_id,
            secret_hash=secret_hash,
            staff_id=staff.id,
            credential_id=device.credential_id,
            created_at=now,
            expires_at=expires_at,
        )
    )
    return token, expires_at, staff


async def log_out(session: AsyncSession, *, token: str, now: datetime) -> None:
    """End the session behind a staff token; its token stops working at once."""
    parts = split_token(token)
    if parts is None or parts[0] != SESSION_PREFIX:
        raise ExpoError("not_a_session", "only a staff session can log out", status=400)
    staff_session = await session.scalar(select(StaffSession).where(StaffSession.token_id == parts[1]))
    if staff_session is not None and staff_session.ended_at is None:
        staff_session.ended_at = now


async def authenticate(session: AsyncSession, *, token: str, now: datetime) -> Principal:
    """Resolve a bearer token to its principal; unknown, inactive, ended or expired tokens are refused."""
    parts = split_token(token)
    if parts is None:
        raise Unauthorized("invalid_token", "the bearer token is malformed")
    prefix, public_id, secret = parts
    if prefix == KEY_PREFIX:
        credential = await session.scalar(select(Credential).where(Credential.key_id == public_id))
        if credential is None or not credential.active or not secret_matches(secret, credential.secret_hash):
            raise Unauthorized("invalid_token", "unknown or revoked API key")
        return Principal(
            role=Role(credential.role),
            credential_id=credential.id,
            label=credential.label,
            province_code=credential.province_code,
            hall=credential.hall,
            merchant_code=credential.merchant_code,
        )
    row = (
        await session.execute(
            select(StaffSession, Staff, Credential)
            .join(Staff, Staff.id == StaffSession.staff_id)
            .join(Credential, Credential.id == StaffSession.credential_id)
            .where(StaffSession.token_id == public_id)
        )
    ).one_or_none()
    if row is None:
        raise Unauthorized("invalid_token", "unknown session")
    staff_session, staff, credential = row
    if not secret_matches(secret, staff_session.secret_hash):
        raise Unauthorized("invalid_token", "unknown session")
    if staff_session.ended_at is not None or staff_session.expires_at <= now:
        raise Unauthorized("session_expired", "the session has ended; log in again")
    if not staff.active or not credential.active:
        raise Unauthorized("invalid_token", "the staff member or the device is disabled")
    return Principal(
        role=Role(staff.role),
        credential_id=credential.id,
        label=f"{staff.name} at {credential.label}",
        province_code=staff.province_code,
        hall=staff.hall,
        staff_id=staff.id,
        staff_no=staff.staff_no,
    )


async def attempt_login(
    db: Database, *, device: Principal, staff_no: str, password: str, now: datetime, ttl: timedelta
) -> tuple[str, datetime, Staff]:
    """Log in, keeping the failure count even when the login is refused."""
    async with db.read() as session:
        stored_hash = await session.scalar(select(Staff.password_hash).where(Staff.staff_no == staff_no))
    # scrypt costs tens of milliseconds of CPU: run it in a thread, before any lock is taken.
    correct = stored_hash is not None and await asyncio.to_thread(password_matches, password, stored_hash)
    refusal: LoginRefused | None = None
    async with db.write() as session:
        try:
            return await log_in(session, device=device, staff_no=staff_no, password_correct=correct, now=now, ttl=ttl)
        except LoginRefused as exc:
            refusal = exc
    raise refusal
