"""Texts users send to the service number: "Y" pays the latest bill, "Y"+amount prepays, "KT" opens a wallet."""

import asyncio
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import httpx
import pytest

from expo.app import create_app
from expo.bank import InMemoryBank
from tests.integration.conftest import Service, number
from tests.integration.wallet.conftest import Wallet


async def send(service: Service, msisdn: str, text: str, message_id: str | None = None) -> dict[str, Any]:
    """The SMS centre hands over a text; it is always answered 200 with what was done."""
    body: dict[str, Any] = {"msisdn": msisdn, "text": text}
    if message_id is not None:
        body["message_id"] = message_id
    reply = await service.client.post("/v1/wallet/sms/inbound", json=body, headers=service.device("sms_gateway"))
    assert reply.status_code == 200, reply.text
    return reply.json()  # type: ignore[no-any-return]


async def post_bill(
    service: Service, biller: dict[str, str], msisdn: str, bill_no: str, amount_fen: int
) -> dict[str, Any]:
    body = {
        "bill_no": bill_no,
        "msisdn": msisdn,
        "customer_ref": f"HH-{bill_no}",
        "amount_fen": amount_fen,
        "due_day": "2010-06-15",
    }
    reply = await service.client.post("/v1/wallet/bills", json=body, headers=biller)
    assert reply.status_code == 201, reply.text
    service.clock.advance(timedelta(minutes=1))  # bills are texted one after the other
    return reply.json()  # type: ignore[no-any-return]


async def bill_states(service: Service, wallet: Wallet, msisdn: str) -> dict[str, str]:
    reply = await service.client.get("/v1/wallet/bills", params={"msisdn": msisdn}, headers=wallet.admin)
    return {row["bill_no"]: row["status"] for row in reply.json()}


async def transfers(service: Service, wallet: Wallet, msisdn: str) -> list[dict[str, Any]]:
    reply = await service.client.get(f"/v1/wallet/accounts/{msisdn}/transfers", headers=wallet.admin)
    return [row for row in reply.json() if row["kind"] == "payment"]


async def test_y_pays_the_latest_texted_open_bill_without_a_password(service: Service, wallet: Wallet) -> None:
    power = await wallet.merchant("POWER", "utilities")
    holder = await wallet.open(number(1), top_up_fen=50_000)
    await post_bill(service, power, holder, "B-1", 10_000)
    newest = await post_bill(service, power, holder, "B-2", 7_000)

    done = await send(service, holder, "y")
    assert (done["action"], done["done"], done["bill_id"], done["amount_fen"]) == (
        "pay_bill",
        True,
        newest["id"],
        7_000,
    )
    assert await bill_states(service, wallet, holder) == {"B-1": "open", "B-2": "paid"}
    assert (await wallet.texts(holder))[:2] == [
        "Paid 70.00 yuan to Merchant POWER for bill HH-B-2. You have 430.00 yuan left.",
        "y",
    ]
    [payment] = await transfers(service, wallet, holder)
    assert (payment["id"], payment["state"], payment["channel"], payment["merchant"]) == (
        done["payment_id"],
        "posted",
        "sms",
        "POWER",
    )
    account = await wallet.account(holder)
    assert (account["balance_fen"], account["held_fen"]) == (43_000, 0)

    assert (await send(service, holder, "Y"))["bill_id"] != newest["id"]  # next: the older open bill
    assert await bill_states(service, wallet, holder) == {"B-1": "paid", "B-2": "paid"}
    nothing = await send(service, holder, "Y")
    assert (nothing["done"], nothing["code"]) == (False, "no_bill_to_pay")
    assert (await wallet.texts(holder))[0] == "Not done: no open bill was texted to this number."
    assert (await wallet.account(holder))["balance_fen"] == 33_000
    await wallet.ledger_ok()


async def test_y_and_an_amount_prepays_the_biller_and_leaves_the_bill_open(service: Service, wallet: Wallet) -> None:
    water = await wallet.merchant("WATER", "utilities")
    holder = await wallet.open(number(2), top_up_fen=20_000)
    await post_bill(service, water, holder, "W-1", 3_000)

    done = await send(service, holder, "Y 50.5")
    assert (done["action"], done["done"], done["amount_fen"]) == ("prepay", True, 5_050)
    assert await bill_states(service, wallet, holder) == {"W-1": "open"}
    [payment] = await transfers(service, wallet, holder)
    assert (payment["amount_fen"], payment["description"], payment["reference"], payment["merchant"]) == (
        5_050,
        "prepayment HH-W-1",
        "HH-W-1",
        "WATER",
    )
    assert (await wallet.texts(holder))[0] == (
        "Paid 50.50 yuan to Merchant WATER for prepayment HH-W-1. You have 149.50 yuan left."
    )
    # The bill itself can still be paid, and prepaying needs only a bill once texted, paid or not.
    assert (await send(service, holder, "Y"))["done"] is True
    again = await send(service, holder, "Y10")
    assert (again["action"], again["done"]) == ("prepay", True)
    assert (await wallet.account(holder))["balance_fen"] == 20_000 - 5_050 - 3_000 - 1_000
    await wallet.ledger_ok()


async def test_refusals_are_texted_back_and_reported_not_failed(service: Service, wallet: Wallet) -> None:
    power = await wallet.merchant("POWER", "utilities")
    stranger = number(3)
    await post_bill(service, power, stranger, "N-1", 1_000)
    no_wallet = await send(service, stranger, "Y")
    assert (no_wallet["action"], no_wallet["done"], no_wallet["code"]) == ("pay_bill", False, "no_wallet")
    assert (await wallet.texts(stranger))[0] == f"Not done: {stranger} has no wallet. Reply KT to open a wallet."

    poor = await wallet.open(number(4), top_up_fen=999)
    await post_bill(service, power, poor, "P-1", 1_000)
    short = await send(service, poor, "Y")
    assert (short["done"], short["code"]) == (False, "insufficient_funds")
    assert (await wallet.texts(poor))[0].startswith("Not done: the account's available balance does not cover this")
    prepay_short = await send(service, poor, "Y9.99")
    assert prepay_short["done"] is True  # exactly what is there
    assert await bill_states(service, wallet, poor) == {"P-1": "open"}

    no_bill = await send(service, await wallet.open(number(5), top_up_fen=1_000), "Y5")
    assert (no_bill["action"], no_bill["code"]) == ("prepay", "no_biller_to_prepay")
    account = await wallet.account(poor)
    assert (account["balance_fen"], account["held_fen"]) == (0, 0)
    await wallet.ledger_ok()


async def test_a_wallet_opened_by_sms_pays_within_its_basic_limits(service: Service, wallet: Wallet) -> None:
    power = await wallet.merchant("POWER", "utilities")
    user = number(6)
    opened = await send(service, user, " kt ")
    assert (opened["action"], opened["done"]) == ("open_wallet", True)
    account = await wallet.account(user)
    assert (account["opened_via"], account["account_class"], account["password_set"]) == ("sms", "basic", False)
    assert "payment password" in (await wallet.texts(user))[0]
    twice = await send(service, user, "KT")
    assert (twice["done"], twice["code"]) == (False, "account_exists")
    assert (await send(service, number(7), "开通"))["done"] is True

    await wallet.top_up(user, 100_000)  # a basic wallet's day of payments is 1,000 yuan
    first = await post_bill(service, power, user, "D-1", 60_000)
    web = await service.post(f"/v1/wallet/bills/{first['id']}/payment", {"password": "135790"}, wallet.web)
    assert (web.status_code, web.json()["code"]) == (403, "password_not_set")
    assert (await send(service, user, "Y"))["done"] is True  # the reply from the phone needs no password
    await post_bill(service, power, user, "D-2", 40_001)
    limited = await send(service, user, "Y")
    assert (limited["done"], limited["code"]) == (False, "payment_amount_limit")
    assert (await wallet.texts(user))[0].startswith("Not done: this would pass the day's payment limit")
    assert await bill_states(service, wallet, user) == {"D-1": "paid", "D-2": "open"}
    await wallet.ledger_ok()


async def test_other_texts_get_help_and_every_text_is_kept(service: Service, wallet: Wallet) -> None:
    holder = await wallet.open(number(8))
    for text in ("hello", "", "Y0", "YES"):
        done = await send(service, holder, text)
        assert (done["action"], done["done"]) == ("help", True)
    rows = await service.client.get("/v1/wallet/admin/sms", params={"msisdn": holder}, headers=wallet.admin)
    assert [(row["direction"], row["text"]) for row in rows.json()][:2] == [
        ("out", "Reply Y to pay your latest bill, Y and an amount (e.g. Y50) to prepay it, or KT to open a wallet."),
        ("in", "YES"),
    ]
    assert len(rows.json()) == 8
    denied = await service.client.post(
        "/v1/wallet/sms/inbound", json={"msisdn": holder, "text": "Y"}, headers=wallet.web
    )
    assert (denied.status_code, denied.json()["code"]) == (403, "role_not_allowed")
    await wallet.ledger_ok()


async def test_a_message_delivered_twice_pays_once(service: Service, wallet: Wallet) -> None:
    power = await wallet.merchant("POWER", "utilities")
    holder = await wallet.open(number(9), top_up_fen=50_000)
    first_bill = await post_bill(service, power, holder, "M-1", 1_000)
    first = await send(service, holder, "Y", message_id="msg-1")
    assert (first["done"], first["replayed"], first["bill_id"]) == (True, False, first_bill["id"])
    await post_bill(service, power, holder, "M-2", 1_000)  # a newer open bill, same amount

    again = await send(service, holder, "Y", message_id="msg-1")
    assert (again["done"], again["replayed"], again["payment_id"]) == (True, True, first["payment_id"])
    assert await bill_states(service, wallet, holder) == {"M-1": "paid", "M-2": "open"}
    receipts = [text for text in await wallet.texts(holder) if text.startswith("Paid")]
    assert len(receipts) == 1  # the duplicate is not answered again
    prepaid = await send(service, holder, "Y20", message_id="msg-2")
    assert (await send(service, holder, "Y20", message_id="msg-2"))["payment_id"] == prepaid["payment_id"]
    # Another message id is another message.
    assert (await send(service, holder, "Y", message_id="msg-3"))["replayed"] is False
    assert len(await transfers(service, wallet, holder)) == 3
    assert (await wallet.account(holder))["balance_fen"] == 50_000 - 1_000 - 2_000 - 1_000
    await wallet.ledger_ok()


@pytest.fixture
async def racing(service: Service) -> AsyncIterator[httpx.AsyncClient]:
    """A second worker of the service in this event loop, so gathered requests really interleave."""
    app = create_app(service.settings, clock=service.clock, bank=InMemoryBank(), sweeper=False)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://racing") as client:
        yield client
    await app.state.db.dispose()


async def test_duplicates_racing_in_pay_once_and_race_a_web_payment_fairly(
    service: Service, wallet: Wallet, racing: httpx.AsyncClient
) -> None:
    power = await wallet.merchant("POWER", "utilities")
    holder = await wallet.open(number(10), top_up_fen=50_000)
    await post_bill(service, power, holder, "R-1", 1_000)
    gateway = service.device("sms_gateway")

    async def deliver(message_id: str, text: str = "Y") -> httpx.Response:
        body = {"msisdn": holder, "text": text, "message_id": message_id}
        return await racing.post("/v1/wallet/sms/inbound", json=body, headers=gateway)

    replies = await asyncio.gather(*(deliver("dup") for _ in range(5)))
    assert all(reply.status_code == 200 for reply in replies)
    assert len({reply.json()["payment_id"] for reply in replies}) == 1
    assert sorted(reply.json()["replayed"] for reply in replies) == [False, True, True, True, True]

    bill = await post_bill(service, power, holder, "R-2", 2_000)
    web = {**wallet.web, "Idempotency-Key": "web-r2"}
    raced = await asyncio.gather(
        racing.post(f"/v1/wallet/bills/{bill['id']}/payment", json={"password": "135790"}, headers=web),
        deliver("sms-r2"),
        deliver("sms-r2b"),
    )
    paid = [raced[0].status_code == 201] + [reply.json()["done"] for reply in raced[1:]]
    assert sum(paid) == 1, [reply.text for reply in raced]
    assert len(await transfers(service, wallet, holder)) == 2
    assert (await wallet.account(holder))["balance_fen"] == 50_000 - 1_000 - 2_000
    await wallet.ledger_ok()
