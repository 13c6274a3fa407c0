"""Remote wallet payments over HTTP: web with the password, SMS with a texted code, refunds, fees, the ledger."""

from tests.integration.conftest import Service, number
from tests.integration.wallet.conftest import PASSWORD, Wallet

INNER_MONGOLIA = "1380000"  # the shipped segment table gives 1380000 to Inner Mongolia (15)


async def test_web_payment_posts_at_once_with_the_fee_split_to_the_users_province(
    service: Service, wallet: Wallet
) -> None:
    shop = await wallet.merchant("EBOOKS", "other_remote")  # 1% fee, a Shanghai merchant
    buyer = await wallet.open(number(1, INNER_MONGOLIA), top_up_fen=10_000)
    reply = await service.post(
        "/v1/wallet/payments",
        {"merchant": "EBOOKS", "msisdn": buyer, "amount_fen": 2_550, "channel": "web", "password": PASSWORD},
        wallet.web,
    )
    assert reply.status_code == 201, reply.text
    paid = reply.json()
    assert (paid["state"], paid["amount_fen"], paid["fee_fen"]) == ("posted", 2_550, 26)  # 25.5 fen rounds up
    assert (await wallet.account(buyer))["balance_fen"] == 10_000 - 2_550
    merchant = await service.client.get("/v1/wallet/merchants/EBOOKS", headers=shop)
    assert merchant.json()["balance_fen"] == 2_550 - 26
    report = await wallet.ledger_ok()
    assert report["postings"] == 2 + 3  # the top-up's two legs; payer, merchant and one province's fee


async def test_sms_payment_holds_until_the_texted_code_confirms_it(service: Service, wallet: Wallet) -> None:
    shop = await wallet.merchant("GAMES", "virtual_goods")  # 15% guide price
    buyer = await wallet.open(number(2, INNER_MONGOLIA), top_up_fen=5_000)
    reply = await service.post(
        "/v1/wallet/payments", {"merchant": "GAMES", "msisdn": buyer, "amount_fen": 1_000, "channel": "sms"}, shop
    )
    assert reply.status_code == 202, reply.text
    held = reply.json()
    assert held["state"] == "pending"
    account = await wallet.account(buyer)
    assert (account["balance_fen"], account["held_fen"], account["available_fen"]) == (5_000, 1_000, 4_000)

    wrong = await service.client.post(
        f"/v1/wallet/payments/{held['id']}/confirmation", json={"code": "000000"}, headers=shop
    )
    code = await wallet.last_code(buyer)
    if code != "000000":
        assert wrong.status_code == 403
        assert wrong.json()["code"] == "wrong_code"
    confirmed = await service.client.post(
        f"/v1/wallet/payments/{held['id']}/confirmation", json={"code": code}, headers=shop
    )
    assert confirmed.status_code == 200, confirmed.text
    assert confirmed.json()["state"] == "posted"
    account = await wallet.account(buyer)
    assert (account["balance_fen"], account["held_fen"]) == (4_000, 0)
    await wallet.ledger_ok()


async def test_refunds_are_partial_or_full_and_never_more_than_paid(service: Service, wallet: Wallet) -> None:
    shop = await wallet.merchant("MUSIC", "virtual_goods", fee_rate_bp=1_000)
    buyer = await wallet.open(number(3, INNER_MONGOLIA), top_up_fen=10_000)
    paid = await service.post(
        "/v1/wallet/payments",
        {"merchant": "MUSIC", "msisdn": buyer, "amount_fen": 999, "channel": "web", "password": PASSWORD},
        wallet.web,
    )
    payment = paid.json()
    assert payment["fee_fen"] == 100
    first = await service.post(f"/v1/wallet/payments/{payment['id']}/refunds", {"amount_fen": 333}, shop)
    assert first.status_code == 201, first.text
    too_much = await service.post(f"/v1/wallet/payments/{payment['id']}/refunds", {"amount_fen": 667}, shop)
    assert too_much.status_code == 409
    assert too_much.json()["code"] == "refund_exceeds_payment"
    rest = await service.post(f"/v1/wallet/payments/{payment['id']}/refunds", {"amount_fen": 666}, shop)
    assert rest.status_code == 201, rest.text
    assert first.json()["fee_fen"] + rest.json()["fee_fen"] == 100  # the whole fee comes back
    assert (await wallet.account(buyer))["balance_fen"] == 10_000
    merchant = await service.client.get("/v1/wallet/merchants/MUSIC", headers=shop)
    assert merchant.json()["balance_fen"] == 0
    await wallet.ledger_ok()
