"""The wallet's sweep: lapsed SMS payment holds voided (merchant payments only), bank transfers settled by query."""

import asyncio
from datetime import timedelta

import httpx
from click.testing import CliRunner

from expo.bank import InMemoryBank
from expo.cli_wallet import wallet as wallet_cli
from expo.db import Database
from tests.integration.conftest import Service, number
from tests.integration.wallet.conftest import Wallet
from tests.integration.wallet.test_topups import TIMES_OUT, bank_top_up
from tests.integration.wallet.test_withdrawals import withdraw
from wallet.payments import PaymentTerms, pay
from wallet.rules import DEFAULT_LIMITS, PaymentChannel
from wallet.sweeps import WalletSweepReport, sweep_wallet

HOLD_WINDOW = timedelta(minutes=10)  # the service fixture's default wallet_hold_window


async def sms_payment(service: Service, shop: dict[str, str], msisdn: str, amount_fen: int) -> httpx.Response:
    body = {"merchant": "GAMES", "msisdn": msisdn, "amount_fen": amount_fen, "channel": "sms"}
    reply = await service.post("/v1/wallet/payments", body, shop)
    assert reply.status_code == 202, reply.text
    return reply


async def sweep(service: Service, db: Database | None = None) -> WalletSweepReport:
    return await sweep_wallet(db or service.db, bank=InMemoryBank(), now=service.clock.now())


async def test_lapsed_sms_payment_holds_are_voided_and_live_ones_kept(service: Service, wallet: Wallet) -> None:
    shop = await wallet.merchant("GAMES", "virtual_goods")
    user = await wallet.open(number(1), top_up_fen=10_000)
    early = (await sms_payment(service, shop, user, 1_000)).json()
    service.clock.advance(timedelta(minutes=5))
    late = (await sms_payment(service, shop, user, 2_000)).json()
    assert (await wallet.account(user))["held_fen"] == 3_000

    service.clock.advance(HOLD_WINDOW - timedelta(minutes=5))  # the first hold lapses now, the second in 5 minutes
    assert (await sweep(service)).holds_voided == 1
    states = [
        (await service.client.get(f"/v1/wallet/payments/{p['id']}", headers=wallet.admin)).json()["state"]
        for p in (early, late)
    ]
    assert states == ["voided", "pending"]
    account = await wallet.account(user)
    assert (account["balance_fen"], account["held_fen"]) == (10_000, 2_000)
    assert (await sweep(service)).holds_voided == 0
    await wallet.ledger_ok()


async def test_ticket_payment_holds_are_left_to_ticketing(service: Service, wallet: Wallet) -> None:
    user = await wallet.open(number(2), top_up_fen=10_000)
    async with service.db.write() as session:
        outcome = await pay(
            session,
            idempotency_key="ticket-hold",
            msisdn=user,
            merchant=None,
            amount_fen=16_000 // 4,
            channel=PaymentChannel.SMS,
            terms=PaymentTerms(limits=DEFAULT_LIMITS, hold_window=HOLD_WINDOW),
            now=service.clock.now(),
        )
    assert outcome.transfer.kind == "ticket_payment"
    service.clock.advance(HOLD_WINDOW * 2)
    assert (await sweep(service)).holds_voided == 0
    assert (await wallet.account(user))["held_fen"] == 4_000
    await wallet.ledger_ok()


async def test_two_workers_sweeping_at_once_void_each_hold_once(
    service: Service, wallet: Wallet, database_url: str
) -> None:
    shop = await wallet.merchant("GAMES", "virtual_goods")
    user = await wallet.open(number(3), top_up_fen=10_000)
    for amount in (100, 200, 300):
        await sms_payment(service, shop, user, amount)
    service.clock.advance(HOLD_WINDOW)
    other_worker = Database(database_url)
    try:
        reports = await asyncio.gather(sweep(service), sweep(service, other_worker))
    finally:
        await other_worker.dispose()
    assert sum(report.holds_voided for report in reports) == 3
    account = await wallet.account(user)
    assert (account["balance_fen"], account["held_fen"]) == (10_000, 0)
    await wallet.ledger_ok()


async def test_the_command_line_sweep_settles_bank_top_ups_and_withdrawals(service: Service, wallet: Wallet) -> None:
    user = await wallet.open(number(4), top_up_fen=10_000)
    assert (await bank_top_up(service, wallet, user, 2_000, TIMES_OUT)).status_code == 202
    assert (await withdraw(service, wallet, user, 3_000)).status_code == 202
    account = await wallet.account(user)
    assert (account["balance_fen"], account["held_fen"]) == (10_000, 3_000)

    at = (service.clock.now() + timedelta(days=1)).isoformat()
    env = {"EXPO_DATABASE_URL": service.db.url}
    result = await asyncio.to_thread(CliRunner().invoke, wallet_cli, ["sweep", "--at", at], env=env)
    assert result.exit_code == 0, result.output
    assert "top-ups posted 1" in result.output
    assert "withdrawals paid 1" in result.output
    account = await wallet.account(user)
    assert (account["balance_fen"], account["held_fen"]) == (10_000 + 2_000 - 3_000, 0)
    again = await asyncio.to_thread(CliRunner().invoke, wallet_cli, ["sweep", "--at", at], env=env)
    assert "top-ups posted 0" in again.output
    assert "withdrawals paid 0" in again.output
    await wallet.ledger_ok()
