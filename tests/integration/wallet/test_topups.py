"""Bank top-ups: approved, declined, timed out and pending; the bank's signed notifications; limits; the ledger."""

import asyncio
import copy
import uuid
from datetime import timedelta

import httpx
import msgspec
import pytest
from sqlalchemy import select

from expo.bank import BankResult, InMemoryBank, sign_notification
from expo.db import Database
from expo.errors import ExpoError
from tests.integration.conftest import Service, number
from tests.integration.wallet.conftest import Wallet
from wallet.models import WalletTransfer
from wallet.rules import DEFAULT_LIMITS, AccountClass, Limit, LimitedOperation, OperationLimits, RiskLimits
from wallet.sweeps import sweep_wallet
from wallet.topups import BankChannel, bank_reference, top_up_by_bank

APPROVES = "6222000000000001"
DECLINES = "6222000000000002"
TIMES_OUT = "6222000000000003"
CONFIRMS_LATE = "6222000000000004"
BANK_SECRET = "test-bank-secret"  # the service fixture's settings


async def bank_top_up(
    service: Service,
    wallet: Wallet,
    msisdn: str,
    amount_fen: int,
    account: str,
    *,
    channel: str = "bank_card_sms",
    key: str | None = None,
) -> httpx.Response:
    body = {"msisdn": msisdn, "amount_fen": amount_fen, "channel": channel, "account": account}
    return await service.post("/v1/wallet/top-ups/bank", body, wallet.web, key=key)


async def notify(service: Service, reference: str, status: str, *, secret: str = BANK_SECRET) -> httpx.Response:
    """The bank's notification about one reference, signed with `secret`."""
    body = msgspec.json.encode({"reference": reference, "status": status, "bank_ref": "B42"})
    headers = {"Content-Type": "application/json", "X-Bank-Signature": sign_notification(secret, body)}
    return await service.client.post("/v1/wallet/bank/notifications", content=body, headers=headers)


async def statement(service: Service, wallet: Wallet, msisdn: str) -> list[dict[str, object]]:
    reply = await service.client.get(f"/v1/wallet/accounts/{msisdn}/transfers", headers=wallet.admin)
    assert reply.status_code == 200, reply.text
    return reply.json()  # type: ignore[no-any-return]


async def test_an_approved_top_up_posts_at_once_and_keeps_only_the_cards_last_four_digits(
    service: Service, wallet: Wallet
) -> None:
    user = await wallet.open(number(1))
    reply = await bank_top_up(service, wallet, user, 5_000, APPROVES)
    assert reply.status_code == 201, reply.text
    top_up = reply.json()
    assert (top_up["kind"], top_up["state"], top_up["channel"]) == ("top_up", "posted", "bank_card_sms")
    assert top_up["description"] == "****0001"
    assert top_up["reference"].startswith("WAL")
    assert (await wallet.account(user))["balance_fen"] == 5_000
    async with service.db.read() as session:
        stored = (await session.scalars(select(WalletTransfer))).all()
    assert not [row for row in stored if APPROVES in f"{row.description} {row.reference}"]
    shown = await service.client.get(f"/v1/wallet/transfers/{top_up['id']}", headers=wallet.web)
    assert shown.status_code == 200, shown.text
    assert {k: shown.json()[k] for k in ("id", "state", "amount_fen", "msisdn")} == {
        k: top_up[k] for k in ("id", "state", "amount_fen", "msisdn")
    }
    await wallet.ledger_ok()


async def test_a_declined_top_up_writes_nothing_and_is_answered_the_same_on_replay(
    service: Service, wallet: Wallet
) -> None:
    user = await wallet.open(number(2))
    key = uuid.uuid4().hex
    declined = await bank_top_up(service, wallet, user, 5_000, DECLINES, channel="online_banking", key=key)
    assert declined.status_code == 402
    assert declined.json()["code"] == "payment_declined"
    again = await bank_top_up(service, wallet, user, 5_000, DECLINES, channel="online_banking", key=key)
    assert (again.status_code, again.json()["code"]) == (402, "payment_declined")
    assert again.headers["idempotent-replayed"] == "true"
    assert await statement(service, wallet, user) == []
    assert (await wallet.account(user))["balance_fen"] == 0
    await wallet.ledger_ok()


async def test_a_top_up_whose_answer_timed_out_waits_for_the_sweep_to_ask_the_bank(
    service: Service, wallet: Wallet
) -> None:
    user = await wallet.open(number(3))
    reply = await bank_top_up(service, wallet, user, 2_000, TIMES_OUT)
    assert reply.status_code == 202, reply.text
    assert reply.json()["state"] == "pending"
    account = await wallet.account(user)
    assert (account["balance_fen"], account["held_fen"]) == (0, 0)  # a credit holds nothing

    early = await sweep_wallet(service.db, bank=InMemoryBank(), now=service.clock.now())
    assert early.top_ups_posted == 0
    service.clock.advance(timedelta(minutes=2))
    swept = await sweep_wallet(service.db, bank=InMemoryBank(), now=service.clock.now())
    assert (swept.top_ups_posted, swept.top_ups_voided) == (1, 0)
    assert (await wallet.account(user))["balance_fen"] == 2_000
    again = await sweep_wallet(service.db, bank=InMemoryBank(), now=service.clock.now())
    assert again.top_ups_posted == 0
    shown = await service.client.get(f"/v1/wallet/transfers/{reply.json()['id']}", headers=wallet.admin)
    assert shown.json()["state"] == "posted"
    await wallet.ledger_ok()


async def test_a_pending_top_up_is_posted_once_by_the_banks_signed_notification(
    service: Service, wallet: Wallet
) -> None:
    user = await wallet.open(number(4))
    reply = await bank_top_up(service, wallet, user, 3_000, CONFIRMS_LATE, channel="online_banking")
    assert reply.status_code == 202, reply.text
    reference = reply.json()["reference"]

    forged = await notify(service, reference, "approved", secret="not-the-banks")
    assert (forged.status_code, forged.json()["code"]) == (401, "bad_signature")
    assert (await wallet.account(user))["balance_fen"] == 0

    genuine = await notify(service, reference, "approved")
    assert genuine.status_code == 200, genuine.text
    assert genuine.json() == {"reference": reference, "id": reply.json()["id"], "state": "posted"}
    repeated = await notify(service, reference, "approved")
    assert (repeated.status_code, repeated.json()["state"]) == (200, "posted")
    assert (await wallet.account(user))["balance_fen"] == 3_000

    service.clock.advance(timedelta(minutes=5))
    swept = await sweep_wallet(service.db, bank=InMemoryBank(), now=service.clock.now())
    assert swept.top_ups_posted == 0
    assert (await wallet.account(user))["balance_fen"] == 3_000
    await wallet.ledger_ok()


async def test_a_declined_notification_voids_the_pending_top_up_for_good(service: Service, wallet: Wallet) -> None:
    user = await wallet.open(number(5))
    reply = await bank_top_up(service, wallet, user, 3_000, CONFIRMS_LATE)
    reference = reply.json()["reference"]
    declined = await notify(service, reference, "declined")
    assert (declined.status_code, declined.json()["state"]) == (200, "voided")
    late = await notify(service, reference, "approved")
    assert (late.status_code, late.json()["state"]) == (200, "voided")
    assert (await wallet.account(user))["balance_fen"] == 0
    await wallet.ledger_ok()


async def test_a_notification_about_an_unknown_reference_is_refused(service: Service) -> None:
    reply = await notify(service, "WALNOSUCHREFERENCE", "approved")
    assert (reply.status_code, reply.json()["code"]) == (404, "unknown_reference")


async def test_the_top_up_limits_refuse_over_http(service: Service, wallet: Wallet) -> None:
    user = await wallet.open(number(6))  # real name: 10,000 yuan of top-ups a day
    assert (await bank_top_up(service, wallet, user, 600_000, APPROVES)).status_code == 201
    refused = await bank_top_up(service, wallet, user, 600_000, APPROVES)
    assert refused.status_code == 422
    assert (refused.json()["code"], refused.json()["period"]) == ("top_up_amount_limit", "day")
    assert len(await statement(service, wallet, user)) == 1
    assert (await wallet.account(user))["balance_fen"] == 600_000
    await wallet.ledger_ok()


class RecordingBank(InMemoryBank):
    """The in-memory bank, remembering the references it charged and refunded."""

    def __init__(self, *, latency_seconds: float = 0.0) -> None:
        super().__init__(latency_seconds=latency_seconds)
        self.charged: list[str] = []
        self.refunded: list[str] = []

    async def charge(self, *, reference: str, account: str, amount_fen: int) -> BankResult:
        self.charged.append(reference)
        return await super().charge(reference=reference, account=account, amount_fen=amount_fen)

    async def refund(self, *, reference: str, amount_fen: int) -> BankResult:
        self.refunded.append(reference)
        return await super().refund(reference=reference, amount_fen=amount_fen)


async def _top_up(
    service: Service,
    *,
    key: str,
    msisdn: str,
    amount_fen: int,
    bank: InMemoryBank,
    limits: RiskLimits = DEFAULT_LIMITS,
    db: Database | None = None,
) -> WalletTransfer:
    async with (db or service.db).write() as session:
        return await top_up_by_bank(
            session,
            idempotency_key=key,
            msisdn=msisdn,
            amount_fen=amount_fen,
            channel=BankChannel.BANK_CARD_SMS,
            account=APPROVES,
            bank=bank,
            bank_timeout=timedelta(seconds=5),
            limits=limits,
            now=service.clock.now(),
        )


async def test_a_top_up_the_limits_refuse_never_reaches_the_bank(service: Service, wallet: Wallet) -> None:
    user = await wallet.open(number(7))
    bank = RecordingBank()
    await _top_up(service, key="first", msisdn=user, amount_fen=600_000, bank=bank)
    with pytest.raises(ExpoError) as refused:
        await _top_up(service, key="second", msisdn=user, amount_fen=600_000, bank=bank)
    assert refused.value.code == "top_up_amount_limit"
    assert bank.charged == [bank_reference("first")]


async def test_a_retry_names_the_same_charge_and_credits_it_once(service: Service, wallet: Wallet) -> None:
    user = await wallet.open(number(8))
    bank = RecordingBank()
    first = await _top_up(service, key="retried", msisdn=user, amount_fen=1_000, bank=bank)
    second = await _top_up(service, key="retried", msisdn=user, amount_fen=1_000, bank=bank)
    assert first.id == second.id
    assert first.reference == bank_reference("retried")
    assert (await wallet.account(user))["balance_fen"] == 1_000
    await wallet.ledger_ok()


@pytest.mark.parametrize("database_url", ["postgres"], indirect=True)
async def test_one_key_sent_twice_at_once_makes_one_top_up_and_refunds_nothing(
    service: Service, wallet: Wallet, database_url: str
) -> None:
    user = await wallet.open(number(11))
    bank = RecordingBank(latency_seconds=0.2)  # long enough for both requests to be in flight at once
    other_worker = Database(database_url)
    await wallet.account(user)  # both workers' connections are open before the race
    async with other_worker.read() as session:
        await session.scalar(select(WalletTransfer.id).limit(1))
    try:
        made = await asyncio.gather(
            _top_up(service, key="twice", msisdn=user, amount_fen=1_000, bank=bank),
            _top_up(service, key="twice", msisdn=user, amount_fen=1_000, bank=bank, db=other_worker),
        )
    finally:
        await other_worker.dispose()
    assert made[0].id == made[1].id
    assert bank.charged == [bank_reference("twice")]  # the second waited for the first, then replayed it
    assert bank.refunded == []
    assert (await wallet.account(user))["balance_fen"] == 1_000
    await wallet.ledger_ok()


class RaceLosingBank(RecordingBank):
    """While the bank charges, another top-up of the same user uses up the day's count (the limits shrink)."""

    def __init__(self, limits: RiskLimits) -> None:
        super().__init__()
        self.limits = limits

    async def charge(self, *, reference: str, account: str, amount_fen: int) -> BankResult:
        used_up = OperationLimits(day=Limit(amount_fen=10**9, count=0), month=Limit(amount_fen=10**9, count=100))
        self.limits.table[AccountClass.REAL_NAME][LimitedOperation.TOP_UP] = used_up
        return await super().charge(reference=reference, account=account, amount_fen=amount_fen)


async def test_a_charge_the_wallet_then_refuses_to_credit_is_given_back(service: Service, wallet: Wallet) -> None:
    user = await wallet.open(number(9))
    limits = RiskLimits(copy.deepcopy(DEFAULT_LIMITS.table))
    bank = RaceLosingBank(limits)
    with pytest.raises(ExpoError) as refused:
        await _top_up(service, key="lost-race", msisdn=user, amount_fen=1_000, bank=bank, limits=limits)
    assert refused.value.code == "top_up_count_limit"
    assert bank.charged == bank.refunded == [bank_reference("lost-race")]
    assert await statement(service, wallet, user) == []
    await wallet.ledger_ok()


async def test_bank_top_ups_refuse_bad_input_and_other_callers(service: Service, wallet: Wallet) -> None:
    user = await wallet.open(number(10))
    short = await bank_top_up(service, wallet, user, 1_000, "12345")
    assert (short.status_code, short.json()["code"]) == (422, "invalid_bank_account")
    body = {"msisdn": user, "amount_fen": 1_000, "channel": "bank_card_sms", "account": APPROVES}
    by_clerk = await service.post("/v1/wallet/top-ups/bank", body, wallet.clerk)
    assert (by_clerk.status_code, by_clerk.json()["code"]) == (403, "role_not_allowed")
    unknown = await service.client.get("/v1/wallet/transfers/999999", headers=wallet.admin)
    assert (unknown.status_code, unknown.json()["code"]) == (404, "unknown_transfer")
