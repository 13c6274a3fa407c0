"""Reference data and the demo's principals: segment table, peak-day stock, terminals, desks and staff."""

import secrets
from dataclasses import dataclass, field
from datetime import datetime

from expo.access.rules import Role
from expo.access.service import create_credential, create_staff
from expo.db import Database
from expo.provinces import SegmentRange, load_shipped_segments
from expo.segments import replace_segments
from ticketing import stock
from ticketing.rules import PEAK_DAYS


async def load_reference_data(db: Database, *, peak_capacity: int, segments: list[SegmentRange] | None = None) -> int:
    """Load the number-segment table (the shipped one by default) and stock every peak day; returns segments."""
    ranges = segments if segments is not None else load_shipped_segments()
    async with db.write() as session:
        count = await replace_segments(session, ranges=ranges)
        for day in sorted(PEAK_DAYS):
            await stock.set_capacity(session, day=day, capacity=peak_capacity)
    return count


@dataclass
class DemoPrincipals:
    """Tokens and passwords of the demo's callers; secret, written only to a 0600 file."""

    tokens: dict[str, str] = field(default_factory=dict)
    passwords: dict[str, str] = field(default_factory=dict)


# (name, role, province, hall) of the demo's devices and services.
DEMO_DEVICES = [
    ("admin", Role.ADMIN, None, None),
    ("sh_hall", Role.HALL_TERMINAL, "31", "Shanghai Xujiahui hall"),
    ("bj_hall", Role.HALL_TERMINAL, "11", "Beijing Xidan hall"),
    ("sh_12580", Role.HOTLINE_DESK, "31", None),
    ("web", Role.WEB, None, None),
    ("courier", Role.COURIER, None, None),
    ("sms_gateway", Role.SMS_GATEWAY, None, None),
    ("bureau", Role.BUREAU, None, None),
    ("finance_platform", Role.FINANCE, None, None),
    ("finance_31", Role.FINANCE, "31", None),
    ("finance_44", Role.FINANCE, "44", None),
]
# (staff number, name, role, province, hall) of the demo's clerks and agents.
DEMO_STAFF = [
    ("SH-C001", "Wang Fang", Role.HALL_CLERK, "31", "Shanghai Xujiahui hall"),
    ("BJ-C001", "Li Na", Role.HALL_CLERK, "11", "Beijing Xidan hall"),
    ("SH-A001", "Zhang Wei", Role.HOTLINE_AGENT, "31", None),
]


async def create_demo_principals(db: Database, *, now: datetime) -> DemoPrincipals:
    """Create the demo's devices, services and staff with fresh random secrets."""
    made = DemoPrincipals()
    async with db.write() as session:
        for name, role, province_code, hall in DEMO_DEVICES:
            _, token = await create_credential(
                session, role=role, label=name, province_code=province_code, hall=hall, now=now
            )
            made.tokens[name] = token
        for staff_no, staff_name, role, province_code, hall in DEMO_STAFF:
            password = secrets.token_urlsafe(12)
            await create_staff(
                session,
                staff_no=staff_no,
                name=staff_name,
                role=role,
                province_code=province_code,
                hall=hall,
                password=password,
                now=now,
            )
            made.passwords[staff_no] = password
    return made
