"""Closing generated months and reading the statements back, against lines computed independently to the fen.

June 2010 holds ticket sales of every channel and payment to buyers of every province, voids and refunds, and
wallet payments (remote and proximity) with a partial refund across the Dragon Boat holiday; July holds refunds
of June's sales. Each party reads its own statement through the API; the closed month never changes, and a
record dated into it after it closed is carried into the next month as an adjustment, once.
"""

from datetime import date, datetime
from typing import Any

import pytest
from sqlalchemy import select

from expo.clock import EXPO_TZ
from expo.errors import ExpoError
from expo.provinces import PROVINCES
from reconciliation import models
from reconciliation.documents import stored_lines
from reconciliation.payouts import run_payouts
from reconciliation.rules import CommissionRates, Month, commission_fen, commission_settlement
from reconciliation.settlement import settle_commission_final, settle_month
from reconciliation.statement_rules import BUREAU, PLATFORM, Line
from tests.integration.conftest import Service, hall_sale
from tests.integration.reconciliation.expected_statement import Expected, expected_lines
from tests.integration.reconciliation.month_data import Sellers, buyer, sell_two_months
from tests.integration.wallet.conftest import PASSWORD, Wallet
from ticketing.models import Order, Payment
from ticketing.rules import TicketType

JUNE, JULY, AUGUST = Month(2010, 6), Month(2010, 7), Month(2010, 8)
RATES = CommissionRates(default_bp=333, by_type={TicketType.PEAK: 275, TicketType.EVENING: 0})


def at(month: int, day: int, hour: int = 10) -> datetime:
    return datetime(2010, month, day, hour, 0, tzinfo=EXPO_TZ)


async def _wallet_month(service: Service) -> None:
    """Remote and proximity payments in June, over a weekend and the holiday, and a partial refund."""
    service.clock.set(at(6, 2))
    wallet = Wallet(service=service, clerk=await service.login("sh_hall", "SH-C001"))
    ebooks = await wallet.merchant("EBOOKS", "other_remote", province="44")  # 1%
    games = await wallet.merchant("GAMES", "virtual_goods", province="11")  # 15%
    await wallet.merchant("NOODLES", "restaurants", province="31")  # 3%
    reply = await service.client.post(
        "/v1/wallet/admin/merchants/NOODLES/terminals", json={"terminal_no": "T1"}, headers=wallet.admin
    )
    assert reply.status_code == 201, reply.text
    pos = service.auth(reply.json()["token"])
    payers = [await wallet.open(buyer(p, 80 + n), top_up_fen=300_000) for n, p in enumerate(("65", "15", "44"))]

    async def web(merchant: str, msisdn: str, amount: int) -> dict[str, Any]:
        body = {"merchant": merchant, "msisdn": msisdn, "amount_fen": amount, "channel": "web", "password": PASSWORD}
        reply = await service.post("/v1/wallet/payments", body, wallet.web)
        assert reply.status_code == 201, reply.text
        return reply.json()  # type: ignore[no-any-return]

    for serial, when in enumerate((at(6, 3), at(6, 11, 23), at(6, 12), at(6, 14), at(6, 30, 22)), start=1):
        service.clock.set(when)
        first = await web("EBOOKS", payers[0], 2_550)
        await web("GAMES", payers[1], 1_005)
        await web("EBOOKS", payers[2], 9_999)
        tap = {"serial": serial, "msisdn": payers[1], "amount_fen": 12_345}
        reply = await service.client.post("/v1/wallet/pos/payments", json=tap, headers=pos)
        assert reply.status_code == 201, reply.text
    service.clock.set(at(6, 17))
    refund = await service.post(f"/v1/wallet/payments/{first['id']}/refunds", {"amount_fen": 1_001}, ebooks)
    assert refund.status_code == 201, refund.text
    assert games


async def _every_province(service: Service) -> None:
    """One June sale to a buyer of each of the 31 provinces, at the Shanghai hall."""
    s = Sellers(service)
    await s.at(at(6, 20))
    for province in sorted(PROVINCES):
        await s.sell("sh", hall_sale(buyer(province, 40), ticket_type="standard"))


def _document(lines: list[Line]) -> Expected:
    found: Expected = {}
    for line in lines:
        assert line.basis, line
        key = (line.section.value, line.item, line.payer, line.payee)
        assert key not in found, key
        found[key] = (line.count, line.amount_fen)
    return found


async def _close(service: Service, month: Month, when: datetime, rates: CommissionRates = RATES) -> list[Line]:
    closed = await settle_month(service.db, month=month, rates=rates, now=when, by="test")
    return closed.lines


async def _stored(service: Service, document: str) -> list[Line]:
    async with service.db.read() as session:
        return await stored_lines(session, document=document)


@pytest.fixture
async def june(service: Service, clerk: dict[str, str]) -> dict[str, int]:
    named = await sell_two_months(service, clerk)
    await _every_province(service)
    await _wallet_month(service)
    return named


async def test_june_is_the_rules_to_the_fen_and_each_party_reads_its_own(
    service: Service, june: dict[str, int]
) -> None:
    lines = await _close(service, JUNE, at(7, 1, 9))
    async with service.db.read() as session:
        closed = await session.get(models.SettlementMonth, "2010-06")
    assert closed is not None
    assert closed.window_start is None
    expected = await expected_lines(service.db, month=JUNE, start=None, end=closed.window_end, rates=RATES)
    assert _document(lines) == expected
    assert _document(await _stored(service, "2010-06")) == expected
    sections = {key[0] for key in expected}
    assert sections == {"commission", "proceeds", "invoices", "wallet_fees", "wallet_funds", "merchant_payouts"}
    companies = {key[3] for key in expected if key[0] == "commission"}
    assert companies == set(PROVINCES)  # every province's buyers bought, so every company earned commission

    for device, party in (
        ("finance_44", "44"),
        ("finance_31", "31"),
        ("bureau", BUREAU),
        ("finance_platform", PLATFORM),
    ):
        reply = await service.client.get("/v1/statements/2010-06", headers=service.device(device))
        assert reply.status_code == 200, reply.text
        body = reply.json()
        assert body["party"] == party
        mine = {key: value for key, value in expected.items() if party in (key[2], key[3])}
        assert {
            (x["section"], x["item"], x["payer"], x["payee"]): (x["count"], x["amount_fen"]) for x in body["lines"]
        } == mine
        money = [(key, amount) for key, (_, amount) in mine.items() if key[0] not in ("invoices", "commission")]
        owed = sum(amount for key, amount in money if key[3] == party) - sum(a for k, a in money if k[2] == party)
        assert body["net_fen"] == owed


async def test_statements_are_refused_to_other_parties_and_before_the_close(
    service: Service, clerk: dict[str, str]
) -> None:
    s = Sellers(service)
    await s.at(at(6, 1))
    await s.sell("sh", hall_sale(buyer("44", 1)))
    not_closed = await service.client.get("/v1/statements/2010-06", headers=service.device("finance_44"))
    assert (not_closed.status_code, not_closed.json()["code"]) == (409, "month_not_closed")
    await _close(service, JUNE, at(7, 1))
    cases = [
        ("finance_44", "?party=31", 403, "statement_forbidden"),
        ("finance_31", "?party=platform", 403, "statement_forbidden"),
        ("bureau", "?party=44", 403, "statement_forbidden"),
        ("finance_platform", "?party=bureau", 403, "statement_forbidden"),
        ("admin", "", 422, "party_required"),
        ("admin", "?party=99", 422, "unknown_party"),
        ("sh_hall", "", 403, "role_not_allowed"),
    ]
    for device, query, status, code in cases:
        reply = await service.client.get(f"/v1/statements/2010-06{query}", headers=service.device(device))
        assert (reply.status_code, reply.json()["code"]) == (status, code), (device, query)
    for month, status, code in (("2010-13", 422, "month_invalid"), ("2011-04", 422, "month_out_of_range")):
        reply = await service.client.get(f"/v1/statements/{month}", headers=service.device("finance_44"))
        assert (reply.status_code, reply.json()["code"]) == (status, code), month
    admin = await service.client.get("/v1/statements/2010-06?party=44", headers=service.device("admin"))
    own = await service.client.get("/v1/statements/2010-06", headers=service.device("finance_44"))
    assert admin.json()["lines"] == own.json()["lines"] != []
    for fmt, media in (("csv", "text/csv"), ("pdf", "application/pdf")):
        reply = await service.client.get(f"/v1/statements/2010-06?format={fmt}", headers=service.device("finance_44"))
        assert reply.status_code == 200, reply.text
        assert reply.headers["content-type"].startswith(media)
        assert "statement-2010-06-44" in reply.headers["content-disposition"]


async def test_months_close_once_in_order_and_only_when_over(service: Service, clerk: dict[str, str]) -> None:
    s = Sellers(service)
    await s.at(at(6, 1))
    await s.sell("sh", hall_sale(buyer("44", 1)))
    refusals = [
        (JUNE, at(6, 30, 23), "month_not_over"),
    ]
    await _close(service, JUNE, at(7, 1))
    refusals += [(JUNE, at(8, 1), "month_closed"), (Month(2010, 5), at(8, 1), "month_closed")]
    refusals += [(AUGUST, at(9, 1), "month_out_of_order")]
    before = await _stored(service, "2010-06")
    for month, when, code in refusals:
        with pytest.raises(ExpoError) as refused:
            await _close(service, month, when)
        assert refused.value.code == code, month
    assert await _stored(service, "2010-06") == before
    async with service.db.read() as session:
        assert list(await session.scalars(select(models.SettlementMonth.month))) == ["2010-06"]
    with pytest.raises(ExpoError) as early:
        async with service.db.write() as session:
            await settle_commission_final(session, now=at(8, 1), by="test")
    assert early.value.code == "ticket_sales_not_ended"


async def test_a_record_dated_into_a_closed_month_is_carried_into_the_next_once(
    service: Service, clerk: dict[str, str]
) -> None:
    s = Sellers(service)
    await s.at(at(6, 1))
    await s.sell("sh", hall_sale(buyer("44", 1)))
    await _close(service, JUNE, at(7, 1))
    june_before = await _stored(service, "2010-06")
    # A sale recorded with a clock still in June (a terminal's late upload), after June closed.
    await s.at(at(6, 30, 12))
    await s.sell("bj", hall_sale(buyer("51", 1), ticket_type="pass_3"))
    await s.at(at(7, 5))
    await s.sell("sh", hall_sale(buyer("44", 2)))
    july = await _close(service, JULY, at(8, 1))
    assert await _stored(service, "2010-06") == june_before  # a closed month never changes

    carried = [line for line in july if line.adjusts == "2010-06"]
    late = await expected_lines(service.db, month=JULY, start=at(6, 30, 11), end=at(6, 30, 13), rates=RATES)
    assert _document(carried) == {key: value for key, value in late.items() if key[0] != "merchant_payouts"}
    assert {line.payee for line in carried if line.section.value == "commission"} == {"31", "51"}
    own = await expected_lines(service.db, month=JULY, start=at(7, 1, 0), end=at(8, 1, 0), rates=RATES)
    assert _document([line for line in july if line.adjusts is None]) == own

    august = await _close(service, AUGUST, at(9, 1))
    assert [line for line in august if line.adjusts] == []  # carried once


async def test_a_refund_reverses_its_sales_commission_at_the_rate_of_the_sales_month(
    service: Service, clerk: dict[str, str]
) -> None:
    s = Sellers(service)
    await s.at(at(6, 10))
    sold = await s.sell("sh", hall_sale(buyer("44", 1)))  # 160 yuan, closed in June at 3%
    await _close(service, JUNE, at(7, 1), rates=CommissionRates(default_bp=300))
    await s.at(at(7, 5))
    await s.act("sh", sold, "refund")
    july = await _close(service, JULY, at(8, 1), rates=CommissionRates(default_bp=250))
    june = await _stored(service, "2010-06")

    def commission(lines: list[Line]) -> dict[str, int]:
        return {line.payee: line.amount_fen for line in lines if line.section.value == "commission"}

    assert commission(june) == {"31": 72, "44": 408}  # 3% of 16,000 fen = 480, split 15 : 85
    assert commission(july) == {"31": -72, "44": -408}  # not 2.5%: the refund reverses exactly what June accrued


async def test_the_first_month_closed_also_shows_the_payouts_before_it(service: Service, clerk: dict[str, str]) -> None:
    service.clock.set(at(5, 20))
    wallet = Wallet(service=service, clerk=await service.login("sh_hall", "SH-C001"))
    await wallet.merchant("EBOOKS", "other_remote", province="44")
    payer = await wallet.open(buyer("65", 1), top_up_fen=50_000)
    body = {"merchant": "EBOOKS", "msisdn": payer, "amount_fen": 10_000, "channel": "web", "password": PASSWORD}
    assert (await service.post("/v1/wallet/payments", body, wallet.web)).status_code == 201
    service.clock.set(at(5, 21, 9))
    async with service.db.write() as session:
        runs = await run_payouts(session, from_day=date(2010, 5, 21), through=date(2010, 5, 21), now=at(5, 21, 9))
    assert [(run.payout_day, run.amount_fen) for run in runs] == [(date(2010, 5, 21), 10_000 - 100)]
    june = await _close(service, JUNE, at(7, 1))
    payouts = [(line.item, line.count, line.amount_fen) for line in june if line.section.value == "merchant_payouts"]
    assert payouts == [("payout_2010-05-21", 1, 9_900)]
    fees = [line for line in june if line.section.value == "wallet_fees"]
    assert [(line.payee, line.amount_fen) for line in fees] == [("65", 100)]  # May's payment, in the first close


async def test_the_final_settlement_pays_what_each_company_invoiced_once(
    service: Service, clerk: dict[str, str]
) -> None:
    s = Sellers(service)
    await s.at(at(6, 10))
    orders = [await s.sell("sh", hall_sale(buyer(p, 1))) for p in ("44", "31", "51")]
    await s.at(at(8, 3))
    await s.sell("bj", hall_sale(buyer("65", 2), ticket_type="pass_3"))
    await s.at(at(9, 20))
    await s.act("sh", orders[2], "refund")  # Sichuan's part comes to nothing: no share for it
    for month, when in ((JUNE, at(7, 1)), (JULY, at(8, 1)), (AUGUST, at(9, 1)), (Month(2010, 9), at(10, 1))):
        await _close(service, month, when)
    with pytest.raises(ExpoError) as early:
        async with service.db.write() as session:
            await settle_commission_final(session, now=datetime(2010, 11, 1, 9, tzinfo=EXPO_TZ), by="test")
    assert early.value.code == "months_not_closed"
    await _close(service, Month(2010, 10), datetime(2010, 11, 1, 1, tzinfo=EXPO_TZ))

    final_at = datetime(2010, 11, 2, 9, tzinfo=EXPO_TZ)
    async with service.db.write() as session:
        final = await settle_commission_final(session, now=final_at, by="test")
    # The oracle: the pure rule over every order's commission, sales and reversals alike.
    expected: dict[tuple[str, str], int] = {}
    async with service.db.read() as session:
        moved = (await session.execute(select(Payment, Order).join(Order, Order.id == Payment.order_id))).all()
    for payment, order in moved:
        sign = 1 if payment.kind == "charge" else -1
        commission = commission_fen(sign * order.amount_fen, rate_bp=RATES.rate_bp(TicketType(order.product)))
        for line in commission_settlement(commission, home_province=order.home_province):
            expected[line.payer, line.payee] = expected.get((line.payer, line.payee), 0) + line.amount_fen
    assert {(line.payer, line.payee): line.amount_fen for line in final} == {k: v for k, v in expected.items() if v}
    assert ("31", "51") not in {(line.payer, line.payee) for line in final}
    invoiced: dict[str, int] = {}
    for month in ("2010-06", "2010-07", "2010-08", "2010-09", "2010-10"):
        for line in await _stored(service, month):
            if line.section.value == "invoices" and line.item == "commission":
                invoiced[line.payee] = invoiced.get(line.payee, 0) + line.amount_fen
    shares = {line.payee: line.amount_fen for line in final if line.item == "commission_share"}
    assert shares == {company: fen for company, fen in invoiced.items() if company != "31" and fen}
    assert sum(line.amount_fen for line in final if line.item == "commission") == sum(invoiced.values())

    with pytest.raises(ExpoError) as again:
        async with service.db.write() as session:
            await settle_commission_final(session, now=final_at, by="test")
    assert again.value.code == "commission_already_final"
    reply = await service.client.get("/v1/statements/commission-final", headers=service.device("finance_44"))
    assert reply.status_code == 200, reply.text
    assert [(x["payer"], x["payee"], x["amount_fen"]) for x in reply.json()["lines"]] == [("31", "44", shares["44"])]
    assert reply.json()["net_fen"] == shares["44"]
