"""Recharge cards: a batch issued with its PINs shown once; each card tops a wallet up exactly once."""

import asyncio
import uuid
from collections import Counter
from typing import Any

import httpx
import pytest
from click.testing import CliRunner
from sqlalchemy import select

from expo.cli_wallet import wallet as wallet_cli
from expo.db import Database
from expo.errors import ExpoError
from tests.integration.conftest import Service, number
from tests.integration.wallet.conftest import Wallet
from tests.integration.wallet.test_topups import statement
from wallet.models import RechargeCard, WalletAccount
from wallet.recharge_cards import redeem_recharge_card
from wallet.rules import DEFAULT_LIMITS


async def issue(
    service: Service, wallet: Wallet, *, count: int, face_value_fen: int, batch: str
) -> list[dict[str, Any]]:
    body = {"count": count, "face_value_fen": face_value_fen, "batch": batch}
    reply = await service.client.post("/v1/wallet/admin/recharge-cards", json=body, headers=wallet.admin)
    assert reply.status_code == 201, reply.text
    return reply.json()["cards"]  # type: ignore[no-any-return]


async def redeem(
    service: Service, headers: dict[str, str], msisdn: str, card: dict[str, Any], *, key: str | None = None
) -> httpx.Response:
    body = {"msisdn": msisdn, "serial": card["serial"], "pin": card["pin"]}
    return await service.post("/v1/wallet/top-ups/recharge-card", body, headers, key=key)


async def card_float(service: Service) -> int:
    """The recharge-cards account: minus the face value of the cards redeemed so far."""
    async with service.db.read() as session:
        balance = await session.scalar(select(WalletAccount.balance).where(WalletAccount.code == "recharge_cards"))
    return int(balance or 0)


async def test_a_batch_is_issued_once_and_its_pins_are_kept_only_as_digests(service: Service, wallet: Wallet) -> None:
    body = {"count": 3, "face_value_fen": 5_000, "batch": "SH-2010-06-50"}
    reply = await service.client.post("/v1/wallet/admin/recharge-cards", json=body, headers=wallet.admin)
    assert reply.status_code == 201, reply.text
    assert reply.headers["cache-control"] == "no-store"
    cards = reply.json()["cards"]
    assert len({card["serial"] for card in cards}) == 3
    assert all(len(card["serial"]) == 20 and card["serial"].isdigit() for card in cards)
    assert all(len(card["pin"]) == 18 and card["pin"].isdigit() for card in cards)
    async with service.db.read() as session:
        rows = (await session.scalars(select(RechargeCard))).all()
    assert len(rows) == 3
    pins = {card["pin"].encode() for card in cards}
    assert not [row for row in rows if any(pin in row.pin_hash for pin in pins)]

    again = await service.client.post("/v1/wallet/admin/recharge-cards", json=body, headers=wallet.admin)
    assert (again.status_code, again.json()["code"]) == (409, "recharge_batch_exists")
    by_web = await service.client.post("/v1/wallet/admin/recharge-cards", json=body, headers=wallet.web)
    assert (by_web.status_code, by_web.json()["code"]) == (403, "role_not_allowed")
    await wallet.ledger_ok()  # issuing moves no money


async def test_a_card_tops_up_once_from_the_recharge_cards_account(service: Service, wallet: Wallet) -> None:
    [card] = await issue(service, wallet, count=1, face_value_fen=5_000, batch="ONCE")
    user = await wallet.open(number(1))
    other = await wallet.open(number(2))
    key = uuid.uuid4().hex
    reply = await redeem(service, wallet.web, user, card, key=key)
    assert reply.status_code == 201, reply.text
    top_up = reply.json()
    assert (top_up["kind"], top_up["state"], top_up["channel"], top_up["amount_fen"]) == (
        "top_up",
        "posted",
        "recharge_card",
        5_000,
    )
    assert (await wallet.account(user))["balance_fen"] == 5_000
    assert await card_float(service) == -5_000

    replay = await redeem(service, wallet.web, user, card, key=key)
    assert (replay.status_code, replay.json()["id"]) == (201, top_up["id"])
    for msisdn in (user, other):
        used = await redeem(service, wallet.web, msisdn, card)
        assert (used.status_code, used.json()["code"]) == (409, "recharge_card_used")
    assert (await wallet.account(user))["balance_fen"] == 5_000
    assert (await wallet.account(other))["balance_fen"] == 0
    await wallet.ledger_ok()


async def test_a_wrong_pin_and_an_unknown_serial_are_refused_alike(service: Service, wallet: Wallet) -> None:
    [card] = await issue(service, wallet, count=1, face_value_fen=1_000, batch="GUESSES")
    user = await wallet.open(number(3))
    wrong_pin = "0" * 18 if card["pin"] != "0" * 18 else "1" * 18
    refusals = [
        await redeem(service, wallet.web, user, {**card, "pin": wrong_pin}),
        await redeem(service, wallet.web, user, {**card, "serial": "9" * 20}),
    ]
    assert [(r.status_code, r.json()["code"]) for r in refusals] == [(422, "invalid_recharge_card")] * 2
    assert refusals[0].json()["detail"] == refusals[1].json()["detail"]
    assert await statement(service, wallet, user) == []
    assert (await redeem(service, wallet.web, user, card)).status_code == 201  # the card is still good
    await wallet.ledger_ok()


async def test_hall_clerks_redeem_cards_and_merchants_do_not(service: Service, wallet: Wallet) -> None:
    first, second = await issue(service, wallet, count=2, face_value_fen=2_000, batch="HALL")
    user = await wallet.open(number(4))
    assert (await redeem(service, wallet.clerk, user, first)).status_code == 201
    shop = await wallet.merchant("CARDSHOP", "virtual_goods")
    refused = await redeem(service, shop, user, second)
    assert (refused.status_code, refused.json()["code"]) == (403, "role_not_allowed")
    assert (await wallet.account(user))["balance_fen"] == 2_000
    await wallet.ledger_ok()


async def test_the_top_up_limits_apply_and_a_refused_card_stays_good(service: Service, wallet: Wallet) -> None:
    cards = await issue(service, wallet, count=2, face_value_fen=999_999, batch="BIG")
    user = await wallet.open(number(5))  # real name: 10,000 yuan of top-ups a day
    assert (await redeem(service, wallet.web, user, cards[0])).status_code == 201
    refused = await redeem(service, wallet.web, user, cards[1])
    assert (refused.status_code, refused.json()["code"]) == (422, "top_up_amount_limit")
    other = await wallet.open(number(6))
    assert (await redeem(service, wallet.web, other, cards[1])).status_code == 201
    assert await card_float(service) == -2 * 999_999
    await wallet.ledger_ok()


async def test_the_command_line_prints_each_serial_and_pin_once(service: Service, wallet: Wallet) -> None:
    args = ["recharge-cards", "issue", "--count", "2", "--face-value-fen", "3000", "--batch", "CLI-1"]
    result = await asyncio.to_thread(CliRunner().invoke, wallet_cli, args, env={"EXPO_DATABASE_URL": service.db.url})
    assert result.exit_code == 0, result.output
    printed = [line.split() for line in result.output.splitlines()]
    assert len(printed) == 2
    user = await wallet.open(number(7))
    reply = await redeem(service, wallet.web, user, {"serial": printed[0][0], "pin": printed[0][1]})
    assert reply.status_code == 201, reply.text
    assert (await wallet.account(user))["balance_fen"] == 3_000
    await wallet.ledger_ok()


# --- races: SQLite takes one writer at a time, so two sessions really overlap only on PostgreSQL -----


async def _redeem_alone(db: Database, service: Service, *, key: str, msisdn: str, card: dict[str, Any]) -> str:
    try:
        async with db.write() as session:
            await redeem_recharge_card(
                session,
                idempotency_key=key,
                msisdn=msisdn,
                serial=card["serial"],
                pin=card["pin"],
                limits=DEFAULT_LIMITS,
                now=service.clock.now(),
            )
    except ExpoError as exc:
        return exc.code
    return "ok"


@pytest.mark.parametrize("database_url", ["postgres"], indirect=True)
async def test_a_second_session_waits_for_the_first_and_finds_the_card_used(
    service: Service, wallet: Wallet, database_url: str
) -> None:
    [card] = await issue(service, wallet, count=1, face_value_fen=4_000, batch="RACE-2")
    first, second = await wallet.open(number(8)), await wallet.open(number(9))
    other_worker = Database(database_url)
    try:
        async with service.db.write() as session:
            await redeem_recharge_card(
                session,
                idempotency_key="first",
                msisdn=first,
                serial=card["serial"],
                pin=card["pin"],
                limits=DEFAULT_LIMITS,
                now=service.clock.now(),
            )
            # Not committed yet: the other redeemer's session must wait on the card's row lock.
            racer = asyncio.create_task(_redeem_alone(other_worker, service, key="second", msisdn=second, card=card))
            await asyncio.sleep(0.5)
            assert not racer.done()
        assert await racer == "recharge_card_used"
    finally:
        await other_worker.dispose()
    assert (await wallet.account(first))["balance_fen"] == 4_000
    assert (await wallet.account(second))["balance_fen"] == 0
    assert await card_float(service) == -4_000
    await wallet.ledger_ok()


@pytest.mark.parametrize("database_url", ["postgres"], indirect=True)
async def test_ten_sessions_redeeming_one_card_at_once_credit_it_once(
    service: Service, wallet: Wallet, database_url: str
) -> None:
    [card] = await issue(service, wallet, count=1, face_value_fen=4_000, batch="RACE-10")
    users = [await wallet.open(number(20 + n)) for n in range(10)]
    workers = Database(database_url, pool_size=10)
    try:
        outcomes = await asyncio.gather(
            *(_redeem_alone(workers, service, key=f"race-{n}", msisdn=user, card=card) for n, user in enumerate(users))
        )
    finally:
        await workers.dispose()
    assert Counter(outcomes) == {"ok": 1, "recharge_card_used": 9}
    balances = [(await wallet.account(user))["balance_fen"] for user in users]
    assert sorted(balances) == [0] * 9 + [4_000]
    assert await card_float(service) == -4_000
    await wallet.ledger_ok()
