"""HTTP API of utility bills (post, query, pay on the web) and of the texts users send to the service number."""

import uuid
from datetime import date, datetime
from typing import Annotated, Any

from litestar import Response, Router, get, post
from litestar.params import FromPath, FromQuery, JSONBody
from msgspec import Meta, Struct
from sqlalchemy.ext.asyncio import AsyncSession

from expo.access.rules import Principal, Role
from expo.errors import ExpoError, Forbidden
from expo.http import IdempotencyKey, allow, clock_of, db_of, idempotent_reply, json_reply, principal_of
from wallet import accounts, bills, inbound
from wallet.api_payments import describe
from wallet.http import AnyRequest, merchant_of, sms_of, terms_of, transfer_key
from wallet.models import Merchant, UtilityBill
from wallet.rules import PaymentChannel
from wallet.schemas import Fen, MerchantCode, Msisdn, Password, ShortText, TransferOut

# What the SMS centre hands over: any text but NUL (which PostgreSQL cannot store); an id printable ASCII.
SmsBody = Annotated[str, Meta(max_length=500, pattern=r"^[^\x00]*$")]
MessageId = Annotated[str, Meta(min_length=1, max_length=64, pattern=r"^[\x21-\x7e]+$")]


class BillIn(Struct, forbid_unknown_fields=True):
    bill_no: ShortText
    msisdn: Msisdn
    customer_ref: ShortText
    amount_fen: Fen
    due_day: date
    biller: MerchantCode | None = None  # the admin names the biller; a biller's own system is the biller


class BillOut(Struct):
    id: int
    biller: str
    biller_name: str
    bill_no: str
    msisdn: str
    customer_ref: str
    amount_fen: int
    due_day: date
    status: str
    paid_transfer_id: int | None
    texted_at: datetime | None
    created_at: datetime


class BillPaymentIn(Struct, forbid_unknown_fields=True):
    password: Password


class BillPaymentOut(Struct):
    bill: BillOut
    payment: TransferOut


class InboundIn(Struct, forbid_unknown_fields=True):
    msisdn: Msisdn
    text: SmsBody
    message_id: MessageId | None = None  # the SMS centre's id: a message delivered twice pays once


def bill_out(bill: UtilityBill, *, biller: Merchant) -> BillOut:
    return BillOut(
        id=bill.id,
        biller=biller.code,
        biller_name=biller.name,
        bill_no=bill.bill_no,
        msisdn=bill.msisdn,
        customer_ref=bill.customer_ref,
        amount_fen=bill.amount_fen,
        due_day=bill.due_day,
        status=bill.status,
        paid_transfer_id=bill.paid_transfer_id,
        texted_at=bill.texted_at,
        created_at=bill.created_at,
    )


def _biller_code(request: AnyRequest, caller: Principal, named: str | None) -> str:
    if caller.role == Role.ADMIN:
        if named is None:
            raise ExpoError("biller_required", "name the biller whose bill this is")
        return named
    own = merchant_of(request)
    if named is not None and named != own:
        raise Forbidden("other_merchant", "a biller posts only its own bills")
    return own


@post("/bills", guards=[allow(Role.MERCHANT, Role.ADMIN)])
async def post_bill(request: AnyRequest, data: JSONBody[BillIn]) -> Response[bytes]:
    """A biller posts a bill; a number with a wallet is texted it, to reply Y to pay."""
    code = _biller_code(request, principal_of(request), data.biller)
    now = clock_of(request).now()
    async with db_of(request).write() as session:
        biller = await bills.find_biller(session, code=code)
        bill, text = await bills.post_bill(
            session,
            biller=biller,
            bill_no=data.bill_no,
            msisdn=data.msisdn,
            customer_ref=data.customer_ref,
            amount_fen=data.amount_fen,
            due_day=data.due_day,
            now=now,
        )
        reply = bill_out(bill, biller=biller)
    if text is not None:
        await sms_of(request).send(msisdn=text.msisdn, text=text.text, now=now)
    return json_reply(reply, status=201)


@get("/bills", guards=[allow(Role.WEB, Role.HALL_CLERK, Role.ADMIN)])
async def query_bills(request: AnyRequest, msisdn: FromQuery[str]) -> Response[bytes]:
    """Bill query: a number's open and paid bills."""
    async with db_of(request).read() as session:
        reply = [bill_out(bill, biller=biller) for bill, biller in await bills.bills_of(session, msisdn=msisdn)]
    return json_reply(reply, status=200)


@post("/bills/{bill_id:int}/payment", guards=[allow(Role.WEB)])
async def pay_bill(
    request: AnyRequest, bill_id: FromPath[int], data: JSONBody[BillPaymentIn], idempotency_key: IdempotencyKey = None
) -> Response[bytes]:
    """Pay a whole bill on the web with the payment password; a bill is paid once."""
    caller = principal_of(request)
    now = clock_of(request).now()
    key = transfer_key(request, idempotency_key)
    async with db_of(request).read() as session:
        msisdn = (await bills.find_bill(session, bill_id=bill_id)).msisdn
    await accounts.verify_password(db_of(request), msisdn=msisdn, password=data.password, now=now)

    async def work(session: AsyncSession) -> tuple[int, Any]:
        bill, outcome = await bills.pay_bill(
            session,
            bill_id=bill_id,
            idempotency_key=key,
            channel=PaymentChannel.WEB,
            terms=terms_of(request),
            now=now,
            credential_id=caller.credential_id,
        )
        biller = await session.get(Merchant, bill.merchant_id)
        assert biller is not None
        return 201, BillPaymentOut(
            bill=bill_out(bill, biller=biller), payment=await describe(session, outcome.transfer)
        )

    return await idempotent_reply(request, key=idempotency_key, work=work)


@post("/sms/inbound", guards=[allow(Role.SMS_GATEWAY)])
async def receive_text(request: AnyRequest, data: JSONBody[InboundIn]) -> Response[bytes]:
    """A text a user sent to the service number: done and answered; a refusal is answered too, never a 5xx."""
    # Without the centre's message id every delivery counts as a new message.
    key = transfer_key(request, f"sms:{data.message_id or uuid.uuid4().hex}")
    outcome = await inbound.handle_text(
        db_of(request),
        sms=sms_of(request),
        msisdn=data.msisdn,
        text=data.text,
        ledger_key=key,
        terms=terms_of(request),
        now=clock_of(request).now(),
        credential_id=principal_of(request).credential_id,
    )
    return json_reply(outcome, status=200)


router = Router(path="/v1/wallet", route_handlers=[post_bill, query_bills, pay_bill, receive_text])
