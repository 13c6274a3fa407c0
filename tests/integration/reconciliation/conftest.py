"""The settlement tests' fixtures: the payout tests' merchants and wallets."""

import pytest

from tests.integration.conftest import Service
from tests.integration.reconciliation.payout_trades import Trades, phone


@pytest.fixture
async def trades(service: Service) -> Trades:
    trades = Trades(service.db)
    await trades.merchant("CAFE", "restaurants", "31", rate_bp=300)  # proximity, 3%
    await trades.merchant("EBOOK", "other_remote", "44")  # remote, 1%
    await trades.merchant("GAMES", "virtual_goods", "11")  # remote, 15%
    for province in ("31", "44", "51"):
        await trades.wallet(phone(province), top_up_fen=900_000)
    return trades
