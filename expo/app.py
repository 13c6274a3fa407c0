"""The service: `create_app` lists every controller, plugin, middleware and error mapping."""

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from datetime import timedelta

from litestar import Litestar, get
from litestar.datastructures import State
from litestar.middleware import DefineMiddleware
from litestar.openapi import OpenAPIConfig

from expo.access.api import router as access_router
from expo.access.middleware import PUBLIC_PATHS, BearerAuthentication
from expo.bank import BankGateway, InMemoryBank
from expo.clock import Clock, OffsetClock, SystemClock
from expo.db import Database
from expo.http import EXCEPTION_HANDLERS
from expo.settings import Settings
from gates.api import router as gates_router
from reconciliation.api import router as settlement_router
from ticketing.api import router as ticketing_router
from ticketing.card_api import router as card_router
from ticketing.mms import MmsGateway, OutboxMms
from ticketing.sales import SaleTerms
from ticketing.sweeps import sweep_unpaid
from ticketing.terminal_batch_api import router as terminal_batch_router
from ticketing.voucher_api import current_keyring
from ticketing.voucher_api import router as voucher_router
from ticketing.vouchers import deliver_vouchers
from wallet.api import ROUTERS as WALLET_ROUTERS
from wallet.limits import load_limits
from wallet.payments import PaymentTerms
from wallet.sms import OutboxSms, SmsGateway
from wallet.sweeps import sweep_wallet

log = logging.getLogger("expo")

BANK_TIMEOUT = timedelta(seconds=10)


@get("/health", include_in_schema=False)
async def health() -> dict[str, str]:
    """Liveness: the process answers."""
    return {"status": "ok"}


def clock_from(settings: Settings) -> Clock:
    """The wall clock, or the wall clock shifted into the Expo when an offset is configured."""
    return OffsetClock(settings.clock_offset) if settings.clock_offset is not None else SystemClock()


def create_app(
    settings: Settings,
    *,
    clock: Clock | None = None,
    bank: BankGateway | None = None,
    sms: SmsGateway | None = None,
    sweeper: bool = True,
    mms: MmsGateway | None = None,
) -> Litestar:
    """Build the service for `settings`; tests inject a clock, a bank, an SMS and an MMS gateway."""
    db = Database(settings.effective_database_url)
    the_clock = clock or clock_from(settings)
    the_bank = bank or InMemoryBank()

    @contextlib.asynccontextmanager
    async def lifespan(app: Litestar) -> AsyncIterator[None]:
        task = asyncio.create_task(_sweep_forever(app)) if sweeper else None
        try:
            yield
        finally:
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            await db.dispose()

    return Litestar(
        route_handlers=[
            health,
            access_router,
            ticketing_router,
            card_router,
            voucher_router,
            terminal_batch_router,
            gates_router,
            settlement_router,
            *WALLET_ROUTERS,
        ],
        middleware=[DefineMiddleware(BearerAuthentication, exclude=PUBLIC_PATHS)],
        exception_handlers=EXCEPTION_HANDLERS,
        lifespan=[lifespan],
        request_max_body_size=settings.max_body_bytes,
        openapi_config=OpenAPIConfig(title="Expo mobile tickets", version="1.0.0"),
        state=State(
            {
                "settings": settings,
                "db": db,
                "clock": the_clock,
                "bank": the_bank,
                "sms": sms or OutboxSms(db),
                "mms": mms or OutboxMms(db),
                "payment_terms": PaymentTerms(
                    limits=load_limits(settings.wallet_limits_file), hold_window=settings.wallet_hold_window
                ),
                "sale_terms": SaleTerms(
                    bank=the_bank,
                    bank_timeout=BANK_TIMEOUT,
                    bank_window=settings.bank_payment_window,
                    cod_window=settings.cod_delivery_window,
                ),
            }
        ),
        debug=False,
    )


async def _sweep_forever(app: Litestar) -> None:
    """Every worker sweeps unpaid orders now and then; row locks keep them from doing anything twice."""
    state = app.state
    while True:
        await asyncio.sleep(state.settings.sweep_interval_seconds)
        try:
            await sweep_unpaid(state.db, bank=state.bank, now=state.clock.now())
        except Exception:
            log.exception("sweep of unpaid orders failed; retrying next interval")
        try:
            await sweep_wallet(state.db, bank=state.bank, now=state.clock.now())
        except Exception:
            log.exception("sweep of the wallet failed; retrying next interval")
        if state.settings.signing_key_file:
            try:
                await deliver_vouchers(state.db, keyring=current_keyring(state), mms=state.mms, now=state.clock.now())
            except Exception:
                log.exception("delivery of vouchers failed; retrying next interval")


def app_from_env() -> Litestar:
    """ASGI factory for `uvicorn --factory`: settings from EXPO_* variables."""
    return create_app(Settings.from_env())
