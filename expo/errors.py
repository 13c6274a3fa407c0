"""Domain errors: a stable machine-readable `code`, an HTTP status and a human detail.

Rendered as RFC 9457 problem details by the app; tests assert on the code.
"""

from typing import Any


class ExpoError(Exception):
    """A refusal the caller can act on; `code` is stable API."""

    status: int = 422

    def __init__(self, code: str, detail: str, *, status: int | None = None, **extra: Any) -> None:
        super().__init__(detail)
        self.code = code
        self.detail = detail
        if status is not None:
            self.status = status
        self.extra = extra


class NotFound(ExpoError):
    """The resource does not exist, or is not visible to the caller."""

    status = 404


class Conflict(ExpoError):
    """The request clashes with the current state (sold out, already used, in progress)."""

    status = 409


class Forbidden(ExpoError):
    """The caller is authenticated but its role may not do this."""

    status = 403


class Unauthorized(ExpoError):
    """No valid credential was presented."""

    status = 401
