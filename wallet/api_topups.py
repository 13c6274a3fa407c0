"""HTTP API of money in and out: cash, bank and recharge-card top-ups, withdrawals, the bank's notifications."""

from datetime import timedelta
from typing import Annotated, Any

import msgspec
from litestar import Response, Router, get, post
from litestar.params import FromPath, JSONBody
from msgspec import Meta, Struct
from sqlalchemy.ext.asyncio import AsyncSession

from expo.access.rules import Role
from expo.bank import BankGateway, BankStatus, notification_is_genuine
from expo.errors import NotFound, Unauthorized
from expo.http import (
    PLAIN_TEXT,
    IdempotencyKey,
    allow,
    clock_of,
    db_of,
    idempotent_reply,
    json_reply,
    principal_of,
    settings_of,
)
from expo.provinces import normalize_msisdn
from wallet import accounts, recharge_cards, sweeps, topups, withdrawals
from wallet.api_payments import describe
from wallet.http import AnyRequest, terms_of, transfer_key
from wallet.models import WalletTransfer
from wallet.rules import TransferKind, TransferState
from wallet.schemas import Fen, Msisdn, Password

# Loose on purpose: the service refuses a malformed number with its own code (invalid_bank_account).
BankAccount = Annotated[str, Meta(min_length=1, max_length=32, pattern=PLAIN_TEXT)]
Reference = Annotated[str, Meta(max_length=64, pattern=PLAIN_TEXT)]


class CashTopUpIn(Struct, forbid_unknown_fields=True):
    msisdn: Msisdn
    amount_fen: Fen


@post("/top-ups/cash", guards=[allow(Role.HALL_CLERK)])
async def top_up_cash(
    request: AnyRequest, data: JSONBody[CashTopUpIn], idempotency_key: IdempotencyKey = None
) -> Response[bytes]:
    """Cash paid in at the hall counter, credited at once."""
    clerk = principal_of(request)
    now = clock_of(request).now()
    key = transfer_key(request, idempotency_key)

    async def work(session: AsyncSession) -> tuple[int, Any]:
        assert clerk.province_code is not None
        transfer = await topups.top_up_cash(
            session,
            idempotency_key=key,
            msisdn=data.msisdn,
            amount_fen=data.amount_fen,
            hall_province=clerk.province_code,
            limits=terms_of(request).limits,
            now=now,
            credential_id=clerk.credential_id,
        )
        return 201, await describe(session, transfer)

    return await idempotent_reply(request, key=idempotency_key, work=work)


class BankTopUpIn(Struct, forbid_unknown_fields=True):
    msisdn: Msisdn
    amount_fen: Fen
    channel: topups.BankChannel
    account: BankAccount  # the card or bank account; only its last four digits are kept


class RechargeCardIn(Struct, forbid_unknown_fields=True):
    msisdn: Msisdn
    serial: Annotated[str, Meta(min_length=1, max_length=20, pattern=PLAIN_TEXT)]
    pin: Annotated[str, Meta(min_length=1, max_length=32, pattern=PLAIN_TEXT)]


class WithdrawalIn(Struct, forbid_unknown_fields=True):
    msisdn: Msisdn
    amount_fen: Fen
    account: BankAccount
    password: Password


class CardBatchIn(Struct, forbid_unknown_fields=True):
    count: Annotated[int, Meta(ge=1, le=recharge_cards.MAX_BATCH)]
    face_value_fen: Fen
    batch: Annotated[str, Meta(min_length=1, max_length=32, pattern=PLAIN_TEXT)]


class BankNotificationIn(Struct, forbid_unknown_fields=True):
    reference: Reference
    status: Annotated[str, Meta(pattern="^(approved|declined)$")]
    bank_ref: Reference | None = None


def _bank(request: AnyRequest) -> BankGateway:
    return request.app.state.bank  # type: ignore[no-any-return]


def _bank_timeout(request: AnyRequest) -> timedelta:
    # The service's one bank timeout, the one ticket sales wait for too (expo.app).
    return request.app.state.sale_terms.bank_timeout  # type: ignore[no-any-return]


def _accepted(transfer: WalletTransfer) -> int:
    return 202 if transfer.state == TransferState.PENDING.value else 201


@post("/top-ups/bank", guards=[allow(Role.WEB)])
async def top_up_by_bank(
    request: AnyRequest, data: JSONBody[BankTopUpIn], idempotency_key: IdempotencyKey = None
) -> Response[bytes]:
    """Top up from a bank card or online banking: 201 when the bank approved, 202 while it has not answered."""
    caller = principal_of(request)
    now = clock_of(request).now()
    key = transfer_key(request, idempotency_key)

    async def work(session: AsyncSession) -> tuple[int, Any]:
        transfer = await topups.top_up_by_bank(
            session,
            idempotency_key=key,
            msisdn=data.msisdn,
            amount_fen=data.amount_fen,
            channel=data.channel,
            account=data.account,
            bank=_bank(request),
            bank_timeout=_bank_timeout(request),
            limits=terms_of(request).limits,
            now=now,
            credential_id=caller.credential_id,
        )
        return _accepted(transfer), await describe(session, transfer)

    return await idempotent_reply(request, key=idempotency_key, work=work)


@post("/top-ups/recharge-card", guards=[allow(Role.WEB, Role.HALL_CLERK)])
async def redeem_recharge_card(
    request: AnyRequest, data: JSONBody[RechargeCardIn], idempotency_key: IdempotencyKey = None
) -> Response[bytes]:
    """Top up with a recharge card's face value, once per card."""
    caller = principal_of(request)
    now = clock_of(request).now()
    key = transfer_key(request, idempotency_key)

    async def work(session: AsyncSession) -> tuple[int, Any]:
        transfer = await recharge_cards.redeem_recharge_card(
            session,
            idempotency_key=key,
            msisdn=data.msisdn,
            serial=data.serial,
            pin=data.pin,
            limits=terms_of(request).limits,
            now=now,
            credential_id=caller.credential_id,
        )
        return 201, await describe(session, transfer)

    return await idempotent_reply(request, key=idempotency_key, work=work)


@post("/withdrawals", guards=[allow(Role.WEB)])
async def request_withdrawal(
    request: AnyRequest, data: JSONBody[WithdrawalIn], idempotency_key: IdempotencyKey = None
) -> Response[bytes]:
    """Withdraw from the main balance to a bank card with the payment password; held until the bank pays (202)."""
    caller = principal_of(request)
    now = clock_of(request).now()
    key = transfer_key(request, idempotency_key)
    number = normalize_msisdn(data.msisdn)
    await accounts.verify_password(db_of(request), msisdn=number, password=data.password, now=now)

    async def work(session: AsyncSession) -> tuple[int, Any]:
        transfer = await withdrawals.request_withdrawal(
            session,
            idempotency_key=key,
            msisdn=number,
            amount_fen=data.amount_fen,
            account=data.account,
            bank=_bank(request),
            bank_timeout=_bank_timeout(request),
            limits=terms_of(request).limits,
            now=now,
            credential_id=caller.credential_id,
        )
        return _accepted(transfer), await describe(session, transfer)

    return await idempotent_reply(request, key=idempotency_key, work=work)


@post("/admin/recharge-cards", guards=[allow(Role.ADMIN)])
async def issue_recharge_cards(request: AnyRequest, data: JSONBody[CardBatchIn]) -> Response[bytes]:
    """Issue a batch of recharge cards; their PINs are in this reply only (no idempotency record keeps them)."""
    async with db_of(request).write() as session:
        cards = await recharge_cards.issue_recharge_cards(
            session, count=data.count, face_value_fen=data.face_value_fen, batch=data.batch, now=clock_of(request).now()
        )
    body = {
        "batch": data.batch.strip(),
        "face_value_fen": data.face_value_fen,
        "cards": [{"serial": card.serial, "pin": card.pin} for card in cards],
    }
    return Response(
        msgspec.json.encode(body), status_code=201, media_type="application/json", headers={"Cache-Control": "no-store"}
    )


@post("/bank/notifications", status_code=200, exclude_from_auth=True)
async def bank_notification(request: AnyRequest, data: JSONBody[BankNotificationIn]) -> Response[bytes]:
    """A bank's answer about a top-up or a withdrawal, signed with the shared secret (X-Bank-Signature)."""
    signature = request.headers.get("x-bank-signature", "")
    if not notification_is_genuine(settings_of(request).bank_notify_secret, await request.body(), signature):
        raise Unauthorized("bad_signature", "the notification's signature does not verify")
    transfer = await sweeps.apply_bank_notification(
        db_of(request),
        reference=data.reference,
        status=BankStatus(data.status),
        bank_ref=data.bank_ref,
        now=clock_of(request).now(),
    )
    return json_reply({"reference": data.reference, "id": transfer.id, "state": transfer.state}, status=200)


@get("/transfers/{transfer_id:int}", guards=[allow(Role.ADMIN, Role.WEB, Role.HALL_CLERK)])
async def read_transfer(request: AnyRequest, transfer_id: FromPath[int]) -> Response[bytes]:
    """One top-up or withdrawal, with its state."""
    async with db_of(request).read() as session:
        transfer = await session.get(WalletTransfer, transfer_id)
        if transfer is None or transfer.kind not in (TransferKind.TOP_UP.value, TransferKind.WITHDRAWAL.value):
            raise NotFound("unknown_transfer", f"no top-up or withdrawal {transfer_id}")
        reply = await describe(session, transfer)
    return json_reply(reply, status=200)


router = Router(
    path="/v1/wallet",
    route_handlers=[
        top_up_cash,
        top_up_by_bank,
        redeem_recharge_card,
        request_withdrawal,
        issue_recharge_cards,
        bank_notification,
        read_transfer,
    ],
)
