"""Proximity payments at merchants' terminals and the POS journal: taps, voids, adjustments, totals,
reprints and settlement uploads, over HTTP and through the service."""

from typing import Any

import pytest
from sqlalchemy import func, select

from expo.errors import ExpoError
from tests.integration.conftest import Service, number
from tests.integration.wallet.conftest import PASSWORD, Wallet
from wallet import pos
from wallet.models import PosEntry, PosTerminal, WalletTransfer
from wallet.payments import PaymentTerms
from wallet.rules import DEFAULT_LIMITS

SEGMENT = "1380000"  # Inner Mongolia (15); the merchants are in Shanghai (31)


async def terminal(wallet: Wallet, merchant: str, terminal_no: str) -> dict[str, str]:
    """Register a terminal of a merchant and return its headers."""
    reply = await wallet.service.client.post(
        f"/v1/wallet/admin/merchants/{merchant}/terminals", json={"terminal_no": terminal_no}, headers=wallet.admin
    )
    assert reply.status_code == 201, reply.text
    assert (reply.json()["terminal_no"], reply.json()["merchant"]) == (terminal_no, merchant)
    return wallet.service.auth(reply.json()["token"])


async def shop(wallet: Wallet, *, allows_adjust: bool = True) -> dict[str, str]:
    """A Shanghai restaurant (3% fee) with one terminal, T1."""
    await wallet.merchant("NOODLES", "restaurants", allows_adjust=allows_adjust)
    return await terminal(wallet, "NOODLES", "T1")


def sale(serial: int, msisdn: str, amount_fen: int, **changes: Any) -> dict[str, Any]:
    return {"serial": serial, "msisdn": msisdn, "amount_fen": amount_fen, **changes}


async def tap(service: Service, headers: dict[str, str], body: dict[str, Any]) -> Any:
    return await service.client.post("/v1/wallet/pos/payments", json=body, headers=headers)


async def merchant_balance(service: Service, wallet: Wallet) -> int:
    reply = await service.client.get("/v1/wallet/merchants/NOODLES", headers=wallet.admin)
    return int(reply.json()["balance_fen"])


async def totals(service: Service, headers: dict[str, str]) -> dict[str, Any]:
    reply = await service.client.get("/v1/wallet/pos/totals", headers=headers)
    assert reply.status_code == 200, reply.text
    return reply.json()  # type: ignore[no-any-return]


async def credential_of(service: Service, terminal_no: str) -> int:
    async with service.db.read() as session:
        found = await session.scalar(select(PosTerminal.credential_id).where(PosTerminal.terminal_no == terminal_no))
    assert found is not None
    return int(found)


async def journal_lines(service: Service) -> int:
    async with service.db.read() as session:
        return int(await session.scalar(select(func.count()).select_from(PosEntry)) or 0)


async def test_a_tap_pays_up_to_the_pin_free_amount_and_the_password_above_it(service: Service, wallet: Wallet) -> None:
    t1 = await shop(wallet)
    buyer = await wallet.open(number(1, SEGMENT), top_up_fen=50_000)
    paid = await tap(service, t1, sale(1, buyer, 20_000))
    assert paid.status_code == 201, paid.text
    body = paid.json()
    assert (body["state"], body["channel"], body["merchant"], body["msisdn"]) == (
        "posted",
        "proximity",
        "NOODLES",
        buyer,
    )
    assert (body["serial"], body["batch_no"], body["terminal_no"], body["entry_type"]) == (1, 1, "T1", "sale")
    assert (body["amount_fen"], body["fee_fen"]) == (20_000, 600)

    unconfirmed = await tap(service, t1, sale(2, buyer, 20_001))
    assert (unconfirmed.status_code, unconfirmed.json()["code"]) == (403, "password_required")
    assert (await wallet.account(buyer))["balance_fen"] == 30_000
    confirmed = await tap(service, t1, sale(3, buyer, 20_001, password=PASSWORD))
    assert confirmed.status_code == 201, confirmed.text
    assert (await wallet.account(buyer))["balance_fen"] == 30_000 - 20_001
    assert await merchant_balance(service, wallet) == 40_001 - 600 - 600
    await wallet.ledger_ok()


async def test_wrong_pins_count_towards_the_lock_and_move_nothing(service: Service, wallet: Wallet) -> None:
    t1 = await shop(wallet)
    buyer = await wallet.open(number(2, SEGMENT), top_up_fen=50_000)
    left = []
    for serial in range(1, 5):
        reply = await tap(service, t1, sale(serial, buyer, 30_000, password="999999"))
        assert (reply.status_code, reply.json()["code"]) == (403, "wrong_password")
        left.append(reply.json()["attempts_left"])
    assert left == [4, 3, 2, 1]
    fifth = await tap(service, t1, sale(5, buyer, 30_000, password="999999"))
    assert (fifth.status_code, fifth.json()["code"]) == (423, "password_locked")
    right = await tap(service, t1, sale(6, buyer, 30_000, password=PASSWORD))
    assert (right.status_code, right.json()["code"]) == (423, "password_locked")
    # A wrong PIN typed for a small amount is refused too, rather than ignored.
    small = await tap(service, t1, sale(7, buyer, 100, password="999999"))
    assert small.json()["code"] == "password_locked"
    assert (await wallet.account(buyer))["balance_fen"] == 50_000
    assert await journal_lines(service) == 0
    await wallet.ledger_ok()


async def test_a_serial_replays_its_first_answer_and_is_refused_for_another_request(
    service: Service, wallet: Wallet
) -> None:
    t1 = await shop(wallet)
    buyer = await wallet.open(number(3, SEGMENT), top_up_fen=10_000)
    first = await tap(service, t1, sale(41, buyer, 1_234))
    again = await tap(service, t1, sale(41, buyer, 1_234))
    assert first.status_code == again.status_code == 201
    assert again.headers["Idempotent-Replayed"] == "true"
    assert again.json() == first.json()
    other = await tap(service, t1, sale(41, buyer, 1_000))
    assert (other.status_code, other.json()["code"]) == (422, "idempotency_key_reused")
    as_void = await service.client.post("/v1/wallet/pos/voids", json={"serial": 41, "original_serial": 41}, headers=t1)
    assert (as_void.status_code, as_void.json()["code"]) == (422, "idempotency_key_reused")
    assert (await wallet.account(buyer))["balance_fen"] == 10_000 - 1_234
    assert await journal_lines(service) == 1
    # Serials are the terminal's own: another terminal's serial 41 is another sale.
    t2 = await terminal(wallet, "NOODLES", "T2")
    assert (await tap(service, t2, sale(41, buyer, 1_234))).status_code == 201
    assert (await wallet.account(buyer))["balance_fen"] == 10_000 - 2 * 1_234
    await wallet.ledger_ok()


async def test_the_service_makes_one_transfer_and_one_line_per_serial(service: Service, wallet: Wallet) -> None:
    await shop(wallet)
    buyer = await wallet.open(number(4, SEGMENT), top_up_fen=10_000)
    terms = PaymentTerms(limits=DEFAULT_LIMITS, hold_window=service.settings.wallet_hold_window)
    credential_id = await credential_of(service, "T1")
    now = service.clock.now()
    made = []
    for _ in range(2):
        async with service.db.write() as session:
            t1 = await pos.lock_terminal(session, credential_id=credential_id)
            record = await pos.pay_at_terminal(
                session, terminal=t1, serial=9, msisdn=buyer, amount_fen=500, terms=terms, now=now
            )
            made.append((record.transfer.id, record.entry.id, record.replayed))
    assert made[0][:2] == made[1][:2]
    assert [replayed for *_, replayed in made] == [False, True]
    async with service.db.write() as session:
        t1 = await pos.lock_terminal(session, credential_id=credential_id)
        with pytest.raises(ExpoError) as refused:
            await pos.pay_at_terminal(
                session, terminal=t1, serial=9, msisdn=buyer, amount_fen=600, terms=terms, now=now
            )
        assert refused.value.code == "serial_used"
        with pytest.raises(ExpoError) as as_void:
            await pos.void_sale(session, terminal=t1, serial=9, original_serial=9, now=now)
        assert as_void.value.code == "serial_used"
    async with service.db.read() as session:
        keys = (await session.scalars(select(WalletTransfer.idempotency_key))).all()
    assert f"pos:{t1.id}:9" in keys
    assert await journal_lines(service) == 1
    assert (await wallet.account(buyer))["balance_fen"] == 9_500
    await wallet.ledger_ok()


async def void(service: Service, headers: dict[str, str], serial: int, original: int) -> Any:
    return await service.client.post(
        "/v1/wallet/pos/voids", json={"serial": serial, "original_serial": original}, headers=headers
    )


async def adjust(service: Service, headers: dict[str, str], serial: int, original: int, new_amount_fen: int) -> Any:
    body = {"serial": serial, "original_serial": original, "new_amount_fen": new_amount_fen}
    return await service.client.post("/v1/wallet/pos/adjustments", json=body, headers=headers)


async def upload(service: Service, headers: dict[str, str], batch_no: int, lines: list[tuple[int, str, int]]) -> Any:
    entries = [{"serial": serial, "entry_type": kind, "amount_fen": amount} for serial, kind, amount in lines]
    return await service.client.post(
        "/v1/wallet/pos/batches", json={"batch_no": batch_no, "entries": entries}, headers=headers
    )


async def test_an_adjustment_then_a_void_give_back_the_whole_sale_and_its_fee(service: Service, wallet: Wallet) -> None:
    t1 = await shop(wallet)
    buyer = await wallet.open(number(5, SEGMENT), top_up_fen=10_000)
    sold = await tap(service, t1, sale(1, buyer, 1_000))
    assert sold.json()["fee_fen"] == 30
    lowered = await adjust(service, t1, 2, 1, 600)
    assert lowered.status_code == 201, lowered.text
    body = lowered.json()
    assert (body["kind"], body["amount_fen"], body["entry_type"], body["original_serial"]) == (
        "refund",
        400,
        "adjust",
        1,
    )
    assert body["original_id"] == sold.json()["id"]
    assert (await wallet.account(buyer))["balance_fen"] == 10_000 - 600
    voided = await void(service, t1, 3, 1)
    assert voided.status_code == 201, voided.text
    assert (voided.json()["amount_fen"], voided.json()["entry_type"]) == (600, "void")
    assert lowered.json()["fee_fen"] + voided.json()["fee_fen"] == 30
    assert (await wallet.account(buyer))["balance_fen"] == 10_000
    assert await merchant_balance(service, wallet) == 0
    twice = await void(service, t1, 4, 1)
    assert (twice.status_code, twice.json()["code"]) == (409, "nothing_left")
    await wallet.ledger_ok()


async def test_voids_and_adjustments_are_refused_where_not_allowed(service: Service, wallet: Wallet) -> None:
    t1 = await shop(wallet)
    t2 = await terminal(wallet, "NOODLES", "T2")
    await wallet.merchant("TEAHOUSE", "restaurants")  # allows no adjustments
    tea = await terminal(wallet, "TEAHOUSE", "TEA1")
    buyer = await wallet.open(number(6, SEGMENT), top_up_fen=10_000)
    assert (await tap(service, t1, sale(1, buyer, 1_000))).status_code == 201
    assert (await tap(service, tea, sale(1, buyer, 500))).status_code == 201

    refusals = [
        (await adjust(service, tea, 2, 1, 400), 403, "adjust_not_allowed"),
        (await adjust(service, t1, 2, 1, 1_000), 409, "adjust_exceeds_left"),
        (await adjust(service, t1, 3, 1, 1_500), 409, "adjust_exceeds_left"),
        (await adjust(service, t1, 4, 1, 0), 422, "invalid_amount"),
        (await void(service, t2, 1, 1), 404, "unknown_sale"),  # T1's sale, not T2's
        (await void(service, t1, 5, 77), 404, "unknown_sale"),
    ]
    assert [(reply.status_code, reply.json()["code"]) for reply, *_ in refusals] == [
        (status, code) for _, status, code in refusals
    ]
    assert (await void(service, tea, 3, 1)).status_code == 201  # a void is always allowed
    assert (await wallet.account(buyer))["balance_fen"] == 10_000 - 1_000

    settled = await upload(service, t1, 1, [(1, "sale", 1_000)])
    assert settled.status_code == 201, settled.text
    closed = await void(service, t1, 6, 1)
    assert (closed.status_code, closed.json()["code"]) == (409, "batch_closed")
    closed_adjust = await adjust(service, t1, 7, 1, 500)
    assert (closed_adjust.status_code, closed_adjust.json()["code"]) == (409, "batch_closed")
    assert (await wallet.account(buyer))["balance_fen"] == 10_000 - 1_000
    await wallet.ledger_ok()


async def test_totals_run_by_type_since_the_last_settlement(service: Service, wallet: Wallet) -> None:
    t1 = await shop(wallet)
    buyer = await wallet.open(number(7, SEGMENT), top_up_fen=20_000)
    empty = await totals(service, t1)
    assert (empty["batch_no"], empty["sale"], empty["net_fen"]) == (1, {"count": 0, "amount_fen": 0}, 0)
    for serial, amount in ((1, 1_000), (2, 2_500), (3, 800)):
        assert (await tap(service, t1, sale(serial, buyer, amount))).status_code == 201
    assert (await adjust(service, t1, 4, 2, 2_000)).status_code == 201
    assert (await void(service, t1, 5, 3)).status_code == 201
    now = await totals(service, t1)
    assert (now["terminal_no"], now["batch_no"]) == ("T1", 1)
    assert now["sale"] == {"count": 3, "amount_fen": 4_300}
    assert now["adjust"] == {"count": 1, "amount_fen": 500}
    assert now["void"] == {"count": 1, "amount_fen": 800}
    assert now["net_fen"] == 3_000
    lines = [(1, "sale", 1_000), (2, "sale", 2_500), (3, "sale", 800), (4, "adjust", 500), (5, "void", 800)]
    assert (await upload(service, t1, 1, lines)).json()["matched"] is True
    after = await totals(service, t1)
    assert (after["batch_no"], after["sale"]["count"], after["net_fen"]) == (2, 0, 0)
    assert (await tap(service, t1, sale(6, buyer, 300))).status_code == 201
    assert (await totals(service, t1))["sale"] == {"count": 1, "amount_fen": 300}
    await wallet.ledger_ok()


async def test_slips_are_reprinted_last_or_by_serial(service: Service, wallet: Wallet) -> None:
    t1 = await shop(wallet)
    none_yet = await service.client.get("/v1/wallet/pos/slips/last", headers=t1)
    assert (none_yet.status_code, none_yet.json()["code"]) == (404, "no_slip")
    buyer = await wallet.open(number(8, SEGMENT), top_up_fen=10_000)
    first = await tap(service, t1, sale(1, buyer, 1_250))
    assert (await tap(service, t1, sale(2, buyer, 99))).status_code == 201
    assert (await void(service, t1, 3, 2)).status_code == 201

    last = await service.client.get("/v1/wallet/pos/slips/last", headers=t1)
    assert last.status_code == 200, last.text
    assert (last.json()["serial"], last.json()["entry_type"], last.json()["original_serial"]) == (3, "void", 2)
    by_serial = await service.client.get("/v1/wallet/pos/slips/1", headers=t1)
    slip = by_serial.json()
    masked = f"{buyer[:3]}****{buyer[-4:]}"
    assert (slip["serial"], slip["amount_fen"], slip["msisdn"], slip["reprint"]) == (1, 1_250, masked, True)
    assert (slip["merchant"], slip["merchant_name"], slip["transfer_id"]) == (
        "NOODLES",
        "Merchant NOODLES",
        first.json()["id"],
    )
    assert slip["at"] == "2010-06-01T10:00:00+08:00"
    text = slip["text"]
    for part in ("REPRINT", "Merchant NOODLES", "TERMINAL: T1", "SERIAL: 000001", "BATCH: 000001", "TYPE: SALE"):
        assert part in text
    for part in (masked, "CNY 12.50", "2010-06-01 10:00:00", f"REF: {first.json()['id']}"):
        assert part in text
    assert buyer not in text
    unknown = await service.client.get("/v1/wallet/pos/slips/9", headers=t1)
    assert (unknown.status_code, unknown.json()["code"]) == (404, "unknown_serial")
    other = await terminal(wallet, "NOODLES", "T2")
    assert (await service.client.get("/v1/wallet/pos/slips/1", headers=other)).status_code == 404


async def test_a_matching_upload_settles_the_batch_once(service: Service, wallet: Wallet) -> None:
    t1 = await shop(wallet)
    buyer = await wallet.open(number(9, SEGMENT), top_up_fen=10_000)
    assert (await tap(service, t1, sale(1, buyer, 700))).status_code == 201
    assert (await void(service, t1, 2, 1)).status_code == 201
    assert (await tap(service, t1, sale(3, buyer, 450))).status_code == 201
    lines = [(3, "sale", 450), (1, "sale", 700), (2, "void", 700)]
    early = await upload(service, t1, 2, lines)
    assert (early.status_code, early.json()["code"]) == (409, "wrong_batch")
    settled = await upload(service, t1, 1, lines)
    assert settled.status_code == 201, settled.text
    body = settled.json()
    assert (body["batch_no"], body["next_batch_no"], body["matched"], body["discrepancies"]) == (1, 2, True, [])
    assert (body["entries"], body["net_fen"]) == (3, 450)
    again = await upload(service, t1, 1, lines)
    assert again.json() == body
    assert again.headers["Idempotent-Replayed"] == "true"
    assert (await totals(service, t1))["batch_no"] == 2
    stale = await upload(service, t1, 3, [])
    assert (stale.status_code, stale.json()["code"], stale.json()["open_batch_no"]) == (409, "wrong_batch", 2)
    empty = await upload(service, t1, 2, [])
    assert (empty.json()["matched"], empty.json()["entries"]) == (True, 0)
    await wallet.ledger_ok()


async def test_an_upload_reports_every_kind_of_discrepancy_and_still_closes(service: Service, wallet: Wallet) -> None:
    t1 = await shop(wallet)
    buyer = await wallet.open(number(10, SEGMENT), top_up_fen=10_000)
    for serial, amount in ((1, 100), (2, 200), (3, 300)):
        assert (await tap(service, t1, sale(serial, buyer, amount))).status_code == 201
    reply = await upload(service, t1, 1, [(1, "sale", 100), (3, "sale", 333), (4, "sale", 400)])
    assert reply.status_code == 201, reply.text
    body = reply.json()
    assert body["matched"] is False
    found = {item["serial"]: item for item in body["discrepancies"]}
    assert found[2]["kind"] == "missing_on_terminal"
    assert (found[2]["terminal"], found[2]["platform"]["amount_fen"]) == (None, 200)
    assert found[3]["kind"] == "amount_differs"
    assert (found[3]["terminal"]["amount_fen"], found[3]["platform"]["amount_fen"]) == (333, 300)
    assert found[4]["kind"] == "missing_on_platform"
    assert (found[4]["terminal"]["amount_fen"], found[4]["platform"]) == (400, None)
    assert sorted(found) == [2, 3, 4]
    assert (body["entries"], body["net_fen"]) == (3, 600)  # the platform's journal is what settles
    assert (await totals(service, t1))["batch_no"] == 2
    await wallet.ledger_ok()


@pytest.mark.parametrize(
    ("lines", "code"),
    [
        ([(1, "sale", 100), (1, "sale", 100)], "duplicate_serial"),
        ([(1, "sale", -100)], "negative_amount"),
        ([(0, "sale", 100)], "invalid_serial"),
    ],
)
async def test_a_garbled_upload_is_refused_and_settles_nothing(
    service: Service, wallet: Wallet, lines: list[tuple[int, str, int]], code: str
) -> None:
    t1 = await shop(wallet)
    buyer = await wallet.open(number(11, SEGMENT), top_up_fen=1_000)
    assert (await tap(service, t1, sale(1, buyer, 100))).status_code == 201
    reply = await upload(service, t1, 1, lines)
    assert (reply.status_code, reply.json()["code"]) == (400, code)
    wrong_type = await upload(service, t1, 1, [(1, "refund", 100)])
    assert (wrong_type.status_code, wrong_type.json()["code"]) == (400, "invalid_request")
    still = await totals(service, t1)
    assert (still["batch_no"], still["sale"]["count"]) == (1, 1)


async def test_a_remote_merchant_cannot_take_payments_at_a_terminal(service: Service, wallet: Wallet) -> None:
    await wallet.merchant("EBOOKS", "other_remote")
    reader = await terminal(wallet, "EBOOKS", "EB1")
    buyer = await wallet.open(number(12, SEGMENT), top_up_fen=5_000)
    reply = await tap(service, reader, sale(1, buyer, 100))
    assert (reply.status_code, reply.json()["code"]) == (422, "wrong_channel")
    assert (await wallet.account(buyer))["balance_fen"] == 5_000
    assert await journal_lines(service) == 0
    await wallet.ledger_ok()


async def test_a_tap_beyond_the_balance_is_refused_and_writes_nothing(service: Service, wallet: Wallet) -> None:
    t1 = await shop(wallet)
    buyer = await wallet.open(number(13, SEGMENT), top_up_fen=5_000)
    reply = await tap(service, t1, sale(1, buyer, 5_001))
    assert (reply.status_code, reply.json()["code"]) == (402, "insufficient_funds")
    account = await wallet.account(buyer)
    assert (account["balance_fen"], account["held_fen"]) == (5_000, 0)
    statement = await service.client.get(f"/v1/wallet/accounts/{buyer}/transfers", headers=wallet.admin)
    assert [row["kind"] for row in statement.json()] == ["top_up"]
    assert await journal_lines(service) == 0
    assert (await totals(service, t1))["sale"]["count"] == 0
    assert await merchant_balance(service, wallet) == 0
    await wallet.ledger_ok()


async def test_terminals_are_registered_once_and_only_terminals_use_the_pos_api(
    service: Service, wallet: Wallet
) -> None:
    await shop(wallet)
    again = await service.client.post(
        "/v1/wallet/admin/merchants/NOODLES/terminals", json={"terminal_no": "T1"}, headers=wallet.admin
    )
    assert (again.status_code, again.json()["code"]) == (409, "terminal_exists")
    nobody = await service.client.post(
        "/v1/wallet/admin/merchants/NOBODY/terminals", json={"terminal_no": "T9"}, headers=wallet.admin
    )
    assert (nobody.status_code, nobody.json()["code"]) == (404, "unknown_merchant")
    merchant_system = await wallet.merchant("SHOP", "retail")
    refused = await service.client.get("/v1/wallet/pos/totals", headers=merchant_system)
    assert (refused.status_code, refused.json()["code"]) == (403, "role_not_allowed")
