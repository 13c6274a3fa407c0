"""Utility bills: billers post them, wallet holders are texted and reminded, bills are paid on the web once."""

import asyncio
import uuid
from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from typing import Any

import httpx
import pytest

from expo.app import create_app
from expo.bank import InMemoryBank
from expo.clock import EXPO_TZ
from tests.integration.conftest import Service, number
from tests.integration.wallet.conftest import PASSWORD, Wallet
from wallet.bills import remind_bills
from wallet.sms import OutboxSms


def bill(
    msisdn: str, bill_no: str, amount_fen: int = 12_345, due_day: str = "2010-06-15", **extra: Any
) -> dict[str, Any]:
    return {
        "bill_no": bill_no,
        "msisdn": msisdn,
        "customer_ref": f"HH-{bill_no}",
        "amount_fen": amount_fen,
        "due_day": due_day,
        **extra,
    }


async def post_bill(service: Service, biller: dict[str, str], body: dict[str, Any]) -> dict[str, Any]:
    reply = await service.client.post("/v1/wallet/bills", json=body, headers=biller)
    assert reply.status_code == 201, reply.text
    return reply.json()  # type: ignore[no-any-return]


async def pay(
    service: Service, wallet: Wallet, bill_id: int, *, key: str | None = None, password: str = PASSWORD
) -> httpx.Response:
    return await service.post(f"/v1/wallet/bills/{bill_id}/payment", {"password": password}, wallet.web, key=key)


async def test_a_posted_bill_is_texted_to_a_wallet_holder_and_posted_once(service: Service, wallet: Wallet) -> None:
    power = await wallet.merchant("POWER", "utilities")
    holder = await wallet.open(number(1))
    posted = await post_bill(service, power, bill(holder, "B-1"))
    assert (posted["biller"], posted["status"], posted["amount_fen"], posted["due_day"]) == (
        "POWER",
        "open",
        12_345,
        "2010-06-15",
    )
    assert posted["texted_at"] is not None
    assert await wallet.texts(holder) == [
        "Your Merchant POWER bill HH-B-1 is 123.45 yuan, due 2010-06-15. "
        "Reply Y to pay it, or Y and an amount to prepay."
    ]

    again = await service.client.post("/v1/wallet/bills", json=bill(holder, "B-1", amount_fen=1), headers=power)
    assert again.status_code == 409
    assert again.json()["code"] == "bill_exists"
    # Another biller may use the same bill number.
    water = await wallet.merchant("WATER", "utilities")
    assert (await post_bill(service, water, bill(holder, "B-1")))["biller"] == "WATER"

    no_wallet = number(2)
    unsent = await post_bill(service, power, bill(no_wallet, "B-2"))
    assert unsent["texted_at"] is None
    assert await wallet.texts(no_wallet) == []
    await wallet.ledger_ok()


async def test_only_billers_post_bills_and_only_their_own(service: Service, wallet: Wallet) -> None:
    await wallet.merchant("POWER", "utilities")
    shop = await wallet.merchant("EBOOKS", "other_remote")
    holder = await wallet.open(number(3))
    refused = await service.client.post("/v1/wallet/bills", json=bill(holder, "X-1"), headers=shop)
    assert (refused.status_code, refused.json()["code"]) == (403, "not_a_biller")
    power = await wallet.merchant("GAS", "utilities")
    other = await service.client.post("/v1/wallet/bills", json=bill(holder, "X-2", biller="POWER"), headers=power)
    assert (other.status_code, other.json()["code"]) == (403, "other_merchant")
    for headers in (wallet.web, wallet.clerk):
        denied = await service.client.post("/v1/wallet/bills", json=bill(holder, "X-3"), headers=headers)
        assert (denied.status_code, denied.json()["code"]) == (403, "role_not_allowed")

    unnamed = await service.client.post("/v1/wallet/bills", json=bill(holder, "X-4"), headers=wallet.admin)
    assert (unnamed.status_code, unnamed.json()["code"]) == (422, "biller_required")
    by_admin = await post_bill(service, wallet.admin, bill(holder, "X-4", biller="POWER"))
    assert by_admin["biller"] == "POWER"
    zero = await service.client.post("/v1/wallet/bills", json=bill(holder, "X-5", amount_fen=0), headers=power)
    assert (zero.status_code, zero.json()["code"]) == (422, "invalid_amount")
    await wallet.ledger_ok()


async def test_a_bill_is_paid_on_the_web_with_the_password_once(service: Service, wallet: Wallet) -> None:
    power = await wallet.merchant("POWER", "utilities")
    holder = await wallet.open(number(4), top_up_fen=50_000)
    posted = await post_bill(service, power, bill(holder, "P-1"))

    wrong = await pay(service, wallet, posted["id"], password="246802")
    assert (wrong.status_code, wrong.json()["code"]) == (403, "wrong_password")
    key = uuid.uuid4().hex
    paid = await pay(service, wallet, posted["id"], key=key)
    assert paid.status_code == 201, paid.text
    body = paid.json()
    assert body["bill"]["status"] == "paid"
    assert body["bill"]["paid_transfer_id"] == body["payment"]["id"]
    payment = body["payment"]
    assert (payment["state"], payment["amount_fen"], payment["fee_fen"], payment["merchant"], payment["channel"]) == (
        "posted",
        12_345,
        0,  # utilities pay no service fee
        "POWER",
        "web",
    )
    assert (await wallet.account(holder))["balance_fen"] == 50_000 - 12_345
    merchant = await service.client.get("/v1/wallet/merchants/POWER", headers=power)
    assert merchant.json()["balance_fen"] == 12_345

    replay = await pay(service, wallet, posted["id"], key=key)
    assert (replay.status_code, replay.headers.get("Idempotent-Replayed")) == (201, "true")
    assert replay.json() == body
    twice = await pay(service, wallet, posted["id"])
    assert (twice.status_code, twice.json()["code"]) == (409, "bill_paid")
    unknown = await pay(service, wallet, 999_999)
    assert (unknown.status_code, unknown.json()["code"]) == (404, "unknown_bill")
    no_key = await service.client.post(
        f"/v1/wallet/bills/{posted['id']}/payment", json={"password": PASSWORD}, headers=wallet.web
    )
    assert (no_key.status_code, no_key.json()["code"]) == (400, "idempotency_key_required")
    assert (await wallet.account(holder))["balance_fen"] == 50_000 - 12_345
    await wallet.ledger_ok()


async def test_a_bill_the_wallet_cannot_cover_stays_open(service: Service, wallet: Wallet) -> None:
    power = await wallet.merchant("POWER", "utilities")
    holder = await wallet.open(number(5), top_up_fen=10_000)
    posted = await post_bill(service, power, bill(holder, "S-1", amount_fen=10_001))
    short = await pay(service, wallet, posted["id"])
    assert (short.status_code, short.json()["code"]) == (402, "insufficient_funds")
    listed = await service.client.get("/v1/wallet/bills", params={"msisdn": holder}, headers=wallet.web)
    assert [row["status"] for row in listed.json()] == ["open"]
    await wallet.top_up(holder, 1)
    assert (await pay(service, wallet, posted["id"])).status_code == 201
    assert (await wallet.account(holder))["balance_fen"] == 0
    await wallet.ledger_ok()


async def test_bill_query_lists_a_numbers_open_and_paid_bills(service: Service, wallet: Wallet) -> None:
    power = await wallet.merchant("POWER", "utilities")
    holder = await wallet.open(number(6), top_up_fen=50_000)
    first = await post_bill(service, power, bill(holder, "Q-1", due_day="2010-06-20"))
    second = await post_bill(service, power, bill(holder, "Q-2", due_day="2010-06-10"))
    await post_bill(service, power, bill(number(7), "Q-3"))
    assert (await pay(service, wallet, first["id"])).status_code == 201
    for headers in (wallet.web, wallet.clerk, wallet.admin):
        listed = await service.client.get("/v1/wallet/bills", params={"msisdn": holder}, headers=headers)
        assert listed.status_code == 200, listed.text
        assert [(row["id"], row["status"]) for row in listed.json()] == [(second["id"], "open"), (first["id"], "paid")]
    denied = await service.client.get("/v1/wallet/bills", params={"msisdn": holder}, headers=power)
    assert (denied.status_code, denied.json()["code"]) == (403, "role_not_allowed")
    await wallet.ledger_ok()


async def test_reminders_go_to_open_bills_due_within_three_days_once_a_day(service: Service, wallet: Wallet) -> None:
    power = await wallet.merchant("POWER", "utilities")  # the clock stands at 2010-06-01 10:00 Shanghai
    holder = await wallet.open(number(8), top_up_fen=50_000)
    await post_bill(service, power, bill(holder, "R-1", due_day="2010-06-04"))
    await post_bill(service, power, bill(holder, "R-2", due_day="2010-06-06"))
    await post_bill(service, power, bill(holder, "R-3", due_day="2010-05-31"))  # overdue
    paid = await post_bill(service, power, bill(holder, "R-4", due_day="2010-06-02"))
    assert (await pay(service, wallet, paid["id"])).status_code == 201
    no_wallet = number(10)
    await post_bill(service, power, bill(no_wallet, "R-5", due_day="2010-06-02"))
    sms = OutboxSms(service.db)
    posted_at = service.clock.now()

    assert await remind_bills(service.db, sms=sms, now=posted_at + timedelta(hours=23)) == 0  # texted on posting
    assert await remind_bills(service.db, sms=sms, now=posted_at + timedelta(hours=24)) == 1  # R-1 only
    assert (await wallet.texts(holder))[0] == (
        "Reminder: your Merchant POWER bill HH-R-1 is 123.45 yuan, due 2010-06-04. "
        "Reply Y to pay it, or Y and an amount to prepay."
    )
    assert await remind_bills(service.db, sms=sms, now=posted_at + timedelta(hours=30)) == 0  # once a day
    on_june_5 = datetime(2010, 6, 5, 10, 0, tzinfo=EXPO_TZ)
    assert await remind_bills(service.db, sms=sms, now=on_june_5) == 1  # R-2; R-1 is overdue by then
    assert (await wallet.texts(holder))[0].startswith("Reminder: your Merchant POWER bill HH-R-2 ")
    assert await wallet.texts(no_wallet) == []
    await wallet.ledger_ok()


async def test_reminders_reach_a_number_that_opened_its_wallet_after_the_bill(service: Service, wallet: Wallet) -> None:
    power = await wallet.merchant("POWER", "utilities")
    late = number(11)
    await post_bill(service, power, bill(late, "L-1", due_day="2010-06-03"))
    assert await remind_bills(service.db, sms=OutboxSms(service.db), now=service.clock.now()) == 0
    await wallet.open(late)
    assert await remind_bills(service.db, sms=OutboxSms(service.db), now=service.clock.now()) == 1
    assert (await wallet.texts(late))[0].startswith("Reminder: your Merchant POWER bill HH-L-1")
    await wallet.ledger_ok()


@pytest.fixture
async def racing(service: Service) -> AsyncIterator[httpx.AsyncClient]:
    """A second worker of the service in this event loop, so gathered requests really interleave."""
    app = create_app(service.settings, clock=service.clock, bank=InMemoryBank(), sweeper=False)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://racing") as client:
        yield client
    await app.state.db.dispose()


async def test_racing_payments_of_one_bill_pay_it_once(
    service: Service, wallet: Wallet, racing: httpx.AsyncClient
) -> None:
    power = await wallet.merchant("POWER", "utilities")
    holder = await wallet.open(number(12), top_up_fen=100_000)
    posted = await post_bill(service, power, bill(holder, "C-1"))

    async def attempt() -> httpx.Response:
        headers = {**wallet.web, "Idempotency-Key": uuid.uuid4().hex}
        return await racing.post(
            f"/v1/wallet/bills/{posted['id']}/payment", json={"password": PASSWORD}, headers=headers
        )

    replies = await asyncio.gather(*(attempt() for _ in range(6)))
    outcomes = sorted("paid" if r.status_code == 201 else r.json()["code"] for r in replies)
    assert outcomes == ["bill_paid"] * 5 + ["paid"], outcomes
    assert (await wallet.account(holder))["balance_fen"] == 100_000 - 12_345
    await wallet.ledger_ok()
