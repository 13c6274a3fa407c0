"""HTTP API of wallet accounts and merchants: opening, real name, password, balances, statements."""

from typing import Annotated, Any

from litestar import Response, Router, get, post, put
from litestar.params import FromPath, FromQuery, JSONBody, QueryParameter
from sqlalchemy import select

from expo.access.rules import Role
from expo.access.service import create_credential
from expo.errors import ExpoError, Forbidden, NotFound
from expo.http import allow, clock_of, db_of, json_reply, principal_of
from expo.provinces import normalize_msisdn
from wallet import accounts, merchants, sms
from wallet.audit import audit_ledger
from wallet.http import AnyRequest, sms_of
from wallet.models import Merchant, WalletTransfer, WalletUser
from wallet.payments import find_merchant
from wallet.schemas import (
    AccountIn,
    CodeRequestIn,
    MerchantIn,
    PasswordIn,
    RealNameIn,
    account_out,
    merchant_out,
    transfer_out,
)

READERS = (Role.ADMIN, Role.HALL_CLERK, Role.HOTLINE_AGENT, Role.WEB)


@post("/sms-codes", guards=[allow(Role.WEB)])
async def request_code(request: AnyRequest, data: JSONBody[CodeRequestIn]) -> Response[bytes]:
    """Text a verification code to a phone, to open its wallet on the web or to set its payment password."""
    now = clock_of(request).now()
    purpose = sms.CodePurpose(data.purpose)
    async with db_of(request).write() as session:
        number = normalize_msisdn(data.msisdn)
        has_wallet = await session.scalar(select(WalletUser.id).where(WalletUser.msisdn == number))
        if purpose == sms.CodePurpose.OPEN and has_wallet is not None:
            raise ExpoError("account_exists", f"{number} already has a wallet", status=409)
        if purpose == sms.CodePurpose.PASSWORD and has_wallet is None:
            raise NotFound("no_wallet", f"{number} has no wallet")
        issued = await sms.issue_code(session, msisdn=number, purpose=purpose, transfer_id=None, now=now)
    await sms_of(request).send(msisdn=number, text=f"Your wallet verification code is {issued.digits}.", now=now)
    return json_reply({"msisdn": number, "sent": True}, status=202)


@post("/accounts", guards=[allow(Role.WEB, Role.HALL_CLERK)])
async def open_account(request: AnyRequest, data: JSONBody[AccountIn]) -> Response[bytes]:
    """Open a wallet: on the web with a texted code, or in a hall with the holder's ID checked (real name)."""
    caller = principal_of(request)
    now = clock_of(request).now()
    via = accounts.OpenedVia.HALL if caller.role == Role.HALL_CLERK else accounts.OpenedVia.WEB
    number = normalize_msisdn(data.msisdn)
    if via == accounts.OpenedVia.WEB:
        if data.code is None or data.password is None:
            raise ExpoError("code_required", "a web opening needs the texted code and a payment password")
        accounts.check_payment_password(data.password)
        await sms.use_code(db_of(request), msisdn=number, purpose=sms.CodePurpose.OPEN, digits=data.code, now=now)
    async with db_of(request).write() as session:
        user = await accounts.open_account(
            session, msisdn=number, via=via, password=data.password, id_last4=data.id_last4, now=now
        )
        reply = account_out(user, await accounts.balances_of(session, user=user))
    return json_reply(reply, status=201)


@get("/accounts/{msisdn:str}", guards=[allow(*READERS)])
async def read_account(request: AnyRequest, msisdn: FromPath[str]) -> Response[bytes]:
    """A wallet's class and balances."""
    async with db_of(request).read() as session:
        user = await accounts.find_user(session, msisdn=msisdn)
        reply = account_out(user, await accounts.balances_of(session, user=user))
    return json_reply(reply, status=200)


@post("/accounts/{msisdn:str}/real-name", guards=[allow(Role.HALL_CLERK)])
async def verify_real_name(request: AnyRequest, msisdn: FromPath[str], data: JSONBody[RealNameIn]) -> Response[bytes]:
    """A clerk checked the holder's ID: the wallet becomes real-name."""
    async with db_of(request).write() as session:
        user = await accounts.verify_real_name(session, msisdn=msisdn, id_last4=data.id_last4)
        reply = account_out(user, await accounts.balances_of(session, user=user))
    return json_reply(reply, status=200)


@put("/accounts/{msisdn:str}/password", guards=[allow(Role.WEB)])
async def set_password(request: AnyRequest, msisdn: FromPath[str], data: JSONBody[PasswordIn]) -> Response[bytes]:
    """Set the payment password, proving the phone with a texted code."""
    now = clock_of(request).now()
    number = normalize_msisdn(msisdn)
    accounts.check_payment_password(data.password)
    await sms.use_code(db_of(request), msisdn=number, purpose=sms.CodePurpose.PASSWORD, digits=data.code, now=now)
    async with db_of(request).write() as session:
        user = await accounts.find_user(session, msisdn=number)
        await accounts.set_password(session, user=user, password=data.password)
    return Response(b"", status_code=204)


@get("/accounts/{msisdn:str}/transfers", guards=[allow(*READERS)])
async def statement(
    request: AnyRequest, msisdn: FromPath[str], limit: Annotated[int, QueryParameter(ge=1, le=500)] = 50
) -> Response[bytes]:
    """The wallet's latest transfers, newest first."""
    async with db_of(request).read() as session:
        user = await accounts.find_user(session, msisdn=msisdn)
        rows = (
            await session.execute(
                select(WalletTransfer, Merchant.code)
                .outerjoin(Merchant, Merchant.id == WalletTransfer.merchant_id)
                .where(WalletTransfer.user_id == user.id)
                .order_by(WalletTransfer.id.desc())
                .limit(limit)
            )
        ).all()
        reply = [transfer_out(transfer, msisdn=user.msisdn, merchant=code) for transfer, code in rows]
    return json_reply(reply, status=200)


@post("/admin/merchants", guards=[allow(Role.ADMIN)])
async def register_merchant(request: AnyRequest, data: JSONBody[MerchantIn]) -> Response[bytes]:
    """Register a merchant with its category and negotiated fee."""
    async with db_of(request).write() as session:
        merchant = await merchants.create_merchant(
            session,
            code=data.code,
            name=data.name,
            category=data.category,
            province_code=data.province_code,
            fee_rate_bp=data.fee_rate_bp,
            allows_adjust=data.allows_adjust,
            now=clock_of(request).now(),
        )
        reply = merchant_out(merchant, balance_fen=0)
    return json_reply(reply, status=201)


@post("/admin/merchants/{code:str}/keys", guards=[allow(Role.ADMIN)])
async def issue_merchant_key(request: AnyRequest, code: FromPath[str]) -> Response[bytes]:
    """Issue an API key for a merchant's own system; the token is shown once."""
    async with db_of(request).write() as session:
        merchant = await find_merchant(session, code=code)
        credential, token = await create_credential(
            session,
            role=Role.MERCHANT,
            label=f"merchant {merchant.code}",
            province_code=merchant.province_code,
            hall=None,
            merchant_code=merchant.code,
            now=clock_of(request).now(),
        )
    return json_reply({"id": credential.id, "merchant": merchant.code, "token": token}, status=201)


@get("/merchants/{code:str}", guards=[allow(Role.ADMIN, Role.MERCHANT, Role.POS)])
async def read_merchant(request: AnyRequest, code: FromPath[str]) -> Response[bytes]:
    """A merchant's terms and what the platform owes it; a merchant sees only itself."""
    caller = principal_of(request)
    if caller.role != Role.ADMIN and caller.merchant_code != code:
        raise Forbidden("other_merchant", "a merchant sees only its own account")
    async with db_of(request).read() as session:
        merchant = await find_merchant(session, code=code)
        reply = merchant_out(merchant, balance_fen=await merchants.merchant_balance(session, merchant=merchant))
    return json_reply(reply, status=200)


@get("/admin/sms", guards=[allow(Role.ADMIN)])
async def read_texts(request: AnyRequest, msisdn: FromQuery[str]) -> Response[bytes]:
    """The texts sent to and received from a phone (the SMS outbox), newest first."""
    async with db_of(request).read() as session:
        rows = await sms.texts_for(session, msisdn=normalize_msisdn(msisdn))
        reply: list[dict[str, Any]] = [
            {"direction": row.direction, "text": row.text, "at": row.created_at.isoformat()} for row in rows
        ]
    return json_reply(reply, status=200)


@get("/admin/ledger", guards=[allow(Role.ADMIN)])
async def check_ledger(request: AnyRequest) -> Response[bytes]:
    """Audit the ledger: balances against postings and holds, zero sums, no restricted account below zero."""
    async with db_of(request).read() as session:
        report = await audit_ledger(session)
    body = {
        "ok": report.ok,
        "accounts": report.accounts,
        "transfers": report.transfers,
        "postings": report.postings,
        "total_balance_fen": report.total_balance_fen,
        "problems": report.problems,
    }
    return json_reply(body, status=200)


router = Router(
    path="/v1/wallet",
    route_handlers=[
        request_code,
        open_account,
        read_account,
        verify_real_name,
        set_password,
        statement,
        register_merchant,
        issue_merchant_key,
        read_merchant,
        read_texts,
        check_ledger,
    ],
)
