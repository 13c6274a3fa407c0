"""The hall terminal's service client: problem documents become coded errors; idempotent calls survive lost replies."""

import httpx
import pytest

from hall_terminals import client as client_module
from hall_terminals.client import ServiceClient
from hall_terminals.errors import ServiceError


@pytest.fixture(autouse=True)
def no_pause(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(client_module, "RETRY_PAUSE", 0)


def _client(handler: "httpx.MockTransport") -> ServiceClient:
    return ServiceClient("http://service", "exs_token", transport=handler)


def test_a_problem_document_is_a_coded_error() -> None:
    problem = {"type": "x", "title": "sold out", "status": 409, "detail": "no tickets left", "code": "sold_out",
               "day": "2010-10-03"}  # fmt: skip
    seen: list[httpx.Request] = []

    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(409, json=problem)

    with pytest.raises(ServiceError) as refused, _client(httpx.MockTransport(answer)) as service:
        service.sell({"msisdn": "13425540001"}, key="k1")
    assert (refused.value.code, refused.value.message, refused.value.status) == ("sold_out", "no tickets left", 409)
    assert refused.value.extra == {"day": "2010-10-03"}
    assert seen[0].headers["Authorization"] == "Bearer exs_token"
    assert seen[0].headers["Idempotency-Key"] == "k1"


def test_a_reply_without_a_problem_document() -> None:
    with pytest.raises(ServiceError) as refused, _client(httpx.MockTransport(lambda _: httpx.Response(502))) as s:
        s.stock()
    assert (refused.value.code, refused.value.status) == ("http_502", 502)


def test_a_lost_reply_is_retried_with_the_same_key() -> None:
    keys: list[str | None] = []

    def flaky(request: httpx.Request) -> httpx.Response:
        keys.append(request.headers.get("Idempotency-Key"))
        if len(keys) == 1:
            raise httpx.ReadTimeout("lost", request=request)
        if len(keys) == 2:
            return httpx.Response(409, json={"code": "request_in_progress", "detail": "busy"})
        return httpx.Response(201, json={"id": 7})

    with _client(httpx.MockTransport(flaky)) as service:
        assert service.void(7, key="v7") == {"id": 7}
    assert keys == ["v7", "v7", "v7"]


def test_without_a_key_nothing_is_retried_and_a_dead_service_is_unreachable() -> None:
    calls: list[int] = []

    def down(request: httpx.Request) -> httpx.Response:
        calls.append(1)
        raise httpx.ConnectError("refused", request=request)

    with pytest.raises(ServiceError) as refused, _client(httpx.MockTransport(down)) as service:
        service.start_write(1, {"csn": "00"})
    assert refused.value.code == "service_unreachable"
    assert calls == [1]
    with pytest.raises(ServiceError), _client(httpx.MockTransport(down)) as service:
        service.sell({}, key="k")
    assert len(calls) == 1 + client_module.RETRIES
