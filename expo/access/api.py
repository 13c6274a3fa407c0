"""HTTP API of access: staff log in and out at their device; the back office issues credentials."""

from datetime import datetime
from typing import Annotated, Any

from litestar import Request, Response, Router, delete, get, post
from litestar.params import JSONBody
from msgspec import Meta, Struct

from expo.access import service
from expo.access.rules import Role
from expo.http import PLAIN_TEXT, allow, clock_of, db_of, json_reply, principal_of, settings_of

AnyRequest = Request[Any, Any, Any]
Name = Annotated[str, Meta(min_length=1, max_length=64, pattern=PLAIN_TEXT)]


class LoginIn(Struct, forbid_unknown_fields=True):
    staff_no: Name
    password: Annotated[str, Meta(min_length=1, max_length=128)]


class SessionOut(Struct):
    token: str
    expires_at: datetime
    staff_no: str
    name: str
    role: str
    province_code: str
    hall: str | None


class MeOut(Struct):
    role: str
    label: str
    province_code: str | None
    hall: str | None
    staff_no: str | None


class CredentialIn(Struct, forbid_unknown_fields=True):
    role: Role
    label: Name
    province_code: Annotated[str, Meta(pattern=r"^\d\d$")] | None = None
    hall: Name | None = None


class CredentialOut(Struct):
    id: int
    role: str
    label: str
    province_code: str | None
    hall: str | None
    token: str  # shown once; only its hash is kept


class StaffIn(Struct, forbid_unknown_fields=True):
    staff_no: Name
    name: Name
    role: Role
    province_code: Annotated[str, Meta(pattern=r"^\d\d$")]
    password: Annotated[str, Meta(min_length=8, max_length=128)]
    hall: Name | None = None


class StaffOut(Struct):
    id: int
    staff_no: str
    name: str
    role: str
    province_code: str
    hall: str | None


@post("/sessions", guards=[allow(Role.HALL_TERMINAL, Role.HOTLINE_DESK)])
async def log_in(request: AnyRequest, data: JSONBody[LoginIn]) -> Response[bytes]:
    """A clerk or agent logs in at this device; the reply's token is their bearer credential."""
    token, expires_at, staff = await service.attempt_login(
        db_of(request),
        device=principal_of(request),
        staff_no=data.staff_no,
        password=data.password,
        now=clock_of(request).now(),
        ttl=settings_of(request).session_ttl,
    )
    reply = SessionOut(
        token=token,
        expires_at=expires_at,
        staff_no=staff.staff_no,
        name=staff.name,
        role=staff.role,
        province_code=staff.province_code,
        hall=staff.hall,
    )
    return json_reply(reply, status=201)


@delete("/sessions/current", guards=[allow(Role.HALL_CLERK, Role.HOTLINE_AGENT)], status_code=204)
async def log_out(request: AnyRequest) -> None:
    """End the caller's session."""
    async with db_of(request).write() as session:
        await service.log_out(session, token=str(request.auth), now=clock_of(request).now())


@get("/me")
async def who_am_i(request: AnyRequest) -> MeOut:
    """The caller as the service sees it."""
    me = principal_of(request)
    return MeOut(role=me.role, label=me.label, province_code=me.province_code, hall=me.hall, staff_no=me.staff_no)


@post("/admin/credentials", guards=[allow(Role.ADMIN)])
async def issue_credential(request: AnyRequest, data: JSONBody[CredentialIn]) -> Response[bytes]:
    """Issue an API key for a terminal, desk, web front, courier or admin."""
    async with db_of(request).write() as session:
        credential, token = await service.create_credential(
            session,
            role=data.role,
            label=data.label,
            province_code=data.province_code,
            hall=data.hall,
            now=clock_of(request).now(),
        )
        reply = CredentialOut(
            id=credential.id,
            role=credential.role,
            label=credential.label,
            province_code=credential.province_code,
            hall=credential.hall,
            token=token,
        )
    return json_reply(reply, status=201)


@post("/admin/staff", guards=[allow(Role.ADMIN)])
async def register_staff(request: AnyRequest, data: JSONBody[StaffIn]) -> Response[bytes]:
    """Register a clerk or agent."""
    async with db_of(request).write() as session:
        staff = await service.create_staff(
            session,
            staff_no=data.staff_no,
            name=data.name,
            role=data.role,
            province_code=data.province_code,
            hall=data.hall,
            password=data.password,
            now=clock_of(request).now(),
        )
        reply = StaffOut(
            id=staff.id,
            staff_no=staff.staff_no,
            name=staff.name,
            role=staff.role,
            province_code=staff.province_code,
            hall=staff.hall,
        )
    return json_reply(reply, status=201)


router = Router(
    path="/v1", route_handlers=[log_in, log_out, who_am_i, issue_credential, register_staff], tags=["access"]
)
