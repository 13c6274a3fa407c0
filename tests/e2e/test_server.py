"""The real server: `expo db upgrade`, `expo seed`, `expo serve` with 2 workers, driven over HTTP."""

import os
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from expo.provinces import load_shipped_segments
from tests.e2e.server import EXPO, database, free_port, serve


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[str, dict[str, Any]]]:
    data = tmp_path_factory.mktemp("e2e")
    with database(request.param) as url:
        yield from serve(data, url)


def _number(serial: int) -> str:
    return f"{load_shipped_segments()[0].first}{serial:04d}"


def _login(base: str, secrets: dict[str, Any]) -> dict[str, str]:
    reply = httpx.post(
        base + "/v1/sessions",
        json={"staff_no": "SH-C001", "password": secrets["passwords"]["SH-C001"]},
        headers={"Authorization": "Bearer " + secrets["tokens"]["sh_hall"]},
    )
    assert reply.status_code == 201, reply.text
    return {"Authorization": "Bearer " + reply.json()["token"]}


def test_sale_and_replay_across_workers(server: tuple[str, dict[str, Any]]) -> None:
    base, secrets = server
    clerk = _login(base, secrets)
    body = {"msisdn": _number(1), "ticket_type": "standard", "carrier": "expo_card", "payment": {"method": "cash"}}
    key = {"Idempotency-Key": uuid.uuid4().hex}
    replies = []
    # Fresh connections each time, so the two workers both get to answer.
    for _ in range(6):
        with httpx.Client(base_url=base) as client:
            replies.append(client.post("/v1/orders", json=body, headers={**clerk, **key}))
    assert replies[0].status_code == 201
    assert {r.content for r in replies} == {replies[0].content}
    assert all(r.headers.get("idempotent-replayed") == "true" for r in replies[1:])
    order = replies[0].json()
    assert order["status"] == "paid"
    assert order["sale_province"] == "31"
    assert order["hall"] == "Shanghai Xujiahui hall"


def test_peak_day_sells_out_at_capacity(server: tuple[str, dict[str, Any]]) -> None:
    base, secrets = server
    clerk = _login(base, secrets)
    codes = []
    for serial in range(100, 108):
        body = {
            "msisdn": _number(serial),
            "ticket_type": "peak",
            "visit_day": "2010-10-03",
            "carrier": "expo_card",
            "payment": {"method": "cash"},
        }
        reply = httpx.post(base + "/v1/orders", json=body, headers={**clerk, "Idempotency-Key": uuid.uuid4().hex})
        codes.append(reply.status_code if reply.status_code < 400 else reply.json()["code"])
    assert codes == [201] * 5 + ["sold_out"] * 3
    stock = httpx.get(base + "/v1/stock", headers={"Authorization": "Bearer " + secrets["tokens"]["admin"]}).json()
    assert next(row for row in stock if row["day"] == "2010-10-03")["available"] == 0


def test_bad_input_is_refused_and_the_server_keeps_serving(server: tuple[str, dict[str, Any]]) -> None:
    base, secrets = server
    clerk = _login(base, secrets)
    key = {"Idempotency-Key": uuid.uuid4().hex, "Content-Type": "application/json"}
    malformed = httpx.post(base + "/v1/orders", content=b"{not json", headers={**clerk, **key})
    assert (malformed.status_code, malformed.json()["code"]) == (400, "invalid_request")
    assert malformed.headers["content-type"].startswith("application/problem+json")
    huge = httpx.post(base + "/v1/orders", content=b"x" * 200_000, headers={**clerk, **key})
    assert (huge.status_code, huge.json()["code"]) == (413, "body_too_large")
    anonymous = httpx.get(base + "/v1/stock")
    assert (anonymous.status_code, anonymous.json()["code"]) == (401, "unauthorized")
    body = {"msisdn": _number(2), "ticket_type": "standard", "carrier": "expo_card", "payment": {"method": "cash"}}
    fine = httpx.post(base + "/v1/orders", json=body, headers={**clerk, "Idempotency-Key": uuid.uuid4().hex})
    assert fine.status_code == 201


def test_openapi_is_served(server: tuple[str, dict[str, Any]]) -> None:
    base, _ = server
    schema = httpx.get(base + "/schema/openapi.json")
    assert schema.status_code == 200
    assert "/v1/orders" in schema.json()["paths"]


def test_demo_command_runs(tmp_path: Path) -> None:
    env = {**os.environ}
    done = subprocess.run(
        [*EXPO, "demo", "--port", str(free_port())],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert "refused 409 unused_ticket_exists" in done.stdout
    notified = next(line for line in done.stdout.splitlines() if "bank notification arrives" in line)
    assert notified.endswith(" paid")
    assert "peak-day upgrade of that ticket for 10-03 (+40)" in done.stdout
    assert "2010-09 closed:" in done.stdout
    assert "Guangdong asks for Shanghai's statement" in done.stdout
    assert "REFUSED statement_forbidden" in done.stdout
    assert "exk_" not in done.stdout
    assert "exs_" not in done.stdout
