"""HTTP API of marketing: the operator funds its budget and gives red packets; merchants give vouchers."""

from datetime import datetime
from typing import Annotated, Any

from litestar import Response, Router, post
from litestar.params import JSONBody
from msgspec import Meta, Struct
from sqlalchemy.ext.asyncio import AsyncSession

from expo.access.rules import Role
from expo.http import IdempotencyKey, allow, clock_of, db_of, idempotent_reply, json_reply, principal_of
from wallet import marketing
from wallet.api_payments import describe
from wallet.http import AnyRequest, merchant_of, sms_of, transfer_key
from wallet.payments import find_merchant
from wallet.schemas import Fen, Msisdn, ShortText

AwareInstant = Annotated[datetime, Meta(tz=True)]


class FundingIn(Struct, forbid_unknown_fields=True):
    amount_fen: Fen


class RedPacketIn(Struct, forbid_unknown_fields=True):
    msisdn: Msisdn
    amount_fen: Fen
    campaign: ShortText


class VoucherIn(Struct, forbid_unknown_fields=True):
    msisdn: Msisdn
    product: ShortText
    value_fen: Fen
    expires_at: AwareInstant


class VoucherOut(Struct):
    code: str
    merchant: str
    product: str
    msisdn: str
    value_fen: int
    expires_at: datetime
    created_at: datetime


@post("/admin/marketing/funding", guards=[allow(Role.ADMIN)])
async def fund_marketing(
    request: AnyRequest, data: JSONBody[FundingIn], idempotency_key: IdempotencyKey = None
) -> Response[bytes]:
    """The operator moves its own money into the red-packet budget."""
    caller = principal_of(request)
    now = clock_of(request).now()
    key = transfer_key(request, idempotency_key)

    async def work(session: AsyncSession) -> tuple[int, Any]:
        transfer = await marketing.fund_marketing(
            session, idempotency_key=key, amount_fen=data.amount_fen, now=now, credential_id=caller.credential_id
        )
        return 201, await describe(session, transfer)

    return await idempotent_reply(request, key=idempotency_key, work=work)


@post("/admin/red-packets", guards=[allow(Role.ADMIN)])
async def give_red_packet(
    request: AnyRequest, data: JSONBody[RedPacketIn], idempotency_key: IdempotencyKey = None
) -> Response[bytes]:
    """A red packet from the budget to a wallet (refused beyond the budget); the user is texted of it."""
    caller = principal_of(request)
    now = clock_of(request).now()
    key = transfer_key(request, idempotency_key)
    given: list[str] = []

    async def work(session: AsyncSession) -> tuple[int, Any]:
        transfer = await marketing.give_red_packet(
            session,
            idempotency_key=key,
            msisdn=data.msisdn,
            amount_fen=data.amount_fen,
            campaign=data.campaign,
            now=now,
            credential_id=caller.credential_id,
        )
        shown = await describe(session, transfer)
        assert shown.msisdn is not None
        given.append(shown.msisdn)
        return 201, shown

    reply = await idempotent_reply(request, key=idempotency_key, work=work)
    for msisdn in given:
        text = marketing.red_packet_text(amount_fen=data.amount_fen, campaign=data.campaign)
        await sms_of(request).send(msisdn=msisdn, text=text, now=now)
    return reply


@post("/vouchers", guards=[allow(Role.MERCHANT)])
async def issue_voucher(request: AnyRequest, data: JSONBody[VoucherIn]) -> Response[bytes]:
    """A merchant's system gives a phone number a voucher for one product; its code is texted to the user."""
    code = merchant_of(request)
    now = clock_of(request).now()
    async with db_of(request).write() as session:
        merchant = await find_merchant(session, code=code)
        voucher = await marketing.issue_voucher(
            session,
            merchant=merchant,
            msisdn=data.msisdn,
            product=data.product,
            value_fen=data.value_fen,
            expires_at=data.expires_at,
            now=now,
        )
        text = marketing.voucher_text(voucher, merchant=merchant)
        reply = VoucherOut(
            code=voucher.code,
            merchant=merchant.code,
            product=voucher.product,
            msisdn=voucher.msisdn,
            value_fen=voucher.value_fen,
            expires_at=voucher.expires_at,
            created_at=voucher.created_at,
        )
    await sms_of(request).send(msisdn=reply.msisdn, text=text, now=now)
    return json_reply(reply, status=201)


router = Router(path="/v1/wallet", route_handlers=[fund_marketing, give_red_packet, issue_voucher])
