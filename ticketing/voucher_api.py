"""HTTP API of QR exchange vouchers and physical tickets: the published verification keys, a voucher and its QR
picture for sellers, sending it again, the exchange at a hall, the physical ticket for a reprint, the MMS outbox.

The signing keyring is read from EXPO_SIGNING_KEY_FILE and read again whenever the file changes, so
`expo ticket-keys rotate` takes effect without a restart.
"""

import asyncio
import logging
import os
from typing import Annotated, Any

from litestar import Request, Response, Router, get, post
from litestar.datastructures import State
from litestar.params import FromPath, FromQuery, JSONBody, QueryParameter

from expo.access.rules import Role
from expo.errors import ExpoError, NotFound
from expo.http import IdempotencyKey, allow, clock_of, db_of, idempotent_reply, json_reply, principal_of, settings_of
from expo.provinces import normalize_msisdn
from simcard.keystore import KeyFileError
from ticketing import exchanges, mms, vouchers
from ticketing.qr import qr_png
from ticketing.signing_keys import Keyring, load_keyring, public_document
from ticketing.voucher_schemas import ExchangeIn, exchange_out, mms_out, physical_out, voucher_out

AnyRequest = Request[Any, Any, Any]
SELLERS = (Role.HALL_CLERK, Role.HOTLINE_AGENT, Role.WEB)
KEYRING_STATE = "signing_keyring"
log = logging.getLogger(__name__)


def current_keyring(state: State) -> Keyring:
    """The signing keyring of EXPO_SIGNING_KEY_FILE, read again when the file changed since it was last read;
    `signing_keys_unavailable` (503) when none is configured or it cannot be read."""
    path = state.settings.signing_key_file
    if not path:
        raise ExpoError(
            "signing_keys_unavailable", "no signing key file is configured (EXPO_SIGNING_KEY_FILE)", status=503
        )
    try:
        found = os.stat(path)
        stamp = (path, found.st_ino, found.st_mtime_ns, found.st_size)
        cached = state.get(KEYRING_STATE)
        if cached is not None and cached[0] == stamp:
            return cached[1]  # type: ignore[no-any-return]
        ring = load_keyring(path)
    except (OSError, KeyFileError) as exc:
        log.warning("the signing keys cannot be read: %s", exc)
        raise ExpoError("signing_keys_unavailable", "the platform cannot read its signing keys", status=503) from exc
    state[KEYRING_STATE] = (stamp, ring)
    return ring


def keyring_of(request: AnyRequest) -> Keyring:
    """The request's app's signing keyring (see `current_keyring`)."""
    return current_keyring(request.app.state)


def _keyring_if_any(request: AnyRequest) -> Keyring | None:
    try:
        return keyring_of(request)
    except ExpoError:
        return None


def mms_of(request: AnyRequest) -> mms.MmsGateway:
    """The MMS gateway the app sends through."""
    return request.app.state.mms  # type: ignore[no-any-return]


async def deliver_after_payment(request: AnyRequest, *, order_id: int) -> None:
    """After an order's payment is committed: issue and send its vouchers now. Trouble is logged, never raised:
    the order stands paid, and the sweeper delivers what is missing."""
    if not settings_of(request).signing_key_file:
        log.warning("order %d is paid but no signing key file is configured: no voucher", order_id)
        return
    try:
        await vouchers.deliver_vouchers(
            db_of(request),
            keyring=keyring_of(request),
            mms=mms_of(request),
            now=clock_of(request).now(),
            order_id=order_id,
        )
    except Exception:
        log.exception("the vouchers of order %d were not delivered; the sweeper tries again", order_id)


async def _voucher(request: AnyRequest, order_id: int) -> vouchers.VoucherView:
    return await vouchers.fetch_voucher(
        db_of(request),
        reader=principal_of(request),
        order_id=order_id,
        keyring=_keyring_if_any(request),
        mms=mms_of(request),
        now=clock_of(request).now(),
    )


@get("/ticket-keys")
async def ticket_keys(request: AnyRequest) -> Response[bytes]:
    """The public keys vouchers and physical tickets are verified with (retired ones included); no private key."""
    return json_reply(public_document(keyring_of(request)), status=200)


@get("/orders/{order_id:int}/voucher", guards=[allow(*SELLERS, Role.ADMIN)])
async def read_voucher(request: AnyRequest, order_id: FromPath[int]) -> Response[bytes]:
    """A QR-voucher order's voucher (issued now if it is paid and still missing), its sends and its exchange."""
    return json_reply(voucher_out(await _voucher(request, order_id)), status=200)


@get("/orders/{order_id:int}/voucher.png", guards=[allow(*SELLERS, Role.ADMIN)])
async def read_voucher_picture(request: AnyRequest, order_id: FromPath[int]) -> Response[bytes]:
    """The voucher's QR picture (PNG), to show or print."""
    view = await _voucher(request, order_id)
    picture = await asyncio.to_thread(qr_png, view.voucher.code)  # ~30 ms of drawing, off the event loop
    return Response(picture, status_code=200, media_type="image/png")


@post("/orders/{order_id:int}/voucher/send", guards=[allow(*SELLERS)])
async def send_voucher(request: AnyRequest, order_id: FromPath[int]) -> Response[bytes]:
    """Send the voucher's MMS to the buyer again."""
    view = await vouchers.resend_voucher(
        db_of(request),
        reader=principal_of(request),
        order_id=order_id,
        keyring=_keyring_if_any(request),
        mms=mms_of(request),
        now=clock_of(request).now(),
    )
    return json_reply(voucher_out(view), status=200)


@post("/vouchers/exchange", guards=[allow(Role.HALL_CLERK)])
async def exchange_voucher(
    request: AnyRequest, data: JSONBody[ExchangeIn], idempotency_key: IdempotencyKey = None
) -> Response[bytes]:
    """Exchange a voucher once, for a physical ticket (its code to print comes back) or onto an Expo card."""
    clerk = principal_of(request)
    now = clock_of(request).now()
    keyring = keyring_of(request)

    async def work(session: Any) -> tuple[int, Any]:
        done = await exchanges.exchange_voucher(
            session, clerk=clerk, code=data.code, into=data.into, csn=data.csn, keyring=keyring, now=now
        )
        return 201, exchange_out(done)

    return await idempotent_reply(request, key=idempotency_key, work=work)


@get("/tickets/{ticket_id:int}/physical", guards=[allow(Role.HALL_CLERK, Role.ADMIN)])
async def read_physical_ticket(request: AnyRequest, ticket_id: FromPath[int]) -> Response[bytes]:
    """A physical ticket's code, for a reprint at a hall of the province that exchanged it."""
    async with db_of(request).read() as session:
        found = await exchanges.physical_ticket(session, reader=principal_of(request), ticket_id=ticket_id)
        reply = physical_out(found)
    return json_reply(reply, status=200)


@get("/mms-outbox", guards=[allow(Role.ADMIN)])
async def list_mms(
    request: AnyRequest,
    msisdn: FromQuery[str | None] = None,
    limit: Annotated[int, QueryParameter(ge=1, le=mms.MAX_LIST)] = 50,
) -> Response[bytes]:
    """The MMS sent (to one phone, or to any), newest first, without their pictures."""
    number = normalize_msisdn(msisdn) if msisdn else None
    async with db_of(request).read() as session:
        rows = await mms.messages_for(session, msisdn=number, limit=limit)
    return json_reply([mms_out(row) for row in rows], status=200)


@get("/mms-outbox/{message_id:int}/image", guards=[allow(Role.ADMIN)])
async def read_mms_image(request: AnyRequest, message_id: FromPath[int]) -> Response[bytes]:
    """The PNG picture attached to one MMS."""
    async with db_of(request).read() as session:
        image = await mms.message_image(session, message_id=message_id)
    if image is None:
        raise NotFound("mms_not_found", f"no MMS {message_id}")
    return Response(image, status_code=200, media_type="image/png")


router = Router(
    path="/v1",
    route_handlers=[
        ticket_keys,
        read_voucher,
        read_voucher_picture,
        send_voucher,
        exchange_voucher,
        read_physical_ticket,
        list_mms,
        read_mms_image,
    ],
    tags=["vouchers"],
)
