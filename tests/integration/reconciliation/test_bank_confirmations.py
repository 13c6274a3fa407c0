"""Uploading a bank's confirmation file: stored once with its digest, replayed, refused whole and leaving nothing,
and never slipped into a month while it closes."""

import asyncio
from datetime import datetime
from typing import Any

import httpx
import pytest
from litestar import Router
from sqlalchemy import func, select, text

from expo.clock import EXPO_TZ
from reconciliation.locks import SETTLEMENT_LOCK, lock_settlement
from reconciliation.matching_api import MATCHING_ROUTES
from reconciliation.models import BankConfirmation, BankConfirmationFile, SettlementMonth
from tests.integration.conftest import Service
from tests.integration.test_support import assert_problem

UPLOAD = "/v1/reconciliation/bank-confirmations"
DAY = "2010-06-01"  # the fixture's clock: 10:00 on 1 June 2010


def with_matching_routes(service: Service) -> None:
    """Register the matching routes on the test's app unless `create_app` already lists them."""
    app = service.client.app
    if not any(route.path == UPLOAD for route in app.routes):
        app.register(Router(path="/v1", route_handlers=MATCHING_ROUTES))


async def credential(service: Service, role: str, province: str | None = None) -> dict[str, str]:
    """A new credential of a role (and province), issued by the back office."""
    body: dict[str, Any] = {"role": role, "label": f"{role}-{province or 'national'}"}
    if province is not None:
        body["province_code"] = province
    reply = await service.client.post("/v1/admin/credentials", json=body, headers=service.device("admin"))
    assert reply.status_code == 201, reply.text
    return service.auth(reply.json()["token"])


def a_file(lines: list[dict[str, Any]] | None = None, *, bank: str = "ICBC", day: str = DAY) -> dict[str, Any]:
    return {
        "bank": bank,
        "day": day,
        "lines": lines
        if lines is not None
        else [
            {"reference": "EXPA", "kind": "charge", "amount_fen": 16_000},
            {"reference": "EXPA", "kind": "void", "amount_fen": 16_000},
            {"reference": "WALB", "kind": "top_up", "amount_fen": 5_000},
        ],
    }


async def upload(service: Service, body: dict[str, Any], headers: dict[str, str] | None = None) -> httpx.Response:
    return await service.client.post(UPLOAD, json=body, headers=headers or service.device("admin"))


async def stored(service: Service) -> tuple[int, int]:
    """(files, confirmations) in the database."""
    async with service.db.read() as session:
        files = await session.scalar(select(func.count()).select_from(BankConfirmationFile))
        lines = await session.scalar(select(func.count()).select_from(BankConfirmation))
    return int(files or 0), int(lines or 0)


async def test_a_file_is_stored_once_and_replayed_whatever_the_order_of_its_lines(service: Service) -> None:
    with_matching_routes(service)
    finance = await credential(service, "finance")
    first = await upload(service, a_file(), finance)
    assert first.status_code == 201, first.text
    summary = first.json()
    assert (summary["bank"], summary["day"], summary["lines"], summary["amount_fen"]) == ("ICBC", DAY, 3, 37_000)
    assert (summary["replayed"], len(summary["digest"])) == (False, 64)
    assert await stored(service) == (1, 3)
    async with service.db.read() as session:
        rows = (await session.execute(select(BankConfirmation.reference, BankConfirmation.kind))).all()
    assert sorted(rows) == [("EXPA", "charge"), ("EXPA", "void"), ("WALB", "top_up")]

    reordered = a_file(list(reversed(a_file()["lines"])))
    again = await upload(service, reordered)
    assert again.status_code == 200, again.text
    assert again.json() == {**summary, "replayed": True}
    assert await stored(service) == (1, 3)


async def test_another_file_for_the_same_bank_and_day_is_a_conflict(service: Service) -> None:
    with_matching_routes(service)
    assert (await upload(service, a_file())).status_code == 201
    changed = a_file([{"reference": "EXPA", "kind": "charge", "amount_fen": 16_001}])
    problem = assert_problem(await upload(service, changed), 409, "confirmation_file_conflict")
    assert (problem["bank"], problem["day"]) == ("ICBC", DAY)
    other_bank = await upload(service, a_file([{"reference": "EXPZ", "kind": "charge", "amount_fen": 100}], bank="BOC"))
    assert other_bank.status_code == 201, other_bank.text
    empty_day = await upload(service, a_file([], day="2010-05-31"))
    assert (empty_day.status_code, empty_day.json()["lines"]) == (201, 0)
    assert await stored(service) == (3, 4)


async def test_every_refusal_leaves_the_tables_as_they_were(service: Service) -> None:
    with_matching_routes(service)
    assert (await upload(service, a_file())).status_code == 201
    before = await stored(service)
    good = {"reference": "EXPN", "kind": "charge", "amount_fen": 100}
    cases: list[tuple[dict[str, Any], int, str]] = [
        ({"bank": "ICBC", "day": "2010-06-02"}, 400, "invalid_request"),  # no lines
        ({**a_file([good], day="2010-02-30")}, 400, "invalid_request"),
        ({**a_file([good]), "extra": 1}, 400, "invalid_request"),
        (a_file([good], bank="bank of china"), 400, "invalid_request"),
        (a_file([{**good, "amount_fen": "a hundred"}]), 400, "invalid_request"),
        (a_file([{**good, "reference": ""}]), 400, "invalid_request"),
        (a_file([good, {**good, "reference": "EXPM", "amount_fen": 0}], day="2010-05-30"), 422,
         "confirmation_amount_invalid"),
        (a_file([{**good, "amount_fen": -100}], day="2010-05-30"), 422, "confirmation_amount_invalid"),
        (a_file([{**good, "amount_fen": 99.5}], day="2010-05-30"), 422, "confirmation_amount_invalid"),
        (a_file([{**good, "kind": "deposit"}], day="2010-05-30"), 422, "confirmation_kind_unknown"),
        (a_file([good, {**good, "amount_fen": 200}], day="2010-05-30"), 422, "confirmation_inconsistent"),
        (a_file([good], day="2010-06-02"), 422, "confirmation_day_in_future"),
        (a_file([good], day="2008-12-31"), 422, "confirmation_day_out_of_range"),
        (a_file([good], day="2011-04-01"), 422, "confirmation_day_out_of_range"),
        # What an earlier file of the bank confirmed is not confirmed again on another day.
        (a_file([good, {"reference": "WALB", "kind": "top_up", "amount_fen": 5_000}], day="2010-05-30"), 422,
         "confirmation_inconsistent"),
    ]  # fmt: skip
    for body, status, code in cases:
        problem = assert_problem(await upload(service, body), status, code)
        if code == "confirmation_inconsistent":
            assert problem["reference"] in ("EXPN", "WALB"), problem
        assert await stored(service) == before, (body, code)


async def test_only_the_platform_and_the_back_office_upload(service: Service) -> None:
    with_matching_routes(service)
    province_finance = await credential(service, "finance", "44")
    bureau = await credential(service, "bureau")
    assert_problem(await upload(service, a_file(), province_finance), 403, "confirmations_forbidden")
    assert_problem(await upload(service, a_file(), bureau), 403, "role_not_allowed")
    assert_problem(await upload(service, a_file(), service.device("sh_hall")), 403, "role_not_allowed")
    reply = await service.client.post(UPLOAD, json=a_file())
    assert reply.status_code == 401, reply.text
    assert await stored(service) == (0, 0)


def closed_month(month: str, closed_at: datetime) -> SettlementMonth:
    """The row a month's close adds (what it settled does not matter here)."""
    return SettlementMonth(
        month=month,
        window_start=None,
        window_end=closed_at,
        rates="{}",
        payments_through=0,
        postings_through=0,
        lines=0,
        closed_at=closed_at,
        closed_by="test",
    )


async def waiting_for_the_settlement_lock(service: Service) -> bool:
    """Whether a transaction waits for the settlement lock (PostgreSQL's view of the advisory locks)."""
    async with service.db.read() as session:
        waiting = await session.scalar(
            text("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND objid = :key AND NOT granted"),
            {"key": SETTLEMENT_LOCK},
        )
    return bool(waiting)


# Two real connections: SQLite runs one writing transaction at a time, so the race is PostgreSQL's.
@pytest.mark.parametrize("database_url", ["postgres"], indirect=True)
async def test_a_file_uploaded_while_its_month_closes_waits_and_finds_it_closed(service: Service) -> None:
    with_matching_routes(service)
    async with service.db.write() as session:  # a close of June in flight: locked, its row added, not committed
        await lock_settlement(session)
        session.add(closed_month("2010-06", datetime(2010, 7, 1, 1, tzinfo=EXPO_TZ)))
        await session.flush()
        # The test client blocks its caller's event loop while the app handles a request: upload from a thread.
        uploading = asyncio.create_task(asyncio.to_thread(asyncio.run, upload(service, a_file())))
        for _ in range(500):
            if uploading.done() or await waiting_for_the_settlement_lock(service):
                break
            await asyncio.sleep(0.01)
        assert not uploading.done(), "the upload went ahead of the close in flight"
    assert_problem(await uploading, 409, "month_closed")
    assert await stored(service) == (0, 0)
