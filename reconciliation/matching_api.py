"""HTTP API of matching: the banks' confirmation files uploaded, and a month's discrepancy report (JSON or CSV).

Confirmation files are the wallet platform operator's: its finance office (a finance credential with no province)
and the operator's admins upload them. The report is read by the admins and the platform's finance office (all
rows) and by a company's finance office (the rows of its province). Paths are under `/v1`.
"""

import csv
import io
from datetime import date, datetime
from typing import Annotated, Any, Literal

import msgspec
from litestar import Request, Response, get, post
from litestar.params import FromPath, FromQuery, JSONBody
from msgspec import Meta, Struct

from expo.access.rules import Principal, Role
from expo.clock import expo_local
from expo.errors import Forbidden
from expo.http import PLAIN_TEXT, allow, clock_of, db_of, json_reply, principal_of
from reconciliation.bank_confirmations import ConfirmationLine, FileSummary, store_confirmations
from reconciliation.matching import ReportRow, discrepancy_report
from reconciliation.rules import PLATFORM, Month

AnyRequest = Request[Any, Any, Any]
MAX_LINES = 50_000  # a bank's day of Expo tickets and wallet movements
MAX_FILE_BYTES = 8 * 1024 * 1024
CSV_COLUMNS = ("month", "source", "code", "province", "subject", "expected", "found", "cause", "found_at")


class LineIn(Struct, forbid_unknown_fields=True):
    reference: Annotated[str, Meta(min_length=1, max_length=64, pattern=PLAIN_TEXT)]
    kind: Annotated[str, Meta(max_length=32)]  # an unknown kind is refused by name (`confirmation_kind_unknown`)
    amount_fen: int | float  # checked to be a positive whole number of fen (`confirmation_amount_invalid`)


class FileIn(Struct, forbid_unknown_fields=True):
    bank: Annotated[str, Meta(pattern=r"^[A-Za-z0-9_-]{1,16}$")]
    day: date
    lines: Annotated[list[LineIn], Meta(max_length=MAX_LINES)]


class FileOut(Struct):
    bank: str
    day: date
    lines: int
    amount_fen: int
    digest: str
    received_at: datetime
    replayed: bool


class DiscrepancyOut(Struct):
    month: str
    source: str
    code: str
    province: str | None
    subject: str
    expected: str
    found: str
    cause: str
    found_at: datetime


def platform_finance_only(principal: Principal, *, code: str) -> None:
    """Of the finance offices only the platform's (no province) may go on; a company's is refused with `code`.
    Other roles are the route's guards' to decide."""
    if principal.role is Role.FINANCE and principal.province_code is not None:
        raise Forbidden(code, f"this is for the {PLATFORM}'s finance office, not a province's")


def _file_out(summary: FileSummary) -> FileOut:
    return FileOut(
        bank=summary.bank,
        day=summary.day,
        lines=summary.lines,
        amount_fen=summary.amount_fen,
        digest=summary.digest,
        received_at=expo_local(summary.received_at),
        replayed=summary.replayed,
    )


@post(
    "/reconciliation/bank-confirmations",
    guards=[allow(Role.ADMIN, Role.FINANCE)],
    request_max_body_size=MAX_FILE_BYTES,
)
async def upload_bank_confirmations(request: AnyRequest, data: JSONBody[FileIn]) -> Response[bytes]:
    """A bank's confirmation file of one day: 201 stored, 200 the same file again (replayed), 409 another one."""
    platform_finance_only(principal_of(request), code="confirmations_forbidden")
    lines = [ConfirmationLine(line.reference, line.kind, line.amount_fen) for line in data.lines]
    async with db_of(request).write() as session:
        summary = await store_confirmations(
            session, bank=data.bank, day=data.day, lines=lines, now=clock_of(request).now()
        )
    return json_reply(_file_out(summary), status=200 if summary.replayed else 201)


def _out(row: ReportRow) -> DiscrepancyOut:
    item = row.item
    return DiscrepancyOut(
        month=row.month,
        source=item.source.value,
        code=item.code,
        province=item.province,
        subject=item.subject,
        expected=item.expected,
        found=item.found,
        cause=item.cause,
        found_at=expo_local(row.found_at),
    )


def report_csv(rows: list[DiscrepancyOut]) -> str:
    """The report as CSV: a header, then one row per discrepancy, in the JSON's field order."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(CSV_COLUMNS)
    for row in rows:
        fields = msgspec.structs.asdict(row)
        writer.writerow(
            [fields[column] if column != "found_at" else row.found_at.isoformat() for column in CSV_COLUMNS]
        )
    return buffer.getvalue()


async def _report(request: AnyRequest, month_text: str, *, as_csv: bool) -> Response[bytes]:
    principal = principal_of(request)
    month = Month.parse(month_text)
    async with db_of(request).read() as session:
        closed, rows = await discrepancy_report(
            session, month=month, province=principal.province_code, now=clock_of(request).now()
        )
    out = [_out(row) for row in rows]
    headers = {"Expo-Month-Status": "closed" if closed else "open"}
    if not as_csv:
        return Response(msgspec.json.encode(out), status_code=200, media_type="application/json", headers=headers)
    headers["Content-Disposition"] = f'attachment; filename="discrepancies-{month}.csv"'
    return Response(report_csv(out).encode(), status_code=200, media_type="text/csv; charset=utf-8", headers=headers)


@get("/reconciliation/months/{month:str}/discrepancies", guards=[allow(Role.ADMIN, Role.FINANCE)])
async def read_discrepancies(
    request: AnyRequest,
    month: FromPath[str],
    format: FromQuery[Literal["json", "csv"]] = "json",
) -> Response[bytes]:
    """A month's discrepancies: a closed month's stored report, an open month's computed now; a province's finance
    office sees its province's rows only."""
    return await _report(request, month, as_csv=format == "csv")


@get("/reconciliation/months/{month:str}/discrepancies.csv", guards=[allow(Role.ADMIN, Role.FINANCE)])
async def read_discrepancies_csv(request: AnyRequest, month: FromPath[str]) -> Response[bytes]:
    """The same report as CSV."""
    return await _report(request, month, as_csv=True)


MATCHING_ROUTES = [upload_bank_confirmations, read_discrepancies, read_discrepancies_csv]
