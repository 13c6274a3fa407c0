"""Expo tickets paid from the buyer's wallet: the charge, its texted code, the hold let go, the money given back.

A web sale pays at once (the payment password is checked before the sale's transaction); a 12580 sale
holds the money and texts the buyer a code, which the agent submits for them. Every movement goes
through the wallet's own payment services inside the transaction that changes the order, so orders and
ledger never disagree: the proceeds land in the bureau's receivable, and voids and refunds come back
out of it. The order's charge keeps the wallet transfer's id in `external_ref`.
"""

from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from expo.access.rules import Principal
from expo.db import Database
from expo.errors import ExpoError
from expo.provinces import normalize_msisdn
from ticketing.models import Payment
from ticketing.sales_rules import CHANNEL_OF_ROLE, Channel, PaymentMethod
from wallet import accounts, payments
from wallet.payments import PaymentOutcome, PaymentTerms
from wallet.rules import PaymentChannel, TransferState
from wallet.sms import CodePurpose, use_code

# How each selling channel's buyer confirms: the password typed on the web, a code read out to the agent.
WALLET_CHANNEL = {Channel.WEB: PaymentChannel.WEB, Channel.HOTLINE: PaymentChannel.SMS}


def ledger_key(reference: str, step: str) -> str:
    """The wallet transfer key of one step (pay, void, refund) of an order's money, scoped like its charge."""
    return f"ticket:{reference}:{step}"


async def verify_web_password(
    db: Database, *, seller: Principal, method: PaymentMethod, msisdn: str, password: str | None, now: datetime
) -> None:
    """A web wallet sale is confirmed with the payment password, checked (and a failure counted) before the sale."""
    if method != PaymentMethod.WALLET or CHANNEL_OF_ROLE.get(seller.role) != Channel.WEB or password is None:
        return  # nothing to verify; the sale's own rules refuse a missing or misplaced password
    await accounts.verify_password(db, msisdn=normalize_msisdn(msisdn), password=password, now=now)


async def charge_wallet(
    session: AsyncSession,
    *,
    channel: Channel,
    msisdn: str,
    amount_fen: int,
    reference: str,
    terms: PaymentTerms | None,
    credential_id: int,
    now: datetime,
) -> PaymentOutcome:
    """Pay an order from the buyer's wallet to the bureau's receivable: at once on the web, held (a code to text)
    through 12580. The wallet's refusals (insufficient funds, limits) pass through as they are."""
    if terms is None:
        raise ExpoError("payment_method_not_allowed", "wallet payments are not offered here")
    return await payments.pay(
        session,
        idempotency_key=ledger_key(reference, "pay"),
        msisdn=msisdn,
        merchant=None,
        amount_fen=amount_fen,
        channel=WALLET_CHANNEL[channel],
        terms=terms,
        now=now,
        description="Expo ticket",
        reference=reference,
        credential_id=credential_id,
    )


def code_text(*, amount_fen: int, order_id: int, digits: str) -> str:
    """The text asking the buyer to confirm a held ticket payment: what it pays, how much, and the code."""
    return f"Pay {amount_fen / 100:.2f} yuan for your Expo ticket (order {order_id})? Your code is {digits}."


async def use_order_code(db: Database, *, charge: Payment, msisdn: str, digits: str, now: datetime) -> None:
    """Spend the code texted for this order's held payment; a wrong try counts (it is committed before the refusal)."""
    await use_code(
        db, msisdn=msisdn, purpose=CodePurpose.PAYMENT, digits=digits, now=now, transfer_id=_transfer_id(charge)
    )


async def capture_hold(session: AsyncSession, *, charge: Payment, now: datetime) -> None:
    """The buyer confirmed: the held money moves to the bureau's receivable."""
    transfer = await payments.lock_payment(session, transfer_id=_transfer_id(charge))
    await payments.confirm_payment(session, transfer=transfer, now=now)


async def release_hold(session: AsyncSession, *, charge: Payment, now: datetime) -> None:
    """A held payment that will never be confirmed (expired, voided) frees its money; nothing moved."""
    transfer = await payments.lock_payment(session, transfer_id=_transfer_id(charge))
    if transfer.state != TransferState.VOIDED.value:
        await payments.cancel_payment(session, transfer=transfer, now=now)
    charge.status = "cancelled"


async def refund_to_wallet(session: AsyncSession, *, charge: Payment, step: str, now: datetime) -> str:
    """A paid order's money goes back to the buyer's wallet out of the bureau's receivable; the refund's id."""
    transfer = await payments.lock_payment(session, transfer_id=_transfer_id(charge))
    refund = await payments.refund_payment(
        session,
        idempotency_key=ledger_key(charge.reference, step),
        payment=transfer,
        amount_fen=charge.amount_fen,
        now=now,
        reason=f"{step} of Expo ticket order {charge.order_id}",
    )
    return str(refund.id)


def _transfer_id(charge: Payment) -> int:
    if charge.method != PaymentMethod.WALLET or charge.external_ref is None:
        raise ExpoError("not_awaiting_payment", f"order {charge.order_id} was not paid from a wallet", status=409)
    return int(charge.external_ref)
