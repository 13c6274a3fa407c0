"""Gate devices: registering a gate, handheld or souvenir terminal with its credential, and finding a caller's.

A device's gate id is what the card logs with each entry, so it is unique for the Expo's whole run; the
device's bearer token (role `gate`) is handed out once at registration.
"""

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from expo.access.rules import Principal, Role
from expo.access.service import create_credential
from expo.errors import Conflict, ExpoError, Forbidden
from gates.entrances import GATE_ID_MAX, DeviceKind, is_entrance
from gates.models import GateDevice


async def register_gate(
    session: AsyncSession, *, gate_id: int, entrance: str, kind: DeviceKind, now: datetime
) -> tuple[GateDevice, str]:
    """Register a device at one of the 13 entrances under an unused gate id; returns it and its token (once)."""
    if not 1 <= gate_id <= GATE_ID_MAX:
        raise ExpoError("invalid_gate_id", f"a gate id is 1..{GATE_ID_MAX}", status=400)
    if not is_entrance(entrance):
        raise ExpoError("unknown_entrance", f"no entrance {entrance!r} (L1-L8, U1, W1-W4)", status=400)
    if await session.scalar(select(GateDevice.id).where(GateDevice.gate_id == gate_id)) is not None:
        raise _gate_exists(gate_id)
    credential, token = await create_credential(
        session, role=Role.GATE, label=f"gate {gate_id}", province_code=None, hall=None, now=now
    )
    device = GateDevice(
        gate_id=gate_id, entrance=entrance, kind=kind.value, credential_id=credential.id, created_at=now
    )
    try:
        # A savepoint: a registration racing ours for the same id must not leave this transaction broken.
        async with session.begin_nested():
            session.add(device)
    except IntegrityError:
        raise _gate_exists(gate_id) from None
    return device, token


def _gate_exists(gate_id: int) -> Conflict:
    return Conflict("gate_exists", f"gate {gate_id} is registered already")


async def device_of(session: AsyncSession, *, caller: Principal, gate_id: int) -> GateDevice:
    """The registered device behind the caller's credential, which must be gate `gate_id`."""
    device = await session.scalar(select(GateDevice).where(GateDevice.credential_id == caller.credential_id))
    if device is None or device.gate_id != gate_id:
        raise Forbidden("not_this_gate", f"this credential does not belong to gate {gate_id}")
    return device
