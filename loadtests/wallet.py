"""Locust users of the wallet: POS terminals taking card taps (a share at one hot merchant), web shoppers.

Run from the repository root against a running server seeded with `expo seed --demo-principals` and
serving inside 2010 (`expo serve --clock 2010-06-01T10:00`):

    EXPO_CREDENTIALS=data/credentials.json \
    .venv/bin/locust -f loadtests/wallet.py --headless -u 20 -r 10 -t 20s --host http://127.0.0.1:8000

The merchants are registered once when the test starts (ones registered by an earlier run are fine).
Every simulated user then sets itself up: a session of hall clerk SH-C001 opens wallets for fresh
numbers and tops them up with cash, and a terminal has the admin register a new terminal of its
merchant. These requests are named "setup: ...". A shop terminal belongs to one of several merchants across the
provinces; a metro gate to the one hot merchant EXPO-METRO, whose account every gate's tap credits.
The server's risk limits apply: the defaults let a real-name wallet pay 200 times a day.
"""

import sys
from pathlib import Path

if __name__ == "wallet":
    # locust imports a locustfile under its file name, with the file's folder first on sys.path: this file
    # would shadow the project's `wallet` package, which loadtests.wallet_driver imports. So load that
    # package now, from the project root, and file this module under its proper name.
    sys.modules["loadtests.wallet"] = sys.modules.pop("wallet")
    _here = Path(__file__).resolve().parent
    _hidden = [entry for entry in sys.path if Path(entry or ".").resolve() == _here]
    for _entry in _hidden:
        sys.path.remove(_entry)
    import wallet.rules  # noqa: F401

    sys.path[:0] = _hidden

import logging
import random
from functools import cache
from typing import Any

import httpx
from locust import HttpUser, between, events, task
from locust.env import Environment
from locust.exception import StopUser

from loadtests.common import Credentials, bearer, new_idempotency_key, problem_code
from loadtests.wallet_driver import (
    HOT_MERCHANT,
    PAYMENT_FEN,
    PAYMENT_PASSWORD,
    POS_CATEGORIES,
    POS_PAYMENTS,
    PROVINCE_CODES,
    REMOTE_CATEGORY,
    REMOTE_PAYMENTS,
    account_body,
    merchant_body,
    new_terminal_no,
    pos_payment_body,
    remote_payment_body,
    spread_numbers,
    terminal_body,
    top_up_body,
)

WALLETS_PER_USER = 5
CLERK_DEVICE, CLERK = "sh_hall", "SH-C001"
# Shop merchants LOCUST-0 .. LOCUST-7, one category and province each.
SHOPS = tuple(
    merchant_body(f"LOCUST-{n}", category=POS_CATEGORIES[n % len(POS_CATEGORIES)], province_code=PROVINCE_CODES[n])
    for n in range(8)
)
HOT = merchant_body(HOT_MERCHANT, category="public_transport", province_code="31")
REMOTE_SHOP = merchant_body("LOCUST-WEB", category=REMOTE_CATEGORY, province_code="31")


@cache
def credentials() -> Credentials:
    """Read once per process, on the first start rather than at import."""
    return Credentials.load()


def register_merchants(environment: Environment, **_: Any) -> None:
    """Register the shared merchants once, before any user starts (one registered already is fine).

    Users registering a merchant at the same moment would race: the loser gets a 500 (the second
    `merchant:{code}` account breaks a unique index) instead of merchant_exists.
    """
    admin = bearer(credentials().tokens["admin"])
    logging.getLogger("httpx").setLevel(logging.WARNING)  # not a line per request in locust's output
    with httpx.Client(base_url=environment.host or "") as client:
        for body in (*SHOPS, HOT, REMOTE_SHOP):
            reply = client.post("/v1/wallet/admin/merchants", json=body, headers=admin)
            code = problem_code(reply.status_code, reply.content)
            if not reply.is_success and code != "merchant_exists":
                raise RuntimeError(f"merchant {body['code']} not registered: {reply.status_code} {code}")


events.test_start.add_listener(register_merchants)  # type: ignore[no-untyped-call]


class WalletPayer(HttpUser):
    """A payer with wallets of its own opened and topped up; subclasses say where and how it pays."""

    abstract = True
    wait_time = between(0.1, 0.5)
    password: str | None = None

    def on_start(self) -> None:
        secrets = credentials()
        self.admin = bearer(secrets.tokens["admin"])
        self.merchant = self.merchant_code()
        self.msisdns = spread_numbers(WALLETS_PER_USER, blocks=WALLETS_PER_USER)
        clerk = self.log_in_clerk(secrets)
        for msisdn in self.msisdns:
            self.setup("/v1/wallet/accounts", account_body(msisdn, password=self.password), clerk, "account_exists")
            headers = {**clerk, "Idempotency-Key": new_idempotency_key()}
            self.setup("/v1/wallet/top-ups/cash", top_up_body(msisdn), headers)

    def merchant_code(self) -> str:
        raise NotImplementedError

    def setup(self, path: str, body: dict[str, Any], headers: dict[str, str], *accept: str, name: str = "") -> Any:
        """One setup POST; a refusal with an accepted code (it exists already) is fine, any other stops the user."""
        name = f"setup: POST {name or path}"
        with self.client.post(path, json=body, headers=headers, name=name, catch_response=True) as reply:
            if reply.ok:
                return reply.json()
            code = problem_code(reply.status_code, reply.content)
            if code in accept:
                reply.success()
                return None
            reply.failure(f"{reply.status_code} {code}")
            raise StopUser

    def log_in_clerk(self, secrets: Credentials) -> dict[str, str]:
        device = bearer(secrets.tokens[CLERK_DEVICE])
        session = self.setup("/v1/sessions", secrets.login_body(CLERK), device)
        return bearer(session["token"])

    def pay(self, label: str, path: str, body: dict[str, Any], headers: dict[str, str]) -> None:
        with self.client.post(
            path, json=body, headers=headers, name=f"POST {path} [{label}]", catch_response=True
        ) as reply:
            if reply.status_code != 201:
                reply.failure(f"{reply.status_code} {problem_code(reply.status_code, reply.content)}")

    def draw(self) -> tuple[str, int]:
        """A payment's user and amount."""
        return random.choice(self.msisdns), random.randint(*PAYMENT_FEN)


class Terminal(WalletPayer):
    """A POS terminal of its merchant: card taps numbered by the terminal's serial."""

    abstract = True
    label = ""

    def on_start(self) -> None:
        super().on_start()
        path = f"/v1/wallet/admin/merchants/{self.merchant}/terminals"
        made = self.setup(
            path, terminal_body(new_terminal_no()), self.admin, name="/v1/wallet/admin/merchants/{code}/terminals"
        )
        self.auth = bearer(made["token"])
        self.serial = 0

    @task
    def tap(self) -> None:
        self.serial += 1
        msisdn, amount_fen = self.draw()
        body = pos_payment_body(serial=self.serial, msisdn=msisdn, amount_fen=amount_fen)
        self.pay(self.label, POS_PAYMENTS, body, self.auth)


class ShopTerminal(Terminal):
    """A terminal in one of several shops, restaurants and the like across the provinces."""

    weight = 3
    label = "shop"

    def merchant_code(self) -> str:
        return str(random.choice(SHOPS)["code"])


class MetroGate(Terminal):
    """A gate of the park's metro: every gate is a terminal of the one hot merchant."""

    weight = 1
    label = "hot"

    def merchant_code(self) -> str:
        return HOT_MERCHANT


class WebShopper(WalletPayer):
    """The web front paying a remote merchant for its users, with their payment password (scrypt each time)."""

    weight = 1
    password = PAYMENT_PASSWORD

    def on_start(self) -> None:
        super().on_start()
        self.web = bearer(credentials().tokens["web"])

    def merchant_code(self) -> str:
        return REMOTE_SHOP["code"]

    @task
    def pay_remotely(self) -> None:
        msisdn, amount_fen = self.draw()
        body = remote_payment_body(merchant=self.merchant, msisdn=msisdn, amount_fen=amount_fen)
        self.pay("web", REMOTE_PAYMENTS, body, {**self.web, "Idempotency-Key": new_idempotency_key()})
