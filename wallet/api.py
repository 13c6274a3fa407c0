"""The wallet's HTTP routers, each for one part of it; `expo.app` mounts them all."""

from wallet.api_accounts import router as accounts_router
from wallet.api_bills import router as bills_router
from wallet.api_marketing import router as marketing_router
from wallet.api_payments import router as payments_router
from wallet.api_pos import router as pos_router
from wallet.api_topups import router as topups_router

ROUTERS = [accounts_router, bills_router, marketing_router, payments_router, pos_router, topups_router]
