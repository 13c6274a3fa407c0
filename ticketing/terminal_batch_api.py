"""HTTP API of hall terminal day closes: `POST /v1/terminal-batches` uploads the open batch of its journal."""

from datetime import datetime
from typing import Annotated, Any

from litestar import Request, Response, Router, post
from litestar.params import JSONBody
from msgspec import Meta, Struct

from expo.access.rules import Role
from expo.clock import expo_local
from expo.errors import ExpoError
from expo.http import allow, clock_of, db_of, json_reply, principal_of
from ticketing.terminal_batch_rules import BatchLine, Discrepancy, LineType
from ticketing.terminal_batches import TerminalBatch, close_batch, discrepancies_of, totals_of_batch

AnyRequest = Request[Any, Any, Any]
Positive = Annotated[int, Meta(ge=1, le=2**31 - 1)]
MAX_ENTRIES = 5000  # a busy counter's day is a few hundred lines


class EntryIn(Struct, forbid_unknown_fields=True):
    serial: Positive
    type: LineType
    order_id: Positive | None = None  # a sale or a void
    ticket_id: Positive | None = None  # a card write
    amount_fen: Annotated[int, Meta(ge=0, le=2**53)] = 0


class BatchIn(Struct, forbid_unknown_fields=True):
    batch_no: Positive
    entries: Annotated[list[EntryIn], Meta(max_length=MAX_ENTRIES)]


class TotalOut(Struct):
    count: int
    amount_fen: int


class BatchOut(Struct):
    batch_no: int
    matched: bool
    since: datetime | None
    closed_at: datetime
    terminal: dict[str, TotalOut]
    platform: dict[str, TotalOut]
    discrepancies: list[Discrepancy]
    replayed: bool


def _line(entry: EntryIn) -> BatchLine:
    """A sale or void names its order, a write its ticket; nothing else."""
    ref = entry.ticket_id if entry.type == LineType.WRITE else entry.order_id
    other = entry.order_id if entry.type == LineType.WRITE else entry.ticket_id
    if ref is None or other is not None:
        raise ExpoError(
            "invalid_entry", f"serial {entry.serial}: a {entry.type} names only its {_ref_name(entry.type)}", status=400
        )
    return BatchLine(entry.type, ref, entry.amount_fen, entry.serial)


def _ref_name(line_type: LineType) -> str:
    return "ticket_id" if line_type == LineType.WRITE else "order_id"


def _batch_out(batch: TerminalBatch, *, replayed: bool) -> BatchOut:
    def totals(raw: str) -> dict[str, TotalOut]:
        return {kind: TotalOut(t.count, t.amount_fen) for kind, t in totals_of_batch(raw).items()}

    return BatchOut(
        batch_no=batch.batch_no,
        matched=batch.matched,
        since=expo_local(batch.since) if batch.since else None,
        closed_at=expo_local(batch.closed_at),
        terminal=totals(batch.terminal_totals),
        platform=totals(batch.platform_totals),
        discrepancies=discrepancies_of(batch),
        replayed=replayed,
    )


@post("/terminal-batches", guards=[allow(Role.HALL_CLERK)])
async def upload_batch(request: AnyRequest, data: JSONBody[BatchIn]) -> Response[bytes]:
    """A hall terminal's day close: 201 with the comparison, 200 when this batch was already closed (replay)."""
    lines = [_line(entry) for entry in data.entries]
    async with db_of(request).write() as session:
        closed = await close_batch(
            session, clerk=principal_of(request), batch_no=data.batch_no, lines=lines, now=clock_of(request).now()
        )
        reply = _batch_out(closed.batch, replayed=closed.replayed)
    return json_reply(reply, status=200 if closed.replayed else 201)


router = Router(path="/v1", route_handlers=[upload_batch], tags=["hall terminals"])
