"""Pure access rules: roles, which staff may log in at which device, token and password formats."""

import base64
import hashlib
import hmac
import secrets
from dataclasses import dataclass
from enum import StrEnum


class Role(StrEnum):
    """What a caller is; guards decide from it what it may call."""

    ADMIN = "admin"  # the operator's back office: all provinces
    HALL_TERMINAL = "hall_terminal"  # a service-hall terminal before a clerk logs in
    HOTLINE_DESK = "hotline_desk"  # a 12580 call-centre desk before an agent logs in
    WEB = "web"  # the web / over-the-air front end, selling for mobile users
    COURIER = "courier"  # the delivery company confirming cash-on-delivery
    HALL_CLERK = "hall_clerk"  # a clerk logged in at a hall terminal
    HOTLINE_AGENT = "hotline_agent"  # a 12580 agent logged in at a desk
    MERCHANT = "merchant"  # a merchant's own system: remote payments, refunds, bills, vouchers
    POS = "pos"  # a merchant's proximity terminal or reader
    SMS_GATEWAY = "sms_gateway"  # the SMS centre handing over texts users send to the service number
    GATE = "gate"  # one gate device at a park entrance (turnstile, handheld or souvenir terminal)
    FINANCE = "finance"  # a company's finance office (its province), or the wallet platform operator's (none)
    BUREAU = "bureau"  # the Expo bureau's finance office, pulling its settlement statements


CREDENTIAL_ROLES = frozenset(
    {
        Role.ADMIN,
        Role.HALL_TERMINAL,
        Role.HOTLINE_DESK,
        Role.WEB,
        Role.COURIER,
        Role.MERCHANT,
        Role.POS,
        Role.SMS_GATEWAY,
        Role.GATE,
        Role.FINANCE,
        Role.BUREAU,
    }
)
# Devices that act for one merchant.
MERCHANT_ROLES = frozenset({Role.MERCHANT, Role.POS})
STAFF_ROLES = frozenset({Role.HALL_CLERK, Role.HOTLINE_AGENT})
# The device each kind of staff works at.
STAFF_DEVICE = {Role.HALL_CLERK: Role.HALL_TERMINAL, Role.HOTLINE_AGENT: Role.HOTLINE_DESK}

MAX_FAILED_LOGINS = 5

KEY_PREFIX = "exk"
SESSION_PREFIX = "exs"


@dataclass(frozen=True)
class Principal:
    """The authenticated caller of one request."""

    role: Role
    credential_id: int  # the device or service credential the request came through
    label: str
    province_code: str | None  # None: national (sees every province)
    hall: str | None = None
    staff_id: int | None = None
    staff_no: str | None = None
    merchant_code: str | None = None  # merchants' systems and terminals

    def sees_province(self, code: str) -> bool:
        """A province's users see only their province; national callers see all."""
        return self.province_code is None or self.province_code == code


def may_log_in(*, staff_role: Role, staff_province: str, staff_hall: str | None, device: Principal) -> bool:
    """Staff log in only at their own kind of device, in their own province (and hall, for clerks)."""
    if STAFF_DEVICE.get(staff_role) != device.role:
        return False
    if device.province_code != staff_province:
        return False
    return staff_role != Role.HALL_CLERK or device.hall == staff_hall


def new_token(prefix: str) -> tuple[str, str, bytes]:
    """A fresh bearer token: (public id, the token to hand out once, the hash to store)."""
    public_id = secrets.token_hex(8)
    secret = secrets.token_urlsafe(32)
    return public_id, f"{prefix}_{public_id}.{secret}", hash_secret(secret)


def split_token(token: str) -> tuple[str, str, str] | None:
    """(prefix, public id, secret) of a well-formed token, else None."""
    prefix, _, rest = token.partition("_")
    public_id, _, secret = rest.partition(".")
    if prefix not in (KEY_PREFIX, SESSION_PREFIX) or not public_id or not secret:
        return None
    return prefix, public_id, secret


def hash_secret(secret: str) -> bytes:
    """Tokens carry 256 random bits, so a fast hash is safe; passwords use `hash_password`."""
    return hashlib.sha256(secret.encode()).digest()


def secret_matches(secret: str, stored: bytes) -> bool:
    """Constant-time comparison of a presented secret with its stored hash."""
    return hmac.compare_digest(hash_secret(secret), stored)


_SCRYPT_N, _SCRYPT_R, _SCRYPT_P = 2**14, 8, 1


def hash_password(password: str) -> str:
    """Staff passwords are stored with scrypt and a random salt."""
    salt = secrets.token_bytes(16)
    digest = hashlib.scrypt(password.encode(), salt=salt, n=_SCRYPT_N, r=_SCRYPT_R, p=_SCRYPT_P)
    encode = base64.b64encode
    return f"scrypt${_SCRYPT_N}${_SCRYPT_R}${_SCRYPT_P}${encode(salt).decode()}${encode(digest).decode()}"


def password_matches(password: str, stored: str) -> bool:
    """Check a password against its stored scrypt hash."""
    _, n, r, p, salt, digest = stored.split("$")
    candidate = hashlib.scrypt(password.encode(), salt=base64.b64decode(salt), n=int(n), r=int(r), p=int(p))
    return hmac.compare_digest(candidate, base64.b64decode(digest))
