"""QR exchange vouchers over HTTP: issued once a QR-voucher sale is paid (web, 12580, late bank answers), sent by
MMS with a QR picture that verifies with the published keys, fetched and sent again by sellers, revoked with
their ticket; no QR-voucher sale without the signing keys."""

import dataclasses
import os
import uuid
from datetime import datetime, timedelta
from pathlib import Path

import msgspec
from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat
from litestar.testing import AsyncTestClient
from sqlalchemy import func, select, text

from expo.app import create_app
from expo.bank import InMemoryBank, sign_notification
from expo.clock import FixedClock
from expo.db import Database
from tests.integration.conftest import Service, hall_sale, number
from tests.integration.test_support import BANK_SECRET, agent_sale, assert_problem, nothing_written
from tests.integration.test_voucher_support import (
    PENDING,
    day,
    mms_claim,
    mms_picture,
    outbox,
    published_claim,
    sell,
    sell_voucher,
    voucher,
    voucher_sale,
)
from tests.integration.wallet.conftest import PASSWORD, Wallet
from ticketing.mms import OutboxMms
from ticketing.qr import read_qr
from ticketing.signed_codes import CodeKind
from ticketing.signing_keys import load_keyring
from ticketing.voucher_models import MmsMessage, Voucher
from ticketing.vouchers import deliver_vouchers


async def _count(db: Database, model: type[Voucher] | type[MmsMessage]) -> int:
    async with db.read() as session:
        return int(await session.scalar(select(func.count()).select_from(model)) or 0)


async def test_web_sale_gets_a_voucher_by_mms_that_verifies_and_names_its_ticket(service: Service) -> None:
    order = await sell_voucher(service, number(1))
    ticket_id = order["tickets"][0]["id"]

    [sent] = await outbox(service, number(1))
    assert sent["subject"] == "Expo 2010 ticket voucher"
    claim = await mms_claim(service, number(1))
    assert (claim.kind, claim.ticket_id, claim.ticket_type, claim.kid) == (CodeKind.VOUCHER, ticket_id, "standard", 1)

    reply = await voucher(service, order["id"])
    assert reply.status_code == 200, reply.text
    body = reply.json()
    assert (body["ticket_id"], body["order_id"], body["kid"], body["sends"]) == (ticket_id, order["id"], 1, 1)
    assert body["exchanged"] is None
    assert body["sent_at"] is not None
    assert day(body["last_day"]) == claim.last_day
    assert body["code_grouped"].replace("-", "") == body["code"]
    assert body["code_grouped"] in sent["text"]
    assert read_qr(await mms_picture(service, sent["id"])) == body["code"]


async def test_web_wallet_sale_gets_its_voucher(service: Service, clerk: dict[str, str]) -> None:
    wallet = Wallet(service=service, clerk=clerk)
    buyer = await wallet.open(number(2), top_up_fen=50_000)
    body = voucher_sale(buyer, payment={"method": "wallet", "password": PASSWORD})
    order = await sell(service, body, service.device("web"))
    claim = await mms_claim(service, buyer)
    assert (claim.kind, claim.ticket_id) == (CodeKind.VOUCHER, order["tickets"][0]["id"])


async def test_12580_sales_get_their_voucher_once_paid(
    service: Service, agent: dict[str, str], clerk: dict[str, str]
) -> None:
    card_paid = await sell(service, agent_sale(number(1)), agent)
    assert (await mms_claim(service, number(1))).ticket_id == card_paid["tickets"][0]["id"]
    assert (await voucher(service, card_paid["id"], agent)).status_code == 200

    wallet = Wallet(service=service, clerk=clerk)
    buyer = await wallet.open(number(2), top_up_fen=50_000)
    held = await sell(service, agent_sale(buyer, payment={"method": "wallet"}), agent, status=202)
    assert await outbox(service, buyer) == []
    assert_problem(await voucher(service, held["id"], agent), 409, "voucher_not_issued")
    code = await wallet.last_code(buyer)
    confirmed = await service.post(f"/v1/orders/{held['id']}/wallet-confirmation", {"code": code}, agent)
    assert confirmed.status_code == 200, confirmed.text
    assert (await mms_claim(service, buyer)).ticket_id == held["tickets"][0]["id"]


async def test_a_bank_pending_order_gets_its_voucher_when_the_bank_pays_it(service: Service) -> None:
    order = await sell(service, voucher_sale(number(1), account=PENDING), service.device("web"), status=202)
    assert_problem(await voucher(service, order["id"]), 409, "voucher_not_issued")
    assert await outbox(service, number(1)) == []
    assert await _count(service.db, Voucher) == 0

    body = msgspec.json.encode({"reference": order["payments"][0]["reference"], "status": "approved"})
    headers = {"Content-Type": "application/json", "X-Bank-Signature": sign_notification(BANK_SECRET, body)}
    notified = await service.client.post("/v1/bank/notifications", content=body, headers=headers)
    assert notified.json()["order_status"] == "paid"

    assert (await mms_claim(service, number(1))).ticket_id == order["tickets"][0]["id"]
    again = await service.client.post("/v1/bank/notifications", content=body, headers=headers)
    assert again.status_code == 200
    assert (await _count(service.db, Voucher), len(await outbox(service, number(1)))) == (1, 1)


async def test_fetch_again_as_json_and_picture_and_send_again(service: Service) -> None:
    order = await sell_voucher(service, number(1))
    first = (await voucher(service, order["id"])).json()
    admin = service.device("admin")
    assert (await voucher(service, order["id"], admin)).json() == first  # the same voucher, not a new one

    picture = await service.client.get(f"/v1/orders/{order['id']}/voucher.png", headers=admin)
    assert picture.status_code == 200
    assert picture.headers["content-type"] == "image/png"
    assert read_qr(picture.content) == first["code"]

    service.clock.advance(timedelta(minutes=5))
    sent = await service.client.post(f"/v1/orders/{order['id']}/voucher/send", headers=service.device("web"))
    assert sent.status_code == 200, sent.text
    assert (sent.json()["sends"], sent.json()["code"]) == (2, first["code"])
    assert datetime.fromisoformat(sent.json()["sent_at"]) == service.clock.now()
    messages = await outbox(service, number(1))
    assert len(messages) == 2
    assert read_qr(await mms_picture(service, messages[0]["id"])) == first["code"]
    assert await _count(service.db, Voucher) == 1


async def test_void_and_refund_revoke_the_voucher(service: Service, agent: dict[str, str]) -> None:
    web = service.device("web")
    voided = await sell_voucher(service, number(1))
    reply = await service.post(f"/v1/orders/{voided['id']}/void", {}, web)
    assert reply.status_code == 200, reply.text
    assert_problem(await voucher(service, voided["id"]), 409, "voucher_revoked")
    picture = await service.client.get(f"/v1/orders/{voided['id']}/voucher.png", headers=web)
    assert_problem(picture, 409, "voucher_revoked")
    resent = await service.client.post(f"/v1/orders/{voided['id']}/voucher/send", headers=web)
    assert_problem(resent, 409, "voucher_revoked")

    refunded = await sell(service, agent_sale(number(2)), agent)
    reply = await service.post(f"/v1/orders/{refunded['id']}/refund", {}, agent)
    assert reply.status_code == 200, reply.text
    assert_problem(await voucher(service, refunded["id"], agent), 409, "voucher_revoked")


async def test_who_may_read_a_voucher(service: Service, clerk: dict[str, str]) -> None:
    card = await sell(service, hall_sale(number(1)), clerk)
    assert_problem(await voucher(service, card["id"], clerk), 409, "not_a_voucher_order")

    order = await sell_voucher(service, number(2))
    beijing = await service.login("bj_hall", "BJ-C001")
    assert_problem(await voucher(service, order["id"], beijing), 404, "order_not_found")
    assert_problem(await voucher(service, 10**12), 404, "order_not_found")
    assert (await voucher(service, order["id"], service.device("admin"))).status_code == 200
    courier = await service.client.get(f"/v1/orders/{order['id']}/voucher", headers=service.device("courier"))
    assert_problem(courier, 403, "role_not_allowed")
    web = service.device("web")
    assert_problem(await service.client.get("/v1/mms-outbox", headers=web), 403, "role_not_allowed")
    missing = await service.client.get("/v1/mms-outbox/999999/image", headers=service.device("admin"))
    assert_problem(missing, 404, "mms_not_found")


async def test_no_voucher_sale_without_signing_keys(service: Service, db: Database, clock: FixedClock) -> None:
    settings = dataclasses.replace(service.settings, signing_key_file="")
    app = create_app(settings, clock=clock, bank=InMemoryBank(), sweeper=False)
    async with AsyncTestClient(app) as client:
        headers = {**service.device("web"), "Idempotency-Key": uuid.uuid4().hex}
        refused = await client.post("/v1/orders", json=voucher_sale(number(1)), headers=headers)
        assert_problem(refused, 503, "signing_keys_unavailable")
        assert_problem(await client.get("/v1/ticket-keys"), 503, "signing_keys_unavailable")
        await nothing_written(db)
        card = {**voucher_sale(number(1)), "carrier": "expo_card"}
        sold = await client.post("/v1/orders", json=card, headers={**headers, "Idempotency-Key": "card-sale"})
        assert sold.status_code == 201, sold.text  # other carriers sell as before


async def test_an_unreadable_keyring_refuses_voucher_sales(service: Service, signing_key_file: Path) -> None:
    os.chmod(signing_key_file, 0o644)  # readable by others: refused
    refused = await service.post("/v1/orders", voucher_sale(number(1)), service.device("web"))
    assert_problem(refused, 503, "signing_keys_unavailable")
    await nothing_written(service.db)


class FailingMms:
    """An MMS centre that is down."""

    def __init__(self) -> None:
        self.tries = 0

    async def send(self, *, msisdn: str, subject: str, text: str, image_png: bytes, now: datetime) -> None:
        self.tries += 1
        raise ConnectionError("the MMS centre does not answer")


async def test_a_failed_send_is_given_back_and_delivered_later(
    service: Service, clock: FixedClock, signing_key_file: Path
) -> None:
    down = FailingMms()
    app = create_app(service.settings, clock=clock, bank=InMemoryBank(), sweeper=False, mms=down)
    async with AsyncTestClient(app) as client:
        headers = {**service.device("web"), "Idempotency-Key": uuid.uuid4().hex}
        sold = await client.post("/v1/orders", json=voucher_sale(number(1)), headers=headers)
        assert sold.status_code == 201, sold.text  # the sale stands although its MMS failed
    assert down.tries == 1
    unsent = (await voucher(service, sold.json()["id"])).json()
    assert (unsent["sent_at"], unsent["sends"]) == (None, 0)
    assert await outbox(service, number(1)) == []

    keyring = load_keyring(signing_key_file)
    report = await deliver_vouchers(service.db, keyring=keyring, mms=OutboxMms(service.db), now=clock.now())
    assert (report.issued, report.sent, report.failed) == (0, 1, 0)
    again = await deliver_vouchers(service.db, keyring=keyring, mms=OutboxMms(service.db), now=clock.now())
    assert (again.issued, again.sent, again.failed) == (0, 0, 0)
    assert (await voucher(service, sold.json()["id"])).json()["sends"] == 1
    assert len(await outbox(service, number(1))) == 1


async def test_the_sweep_issues_what_a_crash_left_behind(service: Service, signing_key_file: Path) -> None:
    orders = [await sell_voucher(service, number(n)) for n in (1, 2)]
    async with service.db.write() as session:  # as if the process died after the payments' commits
        await session.execute(text("DELETE FROM mms_outbox"))
        await session.execute(text("DELETE FROM vouchers"))
    report = await deliver_vouchers(
        service.db, keyring=load_keyring(signing_key_file), mms=OutboxMms(service.db), now=service.clock.now()
    )
    assert (report.issued, report.sent) == (2, 2)
    for n, order in zip((1, 2), orders, strict=True):
        assert (await mms_claim(service, number(n))).ticket_id == order["tickets"][0]["id"]
        code = (await voucher(service, order["id"])).json()["code"]
        assert (await published_claim(service, code)).ticket_id == order["tickets"][0]["id"]


async def test_the_keys_are_public_and_hold_no_private_key(service: Service, signing_key_file: Path) -> None:
    reply = await service.client.get("/v1/ticket-keys")
    assert reply.status_code == 200, reply.text
    document = reply.json()
    assert document["kind"] == "expo-verify-keys"
    assert [(k["kid"], k["retired"]) for k in document["keys"]] == [(1, False)]
    private = load_keyring(signing_key_file).keys[0].private
    assert private.private_bytes(Encoding.Raw, PrivateFormat.Raw, NoEncryption()).hex() not in reply.text
