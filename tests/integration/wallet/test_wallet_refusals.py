"""Refusals of the wallet: each a clear 4xx problem with its code, and nothing posted."""

from datetime import timedelta
from typing import Any

import pytest

from tests.integration.conftest import Service, number
from tests.integration.wallet.conftest import PASSWORD, Wallet

SEGMENT = "1380000"


def web_payment(msisdn: str, amount_fen: int, **changes: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "merchant": "SHOP",
        "msisdn": msisdn,
        "amount_fen": amount_fen,
        "channel": "web",
        "password": PASSWORD,
    }
    body.update(changes)
    return body


async def assert_nothing_posted(wallet: Wallet, msisdn: str, balance_fen: int) -> None:
    account = await wallet.account(msisdn)
    assert (account["balance_fen"], account["held_fen"]) == (balance_fen, 0)
    statement = await wallet.service.client.get(f"/v1/wallet/accounts/{msisdn}/transfers", headers=wallet.admin)
    assert [row["kind"] for row in statement.json()] == ["top_up"]
    await wallet.ledger_ok()


@pytest.mark.parametrize(
    ("changes", "status", "code"),
    [
        ({"amount_fen": 0}, 422, "invalid_amount"),
        ({"amount_fen": -100}, 422, "invalid_amount"),
        ({"amount_fen": 1_000_000}, 422, "amount_needs_bank_card"),
        ({"amount_fen": 2**60}, 400, "invalid_request"),
        ({"merchant": "NOBODY"}, 404, "unknown_merchant"),
        ({"msisdn": number(99, SEGMENT)}, 404, "no_wallet"),
        ({"msisdn": "13012345678"}, 404, "no_wallet"),
        ({"channel": "proximity"}, 422, "wrong_channel"),
        ({"password": None}, 403, "password_required"),
        ({"amount_fen": 5_001}, 402, "insufficient_funds"),
    ],
)
async def test_bad_payments_are_refused_with_their_code(
    service: Service, wallet: Wallet, changes: dict[str, Any], status: int, code: str
) -> None:
    await wallet.merchant("SHOP", "other_remote")
    buyer = await wallet.open(number(1, SEGMENT), top_up_fen=5_000)
    body = {key: value for key, value in {**web_payment(buyer, 100), **changes}.items() if value is not None}
    reply = await service.post("/v1/wallet/payments", body, wallet.web)
    assert reply.status_code == status, reply.text
    assert reply.json()["code"] == code
    await assert_nothing_posted(wallet, buyer, 5_000)


async def test_five_wrong_passwords_lock_the_wallet_even_against_the_right_one(
    service: Service, wallet: Wallet
) -> None:
    await wallet.merchant("SHOP", "other_remote")
    buyer = await wallet.open(number(2, SEGMENT), top_up_fen=5_000)
    left = []
    for _ in range(4):
        reply = await service.post("/v1/wallet/payments", web_payment(buyer, 100, password="999999"), wallet.web)
        assert reply.status_code == 403
        left.append(reply.json()["attempts_left"])
    assert left == [4, 3, 2, 1]
    fifth = await service.post("/v1/wallet/payments", web_payment(buyer, 100, password="999999"), wallet.web)
    assert (fifth.status_code, fifth.json()["code"]) == (423, "password_locked")
    right = await service.post("/v1/wallet/payments", web_payment(buyer, 100), wallet.web)
    assert (right.status_code, right.json()["code"]) == (423, "password_locked")
    await assert_nothing_posted(wallet, buyer, 5_000)
    service.clock.advance(timedelta(minutes=16))
    later = await service.post("/v1/wallet/payments", web_payment(buyer, 100), wallet.web)
    assert later.status_code == 201, later.text


async def test_a_right_password_resets_the_count_of_wrong_ones(service: Service, wallet: Wallet) -> None:
    await wallet.merchant("SHOP", "other_remote")
    buyer = await wallet.open(number(3, SEGMENT), top_up_fen=5_000)
    for _ in range(3):
        await service.post("/v1/wallet/payments", web_payment(buyer, 100, password="999999"), wallet.web)
    assert (await service.post("/v1/wallet/payments", web_payment(buyer, 100), wallet.web)).status_code == 201
    again = await service.post("/v1/wallet/payments", web_payment(buyer, 100, password="999999"), wallet.web)
    assert again.json()["attempts_left"] == 4


async def test_a_replayed_key_pays_once_and_a_reused_key_is_refused(service: Service, wallet: Wallet) -> None:
    await wallet.merchant("SHOP", "other_remote")
    buyer = await wallet.open(number(4, SEGMENT), top_up_fen=5_000)
    first = await service.post("/v1/wallet/payments", web_payment(buyer, 700), wallet.web, key="order-42")
    again = await service.post("/v1/wallet/payments", web_payment(buyer, 700), wallet.web, key="order-42")
    assert first.status_code == again.status_code == 201
    assert again.headers["Idempotent-Replayed"] == "true"
    assert again.json()["id"] == first.json()["id"]
    other = await service.post("/v1/wallet/payments", web_payment(buyer, 800), wallet.web, key="order-42")
    assert (other.status_code, other.json()["code"]) == (422, "idempotency_key_reused")
    assert (await wallet.account(buyer))["balance_fen"] == 5_000 - 700
    await wallet.ledger_ok()


async def test_the_days_payment_limit_refuses_without_posting(service: Service, wallet: Wallet) -> None:
    """A basic (web-opened) wallet may pay 1,000 yuan a day; a real-name one far more."""
    await wallet.merchant("SHOP", "other_remote")
    buyer = await wallet.open(number(5, SEGMENT), top_up_fen=100_000)
    # The hall opening made it real-name: it pays past the basic day's limit.
    big = await service.post("/v1/wallet/payments", web_payment(buyer, 150_000 // 2), wallet.web)
    assert big.status_code == 201, big.text

    basic = number(6, SEGMENT)
    await service.client.post("/v1/wallet/sms-codes", json={"msisdn": basic, "purpose": "open"}, headers=wallet.web)
    opened = await service.client.post(
        "/v1/wallet/accounts",
        json={"msisdn": basic, "password": PASSWORD, "code": await wallet.last_code(basic)},
        headers=wallet.web,
    )
    assert opened.status_code == 201, opened.text
    assert opened.json()["account_class"] == "basic"
    await wallet.top_up(basic, 100_000)
    paid = await service.post("/v1/wallet/payments", web_payment(basic, 90_000), wallet.web)
    assert paid.status_code == 201, paid.text
    over = await service.post("/v1/wallet/payments", web_payment(basic, 10_001), wallet.web)
    assert over.status_code == 422
    problem = over.json()
    assert (problem["code"], problem["period"], problem["remaining_fen"]) == ("payment_amount_limit", "day", 10_000)
    exactly = await service.post("/v1/wallet/payments", web_payment(basic, 10_000), wallet.web)
    assert exactly.status_code == 201, exactly.text
    service.clock.advance(timedelta(days=1))
    wallet.clerk = await service.login("sh_hall", "SH-C001")  # yesterday's session has ended
    await wallet.top_up(basic, 1_000)
    next_day = await service.post("/v1/wallet/payments", web_payment(basic, 100), wallet.web)
    assert next_day.status_code == 201, next_day.text
    await wallet.ledger_ok()
