"""Texts users send to the service number: "Y" pays the latest texted bill, "Y"+amount prepays its biller,
"KT" (开通) opens a wallet, anything else gets a short help.

The reply comes from the user's own phone, so it is the confirmation: no password. Every text is kept
and answered: a receipt, or the reason it was refused. A refusal rolls its work back and is still
answered, so the SMS centre always hears what was done. The centre may hand a message over twice:
with its message id in the ledger key, a payment is made once and the duplicate is not answered again.
"""

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from sqlalchemy.ext.asyncio import AsyncSession

from expo.db import Database
from expo.errors import ExpoError, NotFound
from expo.money import format_fen
from expo.provinces import normalize_msisdn
from wallet.accounts import OpenedVia, balances_of, lock_wallet, open_account
from wallet.bills import latest_texted_bill, pay_bill, pay_confirmed
from wallet.models import Merchant, WalletUser
from wallet.payments import PaymentTerms
from wallet.rules import PaymentChannel, parse_bill_reply
from wallet.sms import SmsGateway, record_text

OPEN_WORDS = frozenset({"KT", "开通"})
HELP_TEXT = "Reply Y to pay your latest bill, Y and an amount (e.g. Y50) to prepay it, or KT to open a wallet."
OPENED_TEXT = (
    "Your wallet is open. Set your six-digit payment password on the web (a texted code confirms it); "
    "reply Y to pay the bills we text you."
)


class InboundAction(StrEnum):
    PAY_BILL = "pay_bill"
    PREPAY = "prepay"
    OPEN_WALLET = "open_wallet"
    HELP = "help"


@dataclass(frozen=True)
class InboundOutcome:
    """What a text made the platform do, and what it texted back (nothing for a duplicate)."""

    action: InboundAction
    done: bool
    reply: str | None
    code: str | None = None  # the refusal's code
    replayed: bool = False
    bill_id: int | None = None
    payment_id: int | None = None
    amount_fen: int | None = None


def action_of(text: str) -> tuple[InboundAction, int | None]:
    """What a text asks for, and the amount to prepay."""
    reply = parse_bill_reply(text)
    if reply is not None:
        return (InboundAction.PAY_BILL, None) if reply.prepay_fen is None else (InboundAction.PREPAY, reply.prepay_fen)
    if text.strip().upper() in OPEN_WORDS:
        return InboundAction.OPEN_WALLET, None
    return InboundAction.HELP, None


def refusal_text(refusal: ExpoError) -> str:
    """A refusal as texted back: its reason, and the way to a wallet when there is none."""
    text = f"Not done: {refusal.detail}."
    return f"{text} Reply KT to open a wallet." if refusal.code == "no_wallet" else text


async def handle_text(
    db: Database,
    *,
    sms: SmsGateway,
    msisdn: str,
    text: str,
    ledger_key: str,
    terms: PaymentTerms,
    now: datetime,
    credential_id: int | None,
) -> InboundOutcome:
    """Keep a user's text, do what it asks in one transaction and text back the receipt or the refusal."""
    number = normalize_msisdn(msisdn)
    async with db.write() as session:
        record_text(session, direction="in", msisdn=number, text=text, now=now)
    action, prepay_fen = action_of(text)
    try:
        async with db.write() as session:
            if action == InboundAction.HELP:
                outcome = InboundOutcome(action, done=True, reply=HELP_TEXT)
            elif action == InboundAction.OPEN_WALLET:
                await open_account(session, msisdn=number, via=OpenedVia.SMS, password=None, id_last4=None, now=now)
                outcome = InboundOutcome(action, done=True, reply=OPENED_TEXT)
            else:
                outcome = await _pay_by_reply(
                    session,
                    msisdn=number,
                    prepay_fen=prepay_fen,
                    ledger_key=ledger_key,
                    terms=terms,
                    now=now,
                    credential_id=credential_id,
                )
    except ExpoError as refusal:
        if refusal.status >= 500:
            raise  # our fault, not the user's: the centre hands the text over again
        outcome = InboundOutcome(action, done=False, reply=refusal_text(refusal), code=refusal.code)
    if outcome.reply is not None:
        await sms.send(msisdn=number, text=outcome.reply, now=now)
    return outcome


async def _pay_by_reply(
    session: AsyncSession,
    *,
    msisdn: str,
    prepay_fen: int | None,
    ledger_key: str,
    terms: PaymentTerms,
    now: datetime,
    credential_id: int | None,
) -> InboundOutcome:
    action = InboundAction.PAY_BILL if prepay_fen is None else InboundAction.PREPAY
    wallet = await lock_wallet(session, msisdn=msisdn, idempotency_key=ledger_key)
    user, made = wallet.user, wallet.replay
    if made is not None:
        return InboundOutcome(
            action, done=True, reply=None, replayed=True, payment_id=made.id, amount_fen=made.amount_fen
        )
    bill = await latest_texted_bill(session, msisdn=msisdn, open_only=prepay_fen is None)
    if bill is None and prepay_fen is None:
        raise NotFound("no_bill_to_pay", "no open bill was texted to this number")
    if bill is None:
        raise NotFound("no_biller_to_prepay", "no bill was texted to this number, so there is no biller to prepay")
    biller = await session.get(Merchant, bill.merchant_id)
    assert biller is not None
    if prepay_fen is None:
        _, outcome = await pay_bill(
            session,
            bill_id=bill.id,
            idempotency_key=ledger_key,
            channel=PaymentChannel.SMS,
            terms=terms,
            now=now,
            credential_id=credential_id,
        )
        what = f"bill {bill.customer_ref}"
    else:
        outcome = await pay_confirmed(
            session,
            idempotency_key=ledger_key,
            msisdn=msisdn,
            merchant=biller,
            amount_fen=prepay_fen,
            channel=PaymentChannel.SMS,
            terms=terms,
            now=now,
            description=f"prepayment {bill.customer_ref}",
            reference=bill.customer_ref,
            credential_id=credential_id,
        )
        what = f"prepayment {bill.customer_ref}"
    paid = outcome.transfer
    reply = (
        f"Paid {format_fen(paid.amount_fen)} yuan to {biller.name} for {what}. "
        f"You have {format_fen(await _available(session, user))} yuan left."
    )
    return InboundOutcome(
        action, done=True, reply=reply, bill_id=bill.id, payment_id=paid.id, amount_fen=paid.amount_fen
    )


async def _available(session: AsyncSession, user: WalletUser) -> int:
    return (await balances_of(session, user=user)).available_fen
