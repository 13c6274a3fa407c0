"""What the wallet's handlers share: the payment terms, the SMS gateway and the transfer key of a request."""

from typing import Any

from litestar import Request

from expo.errors import ExpoError
from expo.http import principal_of
from expo.idempotency import check_key
from wallet.payments import PaymentTerms
from wallet.sms import SmsGateway

AnyRequest = Request[Any, Any, Any]


def terms_of(request: AnyRequest) -> PaymentTerms:
    return request.app.state.payment_terms  # type: ignore[no-any-return]


def sms_of(request: AnyRequest) -> SmsGateway:
    return request.app.state.sms  # type: ignore[no-any-return]


def transfer_key(request: AnyRequest, key: str | None) -> str:
    """A transfer's ledger key: the caller's Idempotency-Key in the caller's own scope."""
    return f"c{principal_of(request).credential_id}:{check_key(key)}"


def merchant_of(request: AnyRequest) -> str:
    """The merchant a merchant system or terminal acts for."""
    code = principal_of(request).merchant_code
    if code is None:
        raise ExpoError("not_a_merchant", "this caller does not act for a merchant", status=403)
    return code
