"""Bearer-token authentication for every request outside the public paths."""

from typing import Any

from litestar.connection import ASGIConnection
from litestar.middleware import AbstractAuthenticationMiddleware, AuthenticationResult

from expo.access.service import authenticate
from expo.errors import Unauthorized

PUBLIC_PATHS = ["/schema", "/health", "/v1/bank/notifications", "/v1/ticket-keys"]


class BearerAuthentication(AbstractAuthenticationMiddleware):
    """Resolves `Authorization: Bearer <token>` to a Principal (request.user)."""

    async def authenticate_request(self, connection: ASGIConnection[Any, Any, Any, Any]) -> AuthenticationResult:
        header = connection.headers.get("authorization", "")
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise Unauthorized("unauthorized", "send Authorization: Bearer <token>")
        state = connection.app.state
        async with state.db.read() as session:
            principal = await authenticate(session, token=token.strip(), now=state.clock.now())
        return AuthenticationResult(user=principal, auth=token)
