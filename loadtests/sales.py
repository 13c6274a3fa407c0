"""Locust users of the sale: Shanghai hall clerks selling for cash, 12580 agents selling by card and COD.

Run from the repository root against a running server seeded with `expo seed --demo-principals` and
serving inside 2010 (`expo serve --clock 2010-06-01T10:00`):

    EXPO_CREDENTIALS=data/credentials.json \
    .venv/bin/locust -f loadtests/sales.py --headless -u 20 -r 10 -t 20s --host http://127.0.0.1:8000

Each simulated user logs in once (clerks share the staff login SH-C001, each with its own session).
Requests are grouped by what they are ("POST /v1/orders [cash]"); an expected refusal (`sold_out`) is a
success under a name of its own ("POST /v1/orders [cash] sold_out"), anything else unexpected a failure.
"""

import random
from functools import cache
from typing import Any

from locust import HttpUser, between, task
from locust.exception import StopUser

from loadtests.common import (
    APPROVED_CARD,
    OCTOBER_PEAK_DAYS,
    Credentials,
    NumberSource,
    bearer,
    new_idempotency_key,
    problem_code,
    sale_body,
)

EXPECTED_REFUSALS = frozenset({"sold_out"})
NUMBERS = NumberSource()


@cache
def credentials() -> Credentials:
    """Read once per process, on the first login rather than at import."""
    return Credentials.load()


class Seller(HttpUser):
    """A staff member logged in at a device of the demo; subclasses say which and what they sell."""

    abstract = True
    wait_time = between(0.1, 0.5)
    device = ""
    staff_no = ""

    def on_start(self) -> None:
        self.order_ids: list[int] = []
        self.auth: dict[str, str] = {}
        secrets = credentials()
        with self.client.post(
            "/v1/sessions",
            json=secrets.login_body(self.staff_no),
            headers=bearer(secrets.tokens[self.device]),
            name=f"POST /v1/sessions [{self.device}]",
            catch_response=True,
        ) as reply:
            if reply.status_code != 201:
                reply.failure(f"login refused: {reply.status_code} {problem_code(reply.status_code, reply.content)}")
                raise StopUser
            self.auth = bearer(reply.json()["token"])

    def sell(self, label: str, body: dict[str, Any]) -> None:
        """POST one order under a fresh Idempotency-Key; remember it for later reads."""
        name = f"POST /v1/orders [{label}]"
        headers = {**self.auth, "Idempotency-Key": new_idempotency_key()}
        with self.client.post("/v1/orders", json=body, headers=headers, name=name, catch_response=True) as reply:
            if reply.status_code in (201, 202):
                self.order_ids.append(int(reply.json()["id"]))
                del self.order_ids[:-50]
                reply.success()
                return
            code = problem_code(reply.status_code, reply.content)
            if code in EXPECTED_REFUSALS:
                # Its own stats line, so refusals do not blur the latency of real sales.
                reply.request_meta["name"] = f"{name} {code}"
                reply.success()
            else:
                reply.failure(f"{reply.status_code} {code}")

    def read_order(self) -> None:
        if not self.order_ids:
            return
        order_id = random.choice(self.order_ids)
        self.client.get(f"/v1/orders/{order_id}", headers=self.auth, name="GET /v1/orders/{id}")

    def look_up_stock(self) -> None:
        self.client.get("/v1/stock", headers=self.auth, name="GET /v1/stock")


class HallClerk(Seller):
    """A clerk of the Shanghai Xujiahui hall: standard and peak-day tickets onto Expo cards, for cash."""

    weight = 3
    device = "sh_hall"
    staff_no = "SH-C001"

    @task(6)
    def sell_standard(self) -> None:
        self.sell("cash", sale_body(msisdn=NUMBERS.next(), ticket_type="standard", carrier="expo_card", method="cash"))

    @task(3)
    def sell_peak(self) -> None:
        day = random.choice(OCTOBER_PEAK_DAYS)
        body = sale_body(msisdn=NUMBERS.next(), ticket_type="peak", carrier="expo_card", method="cash", visit_day=day)
        self.sell("cash", body)

    @task(1)
    def stock(self) -> None:
        self.look_up_stock()

    @task(1)
    def order(self) -> None:
        self.read_order()


class HotlineAgent(Seller):
    """A 12580 agent in Shanghai: QR vouchers by credit card, physical peak tickets cash on delivery."""

    weight = 1
    device = "sh_12580"
    staff_no = "SH-A001"

    @task(4)
    def sell_by_credit_card(self) -> None:
        ticket_type, day = random.choice((("standard", None), ("peak", random.choice(OCTOBER_PEAK_DAYS))))
        body = sale_body(
            msisdn=NUMBERS.next(),
            ticket_type=ticket_type,
            carrier="qr_voucher",
            method="credit_card",
            account=APPROVED_CARD,
            visit_day=day,
        )
        self.sell("credit_card", body)

    @task(2)
    def sell_cash_on_delivery(self) -> None:
        body = sale_body(
            msisdn=NUMBERS.next(),
            ticket_type="peak",
            carrier="physical",
            method="cod",
            visit_day=random.choice(OCTOBER_PEAK_DAYS),
            quantity=random.randint(1, 3),
        )
        self.sell("cod", body)

    @task(1)
    def order(self) -> None:
        self.read_order()
