"""HTTP API of top-ups and withdrawals."""

from typing import Annotated, Any

from litestar import Response, Router, post
from litestar.params import HeaderParameter, JSONBody
from msgspec import Struct
from sqlalchemy.ext.asyncio import AsyncSession

from expo.access.rules import Role
from expo.http import allow, clock_of, idempotent_reply, principal_of
from wallet import topups
from wallet.api_payments import describe
from wallet.http import AnyRequest, terms_of, transfer_key
from wallet.schemas import Fen, Msisdn

IdempotencyKey = Annotated[str | None, HeaderParameter(name="Idempotency-Key", required=False)]


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


router = Router(path="/v1/wallet", route_handlers=[top_up_cash])
