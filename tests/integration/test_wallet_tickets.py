"""Tickets paid from the wallet over HTTP: web with the payment password, 12580 with a texted code the agent
submits; expiry, void and refund give the money back to the wallet; proceeds land in the bureau's receivable."""

from datetime import datetime, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from expo.bank import InMemoryBank
from tests.integration.conftest import Service, hall_sale, number
from tests.integration.test_support import PEAK_DAY, assert_problem, nothing_written, row_counts, sold_on
from tests.integration.wallet.conftest import PASSWORD, Wallet
from ticketing.sweeps import sweep_unpaid
from wallet.models import WalletAccount

STANDARD_FEN = 16_000
PEAK_FEN = 20_000


@pytest.fixture
async def wallet(service: Service, clerk: dict[str, str]) -> Wallet:
    return Wallet(service=service, clerk=clerk)


def web_wallet_sale(msisdn: str, *, password: str | None = PASSWORD, **changes: Any) -> dict[str, Any]:
    """A web/OTA sale of a standard ticket to the Expo card, paid from the wallet with its password."""
    payment: dict[str, Any] = {"method": "wallet"}
    if password is not None:
        payment["password"] = password
    body: dict[str, Any] = {"msisdn": msisdn, "ticket_type": "standard", "carrier": "expo_card", "payment": payment}
    body.update(changes)
    return body


def agent_wallet_sale(msisdn: str, **changes: Any) -> dict[str, Any]:
    """A 12580 sale of a peak-day ticket to a QR voucher, paid from the wallet by a texted code."""
    body: dict[str, Any] = {
        "msisdn": msisdn,
        "ticket_type": "peak",
        "visit_day": PEAK_DAY.isoformat(),
        "carrier": "qr_voucher",
        "payment": {"method": "wallet"},
    }
    body.update(changes)
    return body


async def receivable(service: Service) -> int:
    """The bureau's receivable: wallet-paid ticket proceeds owed to Shanghai and the bureau."""
    async with service.db.read() as session:
        balance = await session.scalar(select(WalletAccount.balance).where(WalletAccount.code == "bureau_receivable"))
    return balance or 0


async def wallet_payment(service: Service, order: dict[str, Any], index: int = 0) -> dict[str, Any]:
    """The wallet transfer behind one of an order's payments, as the wallet shows it."""
    transfer_id = order["payments"][index]["external_ref"]
    reply = await service.client.get(f"/v1/wallet/payments/{transfer_id}", headers=service.device("admin"))
    assert reply.status_code == 200, reply.text
    return reply.json()  # type: ignore[no-any-return]


async def confirm(service: Service, order_id: int, code: str, headers: dict[str, str]) -> httpx.Response:
    return await service.post(f"/v1/orders/{order_id}/wallet-confirmation", {"code": code}, headers)


async def held_sale(service: Service, wallet: Wallet, agent: dict[str, str], n: int) -> tuple[str, dict[str, Any]]:
    """A topped-up wallet and its 12580 peak-day order, waiting for the texted code."""
    buyer = await wallet.open(number(n), top_up_fen=50_000)
    reply = await service.post("/v1/orders", agent_wallet_sale(buyer), agent)
    assert reply.status_code == 202, reply.text
    return buyer, reply.json()


async def test_web_wallet_sale_pays_at_once_into_the_bureaus_receivable(service: Service, wallet: Wallet) -> None:
    buyer = await wallet.open(number(1), top_up_fen=50_000)
    sale = web_wallet_sale(buyer)
    reply = await service.post("/v1/orders", sale, wallet.web, key="web-wallet-1")
    assert reply.status_code == 201, reply.text
    order = reply.json()
    assert (order["status"], order["channel"], order["payment_method"]) == ("paid", "web", "wallet")
    assert [t["status"] for t in order["tickets"]] == ["issued"]
    charge = order["payments"][0]
    assert (charge["kind"], charge["method"], charge["status"], charge["amount_fen"]) == (
        "charge",
        "wallet",
        "confirmed",
        STANDARD_FEN,
    )
    paid = await wallet_payment(service, order)
    assert (paid["kind"], paid["state"], paid["amount_fen"], paid["msisdn"]) == (
        "ticket_payment",
        "posted",
        STANDARD_FEN,
        buyer,
    )
    assert (await wallet.account(buyer))["balance_fen"] == 50_000 - STANDARD_FEN
    assert await receivable(service) == STANDARD_FEN

    replay = await service.post("/v1/orders", sale, wallet.web, key="web-wallet-1")
    assert replay.headers["idempotent-replayed"] == "true"
    assert (await wallet.account(buyer))["balance_fen"] == 50_000 - STANDARD_FEN  # paid once
    await wallet.ledger_ok()


async def test_wrong_password_writes_nothing_and_counts(service: Service, wallet: Wallet) -> None:
    buyer = await wallet.open(number(1), top_up_fen=50_000)
    refused = await service.post("/v1/orders", web_wallet_sale(buyer, password="999999"), wallet.web)
    assert assert_problem(refused, 403, "wrong_password")["attempts_left"] == 4
    await nothing_written(service.db)
    assert (await wallet.account(buyer))["balance_fen"] == 50_000

    missing = await service.post("/v1/orders", web_wallet_sale(buyer, password=None), wallet.web)
    assert_problem(missing, 422, "password_required")
    await nothing_written(service.db)


async def test_insufficient_funds_writes_nothing_and_keeps_the_stock(service: Service, wallet: Wallet) -> None:
    buyer = await wallet.open(number(1), top_up_fen=PEAK_FEN - 1)
    before = await sold_on(service.db, PEAK_DAY)
    sale = web_wallet_sale(buyer, ticket_type="peak", visit_day=PEAK_DAY.isoformat())
    assert_problem(await service.post("/v1/orders", sale, wallet.web), 402, "insufficient_funds")
    await nothing_written(service.db)
    assert await sold_on(service.db, PEAK_DAY) == before
    assert (await wallet.account(buyer))["balance_fen"] == PEAK_FEN - 1
    assert await receivable(service) == 0
    await wallet.ledger_ok()


async def test_12580_sale_holds_the_money_until_the_texted_code_is_read_out(
    service: Service, wallet: Wallet, agent: dict[str, str]
) -> None:
    before = await sold_on(service.db, PEAK_DAY)
    buyer, order = await held_sale(service, wallet, agent, 1)
    assert (order["status"], order["channel"], order["payment_method"]) == ("awaiting_payment", "hotline", "wallet")
    assert [t["status"] for t in order["tickets"]] == ["pending"]
    held = await wallet_payment(service, order)
    assert held["state"] == "pending"
    assert datetime.fromisoformat(order["expires_at"]) == datetime.fromisoformat(held["expires_at"])
    assert await sold_on(service.db, PEAK_DAY) == (before[0], before[1] + 1)  # the day's stock is held meanwhile
    account = await wallet.account(buyer)
    assert (account["balance_fen"], account["held_fen"]) == (50_000, PEAK_FEN)
    text = (await wallet.texts(buyer))[0]
    assert "200.00 yuan" in text
    assert "Expo ticket" in text

    reply = await confirm(service, order["id"], await wallet.last_code(buyer), agent)
    assert reply.status_code == 200, reply.text
    paid = reply.json()
    assert (paid["status"], paid["expires_at"]) == ("paid", None)
    assert [t["status"] for t in paid["tickets"]] == ["issued"]
    assert paid["payments"][0]["status"] == "confirmed"
    assert (await wallet_payment(service, paid))["state"] == "posted"
    account = await wallet.account(buyer)
    assert (account["balance_fen"], account["held_fen"]) == (50_000 - PEAK_FEN, 0)
    assert await receivable(service) == PEAK_FEN
    assert await sold_on(service.db, PEAK_DAY) == (before[0], before[1] + 1)

    again = await confirm(service, order["id"], await wallet.last_code(buyer), agent)
    assert again.status_code == 200, again.text  # a retried confirmation gets the same answer
    assert (await wallet.account(buyer))["balance_fen"] == 50_000 - PEAK_FEN
    await wallet.ledger_ok()


async def test_a_wrong_code_counts_and_leaves_the_order_waiting(
    service: Service, wallet: Wallet, agent: dict[str, str]
) -> None:
    buyer, order = await held_sale(service, wallet, agent, 1)
    code = await wallet.last_code(buyer)
    wrong = "000000" if code != "000000" else "111111"
    assert assert_problem(await confirm(service, order["id"], wrong, agent), 403, "wrong_code")["attempts_left"] == 4
    waiting = (await service.client.get(f"/v1/orders/{order['id']}", headers=agent)).json()
    assert waiting["status"] == "awaiting_payment"
    assert (await wallet.account(buyer))["held_fen"] == PEAK_FEN

    assert_problem(await confirm(service, order["id"], code, wallet.clerk), 403, "role_not_allowed")
    reply = await confirm(service, order["id"], code, agent)
    assert reply.status_code == 200, reply.text
    assert reply.json()["status"] == "paid"


async def test_the_sweep_expires_an_unconfirmed_order_releasing_hold_and_stock(
    service: Service, wallet: Wallet, agent: dict[str, str]
) -> None:
    before = await sold_on(service.db, PEAK_DAY)
    buyer, order = await held_sale(service, wallet, agent, 1)
    service.clock.advance(timedelta(minutes=11))  # past the wallet's 10-minute hold
    report = await sweep_unpaid(service.db, bank=InMemoryBank(), now=service.clock.now())
    assert (report.paid, report.expired) == (0, 1)

    expired = (await service.client.get(f"/v1/orders/{order['id']}", headers=agent)).json()
    assert expired["status"] == "expired"
    assert [t["status"] for t in expired["tickets"]] == ["cancelled"]
    assert expired["payments"][0]["status"] == "cancelled"
    assert (await wallet_payment(service, expired))["state"] == "voided"
    account = await wallet.account(buyer)
    assert (account["balance_fen"], account["held_fen"]) == (50_000, 0)
    assert await sold_on(service.db, PEAK_DAY) == before
    assert await receivable(service) == 0
    await wallet.ledger_ok()


async def test_a_code_read_out_too_late_expires_the_order(
    service: Service, wallet: Wallet, agent: dict[str, str]
) -> None:
    before = await sold_on(service.db, PEAK_DAY)
    buyer, order = await held_sale(service, wallet, agent, 1)
    code = await wallet.last_code(buyer)
    service.clock.advance(timedelta(minutes=6))  # the code lives 5 minutes, the hold 10
    assert_problem(await confirm(service, order["id"], code, agent), 409, "order_expired")

    expired = (await service.client.get(f"/v1/orders/{order['id']}", headers=agent)).json()
    assert expired["status"] == "expired"
    assert (await wallet.account(buyer))["held_fen"] == 0
    assert await sold_on(service.db, PEAK_DAY) == before
    assert_problem(await confirm(service, order["id"], code, agent), 409, "not_awaiting_payment")
    await wallet.ledger_ok()


async def test_void_of_a_wallet_paid_order_returns_the_money_to_the_wallet(service: Service, wallet: Wallet) -> None:
    buyer = await wallet.open(number(1), top_up_fen=50_000)
    order = (await service.post("/v1/orders", web_wallet_sale(buyer), wallet.web)).json()
    reply = await service.post(f"/v1/orders/{order['id']}/void", {}, wallet.web)
    assert reply.status_code == 200, reply.text
    voided = reply.json()
    assert voided["status"] == "void"
    assert [(p["kind"], p["method"], p["amount_fen"]) for p in voided["payments"]] == [
        ("charge", "wallet", STANDARD_FEN),
        ("void", "wallet", STANDARD_FEN),
    ]
    refund = await wallet_payment(service, voided, 1)
    assert (refund["kind"], refund["state"], refund["amount_fen"]) == ("refund", "posted", STANDARD_FEN)
    assert (await wallet.account(buyer))["balance_fen"] == 50_000
    assert await receivable(service) == 0
    await wallet.ledger_ok()


async def test_refund_of_a_12580_wallet_order_returns_money_and_stock(
    service: Service, wallet: Wallet, agent: dict[str, str]
) -> None:
    before = await sold_on(service.db, PEAK_DAY)
    buyer, order = await held_sale(service, wallet, agent, 1)
    assert (await confirm(service, order["id"], await wallet.last_code(buyer), agent)).status_code == 200
    reply = await service.post(f"/v1/orders/{order['id']}/refund", {}, agent)
    assert reply.status_code == 200, reply.text
    refunded = reply.json()
    assert refunded["status"] == "refunded"
    assert [(p["kind"], p["method"]) for p in refunded["payments"]] == [("charge", "wallet"), ("refund", "wallet")]
    assert (await wallet_payment(service, refunded, 1))["kind"] == "refund"
    account = await wallet.account(buyer)
    assert (account["balance_fen"], account["held_fen"]) == (50_000, 0)
    assert await receivable(service) == 0
    assert await sold_on(service.db, PEAK_DAY) == before
    assert_problem(await service.post(f"/v1/orders/{order['id']}/refund", {}, agent), 409, "not_refundable")
    await wallet.ledger_ok()


async def test_void_of_an_order_still_waiting_for_its_code_lets_the_hold_go(
    service: Service, wallet: Wallet, agent: dict[str, str]
) -> None:
    before = await sold_on(service.db, PEAK_DAY)
    buyer, order = await held_sale(service, wallet, agent, 1)
    reply = await service.post(f"/v1/orders/{order['id']}/void", {}, agent)
    assert reply.status_code == 200, reply.text
    voided = reply.json()
    assert voided["status"] == "void"
    assert [(p["kind"], p["status"]) for p in voided["payments"]] == [("charge", "cancelled")]
    assert (await wallet_payment(service, voided))["state"] == "voided"
    account = await wallet.account(buyer)
    assert (account["balance_fen"], account["held_fen"]) == (50_000, 0)
    assert await sold_on(service.db, PEAK_DAY) == before
    code = await wallet.last_code(buyer)
    assert_problem(await confirm(service, order["id"], code, agent), 409, "not_awaiting_payment")
    await wallet.ledger_ok()


async def test_only_web_and_12580_take_the_wallet_and_only_the_web_a_password(
    service: Service, wallet: Wallet, agent: dict[str, str]
) -> None:
    buyer = await wallet.open(number(1), top_up_fen=50_000)
    at_the_hall = hall_sale(buyer, payment={"method": "wallet"})
    assert_problem(await service.post("/v1/orders", at_the_hall, wallet.clerk), 422, "payment_method_not_allowed")
    told_the_agent = agent_wallet_sale(buyer, payment={"method": "wallet", "password": PASSWORD})
    assert_problem(await service.post("/v1/orders", told_the_agent, agent), 422, "password_not_allowed")
    await nothing_written(service.db)
    assert (await wallet.account(buyer))["balance_fen"] == 50_000
    assert await wallet.texts(buyer) == []
    assert (await row_counts(service.db))["orders"] == 0
