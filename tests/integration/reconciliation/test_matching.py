"""Matching a month: each kind of discrepancy planted in real data is found with its code and subject, a clean
month reports nothing, and the report is read (JSON, CSV) by whom it concerns, stored once the month is closed.

The data are made through the service: hall sales at hall terminals and their day closes, gate uploads, 12580
and web sales through the bank gateway, wallet top-ups, withdrawals and a merchant payout, and bank files.
"""

from datetime import date, datetime
from typing import Any

import httpx
from sqlalchemy import func, select, update

from expo.bank import InMemoryBank
from expo.clock import EXPO_TZ
from reconciliation.matching import match_month, record_discrepancies
from reconciliation.matching_rules import DiscrepancyFound, Source
from reconciliation.models import Discrepancy, SettlementMonth
from reconciliation.payouts import run_payouts
from reconciliation.rules import Month
from tests.integration.conftest import Service, hall_sale, number
from tests.integration.gates.support import line, minutes_ago, new_gate, uploaded
from tests.integration.reconciliation.test_bank_confirmations import credential, upload, with_matching_routes
from tests.integration.test_support import agent_sale, assert_problem, web_sale
from tests.integration.wallet.conftest import PASSWORD, Wallet
from tests.integration.wallet.test_topups import APPROVES, bank_top_up
from tests.integration.wallet.test_withdrawals import withdraw
from ticketing.models import Order, Ticket
from wallet.sweeps import sweep_wallet

JUNE, JULY = Month(2010, 6), Month(2010, 7)
SH_HALL = "terminal batch 1 of hall Shanghai Xujiahui hall (terminal sh_hall)"
BJ_HALL = "terminal batch 1 of hall Beijing Xidan hall (terminal bj_hall)"


def at(day: int, hour: int, minute: int = 0, month: int = 6) -> datetime:
    return datetime(2010, month, day, hour, minute, tzinfo=EXPO_TZ)


async def sell(service: Service, headers: dict[str, str], body: dict[str, Any], status: int = 201) -> dict[str, Any]:
    reply = await service.post("/v1/orders", body, headers)
    assert reply.status_code == status, reply.text
    order: dict[str, Any] = reply.json()
    return order


async def close_day(service: Service, clerk: dict[str, str], batch_no: int, orders: list[dict[str, Any]]) -> None:
    """The terminal's day close, its journal holding the sales of `orders`."""
    entries = [
        {"serial": serial, "type": "sale", "order_id": order["id"], "amount_fen": order["amount_fen"]}
        for serial, order in enumerate(orders, start=1)
    ]
    reply = await service.client.post(
        "/v1/terminal-batches", json={"batch_no": batch_no, "entries": entries}, headers=clerk
    )
    assert reply.status_code == 201, reply.text


async def matched(
    service: Service, month: Month, now: datetime, source: Source | None = None
) -> list[DiscrepancyFound]:
    async with service.db.read() as session:
        found = await match_month(session, month=month, now=now)
    return [item for item in found if source is None or item.source == source]


def codes(found: list[DiscrepancyFound]) -> list[tuple[str, str, str | None]]:
    return [(item.code, item.subject, item.province) for item in found]


async def test_terminal_closes_against_the_servers_sales(service: Service, clerk: dict[str, str]) -> None:
    beijing = await service.login("bj_hall", "BJ-C001")
    voided_later = await sell(service, clerk, hall_sale(number(1)))
    left_out = await sell(service, clerk, hall_sale(number(2)))
    beijing_sale = await sell(service, beijing, hall_sale(number(3)))
    service.clock.set(at(1, 11))
    await close_day(service, clerk, 1, [voided_later])  # the terminal's journal lost the second sale
    await close_day(service, beijing, 1, [beijing_sale])  # matches
    service.clock.set(at(1, 12))
    never_closed = await sell(service, clerk, hall_sale(number(4)))
    raced = await sell(service, beijing, hall_sale(number(5)))
    void = await service.post(f"/v1/orders/{voided_later['id']}/void", {}, service.device("admin"))
    assert void.status_code == 200, void.text
    async with service.db.write() as session:  # a sale whose request was still running at the close
        await session.execute(update(Order).where(Order.id == raced["id"]).values(created_at=at(1, 10, 30)))

    evening = await matched(service, JUNE, at(1, 20), Source.TERMINAL_BATCH)
    assert codes(evening) == [
        ("missing_on_terminal", f"{SH_HALL}: sale of order {left_out['id']}", "31"),
        ("batch_changed_after_close", f"{SH_HALL}, closed 2010-06-01 11:00", "31"),
        ("batch_changed_after_close", f"{BJ_HALL}, closed 2010-06-01 11:00", "11"),
    ]  # the fourth sale's day is not over: its close is not due yet
    assert (evening[0].expected, evening[0].found) == ("server: the line, 160.00 yuan", "terminal: no such line")
    assert evening[1].found.endswith("later voided at another device: 1 (160.00 yuan)")
    assert (evening[2].expected, evening[2].found) == (
        "at the close: sales 1 (160.00 yuan), voids 0 (0.00 yuan), writes 0",
        "now: sales 2 (320.00 yuan), voids 0 (0.00 yuan), writes 0",
    )

    next_morning = await matched(service, JUNE, at(2, 9), Source.TERMINAL_BATCH)
    not_closed = [item for item in next_morning if item.code == "sale_not_closed"]
    assert codes(not_closed) == [
        ("sale_not_closed", f"order {never_closed['id']} sold at hall Shanghai Xujiahui hall (terminal sh_hall)", "31")
    ]
    assert not_closed[0].cause == "the terminal did not close its day after this sale"
    assert len(next_morning) == 4
    assert await matched(service, JULY, at(2, 9, month=8), Source.TERMINAL_BATCH) == []

    service.clock.set(at(2, 9))
    clerk = await service.login("sh_hall", "SH-C001")
    await close_day(service, clerk, 2, [never_closed])  # the next day's close covers it, late
    assert [item.code for item in await matched(service, JUNE, at(2, 10), Source.TERMINAL_BATCH)] == [
        "missing_on_terminal",
        "batch_changed_after_close",
        "batch_changed_after_close",
    ]


async def test_gate_journals_against_the_servers_entries(service: Service, clerk: dict[str, str]) -> None:
    first, second = await new_gate(service, 1002, "L1"), await new_gate(service, 1003, "L2")
    admitted = (await sell(service, clerk, hall_sale(number(1))))["tickets"][0]["id"]
    miscounted = (await sell(service, clerk, hall_sale(number(2))))["tickets"][0]["id"]
    other = (await sell(service, clerk, hall_sale(number(3))))["tickets"][0]["id"]
    now = minutes_ago(service, 5)
    await uploaded(
        service,
        first,
        [
            line(1, at=now, ticket_id=admitted),
            line(2, "refused", at=now, code="no_ticket"),
            line(5, at=now, ticket_id=999_999),  # seqs 3 and 4 never came; a ticket never sold
            line(6, at=now, ticket_id=miscounted),
        ],
    )
    await uploaded(service, second, [line(3, at=now, ticket_id=other, ctr=103)])  # its seqs 1 and 2 never came
    async with service.db.write() as session:
        await session.execute(update(Ticket).where(Ticket.id == miscounted).values(entries_used=2))
    service.clock.set(at(2, 10, month=7))
    await uploaded(service, first, [line(9, "refused", at=minutes_ago(service, 1), code="no_ticket")])

    june = await matched(service, JUNE, at(1, 9, month=7), Source.GATE_JOURNAL)
    assert codes(june) == [
        ("journal_gap", "gate 1002 seq 3..4", None),
        ("journal_gap", "gate 1003 seq 1..2", None),
        ("unknown_ticket", "gate 1002 seq 5", None),
        ("entry_count_mismatch", f"ticket {miscounted}", "31"),
    ]
    assert june[0].expected == "2 journal lines after seq 2, before seq 5"
    assert june[1].expected == "2 journal lines from the journal's start, before seq 3"
    assert june[2].found == "no ticket 999999"
    assert (june[3].expected, june[3].found) == (
        "1 entry in the gate journals (not annulled)",
        "entries used on the ticket: 2",
    )
    july = await matched(service, JULY, at(1, 9, month=8), Source.GATE_JOURNAL)
    assert codes(july) == [("journal_gap", "gate 1002 seq 7..8", None)]


async def test_the_ledger_against_the_banks(service: Service, clerk: dict[str, str]) -> None:
    web, agent = service.device("web"), await service.login("sh_12580", "SH-A001")
    wallet = Wallet(service=service, clerk=clerk)
    confirmed = (await sell(service, web, web_sale(number(1))))["payments"][0]
    lost = (await sell(service, web, web_sale(number(2))))["payments"][0]
    waiting = (await sell(service, web, web_sale(number(3), account="6222000000000004"), status=202))["payments"][0]
    card_order = await sell(service, agent, agent_sale(number(4)))
    card = card_order["payments"][0]
    assert (await service.post(f"/v1/orders/{card_order['id']}/void", {}, agent)).status_code == 200
    user = await wallet.open(number(10), top_up_fen=50_000)
    top_up = (await bank_top_up(service, wallet, user, 5_000, APPROVES)).json()
    withdrawal = await withdraw(service, wallet, user, 3_000)
    assert withdrawal.status_code == 202, withdrawal.text
    await wallet.merchant("SHOP", "other_remote")
    paid = await service.post(
        "/v1/wallet/payments",
        {"merchant": "SHOP", "msisdn": user, "amount_fen": 10_000, "channel": "web", "password": PASSWORD},
        web,
    )
    assert paid.status_code == 201, paid.text

    service.clock.set(at(2, 10))  # the bank pays the withdrawal; the merchant is paid T+1
    await sweep_wallet(service.db, bank=InMemoryBank(), now=service.clock.now())
    async with service.db.write() as session:
        [run] = await run_payouts(session, from_day=date(2010, 6, 2), through=date(2010, 6, 2), now=service.clock.now())
    with_matching_routes(service)
    june_first = [
        {"reference": confirmed["reference"], "kind": "charge", "amount_fen": 16_000},
        {"reference": card["reference"], "kind": "charge", "amount_fen": 16_000},
        {"reference": card["reference"], "kind": "void", "amount_fen": 16_000},
        {"reference": waiting["reference"], "kind": "charge", "amount_fen": 16_000},
        {"reference": top_up["reference"], "kind": "top_up", "amount_fen": 4_000},
        {"reference": "EXPUNKNOWN", "kind": "charge", "amount_fen": 9_000},
    ]
    june_second = [
        {"reference": withdrawal.json()["reference"], "kind": "withdrawal", "amount_fen": 3_000},
        {"reference": "payout:2010-06-02:SHOP", "kind": "payout", "amount_fen": run.amount_fen},
    ]
    for day, lines in (("2010-06-01", june_first), ("2010-06-02", june_second)):
        reply = await upload(service, {"bank": "ICBC", "day": day, "lines": lines})
        assert reply.status_code == 201, reply.text

    found = await matched(service, JUNE, at(3, 9), Source.BANK)
    assert sorted(codes(found)) == sorted(
        [
            ("missing_at_bank", f"payment {lost['reference']}", "15"),
            ("status_differs", f"payment {waiting['reference']}", "15"),
            ("amount_differs", f"top-up {top_up['reference']}", "15"),
            ("missing_in_ledger", "payment EXPUNKNOWN", None),
        ]
    )
    by_code = {item.code: item for item in found}
    assert "the bank lost it" in by_code["missing_at_bank"].cause
    assert by_code["status_differs"].expected == "ours: pending, 160.00 yuan"
    assert by_code["amount_differs"].found == "ICBC confirms a top_up of 40.00 yuan on 2010-06-01"
    assert run.amount_fen == 10_000 - 100  # the payout was matched: the merchant's net of its 1% fee


async def test_a_clean_month_reports_nothing(service: Service, clerk: dict[str, str]) -> None:
    sale = await sell(service, clerk, hall_sale(number(1)))
    web_payment = (await sell(service, service.device("web"), web_sale(number(2))))["payments"][0]
    wallet = Wallet(service=service, clerk=clerk)
    user = await wallet.open(number(10))
    top_up = (await bank_top_up(service, wallet, user, 5_000, APPROVES)).json()
    gate = await new_gate(service, 1, "L1")
    await uploaded(service, gate, [line(1, at=minutes_ago(service, 5), ticket_id=sale["tickets"][0]["id"])])
    service.clock.set(at(1, 21))
    await close_day(service, clerk, 1, [sale])
    with_matching_routes(service)
    lines = [
        {"reference": web_payment["reference"], "kind": "charge", "amount_fen": 16_000},
        {"reference": top_up["reference"], "kind": "top_up", "amount_fen": 5_000},
    ]
    assert (await upload(service, {"bank": "ICBC", "day": "2010-06-01", "lines": lines})).status_code == 201

    assert await matched(service, JUNE, at(2, 9)) == []
    service.clock.set(at(2, 9))
    reply = await report(service, "2010-06", service.device("admin"))
    assert (reply.json(), reply.headers["expo-month-status"]) == ([], "open")


async def report(service: Service, month: str, headers: dict[str, str], **params: str) -> httpx.Response:
    return await service.client.get(f"/v1/reconciliation/months/{month}/discrepancies", params=params, headers=headers)


async def _stored_rows(service: Service) -> int:
    async with service.db.read() as session:
        return int(await session.scalar(select(func.count()).select_from(Discrepancy)) or 0)


async def test_the_report_is_live_until_the_month_closes_and_each_province_sees_its_own(
    service: Service, clerk: dict[str, str]
) -> None:
    with_matching_routes(service)
    beijing = await service.login("bj_hall", "BJ-C001")
    shanghai_sale = await sell(service, clerk, hall_sale(number(1)))
    await sell(service, beijing, hall_sale(number(2)))
    service.clock.set(at(2, 9))
    admin, platform = service.device("admin"), await credential(service, "finance")
    shanghai, guangdong = await credential(service, "finance", "31"), await credential(service, "finance", "44")

    live = await report(service, "2010-06", admin)
    assert live.status_code == 200, live.text
    assert live.headers["expo-month-status"] == "open"
    assert [(row["code"], row["province"]) for row in live.json()] == [
        ("sale_not_closed", "31"),
        ("sale_not_closed", "11"),
    ]
    assert live.json()[0]["found_at"] == "2010-06-02T09:00:00+08:00"
    assert (await report(service, "2010-06", platform)).json() == live.json()
    assert [row["province"] for row in (await report(service, "2010-06", shanghai)).json()] == ["31"]
    assert (await report(service, "2010-06", guangdong)).json() == []
    assert await _stored_rows(service) == 0  # an open month's report is computed, never stored

    as_csv = await report(service, "2010-06", admin, format="csv")
    by_path = await service.client.get("/v1/reconciliation/months/2010-06/discrepancies.csv", headers=shanghai)
    assert as_csv.headers["content-type"].startswith("text/csv")
    rows = as_csv.text.splitlines()
    assert rows[0] == "month,source,code,province,subject,expected,found,cause,found_at"
    assert rows[1].startswith(f"2010-06,terminal_batch,sale_not_closed,31,order {shanghai_sale['id']} sold at hall")
    assert len(rows) == 3
    assert by_path.text.splitlines() == rows[:2]

    for caller in (await credential(service, "bureau"), service.device("sh_hall"), service.device("web")):
        assert_problem(await report(service, "2010-06", caller), 403, "role_not_allowed")
    for month, code in (("2010-13", "month_invalid"), ("june", "month_invalid"), ("2011-04", "month_out_of_range")):
        assert_problem(await report(service, month, admin), 422, code)

    closed_at = at(1, 1, month=7)
    async with service.db.write() as session:  # what the month's close does with the report
        found = await match_month(session, month=JUNE, now=closed_at)
        assert await record_discrepancies(session, month=JUNE, found=found[:1], now=closed_at) == 1
        assert await record_discrepancies(session, month=JUNE, found=found, now=closed_at) == 2
        session.add(
            SettlementMonth(
                month="2010-06", window_start=None, window_end=closed_at, rates="{}", payments_through=0,
                postings_through=0, lines=0, closed_at=closed_at, closed_by="test",
            )
        )  # fmt: skip
    assert await _stored_rows(service) == 2
    # A bank file of a June day after June closed: refused, since the closed month's report is final.
    service.clock.set(at(1, 2, month=7))
    late = {"bank": "ICBC", "day": "2010-06-30", "lines": [{"reference": "X1", "kind": "charge", "amount_fen": 1}]}
    assert_problem(await upload(service, late), 409, "month_closed")
    stored = await report(service, "2010-06", admin)
    assert stored.headers["expo-month-status"] == "closed"
    assert [(row["code"], row["found_at"]) for row in stored.json()] == [
        ("sale_not_closed", "2010-07-01T01:00:00+08:00"),
        ("sale_not_closed", "2010-07-01T01:00:00+08:00"),
    ]
    assert [row["province"] for row in (await report(service, "2010-06", shanghai)).json()] == ["31"]
    assert "missing_in_ledger" not in [item.code for item in await matched(service, JUNE, at(2, 9, month=7))]
