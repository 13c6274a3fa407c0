"""HTTP API of the settlement: the closed months, each party's statement (JSON, CSV or PDF) and the T+1 payout files.

Statements are read by the bureau, each company's finance office and the platform's, each seeing only its own
(`statement_rules.party_of_caller`); the operator's admins read any party's.
"""

from datetime import date, datetime
from typing import Annotated, Any, Literal

import msgspec
from litestar import Request, Response, Router, get
from litestar.params import FromPath, FromQuery, QueryParameter

from expo.access.rules import Role
from expo.http import allow, clock_of, db_of, json_reply, principal_of
from reconciliation import payout_file, statements
from reconciliation.matching_api import MATCHING_ROUTES, platform_finance_only
from reconciliation.statement_export import Statement, statement_csv
from reconciliation.statement_pdf import statement_pdf
from reconciliation.statement_rules import Line, balances, party_of_caller

AnyRequest = Request[Any, Any, Any]
READERS = (Role.ADMIN, Role.BUREAU, Role.FINANCE)
Format = Literal["json", "csv", "pdf"]


class LineOut(msgspec.Struct):
    section: str
    item: str
    payer: str
    payee: str
    count: int
    amount_fen: int
    adjusts: str | None
    basis: str


class BalanceOut(msgspec.Struct):
    counterparty: str
    receivable_fen: int
    payable_fen: int
    net_fen: int


class StatementOut(msgspec.Struct):
    document: str
    party: str
    status: str
    closed_at: datetime
    window_start: datetime | None
    window_end: datetime | None
    rates: str | None
    lines: list[LineOut]
    balances: list[BalanceOut]
    receivable_fen: int
    payable_fen: int
    net_fen: int


class MonthOut(msgspec.Struct):
    month: str
    window_start: datetime | None
    window_end: datetime
    rates: str
    lines: int
    closed_at: datetime
    closed_by: str


def _line_out(line: Line) -> LineOut:
    return LineOut(
        line.section.value, line.item, line.payer, line.payee, line.count, line.amount_fen, line.adjusts, line.basis
    )


def _statement_out(found: statements.PartyStatement) -> StatementOut:
    owed = balances(found.lines, found.party)
    return StatementOut(
        document=found.document,
        party=found.party,
        status="closed",
        closed_at=found.closed_at,
        window_start=found.window_start,
        window_end=found.window_end,
        rates=found.rates,
        lines=[_line_out(line) for line in found.lines],
        balances=[BalanceOut(b.counterparty, b.receivable_fen, b.payable_fen, b.net_fen) for b in owed],
        receivable_fen=sum(b.receivable_fen for b in owed),
        payable_fen=sum(b.payable_fen for b in owed),
        net_fen=sum(b.net_fen for b in owed),
    )


@get("/settlement/months", guards=[allow(*READERS)])
async def list_months(request: AnyRequest) -> Response[bytes]:
    """The closed months, oldest first."""
    async with db_of(request).read() as session:
        rows = await statements.closed_months(session)
    return json_reply(
        [MonthOut(r.month, r.window_start, r.window_end, r.rates, r.lines, r.closed_at, r.closed_by) for r in rows],
        status=200,
    )


@get("/statements/{document:str}", guards=[allow(*READERS)])
async def read_statement(
    request: AnyRequest,
    document: FromPath[str],
    party: Annotated[str | None, QueryParameter()] = None,
    format: FromQuery[Format] = "json",
) -> Response[bytes]:
    """A party's statement of a closed month ("2010-06") or of the final commission ("commission-final")."""
    who = party_of_caller(principal_of(request), party)
    async with db_of(request).read() as session:
        found = await statements.read_statement(session, document=document, party=who)
    if format == "json":
        return json_reply(_statement_out(found), status=200)
    printable = Statement(
        document=found.document,
        party=found.party,
        status="closed",
        closed_at=found.closed_at,
        lines=found.lines,
        generated_at=clock_of(request).now(),
    )
    stem = f"statement-{found.document}-{found.party}"
    if format == "csv":
        body, media = statement_csv(printable).encode(), "text/csv; charset=utf-8"
        filename = f"{stem}.csv"
    else:
        body, media, filename = statement_pdf(printable), "application/pdf", f"{stem}.pdf"
    headers = {"Content-Disposition": f'attachment; filename="{filename}"'}
    return Response(body, status_code=200, media_type=media, headers=headers)


@get("/payouts/{payout_day:date}", guards=[allow(Role.ADMIN, Role.FINANCE)])
async def read_payout_file(request: AnyRequest, payout_day: FromPath[date]) -> Response[bytes]:
    """A T+1 payout day's file (CSV): each merchant's payments, fees, refunds and the net paid; the platform's."""
    platform_finance_only(principal_of(request), code="payout_file_forbidden")
    async with db_of(request).read() as session:
        rows = await payout_file.payout_file(session, payout_day=payout_day)
    headers = {"Content-Disposition": f'attachment; filename="payouts-{payout_day.isoformat()}.csv"'}
    return Response(
        payout_file.payout_file_csv(rows).encode(),
        status_code=200,
        media_type="text/csv; charset=utf-8",
        headers=headers,
    )


router = Router(path="/v1", route_handlers=[list_months, read_statement, read_payout_file, *MATCHING_ROUTES])
