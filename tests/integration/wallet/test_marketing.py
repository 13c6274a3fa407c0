"""Marketing: the operator's budget and red packets (spent before the balance), merchants' vouchers."""

import uuid
from datetime import timedelta
from typing import Any

import httpx

from tests.integration.conftest import Service, number
from tests.integration.wallet.conftest import PASSWORD, Wallet


async def fund(service: Service, wallet: Wallet, amount_fen: int, key: str | None = None) -> httpx.Response:
    return await service.post("/v1/wallet/admin/marketing/funding", {"amount_fen": amount_fen}, wallet.admin, key=key)


async def red_packet(
    service: Service, wallet: Wallet, msisdn: str, amount_fen: int, key: str | None = None
) -> httpx.Response:
    body = {"msisdn": msisdn, "amount_fen": amount_fen, "campaign": "Expo summer"}
    return await service.post("/v1/wallet/admin/red-packets", body, wallet.admin, key=key)


async def pay(
    service: Service, wallet: Wallet, merchant: str, msisdn: str, amount_fen: int, **extra: Any
) -> httpx.Response:
    body = {"merchant": merchant, "msisdn": msisdn, "amount_fen": amount_fen, "channel": "web", "password": PASSWORD}
    return await service.post("/v1/wallet/payments", {**body, **extra}, wallet.web)


async def test_red_packets_from_the_budget_are_spent_before_the_balance(service: Service, wallet: Wallet) -> None:
    await wallet.merchant("EBOOKS", "other_remote")
    buyer = await wallet.open(number(1), top_up_fen=10_000)
    funded = await fund(service, wallet, 100_000)
    assert funded.status_code == 201, funded.text
    assert (funded.json()["kind"], funded.json()["amount_fen"]) == ("marketing_funding", 100_000)

    given = await red_packet(service, wallet, buyer, 3_000)
    assert given.status_code == 201, given.text
    assert (given.json()["kind"], given.json()["msisdn"], given.json()["description"]) == (
        "red_packet",
        buyer,
        "Expo summer",
    )
    account = await wallet.account(buyer)
    assert (account["balance_fen"], account["red_packet_fen"], account["available_fen"]) == (10_000, 3_000, 13_000)
    assert (await wallet.texts(buyer))[0] == (
        "You received a 30.00 yuan red packet (Expo summer). Your payments spend it first."
    )

    first = await pay(service, wallet, "EBOOKS", buyer, 2_000)
    assert first.status_code == 201, first.text
    assert first.json()["red_packet_fen"] == 2_000
    account = await wallet.account(buyer)
    assert (account["balance_fen"], account["red_packet_fen"]) == (10_000, 1_000)
    second = await pay(service, wallet, "EBOOKS", buyer, 5_000)
    assert second.json()["red_packet_fen"] == 1_000  # what is left of the red packet, then the balance
    account = await wallet.account(buyer)
    assert (account["balance_fen"], account["red_packet_fen"]) == (6_000, 0)

    # A refund gives the red packet back in proportion, to the red-packet account.
    refund = await service.post(
        f"/v1/wallet/payments/{second.json()['id']}/refunds", {"amount_fen": 5_000}, wallet.admin
    )
    assert refund.status_code == 201, refund.text
    account = await wallet.account(buyer)
    assert (account["balance_fen"], account["red_packet_fen"]) == (10_000, 1_000)
    await wallet.ledger_ok()


async def test_red_packets_never_exceed_the_budget(service: Service, wallet: Wallet) -> None:
    user = await wallet.open(number(2))
    unfunded = await red_packet(service, wallet, user, 1)
    assert (unfunded.status_code, unfunded.json()["code"]) == (402, "marketing_balance_insufficient")
    assert (await fund(service, wallet, 1_000)).status_code == 201
    key = uuid.uuid4().hex
    assert (await red_packet(service, wallet, user, 600, key=key)).status_code == 201
    replay = await red_packet(service, wallet, user, 600, key=key)
    assert (replay.status_code, replay.headers.get("Idempotent-Replayed")) == (201, "true")
    short = await red_packet(service, wallet, user, 401)
    assert (short.status_code, short.json()["code"]) == (402, "marketing_balance_insufficient")
    assert (await red_packet(service, wallet, user, 400)).status_code == 201
    assert (await wallet.account(user))["red_packet_fen"] == 1_000
    assert len([t for t in await wallet.texts(user) if "red packet" in t]) == 2  # the replay texts nothing

    missing = await red_packet(service, wallet, number(3), 1)
    assert (missing.status_code, missing.json()["code"]) == (404, "no_wallet")
    for amount in (0, -5):
        assert (await fund(service, wallet, amount)).json()["code"] == "invalid_amount"
    assert (await fund(service, wallet, 10**13)).json()["code"] == "amount_too_large"
    no_key = await service.client.post(
        "/v1/wallet/admin/marketing/funding", json={"amount_fen": 1}, headers=wallet.admin
    )
    assert (no_key.status_code, no_key.json()["code"]) == (400, "idempotency_key_required")
    for headers in (wallet.web, wallet.clerk):
        denied = await service.post(
            "/v1/wallet/admin/red-packets", {"msisdn": user, "amount_fen": 1, "campaign": "x"}, headers
        )
        assert (denied.status_code, denied.json()["code"]) == (403, "role_not_allowed")
    await wallet.ledger_ok()


async def issue(service: Service, merchant: dict[str, str], msisdn: str, **changes: Any) -> httpx.Response:
    body = {
        "msisdn": msisdn,
        "product": "ebook-1",
        "value_fen": 500,
        "expires_at": "2010-06-30T23:59:00+08:00",
        **changes,
    }
    return await service.client.post("/v1/wallet/vouchers", json=body, headers=merchant)


async def test_a_voucher_is_deducted_once_for_its_product_phone_and_merchant(service: Service, wallet: Wallet) -> None:
    shop = await wallet.merchant("EBOOKS", "other_remote")
    await wallet.merchant("MUSIC", "other_remote")
    buyer = await wallet.open(number(4), top_up_fen=10_000)
    friend = await wallet.open(number(5), top_up_fen=10_000)
    issued = await issue(service, shop, buyer)
    assert issued.status_code == 201, issued.text
    voucher = issued.json()
    assert (voucher["merchant"], voucher["product"], voucher["value_fen"], voucher["msisdn"]) == (
        "EBOOKS",
        "ebook-1",
        500,
        buyer,
    )
    code = voucher["code"]
    assert len(code) == 12
    assert (await wallet.texts(buyer))[0] == (
        f"Merchant EBOOKS gives you a 5.00 yuan voucher for ebook-1: code {code}, "
        "valid until 2010-06-30 23:59. Quote it when you pay."
    )
    assert (await issue(service, shop, buyer)).json()["code"] != code  # random codes

    wrong_product = await pay(service, wallet, "EBOOKS", buyer, 2_000, voucher=code, product="ebook-2")
    assert (wrong_product.status_code, wrong_product.json()["code"]) == (422, "voucher_wrong_product")
    other_merchant = await pay(service, wallet, "MUSIC", buyer, 2_000, voucher=code, product="ebook-1")
    assert (other_merchant.status_code, other_merchant.json()["code"]) == (404, "unknown_voucher")
    other_phone = await pay(service, wallet, "EBOOKS", friend, 2_000, voucher=code, product="ebook-1")
    assert (other_phone.status_code, other_phone.json()["code"]) == (404, "unknown_voucher")
    assert (await wallet.account(buyer))["balance_fen"] == 10_000  # refusals leave it all as it was

    paid = await pay(service, wallet, "EBOOKS", buyer, 2_000, voucher=code, product="ebook-1")
    assert paid.status_code == 201, paid.text
    assert (paid.json()["voucher_fen"], paid.json()["amount_fen"]) == (500, 1_500)
    assert (await wallet.account(buyer))["balance_fen"] == 10_000 - 1_500
    merchant = await service.client.get("/v1/wallet/merchants/EBOOKS", headers=shop)
    assert merchant.json()["balance_fen"] == 1_500 - 15  # the 1% fee is on what the user pays
    used = await pay(service, wallet, "EBOOKS", buyer, 2_000, voucher=code, product="ebook-1")
    assert (used.status_code, used.json()["code"]) == (409, "voucher_used")
    assert (await wallet.account(buyer))["balance_fen"] == 10_000 - 1_500
    await wallet.ledger_ok()


async def test_a_voucher_lapses_at_its_expiry(service: Service, wallet: Wallet) -> None:
    shop = await wallet.merchant("EBOOKS", "other_remote")
    buyer = await wallet.open(number(6), top_up_fen=10_000)
    code = (await issue(service, shop, buyer, expires_at="2010-06-02T10:00:00+08:00")).json()["code"]
    service.clock.advance(timedelta(days=1))  # 2010-06-02 10:00: the very moment it expires
    expired = await pay(service, wallet, "EBOOKS", buyer, 2_000, voucher=code, product="ebook-1")
    assert (expired.status_code, expired.json()["code"]) == (422, "voucher_expired")
    assert (await wallet.account(buyer))["balance_fen"] == 10_000

    past = await issue(service, shop, buyer, expires_at="2010-06-01T10:00:00+08:00")
    assert (past.status_code, past.json()["code"]) == (422, "voucher_expiry_passed")
    naive = await issue(service, shop, buyer, expires_at="2010-06-30T10:00:00")
    assert (naive.status_code, naive.json()["code"]) == (400, "invalid_request")
    zero = await issue(service, shop, buyer, value_fen=0)
    assert (zero.status_code, zero.json()["code"]) == (422, "invalid_amount")
    denied = await issue(service, wallet.web, buyer)
    assert (denied.status_code, denied.json()["code"]) == (403, "role_not_allowed")
    await wallet.ledger_ok()
