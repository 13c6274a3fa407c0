"""The gate device's own refusals: an exception with a stable `code`, like the service's problem details."""


class GateError(Exception):
    """Something a gate, handheld or souvenir terminal refuses or cannot do; `code` is stable (docs/errors.md)."""

    def __init__(self, code: str, detail: str) -> None:
        super().__init__(detail)
        self.code = code
        self.detail = detail
