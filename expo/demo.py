"""The demo: a fresh SQLite service inside the 2010 Expo, selling through every channel over HTTP."""

import asyncio
import json
import os
import shutil
import subprocess
import sys
import time
import uuid
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx

from expo.bank import sign_notification
from expo.bootstrap import create_demo_principals, load_reference_data
from expo.clock import EXPO_TZ
from expo.db import Database
from expo.demo_gates import GateDemo
from expo.demo_settlement import SettlementDemo
from expo.demo_vouchers import VoucherDemo
from expo.demo_wallet import WalletDemo
from expo.migrate import upgrade
from expo.money import format_fen
from expo.provinces import load_shipped_segments
from simcard.keys import KeySet
from simcard.keystore import generate_root_keys
from simcard.state import CardState
from ticketing.cards import issue_cards
from ticketing.signing_keys import generate_keyring

DEMO_DIR = Path("data") / "demo"
HALL_CLERKS = (("sh_hall", "SH-C001"), ("bj_hall", "BJ-C001"))
DEMO_START = "2010-09-28T10:00:00+08:00"
# The demo's month, closed by the finance office once it is over.
SETTLED_MONTH, SETTLED_AT = "2010-09", "2010-10-01T02:00:00+08:00"
PAYOUT_DAY = "2010-09-29"  # the next working day after the demo's sales: the merchants' T+1 payout


def _number_in(province_code: str, serial: int) -> str:
    first = next(r for r in load_shipped_segments() if r.province_code == province_code)
    return f"{first.first}{serial:04d}"


class Demo:
    """Drives the running service as its users would, printing each step."""

    def __init__(self, base_url: str, secrets: dict[str, dict[str, str]], bank_secret: str) -> None:
        self.http = httpx.Client(base_url=base_url, timeout=10)
        self.tokens = secrets["tokens"]
        self.passwords = secrets["passwords"]
        self.bank_secret = bank_secret
        self.orders: list[dict[str, Any]] = []

    def device(self, name: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[name]}"}

    def login(self, device: str, staff_no: str) -> dict[str, str]:
        reply = self.http.post(
            "/v1/sessions",
            json={"staff_no": staff_no, "password": self.passwords[staff_no]},
            headers=self.device(device),
        )
        reply.raise_for_status()
        body = reply.json()
        print(f"  {body['name']} ({body['role']}, province {body['province_code']}) logged in at {device}")
        return {"Authorization": f"Bearer {body['token']}"}

    def post(self, what: str, path: str, body: dict[str, Any], headers: dict[str, str]) -> dict[str, Any]:
        reply = self.http.post(path, json=body, headers={**headers, "Idempotency-Key": uuid.uuid4().hex})
        data = reply.json()
        if reply.status_code >= 400:
            outcome = f"refused {reply.status_code} {data['code']}"
        else:
            outcome = f"order {data['id']} {data['status']} {format_fen(data['amount_fen'])} yuan"
            outcome += f" (home province {data['home_province']}, sold in {data['sale_province']})"
            self.orders.append(data)
        print(f"  {what:<58} -> {outcome}")
        return dict(data)

    def run(self, *, cards: list[CardState], root: KeySet, env: dict[str, str]) -> None:
        sh, bj, other = _number_in("31", 1), _number_in("44", 2), _number_in("11", 3)
        print("\nService hall, Shanghai (cash and bank card at the counter):")
        clerk = self.login("sh_hall", "SH-C001")
        self.post("standard day ticket, cash", "/v1/orders", _sale(sh, "standard", "expo_card", "cash"), clerk)
        self.post(
            "second unused ticket for the same number", "/v1/orders", _sale(sh, "evening", "expo_card", "cash"), clerk
        )
        self.post(
            "peak-day upgrade of that ticket for 10-03 (+40)",
            f"/v1/tickets/{self.orders[0]['tickets'][0]['id']}/upgrade",
            {"msisdn": sh, "day": "2010-10-03", "payment": {"method": "cash"}},
            clerk,
        )
        peak = self.post(
            "peak-day concession for 10-01, bank card",
            "/v1/orders",
            _sale(
                bj,
                "peak_concession",
                "expo_card",
                "bank_card",
                visit_day="2010-10-01",
                approval_code="A12345",
                concession={"category": "student", "id_last4": "123X"},
            ),
            clerk,
        )
        self.post("void it the same day", f"/v1/orders/{peak['id']}/void", {}, clerk)

        print("\n12580 hotline, Shanghai (credit card, cash on delivery):")
        agent = self.login("sh_12580", "SH-A001")
        self.post(
            "3-visit pass, credit card",
            "/v1/orders",
            _sale(other, "pass_3", "qr_voucher", "credit_card", account="6222020000000001"),
            agent,
        )
        self.post(
            "credit card the bank declines",
            "/v1/orders",
            _sale(_number_in("32", 4), "standard", "qr_voucher", "credit_card", account="6222020000000002"),
            agent,
        )
        cod = self.post(
            "3 physical peak tickets for 10-02, cash on delivery",
            "/v1/orders",
            _sale(_number_in("33", 5), "peak", "physical", "cod", visit_day="2010-10-02", quantity=3),
            agent,
        )
        self.post(
            "courier confirms delivery, cash collected",
            f"/v1/orders/{cod['id']}/delivery",
            {"collected_fen": cod["amount_fen"], "receipt": "SF-20100928-001"},
            self.device("courier"),
        )

        print("\nWeb / over the air (online banking):")
        web = self.device("web")
        self.post(
            "7-visit pass, online banking",
            "/v1/orders",
            _sale(_number_in("51", 6), "pass_7", "expo_card", "online_banking", account="6225880000000001"),
            web,
        )
        late = self.post(
            "standard ticket; the bank confirms late",
            "/v1/orders",
            _sale(_number_in("42", 7), "standard", "qr_voucher", "online_banking", account="6225880000000004"),
            web,
        )
        notice = json.dumps({"reference": late["payments"][0]["reference"], "status": "approved"}).encode()
        reply = self.http.post(
            "/v1/bank/notifications",
            content=notice,
            headers={
                "Content-Type": "application/json",
                "X-Bank-Signature": sign_notification(self.bank_secret, notice),
            },
        )
        print(f"  {'bank notification arrives':<58} -> order {late['id']} {reply.json()['order_status']}")
        self.post(
            "number of another operator (130...)",
            "/v1/orders",
            _sale("13012345678", "standard", "qr_voucher", "online_banking", account="6225880000000001"),
            web,
        )
        pass7 = next(r for r in self.orders if r["ticket_type"] == "pass_7")
        self.post("the buyer asks the web to refund the 7-visit pass", f"/v1/orders/{pass7['id']}/refund", {}, web)

        stock = self.http.get("/v1/stock", headers=self.device("admin")).json()
        busy = [f"{row['day']}: {row['sold']} sold / {row['capacity']}" for row in stock if row["sold"]]
        print("\nPeak-day stock in use: " + ("; ".join(busy) or "none"))

        wallet = WalletDemo(self.http, self.tokens, clerk, agent)
        wallet.run(shanghai=_number_in("31", 11), beijing=_number_in("11", 12))
        if not wallet.audit():
            raise SystemExit("the wallet ledger does not balance")

        gates = GateDemo(self.http, admin=self.device("admin"), clerk_token=_token(clerk), root=root, folder=DEMO_DIR)
        gates.run(cards=cards, numbers=[_number_in("31", 21 + n) for n in range(len(cards))], start=_start())

        halls = [(self.tokens[device], staff, self.passwords[staff]) for device, staff in HALL_CLERKS]
        vouchers = VoucherDemo(self.http, admin=self.device("admin"), folder=DEMO_DIR, start=_start())
        vouchers.run(msisdn=late["msisdn"], halls=halls)

        settlement = SettlementDemo(self.http, tokens=self.tokens, env=env, folder=DEMO_DIR)
        settlement.run(month=SETTLED_MONTH, close_at=SETTLED_AT, payout_day=PAYOUT_DAY)


def _token(headers: dict[str, str]) -> str:
    return headers["Authorization"].removeprefix("Bearer ")


def _start() -> datetime:
    return datetime.fromisoformat(DEMO_START).astimezone(EXPO_TZ)


def _sale(msisdn: str, ticket_type: str, carrier: str, method: str, **extra: Any) -> dict[str, Any]:
    payment: dict[str, Any] = {"method": method}
    for field in ("account", "approval_code"):
        if field in extra:
            payment[field] = extra.pop(field)
    return {"msisdn": msisdn, "ticket_type": ticket_type, "carrier": carrier, "payment": payment, **extra}


async def _prepare(url: str, root: KeySet) -> tuple[dict[str, dict[str, str]], list[CardState]]:
    """Migrate, load the reference data, create the demo's callers and put four new Shanghai cards in stock."""
    await asyncio.to_thread(upgrade, url)
    db = Database(url)
    now = _start()
    try:
        await load_reference_data(db, peak_capacity=100_000)
        made = await create_demo_principals(db, now=now)
        async with db.write() as session:
            cards = await issue_cards(session, province_code="31", count=4, root_keys=root, now=now)
        return {"tokens": made.tokens, "passwords": made.passwords}, cards
    finally:
        await db.dispose()


def run_demo(*, port: int, workers: int) -> int:
    """Set up a fresh demo database, start the server, sell through every channel, stop; exit code 0 on success."""
    shutil.rmtree(DEMO_DIR, ignore_errors=True)
    DEMO_DIR.mkdir(parents=True)
    url = f"sqlite+aiosqlite:///{(DEMO_DIR / 'expo.db').resolve()}"
    print(f"Fresh embedded database: {DEMO_DIR / 'expo.db'} (migrated, segments and peak-day stock loaded)")
    key_file = DEMO_DIR / "root-keys.json"
    root = generate_root_keys(key_file)
    signing_file = DEMO_DIR / "signing-keys.json"
    generate_keyring(signing_file, now=datetime.fromisoformat(DEMO_START).astimezone(EXPO_TZ))
    secrets, cards = asyncio.run(_prepare(url, root))
    bank_secret = uuid.uuid4().hex
    env = {
        **os.environ,
        "EXPO_DATA_DIR": str(DEMO_DIR),
        "EXPO_DATABASE_URL": url,
        "EXPO_BANK_NOTIFY_SECRET": bank_secret,
        "EXPO_KEY_FILE": str(key_file),
        "EXPO_SIGNING_KEY_FILE": str(signing_file),
    }
    server = subprocess.Popen(  # noqa: S603 - our own interpreter and module
        [
            sys.executable,
            "-m",
            "expo.cli",
            "serve",
            "--port",
            str(port),
            "--workers",
            str(workers),
            "--clock",
            DEMO_START,
        ],
        env=env,
    )
    base_url = f"http://127.0.0.1:{port}"
    try:
        _wait_until_up(base_url, server)
        print(f"Service up at {base_url} with {workers} workers; its clock reads {DEMO_START} (Asia/Shanghai)")
        Demo(base_url, secrets, bank_secret).run(cards=cards, root=root, env=env)
        print(f"\nOpenAPI: {base_url}/schema  ·  the demo's credentials are not printed")
        return 0
    finally:
        server.terminate()
        server.wait(timeout=20)


def _wait_until_up(base_url: str, server: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise SystemExit(f"the server exited with {server.returncode}")
        try:
            if httpx.get(base_url + "/health", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise SystemExit("the server did not come up within 30 s")
