"""HTTP API of the gates' server side: registering gates, their journal uploads, counts, conflicts and the
revocation list they keep offline."""

from datetime import date, datetime
from typing import Annotated, Any

from litestar import Request, Response, Router, get, post
from litestar.params import FromQuery, JSONBody, QueryParameter
from msgspec import Meta, Struct

from expo.access.rules import Role
from expo.clock import expo_local
from expo.http import allow, clock_of, db_of, json_reply, principal_of
from gates import devices, reports
from gates.entrances import DeviceKind
from gates.ingest import ingest_batch
from gates.wire import MAX_BATCH, GateBatch
from ticketing.revocations import MAX_PAGE, revocations_since

AnyRequest = Request[Any, Any, Any]
# A journal line is a few hundred bytes of JSON; 1 KiB each leaves room for the longest reasons.
MAX_BATCH_BYTES = MAX_BATCH * 1024


class GateIn(Struct, forbid_unknown_fields=True):
    gate_id: int  # range checked by the service: `invalid_gate_id`
    entrance: Annotated[str, Meta(max_length=16)]
    kind: DeviceKind


class GateOut(Struct):
    gate_id: int
    entrance: str
    kind: str
    token: str  # shown once; only its hash is kept


class ConflictRef(Struct):
    seq: int
    code: str


class IngestedOut(Struct):
    gate_id: int
    stored: int
    duplicates: int
    conflicts: list[ConflictRef]


class EntranceOut(Struct):
    entrance: str
    entries: int


class CountsOut(Struct):
    day: date
    total: int
    entrances: list[EntranceOut]
    gates: list[reports.GateCount]


class ConflictOut(Struct):
    gate_id: int
    seq: int
    code: str
    ticket_id: int | None
    csn: str | None
    detail: str
    at: datetime
    found_at: datetime


class ConflictsOut(Struct):
    conflicts: list[ConflictOut]
    more: bool


class RevocationOut(Struct):
    version: int
    ticket_id: int
    reason: str


class RevocationsOut(Struct):
    version: int
    revocations: list[RevocationOut]
    more: bool


@post("/gates", guards=[allow(Role.ADMIN)])
async def register_gate(request: AnyRequest, data: JSONBody[GateIn]) -> Response[bytes]:
    """Register a gate device at an entrance; the reply's token is its credential, shown only here."""
    async with db_of(request).write() as session:
        device, token = await devices.register_gate(
            session, gate_id=data.gate_id, entrance=data.entrance, kind=data.kind, now=clock_of(request).now()
        )
        reply = GateOut(gate_id=device.gate_id, entrance=device.entrance, kind=device.kind, token=token)
    return json_reply(reply, status=201)


@post("/gate-entries", guards=[allow(Role.GATE)], request_max_body_size=MAX_BATCH_BYTES)
async def upload_entries(request: AnyRequest, data: JSONBody[GateBatch]) -> Response[bytes]:
    """A gate's journal lines: stored once each (a re-upload counts duplicates), conflicts reported."""
    async with db_of(request).write() as session:
        done = await ingest_batch(session, caller=principal_of(request), batch=data, now=clock_of(request).now())
    reply = IngestedOut(
        gate_id=done.gate_id,
        stored=done.stored,
        duplicates=done.duplicates,
        conflicts=[ConflictRef(seq=c.seq, code=c.code.value) for c in done.conflicts],
    )
    return json_reply(reply, status=200)


@get("/gate-entries/counts", guards=[allow(Role.ADMIN)])
async def entry_counts(request: AnyRequest, day: FromQuery[date]) -> Response[bytes]:
    """Entries of an Expo day per entrance and per gate."""
    async with db_of(request).read() as session:
        counts = await reports.day_counts(session, day=day)
    reply = CountsOut(
        day=counts.day,
        total=counts.total,
        entrances=[EntranceOut(entrance, entries) for entrance, entries in counts.entrances.items()],
        gates=counts.gates,
    )
    return json_reply(reply, status=200)


@get("/gate-entries/conflicts", guards=[allow(Role.ADMIN)])
async def entry_conflicts(
    request: AnyRequest,
    day: FromQuery[date],
    code: FromQuery[str | None] = None,
    limit: Annotated[int, QueryParameter(ge=1)] = MAX_PAGE,
) -> Response[bytes]:
    """Conflicts of the lines decided on an Expo day, oldest first."""
    async with db_of(request).read() as session:
        found, more = await reports.day_conflicts(session, day=day, code=code, limit=limit)
    reply = ConflictsOut(
        conflicts=[
            ConflictOut(
                gate_id=c.gate_id,
                seq=c.seq,
                code=c.code,
                ticket_id=c.ticket_id,
                csn=c.csn,
                detail=c.detail,
                at=expo_local(c.at),
                found_at=expo_local(c.found_at),
            )
            for c in found
        ],
        more=more,
    )
    return json_reply(reply, status=200)


@get("/gate-revocations", guards=[allow(Role.GATE, Role.ADMIN)])
async def revocations(
    request: AnyRequest,
    since: Annotated[int, QueryParameter(ge=0)] = 0,
    limit: Annotated[int, QueryParameter(ge=1)] = MAX_PAGE,
) -> Response[bytes]:
    """Tickets voided or refunded after version `since`, in version order (at most 5000; `more` if cut)."""
    async with db_of(request).read() as session:
        page = await revocations_since(session, since=since, limit=limit)
    reply = RevocationsOut(
        version=page.version,
        revocations=[RevocationOut(r.version, r.ticket_id, r.reason) for r in page.revocations],
        more=page.more,
    )
    return json_reply(reply, status=200)


router = Router(
    path="/v1",
    route_handlers=[register_gate, upload_entries, entry_counts, entry_conflicts, revocations],
    tags=["gates"],
)
