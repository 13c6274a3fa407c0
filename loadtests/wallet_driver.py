"""The wallet benchmark's setup and load, over HTTP like any client: merchants, terminals, wallets, payments.

Setup (untimed): the admin registers merchants and POS terminals; a hall clerk opens real-name wallets
for numbers spread over the 31 provinces and tops them up with cash, many requests at a time.
Load (timed): each coroutine is one payer, a POS terminal numbering its journal 1, 2, 3 ... (the serial
is the payment's idempotency key) or the web front paying remotely with the user's password; every
payment is by a randomly drawn user for a random amount under the card tap's PIN-free amount.
The bodies are built by the functions here, which the locust file uses too.
"""

import asyncio
import random
import time
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from functools import partial
from typing import Any, Protocol

import httpx

from expo.provinces import PROVINCES
from loadtests.common import NumberSource, bearer, new_idempotency_key, problem_code
from wallet.rules import AccountClass, LimitedOperation, fee_for

POS_CATEGORIES = ("restaurants", "retail", "entertainment", "public_transport")
REMOTE_CATEGORY = "other_remote"
HOT_MERCHANT = "EXPO-METRO"  # the park's metro gate: every payer's terminal credits this one account
PAYMENT_PASSWORD = "135790"
ID_LAST4 = "123X"
TOP_UP_FEN = 900_000  # 9,000 yuan each: hundreds of payments, never insufficient_funds
PAYMENT_FEN = (100, 10_000)  # 1 to 100 yuan, under the 200-yuan PIN-free amount of a card tap
PROVINCE_CODES = tuple(PROVINCES)
POS_PAYMENTS = "/v1/wallet/pos/payments"
REMOTE_PAYMENTS = "/v1/wallet/payments"

LimitsDocument = dict[str, dict[str, dict[str, dict[str, int]]]]


def generous_limits() -> LimitsDocument:
    """A risk-limits document (the format of wallet.rules.parse_limits) no run reaches: limits are not measured."""
    period = {"amount_fen": 10**13, "count": 10**9}
    return {
        account_class.value: {
            operation.value: {"day": dict(period), "month": dict(period)} for operation in LimitedOperation
        }
        for account_class in AccountClass
    }


def merchant_body(code: str, *, category: str, province_code: str) -> dict[str, str]:
    """POST /v1/wallet/admin/merchants: a merchant at its category's guide price."""
    return {"code": code, "name": f"Load merchant {code}", "category": category, "province_code": province_code}


def terminal_body(terminal_no: str) -> dict[str, str]:
    """POST /v1/wallet/admin/merchants/{code}/terminals."""
    return {"terminal_no": terminal_no}


def new_terminal_no() -> str:
    """A terminal number no other run took (16 characters at most)."""
    return f"T{uuid.uuid4().hex[:15].upper()}"


def account_body(msisdn: str, *, password: str | None = None) -> dict[str, str]:
    """POST /v1/wallet/accounts by a hall clerk: the ID checked; a password only for remote payers (scrypt)."""
    body = {"msisdn": msisdn, "id_last4": ID_LAST4}
    if password is not None:
        body["password"] = password
    return body


def top_up_body(msisdn: str, amount_fen: int = TOP_UP_FEN) -> dict[str, Any]:
    """POST /v1/wallet/top-ups/cash."""
    return {"msisdn": msisdn, "amount_fen": amount_fen}


def pos_payment_body(*, serial: int, msisdn: str, amount_fen: int) -> dict[str, Any]:
    """POST /v1/wallet/pos/payments: a card tap, no password under the PIN-free amount."""
    return {"serial": serial, "msisdn": msisdn, "amount_fen": amount_fen}


def remote_payment_body(*, merchant: str, msisdn: str, amount_fen: int) -> dict[str, Any]:
    """POST /v1/wallet/payments on the web: confirmed with the payment password."""
    return {
        "merchant": merchant,
        "msisdn": msisdn,
        "amount_fen": amount_fen,
        "channel": "web",
        "password": PAYMENT_PASSWORD,
    }


def spread_numbers(count: int, *, blocks: int = 64) -> list[str]:
    """`count` distinct numbers from `blocks` random points of the segment table: homes in many provinces.

    Consecutive numbers share a segment and so a province; spreading them spreads the fee-income accounts
    (one per province) that every payment with a fee credits.
    """
    sources = [NumberSource() for _ in range(min(blocks, count))]
    numbers: dict[str, None] = {}
    turn = 0
    while len(numbers) < count:
        numbers[sources[turn % len(sources)].next()] = None
        turn += 1
    return list(numbers)


@dataclass(frozen=True)
class Merchant:
    """A registered merchant and its fee, to work out what each payment owes it."""

    code: str
    fee_rate_bp: int

    def net_of(self, amount_fen: int) -> int:
        """What a payment credits the merchant: the amount less its transaction-service fee."""
        return amount_fen - fee_for(amount_fen, self.fee_rate_bp)


@dataclass(frozen=True)
class PaymentRequest:
    path: str
    body: dict[str, Any]
    headers: dict[str, str]
    merchant: Merchant
    amount_fen: int


class Payer(Protocol):
    def payment(self, *, msisdn: str, amount_fen: int) -> PaymentRequest: ...


@dataclass
class PosTerminal:
    """A merchant's terminal: its own bearer token, serials counted up from 1."""

    merchant: Merchant
    auth: dict[str, str]
    serial: int = 0

    def payment(self, *, msisdn: str, amount_fen: int) -> PaymentRequest:
        self.serial += 1
        body = pos_payment_body(serial=self.serial, msisdn=msisdn, amount_fen=amount_fen)
        return PaymentRequest(POS_PAYMENTS, body, self.auth, self.merchant, amount_fen)


@dataclass(frozen=True)
class WebFront:
    """The web front paying a remote merchant for its users, each payment under a fresh Idempotency-Key."""

    merchant: Merchant
    auth: dict[str, str]

    def payment(self, *, msisdn: str, amount_fen: int) -> PaymentRequest:
        body = remote_payment_body(merchant=self.merchant.code, msisdn=msisdn, amount_fen=amount_fen)
        headers = {**self.auth, "Idempotency-Key": new_idempotency_key()}
        return PaymentRequest(REMOTE_PAYMENTS, body, headers, self.merchant, amount_fen)


class SetupFailed(RuntimeError):
    pass


def _check(reply: httpx.Response, *, accept: Iterable[str] = ()) -> bool:
    """True on success, False on an accepted refusal (e.g. it exists already); anything else stops the setup."""
    if reply.is_success:
        return True
    code = problem_code(reply.status_code, reply.content)
    if code in accept:
        return False
    raise SetupFailed(f"{reply.request.method} {reply.request.url.path}: {reply.status_code} {code}")


async def in_parallel(jobs: Iterable[Callable[[], Awaitable[None]]], *, concurrency: int) -> None:
    """Run the jobs, `concurrency` at a time."""
    queue = list(jobs)
    queue.reverse()

    async def worker() -> None:
        while queue:
            await queue.pop()()

    await asyncio.gather(*(worker() for _ in range(concurrency)))


async def register_merchant(
    client: httpx.AsyncClient, admin: dict[str, str], *, code: str, category: str, province_code: str
) -> Merchant:
    """Register a merchant, or find it registered already."""
    body = merchant_body(code, category=category, province_code=province_code)
    reply = await client.post("/v1/wallet/admin/merchants", json=body, headers=admin)
    if not _check(reply, accept={"merchant_exists"}):
        reply = await client.get(f"/v1/wallet/merchants/{code}", headers=admin)
        _check(reply)
    return Merchant(code, int(reply.json()["fee_rate_bp"]))


async def add_terminal(client: httpx.AsyncClient, admin: dict[str, str], merchant: Merchant) -> PosTerminal:
    """A new terminal of the merchant, with the POS credential issued for it."""
    reply = await client.post(
        f"/v1/wallet/admin/merchants/{merchant.code}/terminals", json=terminal_body(new_terminal_no()), headers=admin
    )
    _check(reply)
    return PosTerminal(merchant, bearer(reply.json()["token"]))


async def pos_fleet(
    client: httpx.AsyncClient, admin: dict[str, str], *, count: int, hot: bool, concurrency: int = 16
) -> list[PosTerminal]:
    """`count` terminals: each of its own merchant (categories and provinces in turn), or all of the hot one."""
    if hot:
        metro = await register_merchant(
            client, admin, code=HOT_MERCHANT, category="public_transport", province_code="31"
        )
        merchants = [metro] * count
    else:
        merchants = [
            await register_merchant(
                client,
                admin,
                code=f"POS-{n:04d}",
                category=POS_CATEGORIES[n % len(POS_CATEGORIES)],
                province_code=PROVINCE_CODES[n % len(PROVINCE_CODES)],
            )
            for n in range(count)
        ]
    terminals: list[PosTerminal] = []

    async def one(merchant: Merchant) -> None:
        terminals.append(await add_terminal(client, admin, merchant))

    await in_parallel([partial(one, merchant) for merchant in merchants], concurrency=concurrency)
    return terminals


async def web_fronts(
    client: httpx.AsyncClient, admin: dict[str, str], web: dict[str, str], *, count: int
) -> list[WebFront]:
    """`count` remote merchants (category other_remote, provinces in turn), each paid through the web front."""
    fronts = []
    for n in range(count):
        code = f"WEB-{n:04d}"
        province_code = PROVINCE_CODES[n % len(PROVINCE_CODES)]
        merchant = await register_merchant(
            client, admin, code=code, category=REMOTE_CATEGORY, province_code=province_code
        )
        fronts.append(WebFront(merchant, web))
    return fronts


async def open_wallets(
    client: httpx.AsyncClient,
    clerks: list[dict[str, str]],
    numbers: list[str],
    *,
    password: str | None,
    concurrency: int,
) -> None:
    """Open a real-name wallet for every number (one opened already is fine) and top it up with cash."""

    async def open_one(index: int, msisdn: str) -> None:
        clerk = clerks[index % len(clerks)]
        opened = await client.post("/v1/wallet/accounts", json=account_body(msisdn, password=password), headers=clerk)
        _check(opened, accept={"account_exists"})
        headers = {**clerk, "Idempotency-Key": new_idempotency_key()}
        _check(await client.post("/v1/wallet/top-ups/cash", json=top_up_body(msisdn), headers=headers))

    await in_parallel([partial(open_one, n, msisdn) for n, msisdn in enumerate(numbers)], concurrency=concurrency)


@dataclass
class PaymentOutcomes:
    """What the load saw: the latency of every answered request, payments made, nets owed, refusals."""

    latencies_ms: list[float] = field(default_factory=list)
    payments: int = 0
    net_by_merchant: Counter[str] = field(default_factory=Counter)
    errors: Counter[str] = field(default_factory=Counter)
    seconds: float = 0.0


async def drive_payments(
    client: httpx.AsyncClient, payers: list[Payer], msisdns: list[str], *, seconds: float, seed: int = 20100601
) -> PaymentOutcomes:
    """Pay for `seconds` with one request in flight per payer; a payment's user and amount are drawn at random."""
    outcomes = PaymentOutcomes()
    started = time.perf_counter()
    deadline = started + seconds
    rng = random.Random(seed)  # a reproducible mix

    async def pay_in_turn(payer: Payer) -> None:
        while time.perf_counter() < deadline:
            request = payer.payment(msisdn=rng.choice(msisdns), amount_fen=rng.randint(*PAYMENT_FEN))
            await _pay_once(client, request, outcomes)

    await asyncio.gather(*(pay_in_turn(payer) for payer in payers))
    outcomes.seconds = time.perf_counter() - started
    return outcomes


async def _pay_once(client: httpx.AsyncClient, request: PaymentRequest, outcomes: PaymentOutcomes) -> None:
    sent = time.perf_counter()
    try:
        reply = await client.post(request.path, json=request.body, headers=request.headers)
    except httpx.HTTPError as exc:
        # A timed-out payment may still post on the server: the hot merchant's balance check would show it.
        outcomes.errors[type(exc).__name__] += 1
        return
    outcomes.latencies_ms.append((time.perf_counter() - sent) * 1000)
    if reply.status_code == 201:
        outcomes.payments += 1
        outcomes.net_by_merchant[request.merchant.code] += request.merchant.net_of(request.amount_fen)
    else:
        outcomes.errors[problem_code(reply.status_code, reply.content)] += 1


async def merchant_balance(client: httpx.AsyncClient, admin: dict[str, str], code: str) -> int:
    """What the platform owes a merchant now, as the admin reads it."""
    reply = await client.get(f"/v1/wallet/merchants/{code}", headers=admin)
    _check(reply)
    return int(reply.json()["balance_fen"])


async def audit_ledger(client: httpx.AsyncClient, admin: dict[str, str]) -> dict[str, Any]:
    """The ledger audit's report (GET /v1/wallet/admin/ledger): `ok`, counts and problems."""
    reply = await client.get("/v1/wallet/admin/ledger", headers=admin, timeout=600)
    _check(reply)
    report: dict[str, Any] = reply.json()
    return report
