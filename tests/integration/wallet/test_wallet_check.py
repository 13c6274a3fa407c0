"""`expo wallet check`: exit 0 on a healthy ledger; 1, naming the problem, once a stored balance is tampered with."""

import asyncio

from click.testing import CliRunner, Result
from sqlalchemy import text

from expo.cli import main
from tests.integration.conftest import Service, number
from tests.integration.wallet.conftest import PASSWORD, Wallet


async def _check(service: Service) -> Result:
    # The command runs its own event loop (asyncio.run), so it runs in a thread beside this test's loop.
    runner = CliRunner()
    return await asyncio.to_thread(
        runner.invoke, main, ["wallet", "check"], env={"EXPO_DATABASE_URL": service.db.url}, catch_exceptions=False
    )


async def test_wallet_check_passes_a_healthy_ledger_and_fails_a_tampered_one(service: Service, wallet: Wallet) -> None:
    await wallet.merchant("EBOOKS", "other_remote")
    buyer = await wallet.open(number(1), top_up_fen=10_000)
    paid = await service.post(
        "/v1/wallet/payments",
        {"merchant": "EBOOKS", "msisdn": buyer, "amount_fen": 2_550, "channel": "web", "password": PASSWORD},
        wallet.web,
    )
    assert paid.status_code == 201, paid.text

    healthy = await _check(service)
    assert healthy.exit_code == 0, healthy.output
    assert "all balances sum to 0 fen" in healthy.output
    assert "PROBLEM" not in healthy.output
    assert healthy.output.rstrip().endswith("ledger OK")

    async with service.db.write() as session:
        await session.execute(
            text("UPDATE wallet_accounts SET balance = balance + 1 WHERE code = :code"), {"code": f"user:{buyer}"}
        )

    tampered = await _check(service)
    assert tampered.exit_code == 1, tampered.output
    assert "PROBLEM the balances sum to 1 fen, not 0" in tampered.output
    assert (
        f"PROBLEM account user:{buyer}: stored balance {10_000 - 2_550 + 1} / held 0, postings say {10_000 - 2_550}"
        in tampered.output
    )
    assert tampered.output.rstrip().endswith("ledger NOT OK")
