"""Utility bills (生活缴费): billers post bills, the platform texts them, users pay by web or by replying "Y".

A biller is a merchant of the utilities category (fee 0). A bill is texted to its number when the number
has a wallet; the text invites the reply "Y" (pay it) or "Y" and an amount (prepay). Reminders go out
for open bills due within three days, at most once a day per bill. A bill is paid once: its row is
locked, after the payer's balance (the ledger's lock order), while its payment is made.
"""

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from enum import StrEnum

from sqlalchemy import or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from expo.clock import expo_local
from expo.db import Database
from expo.errors import Conflict, Forbidden, NotFound
from expo.money import format_fen
from expo.provinces import normalize_msisdn
from wallet import ledger, payments
from wallet.accounts import find_user
from wallet.models import Merchant, SmsCode, UtilityBill, WalletTransfer, WalletUser
from wallet.payments import PaymentOutcome, PaymentTerms
from wallet.rules import PaymentChannel, check_amount
from wallet.sms import SmsGateway

BILLER_CATEGORY = "utilities"
REMIND_DAYS_AHEAD = 3  # ours: remind bills due within three days
REMIND_AGAIN_AFTER = timedelta(hours=24)  # ours: at most one text a day per bill


class BillStatus(StrEnum):
    OPEN = "open"
    PAID = "paid"
    WITHDRAWN = "withdrawn"  # taken back by the biller


@dataclass(frozen=True)
class Text:
    """A text to send once the transaction that decided it has committed."""

    msisdn: str
    text: str


def bill_text(bill: UtilityBill, *, biller: Merchant, reminder: bool = False) -> str:
    """The bill as texted: amount, due day and the two replies it accepts."""
    opening = "Reminder: your" if reminder else "Your"
    return (
        f"{opening} {biller.name} bill {bill.customer_ref} is {format_fen(bill.amount_fen)} yuan, "
        f"due {bill.due_day.isoformat()}. Reply Y to pay it, or Y and an amount to prepay."
    )


async def find_biller(session: AsyncSession, *, code: str) -> Merchant:
    """A merchant that may post bills: only the utilities category bills its customers."""
    merchant = await payments.find_merchant(session, code=code)
    if merchant.category != BILLER_CATEGORY:
        raise Forbidden("not_a_biller", f"merchant {code} is not a {BILLER_CATEGORY} biller")
    return merchant


async def post_bill(
    session: AsyncSession,
    *,
    biller: Merchant,
    bill_no: str,
    msisdn: str,
    customer_ref: str,
    amount_fen: int,
    due_day: date,
    now: datetime,
) -> tuple[UtilityBill, Text | None]:
    """Record a biller's bill (a bill number is posted once) and the text for the number, if it has a wallet."""
    check_amount(amount_fen)
    number = normalize_msisdn(msisdn)
    # The biller's row serialises its postings, so one bill number cannot slip in twice.
    await session.get(Merchant, biller.id, with_for_update=True)
    taken = await session.scalar(
        select(UtilityBill.id).where(UtilityBill.merchant_id == biller.id, UtilityBill.bill_no == bill_no)
    )
    if taken is not None:
        raise Conflict("bill_exists", f"bill {bill_no} of {biller.code} was already posted", bill_id=taken)
    has_wallet = await session.scalar(select(WalletUser.id).where(WalletUser.msisdn == number)) is not None
    bill = UtilityBill(
        merchant_id=biller.id,
        bill_no=bill_no,
        msisdn=number,
        customer_ref=customer_ref,
        amount_fen=amount_fen,
        due_day=due_day,
        status=BillStatus.OPEN.value,
        texted_at=now if has_wallet else None,
        created_at=now,
    )
    session.add(bill)
    await session.flush()
    return bill, Text(number, bill_text(bill, biller=biller)) if has_wallet else None


async def bills_of(session: AsyncSession, *, msisdn: str) -> list[tuple[UtilityBill, Merchant]]:
    """Bill query: a number's open and paid bills with their billers, by due day."""
    rows = await session.execute(
        select(UtilityBill, Merchant)
        .join(Merchant, Merchant.id == UtilityBill.merchant_id)
        .where(
            UtilityBill.msisdn == normalize_msisdn(msisdn),
            UtilityBill.status.in_((BillStatus.OPEN.value, BillStatus.PAID.value)),
        )
        .order_by(UtilityBill.due_day, UtilityBill.id)
    )
    return [(bill, merchant) for bill, merchant in rows]


async def find_bill(session: AsyncSession, *, bill_id: int) -> UtilityBill:
    """A bill by id; an unknown one is `unknown_bill`."""
    bill = await session.get(UtilityBill, bill_id)
    if bill is None:
        raise NotFound("unknown_bill", f"no bill {bill_id}")
    return bill


async def latest_texted_bill(session: AsyncSession, *, msisdn: str, open_only: bool) -> UtilityBill | None:
    """The bill last texted to a number (its latest text or reminder), of any status or only an open one."""
    query = select(UtilityBill).where(UtilityBill.msisdn == msisdn, UtilityBill.texted_at.is_not(None))
    if open_only:
        query = query.where(UtilityBill.status == BillStatus.OPEN.value)
    return await session.scalar(query.order_by(UtilityBill.texted_at.desc(), UtilityBill.id.desc()).limit(1))


async def pay_confirmed(
    session: AsyncSession,
    *,
    idempotency_key: str,
    msisdn: str,
    merchant: Merchant,
    amount_fen: int,
    channel: PaymentChannel,
    terms: PaymentTerms,
    now: datetime,
    description: str,
    reference: str,
    credential_id: int | None,
) -> PaymentOutcome:
    """A payment the user has already confirmed: with the password on the web, or by replying from the phone."""
    outcome = await payments.pay(
        session,
        idempotency_key=idempotency_key,
        msisdn=msisdn,
        merchant=merchant,
        amount_fen=amount_fen,
        channel=channel,
        terms=terms,
        now=now,
        description=description,
        reference=reference,
        credential_id=credential_id,
    )
    if outcome.code is not None:
        # The reply came from the user's own phone: it is the confirmation the code would have asked for.
        code = await session.get(SmsCode, outcome.code.code_id)
        assert code is not None
        code.used_at = now
        await payments.confirm_payment(session, transfer=outcome.transfer, now=now)
    return PaymentOutcome(outcome.transfer, replayed=outcome.replayed)


async def pay_bill(
    session: AsyncSession,
    *,
    bill_id: int,
    idempotency_key: str,
    channel: PaymentChannel,
    terms: PaymentTerms,
    now: datetime,
    credential_id: int | None,
) -> tuple[UtilityBill, PaymentOutcome]:
    """Pay a whole open bill to its biller; a bill is paid once (a replay of its own payment returns it)."""
    bill = await find_bill(session, bill_id=bill_id)
    user = await find_user(session, msisdn=bill.msisdn)
    await ledger.lock_account(session, user.account_id)
    locked = await session.get(UtilityBill, bill.id, with_for_update=True, populate_existing=True)
    assert locked is not None
    if locked.status == BillStatus.PAID.value:
        paid = await session.get(WalletTransfer, locked.paid_transfer_id)
        if paid is not None and paid.idempotency_key == idempotency_key:
            return locked, PaymentOutcome(paid, replayed=True)
        raise Conflict("bill_paid", f"bill {locked.bill_no} is already paid", payment_id=locked.paid_transfer_id)
    if locked.status != BillStatus.OPEN.value:
        raise Conflict("bill_withdrawn", f"bill {locked.bill_no} was withdrawn by the biller")
    biller = await session.get(Merchant, locked.merchant_id)
    assert biller is not None
    outcome = await pay_confirmed(
        session,
        idempotency_key=idempotency_key,
        msisdn=locked.msisdn,
        merchant=biller,
        amount_fen=locked.amount_fen,
        channel=channel,
        terms=terms,
        now=now,
        description=f"bill {locked.customer_ref}",
        reference=locked.bill_no,
        credential_id=credential_id,
    )
    locked.status = BillStatus.PAID.value
    locked.paid_transfer_id = outcome.transfer.id
    return locked, outcome


async def remind_bills(db: Database, *, sms: SmsGateway, now: datetime) -> int:
    """Text every open bill of a wallet holder due within three days and not texted in the last 24 hours."""
    today = expo_local(now).date()
    async with db.write() as session:
        rows = await session.execute(
            select(UtilityBill, Merchant)
            .join(Merchant, Merchant.id == UtilityBill.merchant_id)
            .join(WalletUser, WalletUser.msisdn == UtilityBill.msisdn)
            .where(
                UtilityBill.status == BillStatus.OPEN.value,
                UtilityBill.due_day >= today,
                UtilityBill.due_day <= today + timedelta(days=REMIND_DAYS_AHEAD),
                or_(UtilityBill.texted_at.is_(None), UtilityBill.texted_at <= now - REMIND_AGAIN_AFTER),
            )
            .order_by(UtilityBill.id)
            .with_for_update(of=UtilityBill)
        )
        texts = []
        for bill, biller in rows:
            bill.texted_at = now
            texts.append(Text(bill.msisdn, bill_text(bill, biller=biller, reminder=True)))
    for text in texts:
        await sms.send(msisdn=text.msisdn, text=text.text, now=now)
    return len(texts)
