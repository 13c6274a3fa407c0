"""HTTP API of remote wallet payments: pay (password or SMS code), confirm, read, refund."""

from typing import Any

from litestar import Response, Router, get, post
from litestar.params import FromPath, JSONBody
from sqlalchemy.ext.asyncio import AsyncSession

from expo.access.rules import Principal, Role
from expo.errors import ExpoError, Forbidden, NotFound
from expo.http import IdempotencyKey, allow, clock_of, db_of, idempotent_reply, json_reply, principal_of
from expo.provinces import normalize_msisdn
from wallet import accounts, payments, sms
from wallet.http import AnyRequest, sms_of, terms_of, transfer_key
from wallet.models import Merchant, WalletTransfer, WalletUser
from wallet.rules import REMOTE_CHANNELS, PaymentChannel, TransferKind, TransferState
from wallet.schemas import ConfirmIn, PaymentIn, RefundIn, TransferOut, transfer_out

PAYERS = (Role.WEB, Role.MERCHANT)


async def describe(session: AsyncSession, transfer: WalletTransfer) -> TransferOut:
    """A transfer as the API shows it, with its phone number and merchant code."""
    user = await session.get(WalletUser, transfer.user_id) if transfer.user_id is not None else None
    merchant = await session.get(Merchant, transfer.merchant_id) if transfer.merchant_id is not None else None
    return transfer_out(transfer, msisdn=user.msisdn if user else None, merchant=merchant.code if merchant else None)


def _check_merchant(caller: Principal, merchant_code: str | None) -> None:
    if caller.role in (Role.MERCHANT, Role.POS) and caller.merchant_code != merchant_code:
        raise Forbidden("other_merchant", "a merchant acts only on its own payments")


@post("/payments", guards=[allow(*PAYERS)])
async def make_payment(
    request: AnyRequest, data: JSONBody[PaymentIn], idempotency_key: IdempotencyKey = None
) -> Response[bytes]:
    """Pay a merchant remotely: on the web with the payment password (posted at once), or by SMS code (held)."""
    caller = principal_of(request)
    _check_merchant(caller, data.merchant)
    if data.channel not in REMOTE_CHANNELS:
        raise ExpoError("wrong_channel", "proximity payments come from the merchant's terminal")
    now = clock_of(request).now()
    number = normalize_msisdn(data.msisdn)
    key = transfer_key(request, idempotency_key)
    if data.channel == PaymentChannel.WEB:
        if data.password is None:
            raise ExpoError("password_required", "a web payment is confirmed with the payment password", status=403)
        await accounts.verify_password(db_of(request), msisdn=number, password=data.password, now=now)
    texts: list[sms.IssuedCode] = []

    async def work(session: AsyncSession) -> tuple[int, Any]:
        merchant = await payments.find_merchant(session, code=data.merchant)
        outcome = await payments.pay(
            session,
            idempotency_key=key,
            msisdn=number,
            merchant=merchant,
            amount_fen=data.amount_fen,
            channel=data.channel,
            terms=terms_of(request),
            now=now,
            voucher_code=data.voucher,
            product=data.product,
            description=data.description,
            reference=data.reference,
            credential_id=caller.credential_id,
        )
        if outcome.code is not None:
            texts.append(outcome.code)
        status = 202 if outcome.transfer.state == TransferState.PENDING.value else 201
        return status, await describe(session, outcome.transfer)

    reply = await idempotent_reply(request, key=idempotency_key, work=work)
    for code in texts:
        text = f"Pay {data.amount_fen / 100:.2f} yuan to {data.merchant}? Your code is {code.digits}."
        await sms_of(request).send(msisdn=number, text=text, now=now)
    return reply


@post("/payments/{payment_id:int}/confirmation", guards=[allow(*PAYERS)])
async def confirm_payment(request: AnyRequest, payment_id: FromPath[int], data: JSONBody[ConfirmIn]) -> Response[bytes]:
    """The user gave the texted code: the held payment is completed."""
    caller = principal_of(request)
    now = clock_of(request).now()
    db = db_of(request)
    async with db.read() as session:
        transfer = await session.get(WalletTransfer, payment_id)
        if transfer is None or transfer.kind != TransferKind.PAYMENT.value:
            raise NotFound("unknown_payment", f"no payment {payment_id}")
        shown = await describe(session, transfer)
    _check_merchant(caller, shown.merchant)
    if transfer.state == TransferState.PENDING.value:
        assert shown.msisdn is not None
        await sms.use_code(
            db, msisdn=shown.msisdn, purpose=sms.CodePurpose.PAYMENT, digits=data.code, now=now, transfer_id=payment_id
        )
    async with db.write() as session:
        locked = await payments.lock_payment(session, transfer_id=payment_id)
        await payments.confirm_payment(session, transfer=locked, now=now)
        reply = await describe(session, locked)
    return json_reply(reply, status=200)


@get("/payments/{payment_id:int}", guards=[allow(*PAYERS, Role.POS, Role.ADMIN)])
async def read_payment(request: AnyRequest, payment_id: FromPath[int]) -> Response[bytes]:
    """One payment or refund; a merchant sees only its own."""
    async with db_of(request).read() as session:
        transfer = await session.get(WalletTransfer, payment_id)
        if transfer is None or transfer.kind not in (*payments.PAYMENT_KINDS, TransferKind.REFUND.value):
            raise NotFound("unknown_payment", f"no payment {payment_id}")
        reply = await describe(session, transfer)
    _check_merchant(principal_of(request), reply.merchant)
    return json_reply(reply, status=200)


@post("/payments/{payment_id:int}/refunds", guards=[allow(Role.MERCHANT, Role.ADMIN)])
async def refund_payment(
    request: AnyRequest, payment_id: FromPath[int], data: JSONBody[RefundIn], idempotency_key: IdempotencyKey = None
) -> Response[bytes]:
    """Refund part or all of a payment to the user's wallet (never more than was paid)."""
    caller = principal_of(request)
    now = clock_of(request).now()
    key = transfer_key(request, idempotency_key)

    async def work(session: AsyncSession) -> tuple[int, Any]:
        payment = await payments.lock_payment(session, transfer_id=payment_id)
        if payment.kind == TransferKind.TICKET_PAYMENT.value:
            raise ExpoError("refund_through_order", "Expo tickets are refunded through their order", status=409)
        _check_merchant(caller, (await describe(session, payment)).merchant)
        refund = await payments.refund_payment(
            session,
            idempotency_key=key,
            payment=payment,
            amount_fen=data.amount_fen,
            now=now,
            reason=data.reason,
            credential_id=caller.credential_id,
        )
        return 201, await describe(session, refund)

    return await idempotent_reply(request, key=idempotency_key, work=work)


router = Router(path="/v1/wallet", route_handlers=[make_payment, confirm_payment, read_payment, refund_payment])
