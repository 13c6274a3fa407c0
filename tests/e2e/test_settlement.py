"""The finance office's command line against a real server's database: sales made over HTTP in June, `expo settle
month` closing it with its progress bar, its refusals as exit codes, and the statements read back over HTTP and
written by `expo settle statement`."""

import os
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.e2e.server import EXPO, database, serve


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def june(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[str, dict[str, Any], dict[str, str]]]:
    data = tmp_path_factory.mktemp("settle")
    with database(request.param) as url:
        for base, secrets in serve(data, url, clock="2010-06-15T10:00"):
            env = {"EXPO_DATA_DIR": str(data), "EXPO_DATABASE_URL": url}
            yield base, secrets, env


def _settle(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*EXPO, "settle", *args], env={**os.environ, **env}, capture_output=True, text=True, timeout=120, check=False
    )


def _token(secrets: dict[str, Any], name: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {secrets['tokens'][name]}"}


def test_a_month_closes_from_the_command_line_and_each_party_reads_its_own(
    june: tuple[str, dict[str, Any], dict[str, str]], tmp_path: Path
) -> None:
    base, secrets, env = june
    staff = {"staff_no": "SH-C001", "password": secrets["passwords"]["SH-C001"]}
    login = httpx.post(f"{base}/v1/sessions", json=staff, headers=_token(secrets, "sh_hall"), timeout=10)
    assert login.status_code == 201, login.text
    clerk = {"Authorization": f"Bearer {login.json()['token']}"}
    for n, number in enumerate(("13800000001", "13500000002", "13900000003")):  # Inner Mongolia, Guangdong, ...
        body = {"msisdn": number, "ticket_type": "standard", "carrier": "expo_card", "payment": {"method": "cash"}}
        sold = httpx.post(f"{base}/v1/orders", json=body, headers={**clerk, "Idempotency-Key": f"e2e-{n}"}, timeout=10)
        assert sold.status_code == 201, sold.text

    early = _settle(env, "month", "2010-06", "--at", "2010-06-30T23:00")
    assert early.returncode == 1
    assert "[month_not_over]" in early.stderr
    closed = _settle(env, "month", "2010-06", "--at", "2010-07-01T01:00")
    assert closed.returncode == 0, closed.stderr
    assert "settling 2010-06" in closed.stdout
    assert "2010-06 closed:" in closed.stdout
    again = _settle(env, "month", "2010-06", "--at", "2010-07-02T01:00")
    assert (again.returncode, "[month_closed]" in again.stderr) == (1, True)
    for month, code in (("2011-04", "month_out_of_range"), ("2010-6", "month_invalid")):
        refused = _settle(env, "month", month)
        assert refused.returncode == 2
        assert f"[{code}]" in refused.stderr
    final = _settle(env, "commission", "--final", "--at", "2010-08-01T00:00")
    assert (final.returncode, "[ticket_sales_not_ended]" in final.stderr) == (1, True)

    shanghai = httpx.get(f"{base}/v1/statements/2010-06", headers=_token(secrets, "finance_31"), timeout=10)
    assert shanghai.status_code == 200, shanghai.text
    proceeds = [x for x in shanghai.json()["lines"] if x["section"] == "proceeds" and x["payee"] == "bureau"]
    assert proceeds == [
        {
            "section": "proceeds",
            "item": "ticket_sales",
            "payer": "31",
            "payee": "bureau",
            "count": 3,
            "amount_fen": 3 * 16_000,
            "adjusts": None,
            "basis": proceeds[0]["basis"],
        }
    ]
    other = httpx.get(f"{base}/v1/statements/2010-06?party=31", headers=_token(secrets, "finance_44"), timeout=10)
    assert (other.status_code, other.json()["code"]) == (403, "statement_forbidden")

    pdf = tmp_path / "bureau.pdf"
    written = _settle(env, "statement", "2010-06", "--party", "bureau", "--format", "pdf", "--out", str(pdf))
    assert written.returncode == 0, written.stderr
    assert pdf.read_bytes().startswith(b"%PDF")
    csv = tmp_path / "shanghai.csv"
    assert _settle(env, "statement", "2010-06", "--party", "31", "--format", "csv", "--out", str(csv)).returncode == 0
    assert "ticket_sales" in csv.read_text(encoding="utf-8")
