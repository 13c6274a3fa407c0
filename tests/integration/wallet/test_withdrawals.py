"""Withdrawals to a bank card: held until the bank pays, captured or voided; password, limits, red packets."""

from datetime import datetime, timedelta

import httpx
import pytest

from expo.bank import InMemoryBank
from expo.clock import EXPO_TZ
from tests.integration.conftest import Service, number
from tests.integration.wallet.conftest import PASSWORD, Wallet
from tests.integration.wallet.test_topups import APPROVES, DECLINES, notify, statement
from wallet import ledger
from wallet.accounts import find_user
from wallet.ledger import leg
from wallet.models import WalletAccount, WalletTransfer
from wallet.rules import AccountKind, TransferKind, TransferState
from wallet.sweeps import sweep_wallet
from wallet.withdrawals import add_working_days


async def withdraw(
    service: Service, wallet: Wallet, msisdn: str, amount_fen: int, *, account: str = APPROVES, password: str = PASSWORD
) -> httpx.Response:
    body = {"msisdn": msisdn, "amount_fen": amount_fen, "account": account, "password": password}
    return await service.post("/v1/wallet/withdrawals", body, wallet.web)


async def sweep(service: Service) -> tuple[int, int]:
    report = await sweep_wallet(service.db, bank=InMemoryBank(), now=service.clock.now())
    return report.withdrawals_paid, report.withdrawals_failed


async def test_a_withdrawal_is_held_until_the_bank_pays_a_working_day_later(service: Service, wallet: Wallet) -> None:
    user = await wallet.open(number(1), top_up_fen=10_000)  # on Tuesday 1 June 2010
    reply = await withdraw(service, wallet, user, 3_000)
    assert reply.status_code == 202, reply.text
    held = reply.json()
    assert (held["kind"], held["state"], held["description"]) == ("withdrawal", "pending", "****0001")
    account = await wallet.account(user)
    assert (account["balance_fen"], account["held_fen"], account["available_fen"]) == (10_000, 3_000, 7_000)
    await wallet.ledger_ok()

    service.clock.advance(timedelta(hours=23))
    assert await sweep(service) == (0, 0)  # not a working day yet
    service.clock.advance(timedelta(hours=1))
    assert await sweep(service) == (1, 0)
    account = await wallet.account(user)
    assert (account["balance_fen"], account["held_fen"]) == (7_000, 0)
    shown = await service.client.get(f"/v1/wallet/transfers/{held['id']}", headers=wallet.admin)
    assert shown.json()["state"] == "posted"
    assert await sweep(service) == (0, 0)
    await wallet.ledger_ok()


async def test_the_weekend_does_not_count_as_a_working_day(service: Service, wallet: Wallet) -> None:
    user = await wallet.open(number(2), top_up_fen=10_000)
    friday = datetime(2010, 6, 4, 16, 0, tzinfo=EXPO_TZ)
    service.clock.set(friday)
    assert (await withdraw(service, wallet, user, 1_000)).status_code == 202
    for later in (timedelta(days=1), timedelta(days=2), timedelta(days=3, minutes=-1)):
        service.clock.set(friday + later)
        assert await sweep(service) == (0, 0)
    service.clock.set(friday + timedelta(days=3))  # Monday 16:00
    assert await sweep(service) == (1, 0)
    assert (await wallet.account(user))["balance_fen"] == 9_000
    await wallet.ledger_ok()


async def test_the_banks_confirmation_captures_once_and_its_failure_releases_the_hold(
    service: Service, wallet: Wallet
) -> None:
    user = await wallet.open(number(3), top_up_fen=10_000)
    paid = (await withdraw(service, wallet, user, 2_000)).json()
    failed = (await withdraw(service, wallet, user, 3_000)).json()
    assert (await wallet.account(user))["held_fen"] == 5_000

    for _ in range(2):  # the bank repeats its notifications
        confirmed = await notify(service, paid["reference"], "approved")
        assert (confirmed.status_code, confirmed.json()["state"]) == (200, "posted")
    refused = await notify(service, failed["reference"], "declined")
    assert (refused.status_code, refused.json()["state"]) == (200, "voided")
    account = await wallet.account(user)
    assert (account["balance_fen"], account["held_fen"]) == (8_000, 0)

    service.clock.advance(timedelta(days=2))
    assert await sweep(service) == (0, 0)
    assert (await wallet.account(user))["balance_fen"] == 8_000
    await wallet.ledger_ok()


async def test_a_payout_the_bank_refuses_at_once_writes_nothing(service: Service, wallet: Wallet) -> None:
    user = await wallet.open(number(4), top_up_fen=10_000)
    reply = await withdraw(service, wallet, user, 1_000, account=DECLINES)
    assert (reply.status_code, reply.json()["code"]) == (402, "payout_declined")
    assert [row["kind"] for row in await statement(service, wallet, user)] == ["top_up"]
    account = await wallet.account(user)
    assert (account["balance_fen"], account["held_fen"]) == (10_000, 0)
    await wallet.ledger_ok()


async def test_a_wrong_password_withdraws_nothing(service: Service, wallet: Wallet) -> None:
    user = await wallet.open(number(5), top_up_fen=10_000)
    reply = await withdraw(service, wallet, user, 1_000, password="246801")
    assert (reply.status_code, reply.json()["code"]) == (403, "wrong_password")
    assert (await wallet.account(user))["held_fen"] == 0
    await wallet.ledger_ok()


async def _give_red_packets(service: Service, msisdn: str, amount_fen: int) -> None:
    """Red packets straight through the ledger (the marketing budget's API is not needed for this)."""
    now = service.clock.now()
    async with service.db.write() as session:
        user = await find_user(session, msisdn=msisdn)
        red = await session.get(WalletAccount, user.red_packet_account_id)
        assert red is not None
        funds = await ledger.operator_account(session, AccountKind.OPERATOR_FUNDS, now=now)
        transfer = WalletTransfer(
            idempotency_key=f"test:red:{msisdn}",
            kind=TransferKind.RED_PACKET.value,
            state=TransferState.PENDING.value,
            amount_fen=amount_fen,
            user_id=user.id,
            created_at=now,
        )
        session.add(transfer)
        await session.flush()
        await ledger.post(session, transfer=transfer, legs=[leg(red, amount_fen), leg(funds, -amount_fen)], now=now)


async def test_red_packets_are_never_withdrawn(service: Service, wallet: Wallet) -> None:
    user = await wallet.open(number(6), top_up_fen=1_000)
    await _give_red_packets(service, user, 5_000)
    assert (await wallet.account(user))["available_fen"] == 6_000

    too_much = await withdraw(service, wallet, user, 1_001)
    assert (too_much.status_code, too_much.json()["code"]) == (402, "insufficient_funds")
    assert (await withdraw(service, wallet, user, 1_000)).status_code == 202
    account = await wallet.account(user)
    assert (account["balance_fen"], account["red_packet_fen"], account["held_fen"]) == (1_000, 5_000, 1_000)
    await wallet.ledger_ok()


async def test_the_withdrawal_limits_apply_and_a_failed_one_does_not_count(service: Service, wallet: Wallet) -> None:
    user = await wallet.open(number(7), top_up_fen=10_000)  # real name: 5 withdrawals a day
    replies = [await withdraw(service, wallet, user, 100) for _ in range(5)]
    assert [r.status_code for r in replies] == [202] * 5
    refused = await withdraw(service, wallet, user, 100)
    assert refused.status_code == 422
    assert (refused.json()["code"], refused.json()["period"]) == ("withdrawal_count_limit", "day")

    await notify(service, replies[0].json()["reference"], "declined")
    assert (await withdraw(service, wallet, user, 100)).status_code == 202
    assert (await wallet.account(user))["held_fen"] == 500
    await wallet.ledger_ok()


@pytest.mark.parametrize(
    ("start", "days", "due"),
    [
        (datetime(2010, 6, 1, 10, 0), 1, datetime(2010, 6, 2, 10, 0)),  # Tuesday -> Wednesday
        (datetime(2010, 6, 4, 16, 0), 1, datetime(2010, 6, 7, 16, 0)),  # Friday -> Monday
        (datetime(2010, 6, 5, 9, 0), 1, datetime(2010, 6, 7, 9, 0)),  # Saturday -> Monday
        (datetime(2010, 6, 3, 12, 0), 3, datetime(2010, 6, 8, 12, 0)),  # Thursday + 3 -> Tuesday
    ],
)
def test_working_days_skip_the_weekend(start: datetime, days: int, due: datetime) -> None:
    assert add_working_days(start.replace(tzinfo=EXPO_TZ), days) == due.replace(tzinfo=EXPO_TZ)
