"""The terminal's own refusals: a stable `code` and a one-line message, like the service's problem details."""

from typing import Any


class TerminalError(Exception):
    """Something the clerk must act on; `code` is stable, the message says what happened and what to do."""

    def __init__(self, code: str, message: str, **extra: Any) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.extra = extra


class ServiceError(TerminalError):
    """The service refused (its problem document's code) or could not be reached (`service_unreachable`)."""

    def __init__(self, code: str, message: str, *, status: int | None = None, **extra: Any) -> None:
        super().__init__(code, message, **extra)
        self.status = status
