"""HTTP plumbing shared by every context: problem details, role guards and idempotent replies."""

import logging
from collections.abc import Awaitable, Callable
from typing import Annotated, Any

import msgspec
from litestar import Request, Response
from litestar.connection import ASGIConnection
from litestar.exceptions import HTTPException, ValidationException
from litestar.handlers.base import BaseRouteHandler
from litestar.params import HeaderParameter
from litestar.status_codes import HTTP_500_INTERNAL_SERVER_ERROR
from litestar.types import Guard
from sqlalchemy.ext.asyncio import AsyncSession

from expo import idempotency
from expo.access.rules import Principal, Role
from expo.clock import Clock
from expo.db import Database
from expo.errors import ExpoError, Forbidden, Unauthorized
from expo.settings import Settings

PROBLEM_JSON = "application/problem+json"
# The header every request that creates or moves money carries (checked by `idempotent_reply`).
IdempotencyKey = Annotated[str | None, HeaderParameter(name="Idempotency-Key", required=False)]
# Text fields that are stored or looked up: no control characters (PostgreSQL text cannot even hold NUL).
PLAIN_TEXT = r"^[^\x00-\x1f\x7f]*$"
log = logging.getLogger("expo.http")

_STATUS_CODES = {
    400: "invalid_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    413: "body_too_large",
    415: "unsupported_media_type",
    429: "too_many_requests",
}


def problem_body(*, code: str, status: int, detail: str, instance: str, extra: dict[str, Any] | None = None) -> bytes:
    """An RFC 9457 problem document carrying the stable `code`."""
    document: dict[str, Any] = {
        "type": f"urn:expo:problem:{code}",
        "title": code.replace("_", " "),
        "status": status,
        "detail": detail,
        "code": code,
        "instance": instance,
    }
    if extra:
        document.update(extra)
    return msgspec.json.encode(document)


def _problem(request: Request[Any, Any, Any], *, code: str, status: int, detail: str, **extra: Any) -> Response[bytes]:
    body = problem_body(code=code, status=status, detail=detail, instance=request.url.path, extra=extra)
    headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
    return Response(body, status_code=status, media_type=PROBLEM_JSON, headers=headers)


def expo_error_handler(request: Request[Any, Any, Any], exc: ExpoError) -> Response[bytes]:
    """Domain refusals keep their code and status."""
    return _problem(request, code=exc.code, status=exc.status, detail=exc.detail, **exc.extra)


def validation_error_handler(request: Request[Any, Any, Any], exc: ValidationException) -> Response[bytes]:
    """Malformed JSON or a body that does not fit the schema."""
    errors = exc.extra if isinstance(exc.extra, list) else []
    return _problem(request, code="invalid_request", status=400, detail=str(exc.detail), errors=errors)


def too_deep_handler(request: Request[Any, Any, Any], exc: RecursionError) -> Response[bytes]:
    """A JSON body nested deeper than the decoder recurses is malformed input, not a server fault."""
    return _problem(request, code="invalid_request", status=400, detail="the JSON body is nested too deeply")


def http_error_handler(request: Request[Any, Any, Any], exc: HTTPException) -> Response[bytes]:
    """Framework errors (unknown route, wrong method, body too large) as problems with a code."""
    code = _STATUS_CODES.get(exc.status_code, "bad_request" if exc.status_code < 500 else "internal_error")
    detail = str(exc.detail) if exc.status_code < 500 else "internal error"
    return _problem(request, code=code, status=exc.status_code, detail=detail)


def internal_error_handler(request: Request[Any, Any, Any], exc: Exception) -> Response[bytes]:
    """Anything unexpected: logged with its traceback here, never leaked to the caller."""
    log.error("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
    return _problem(request, code="internal_error", status=HTTP_500_INTERNAL_SERVER_ERROR, detail="internal error")


EXCEPTION_HANDLERS: dict[Any, Any] = {
    ExpoError: expo_error_handler,
    ValidationException: validation_error_handler,
    RecursionError: too_deep_handler,
    HTTPException: http_error_handler,
    HTTP_500_INTERNAL_SERVER_ERROR: internal_error_handler,
}


def principal_of(connection: ASGIConnection[Any, Any, Any, Any]) -> Principal:
    """The authenticated caller, set by the authentication middleware."""
    user = connection.scope.get("user")
    if not isinstance(user, Principal):
        raise Unauthorized("unauthorized", "this endpoint needs a bearer token")
    return user


def allow(*roles: Role) -> Guard:
    """A guard letting only the given roles through."""
    allowed = frozenset(roles)

    def guard(connection: ASGIConnection[Any, Any, Any, Any], _: BaseRouteHandler) -> None:
        principal = principal_of(connection)
        if principal.role not in allowed:
            raise Forbidden("role_not_allowed", f"a {principal.role} may not call this")

    return guard


def db_of(request: Request[Any, Any, Any]) -> Database:
    return request.app.state.db  # type: ignore[no-any-return]


def clock_of(request: Request[Any, Any, Any]) -> Clock:
    return request.app.state.clock  # type: ignore[no-any-return]


def settings_of(request: Request[Any, Any, Any]) -> Settings:
    return request.app.state.settings  # type: ignore[no-any-return]


def json_reply(payload: Any, *, status: int) -> Response[bytes]:
    """A JSON reply from a msgspec Struct (or any msgspec-encodable value)."""
    return Response(msgspec.json.encode(payload), status_code=status, media_type="application/json")


Work = Callable[[AsyncSession], Awaitable[tuple[int, Any]]]


async def idempotent_reply(request: Request[Any, Any, Any], *, key: str | None, work: Work) -> Response[bytes]:
    """Run `work` once per (caller, Idempotency-Key) in one transaction with its stored reply; replay it after."""
    caller = principal_of(request)
    db = db_of(request)
    clock = clock_of(request)
    checked_key = idempotency.check_key(key)
    fingerprint = idempotency.fingerprint_of(method=request.method, path=request.url.path, body=await request.body())
    claimed = await idempotency.claim(
        db,
        scope=f"c{caller.credential_id}",
        key=checked_key,
        fingerprint=fingerprint,
        now=clock.now(),
        lock=settings_of(request).idempotency_lock,
    )
    if isinstance(claimed, idempotency.StoredReply):
        media = PROBLEM_JSON if claimed.status >= 400 else "application/json"
        return Response(
            claimed.body,
            status_code=claimed.status,
            media_type=media,
            headers={"Idempotent-Replayed": "true"},
        )
    try:
        async with db.write() as session:
            status, payload = await work(session)
            body = msgspec.json.encode(payload)
            await idempotency.complete(session, record_id=claimed, status=status, body=body)
    except ExpoError as exc:
        if exc.status >= 500:
            # A failure of ours or the bank's ("try again"), not an answer: the retry must run again.
            await idempotency.release(db, record_id=claimed)
            raise
        refusal = problem_body(
            code=exc.code, status=exc.status, detail=exc.detail, instance=request.url.path, extra=exc.extra
        )
        await idempotency.complete_alone(db, record_id=claimed, status=exc.status, body=refusal)
        raise
    except BaseException:
        await idempotency.release(db, record_id=claimed)
        raise
    return Response(body, status_code=status, media_type="application/json")
