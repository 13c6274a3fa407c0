"""The example the ledger machine found: partial refunds of a proximity payment whose fee is split 70:30.

A 1-yuan payment at 4% pays a 4-fen fee, 3 fen to the user's province and 1 to the merchant's. Rounding
each province's share of a 99-fen refund on its own returned only 2 fen of fee, so the merchant was asked
for 97 fen of the 96 it had received, and the refund was refused. The fee now comes back pro rata as a
whole (3 fen) and is split like the fee; the last fen of the refund then returns the last fen of the fee.
"""

from datetime import timedelta

from sqlalchemy import select

from tests.integration.conftest import Service, number
from tests.integration.wallet.conftest import Wallet
from wallet.models import WalletAccount
from wallet.payments import PaymentTerms, find_merchant, pay
from wallet.rules import DEFAULT_LIMITS, PaymentChannel


async def _balances(service: Service) -> dict[str, int]:
    async with service.db.read() as session:
        return {account.code: account.balance for account in await session.scalars(select(WalletAccount))}


async def test_refunding_all_but_a_fen_of_a_split_fee_payment(service: Service, wallet: Wallet) -> None:
    shop = await wallet.merchant("CINEMA", "entertainment", fee_rate_bp=400)  # proximity, a Shanghai merchant
    buyer = await wallet.open(number(1), top_up_fen=10_000)  # an Inner Mongolia number
    async with service.db.write() as session:
        outcome = await pay(
            session,
            idempotency_key="tap-1",
            msisdn=buyer,
            merchant=await find_merchant(session, code="CINEMA"),
            amount_fen=100,
            channel=PaymentChannel.PROXIMITY,
            terms=PaymentTerms(limits=DEFAULT_LIMITS, hold_window=timedelta(minutes=10)),
            now=service.clock.now(),
        )
        payment_id = outcome.transfer.id
    assert outcome.transfer.fee_fen == 4
    paid = await _balances(service)
    assert (paid["merchant:CINEMA"], paid["fee_income:15"], paid["fee_income:31"]) == (96, 3, 1)

    most = await service.post(f"/v1/wallet/payments/{payment_id}/refunds", {"amount_fen": 99}, shop)
    assert most.status_code == 201, most.text
    assert most.json()["fee_fen"] == 3
    after_most = await _balances(service)
    assert (after_most["merchant:CINEMA"], after_most["fee_income:15"], after_most["fee_income:31"]) == (0, 1, 0)

    last = await service.post(f"/v1/wallet/payments/{payment_id}/refunds", {"amount_fen": 1}, shop)
    assert last.status_code == 201, last.text
    assert last.json()["fee_fen"] == 1
    refunded = await _balances(service)
    assert (refunded["merchant:CINEMA"], refunded["fee_income:15"], refunded["fee_income:31"]) == (0, 0, 0)
    assert refunded[f"user:{buyer}"] == 10_000
    await wallet.ledger_ok()
