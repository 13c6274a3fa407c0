"""Wallet races on PostgreSQL with real concurrent connections: double spend, a hot merchant, one key, lock order.

SQLite serialises every writer (BEGIN IMMEDIATE), so these races cannot happen there: they run on PostgreSQL.
Each payment runs in its own transaction on its own connection, as concurrent requests to the service do.
"""

import asyncio
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from sqlalchemy import func, select

from expo.app import create_app
from expo.bank import InMemoryBank
from expo.db import Database
from expo.errors import Conflict, ExpoError
from tests.integration.conftest import Service, number
from tests.integration.wallet.conftest import PASSWORD, Wallet
from wallet.accounts import OpenedVia, open_account
from wallet.audit import audit_ledger
from wallet.merchants import create_merchant
from wallet.models import WalletAccount, WalletTransfer
from wallet.payments import PaymentTerms, find_merchant, lock_payment, pay, refund_payment
from wallet.rules import AccountClass, Limit, LimitedOperation, OperationLimits, PaymentChannel, RiskLimits, fee_for
from wallet.topups import top_up_cash

# SQLite takes one writer at a time (BEGIN IMMEDIATE): concurrent-connection races are PostgreSQL's.
pytestmark = pytest.mark.parametrize("database_url", ["postgres"], indirect=True)

PAYMENTS = 100
UNLIMITED = OperationLimits(Limit(10**12, 10**6), Limit(10**12, 10**6))
# The default limits would stop a basic wallet at 50 payments a day: these tests are about the balance.
TERMS = PaymentTerms(
    limits=RiskLimits({cls: dict.fromkeys(LimitedOperation, UNLIMITED) for cls in AccountClass}),
    hold_window=timedelta(minutes=10),
)
RATE_BP = 100  # other_remote: 1%


@pytest.fixture
async def many_connections(database_url: str) -> AsyncIterator[Database]:
    """A second engine whose pool lets dozens of payments hold their own connection at once."""
    database = Database(database_url, pool_size=20)
    yield database
    await database.dispose()


async def _setup(service: Service, *, msisdns: list[str], top_up_fen: int) -> None:
    """A merchant SHOP (1% fee) and wallets opened and topped up with cash."""
    now = service.clock.now()
    async with service.db.write() as session:
        await create_merchant(
            session,
            code="SHOP",
            name="A shop",
            category="other_remote",
            province_code="31",
            fee_rate_bp=RATE_BP,
            allows_adjust=False,
            now=now,
        )
        for msisdn in msisdns:
            await open_account(session, msisdn=msisdn, via=OpenedVia.SMS, password=None, id_last4=None, now=now)
            await top_up_cash(
                session,
                idempotency_key=f"setup-{msisdn}",
                msisdn=msisdn,
                amount_fen=top_up_fen,
                hall_province="31",
                limits=TERMS.limits,
                now=now,
            )


async def _outcome(work: Callable[[], Awaitable[object]]) -> str:
    try:
        await work()
    except ExpoError as exc:
        return exc.code
    except Exception as exc:  # a deadlock or a constraint breach: named, so the assertion shows it
        return type(exc).__name__
    return "ok"


async def _pay(
    db: Database,
    service: Service,
    *,
    key: str,
    msisdn: str,
    amount: int,
    channel: PaymentChannel = PaymentChannel.WEB,
) -> str:
    async def work() -> None:
        async with db.write() as session:
            await pay(
                session,
                idempotency_key=key,
                msisdn=msisdn,
                merchant=await find_merchant(session, code="SHOP"),
                amount_fen=amount,
                channel=channel,
                terms=TERMS,
                now=service.clock.now(),
            )

    return await _outcome(work)


async def _balance(db: Database, code: str) -> tuple[int, int]:
    async with db.read() as session:
        account = (await session.scalars(select(WalletAccount).where(WalletAccount.code == code))).one()
        return account.balance, account.held


async def _transfers(db: Database, kind: str) -> int:
    async with db.read() as session:
        return int(
            await session.scalar(select(func.count()).select_from(WalletTransfer).where(WalletTransfer.kind == kind))
            or 0
        )


async def _ledger_ok(db: Database) -> None:
    async with db.read() as session:
        report = await audit_ledger(session)
    assert report.ok, report.problems


async def test_a_hundred_payments_from_a_wallet_with_money_for_sixty(
    service: Service, many_connections: Database
) -> None:
    amount = 1_001
    payer = number(1)
    await _setup(service, msisdns=[payer], top_up_fen=60 * amount)

    outcomes = await asyncio.gather(
        *(_pay(many_connections, service, key=f"double-spend-{n}", msisdn=payer, amount=amount) for n in range(100))
    )

    assert Counter(outcomes) == {"ok": 60, "insufficient_funds": 40}
    assert await _balance(service.db, f"user:{payer}") == (0, 0)
    assert await _balance(service.db, "merchant:SHOP") == (60 * (amount - fee_for(amount, RATE_BP)), 0)
    assert await _transfers(service.db, "payment") == 60
    await _ledger_ok(service.db)


async def test_a_hundred_sms_holds_on_a_wallet_with_money_for_sixty(
    service: Service, many_connections: Database
) -> None:
    amount = 999
    payer = number(1)
    await _setup(service, msisdns=[payer], top_up_fen=60 * amount)

    outcomes = await asyncio.gather(
        *(
            _pay(many_connections, service, key=f"hold-{n}", msisdn=payer, amount=amount, channel=PaymentChannel.SMS)
            for n in range(100)
        )
    )

    assert Counter(outcomes) == {"ok": 60, "insufficient_funds": 40}
    assert await _balance(service.db, f"user:{payer}") == (60 * amount, 60 * amount)  # all of it held, none moved
    assert await _transfers(service.db, "payment") == 60
    await _ledger_ok(service.db)


async def test_a_hundred_payers_into_one_hot_merchant_all_land(service: Service, many_connections: Database) -> None:
    # Half from Inner Mongolia, half from Shanghai: two fee-income accounts are opened under the race too.
    payers = [number(n, "1380000" if n % 2 else "1342554") for n in range(PAYMENTS)]
    amounts = [101 + 7 * n for n in range(PAYMENTS)]
    await _setup(service, msisdns=payers, top_up_fen=10_000)

    outcomes = await asyncio.gather(
        *(
            _pay(many_connections, service, key=f"hot-{n}", msisdn=payer, amount=amount)
            for n, (payer, amount) in enumerate(zip(payers, amounts, strict=True))
        )
    )

    assert Counter(outcomes) == {"ok": PAYMENTS}
    fees = [fee_for(amount, RATE_BP) for amount in amounts]
    assert await _balance(service.db, "merchant:SHOP") == (sum(amounts) - sum(fees), 0)
    fee_income = [await _balance(service.db, f"fee_income:{province}") for province in ("15", "31")]
    assert sum(balance for balance, _ in fee_income) == sum(fees)
    for payer, amount in zip(payers, amounts, strict=True):
        assert await _balance(service.db, f"user:{payer}") == (10_000 - amount, 0)
    await _ledger_ok(service.db)


async def test_one_key_fired_twenty_times_at_once_makes_one_payment(
    service: Service, many_connections: Database
) -> None:
    payer = number(1)
    await _setup(service, msisdns=[payer], top_up_fen=10_000)

    outcomes = await asyncio.gather(
        *(_pay(many_connections, service, key="one-key", msisdn=payer, amount=999) for _ in range(20))
    )

    assert outcomes.count("ok") == 20, Counter(outcomes)  # the rest find the payment the first one made
    assert await _transfers(service.db, "payment") == 1
    assert await _balance(service.db, f"user:{payer}") == (10_000 - 999, 0)
    await _ledger_ok(service.db)


@pytest.fixture
async def racing(service: Service) -> AsyncIterator[httpx.AsyncClient]:
    """A second worker of the same service in this event loop, so gathered requests really interleave."""
    app = create_app(service.settings, clock=service.clock, bank=InMemoryBank(), sweeper=False)
    # Litestar is an ASGI app; httpx types the app it takes more narrowly.
    transport = httpx.ASGITransport(app=app)  # type: ignore[arg-type]
    async with httpx.AsyncClient(transport=transport, base_url="http://racing") as client:
        yield client
    await app.state.db.dispose()


async def test_one_key_fired_twenty_times_over_http_makes_one_payment(
    service: Service, wallet: Wallet, racing: httpx.AsyncClient
) -> None:
    await wallet.merchant("EBOOKS", "other_remote")
    buyer = await wallet.open(number(1), top_up_fen=10_000)
    body = {"merchant": "EBOOKS", "msisdn": buyer, "amount_fen": 2_550, "channel": "web", "password": PASSWORD}
    headers = {**wallet.web, "Idempotency-Key": uuid.uuid4().hex}

    replies = await asyncio.gather(*(racing.post("/v1/wallet/payments", json=body, headers=headers) for _ in range(20)))

    outcomes = Counter(r.status_code if r.status_code < 400 else r.json()["code"] for r in replies)
    assert set(outcomes) <= {201, "request_in_progress"}, outcomes
    made = [r for r in replies if r.status_code == 201]
    assert sum(1 for r in made if "idempotent-replayed" not in r.headers) == 1
    assert len({r.json()["id"] for r in made}) == 1
    assert (await wallet.account(buyer))["balance_fen"] == 10_000 - 2_550
    await wallet.ledger_ok()


async def test_payments_and_refunds_between_one_pair_at_once_do_not_deadlock(
    service: Service, many_connections: Database
) -> None:
    payer = number(1)
    await _setup(service, msisdns=[payer], top_up_fen=100_000)
    for n in range(30):
        assert await _pay(service.db, service, key=f"earlier-{n}", msisdn=payer, amount=1_000 + n) == "ok"
    async with service.db.read() as session:
        earlier = list(
            await session.scalars(
                select(WalletTransfer.id).where(WalletTransfer.kind == "payment").order_by(WalletTransfer.id)
            )
        )

    async def refund(n: int, payment_id: int) -> str:
        async def work() -> None:
            async with many_connections.write() as session:
                payment = await lock_payment(session, transfer_id=payment_id)
                half = payment.amount_fen // 2
                await refund_payment(
                    session, idempotency_key=f"refund-{n}", payment=payment, amount_fen=half, now=service.clock.now()
                )
                await refund_payment(
                    session,
                    idempotency_key=f"refund-rest-{n}",
                    payment=payment,
                    amount_fen=payment.amount_fen - half,
                    now=service.clock.now(),
                )

        return await _outcome(work)

    racers: list[Awaitable[str]] = []
    for n, payment_id in enumerate(earlier):
        racers.append(refund(n, payment_id))
        racers.append(_pay(many_connections, service, key=f"later-{n}", msisdn=payer, amount=500 + n))
    outcomes = await asyncio.gather(*racers)

    assert Counter(outcomes) == {"ok": 60}
    later = sum(500 + n for n in range(30))
    assert await _balance(service.db, f"user:{payer}") == (100_000 - later, 0)
    merchant = sum(amount - fee_for(amount, RATE_BP) for amount in (500 + n for n in range(30)))
    assert await _balance(service.db, "merchant:SHOP") == (merchant, 0)
    assert await _transfers(service.db, "refund") == 60
    await _ledger_ok(service.db)


async def test_one_merchant_code_registered_twice_at_once_is_one_merchant(database_url: str, db: Database) -> None:
    """The loser of a concurrent registration gets merchant_exists, never a server error."""

    async def register(database: Database) -> str:
        try:
            async with database.write() as session:
                await create_merchant(
                    session,
                    code="TWICE",
                    name="Twice",
                    category="retail",
                    province_code="31",
                    fee_rate_bp=None,
                    allows_adjust=False,
                    now=datetime(2010, 6, 1, 2, tzinfo=UTC),
                )
        except Conflict as refusal:
            return refusal.code
        return "registered"

    databases = [Database(database_url) for _ in range(8)]
    try:
        outcomes = await asyncio.gather(*(register(database) for database in databases))
    finally:
        for database in databases:
            await database.dispose()
    assert sorted(outcomes) == ["merchant_exists"] * 7 + ["registered"]
