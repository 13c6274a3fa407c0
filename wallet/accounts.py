"""Wallet users: opening by SMS, web or in a hall, real-name status and the payment password.

The payment password is kept only as an scrypt hash and checked outside any row lock; five wrong
passwords in a row lock the wallet's password for 15 minutes. A failure is committed in its own
transaction before the refusal is raised, so it counts even though the refused request writes nothing.
"""

import asyncio
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from expo.access.rules import hash_password, password_matches
from expo.db import Database
from expo.errors import Conflict, ExpoError, NotFound
from expo.provinces import normalize_msisdn
from expo.segments import home_province
from wallet.ledger import existing_transfer, lock_account, new_account
from wallet.models import WalletAccount, WalletTransfer, WalletUser
from wallet.rules import AccountClass, AccountKind

MAX_FAILED_PASSWORDS = 5
PASSWORD_LOCKOUT = timedelta(minutes=15)


class OpenedVia(StrEnum):
    SMS = "sms"
    WEB = "web"
    HALL = "hall"


@dataclass(frozen=True)
class Balances:
    """What a user holds: the balance, red packets, and what pending transfers hold of them."""

    balance_fen: int
    red_packet_fen: int
    held_fen: int

    @property
    def available_fen(self) -> int:
        return self.balance_fen + self.red_packet_fen - self.held_fen


def check_payment_password(password: str) -> str:
    """A payment password is 6 digits, typed on a phone keypad or a PIN pad, and not all one digit."""
    if len(password) != 6 or not password.isdigit() or len(set(password)) == 1:
        raise ExpoError("weak_password", "a payment password is six digits, not all the same")
    return password


async def open_account(
    session: AsyncSession,
    *,
    msisdn: str,
    via: OpenedVia,
    password: str | None,
    id_last4: str | None,
    now: datetime,
) -> WalletUser:
    """Open a phone number's wallet; a hall opening verifies the holder's identity (real name)."""
    number = normalize_msisdn(msisdn)
    province = await home_province(session, msisdn=number)
    if via == OpenedVia.HALL and not (id_last4 and len(id_last4) == 4 and id_last4.isalnum()):
        raise ExpoError("id_required", "a hall opening verifies the holder's ID; give its last four characters")
    if password is not None:
        check_payment_password(password)
    if await session.scalar(select(WalletUser.id).where(WalletUser.msisdn == number)) is not None:
        raise Conflict("account_exists", f"{number} already has a wallet")
    password_hash = await asyncio.to_thread(hash_password, password) if password is not None else None
    balance = await new_account(session, code=f"user:{number}", kind=AccountKind.USER, province_code=province, now=now)
    red = await new_account(
        session, code=f"red_packet:{number}", kind=AccountKind.RED_PACKET, province_code=province, now=now
    )
    user = WalletUser(
        msisdn=number,
        province_code=province,
        account_id=balance.id,
        red_packet_account_id=red.id,
        account_class=(AccountClass.REAL_NAME if via == OpenedVia.HALL else AccountClass.BASIC).value,
        opened_via=via.value,
        password_hash=password_hash,
        failed_passwords=0,
        id_last4=id_last4.upper() if via == OpenedVia.HALL and id_last4 else None,
        created_at=now,
    )
    session.add(user)
    await session.flush()
    return user


async def find_user(session: AsyncSession, *, msisdn: str) -> WalletUser:
    """The wallet of a phone number; a number without one is `no_wallet`."""
    number = normalize_msisdn(msisdn)
    user = await session.scalar(select(WalletUser).where(WalletUser.msisdn == number))
    if user is None:
        raise NotFound("no_wallet", f"{number} has no wallet")
    return user


@dataclass(frozen=True)
class LockedWallet:
    """A wallet whose balance row this transaction holds, and what its request's key already made."""

    user: WalletUser
    balance: WalletAccount
    replay: WalletTransfer | None


async def lock_wallet(session: AsyncSession, *, msisdn: str, idempotency_key: str) -> LockedWallet:
    """Lock a wallet's balance, then look its key up: a duplicate sent at the same time waits on the lock
    and then finds the first one's transfer instead of colliding with it on the key."""
    user = await find_user(session, msisdn=msisdn)
    balance = await lock_account(session, user.account_id)
    return LockedWallet(user, balance, await existing_transfer(session, idempotency_key=idempotency_key))


async def verify_real_name(session: AsyncSession, *, msisdn: str, id_last4: str) -> WalletUser:
    """A hall clerk has checked the holder's ID: the wallet becomes real-name, with higher limits."""
    if not (len(id_last4) == 4 and id_last4.isalnum()):
        raise ExpoError("id_required", "give the last four characters of the holder's ID")
    user = await find_user(session, msisdn=msisdn)
    user.account_class = AccountClass.REAL_NAME.value
    user.id_last4 = id_last4.upper()
    await session.flush()
    return user


async def set_password(session: AsyncSession, *, user: WalletUser, password: str) -> None:
    """Set or replace the payment password (the caller has proved the phone with an SMS code or the old password)."""
    check_payment_password(password)
    user.password_hash = await asyncio.to_thread(hash_password, password)
    user.failed_passwords = 0
    user.locked_until = None


async def verify_password(db: Database, *, msisdn: str, password: str, now: datetime) -> None:
    """The user confirmed with the payment password; wrong ones count towards a 15-minute lock."""
    async with db.read() as session:
        user = await find_user(session, msisdn=msisdn)
    if user.locked_until is not None and user.locked_until > now:
        raise ExpoError("password_locked", "too many wrong passwords; try again later", status=423)
    if user.password_hash is None:
        raise ExpoError("password_not_set", "this wallet has no payment password yet", status=403)
    correct = await asyncio.to_thread(password_matches, password, user.password_hash)
    if correct and user.failed_passwords == 0:
        return
    async with db.write() as session:
        locked = await session.get(WalletUser, user.id, with_for_update=True, populate_existing=True)
        assert locked is not None
        if locked.locked_until is not None and locked.locked_until > now:
            correct = False
            left = 0
        elif correct:
            locked.failed_passwords = 0
            locked.locked_until = None
        else:
            locked.failed_passwords += 1
            left = MAX_FAILED_PASSWORDS - locked.failed_passwords
            if left <= 0:
                locked.failed_passwords = 0
                locked.locked_until = now + PASSWORD_LOCKOUT
    if not correct:
        if left <= 0:
            raise ExpoError("password_locked", "too many wrong passwords; try again later", status=423)
        raise ExpoError("wrong_password", "the payment password is wrong", status=403, attempts_left=left)


async def balances_of(session: AsyncSession, *, user: WalletUser) -> Balances:
    """The user's balance and red packets as stored (always equal to their postings)."""
    rows = (
        await session.execute(
            select(WalletAccount.id, WalletAccount.balance, WalletAccount.held).where(
                WalletAccount.id.in_((user.account_id, user.red_packet_account_id))
            )
        )
    ).all()
    by_id = {row.id: row for row in rows}
    main, red = by_id[user.account_id], by_id[user.red_packet_account_id]
    return Balances(balance_fen=main.balance, red_packet_fen=red.balance, held_fen=main.held + red.held)
