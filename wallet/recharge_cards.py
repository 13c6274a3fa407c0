"""Recharge cards (充值卡): printed prepaid cards whose face value a user tops up with, serial plus PIN.

Issuing a batch moves no money: the cards are printed, then sold by distributors outside the wallet.
Redeeming one is a top-up from the recharge-cards account, which is why that (unrestricted) account
runs negative: it is the face value the wallet has paid out of cards sold, matched in reconciliation by
the distributors' proceeds. Every posting is balanced, so the ledger stays balanced either way.

A PIN is 18 random digits, shown once at issue and stored only as a SHA-256 digest salted with its
card's serial; 10^18 guesses per card make both online guessing and an offline search of a stolen table
hopeless. A card is redeemed exactly once: its row is locked, and the redemption is claimed with a
conditional update that only succeeds while the card is unredeemed.
"""

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from expo.errors import Conflict, ExpoError
from wallet import ledger
from wallet.models import RechargeCard, WalletTransfer
from wallet.rules import AccountKind, RiskLimits, check_amount
from wallet.topups import credit_top_up, start_top_up

PIN_DIGITS = 18
MAX_BATCH = 10_000  # ours: cards per issue; a batch is issued in one go
SERIAL_PREFIX_DIGITS = 14  # from the batch name; then a 6-digit number within the batch: 20 digits in all
RECHARGE_CARD_CHANNEL = "recharge_card"


@dataclass(frozen=True)
class IssuedCard:
    """A card as printed: the serial, and the PIN under the scratch panel (never retrievable again)."""

    serial: str
    pin: str


def card_serial(batch: str, number: int) -> str:
    """A card's serial: digits of the batch name's digest, then its number in the batch.

    The same batch always gives the same serials, so a batch issued twice collides on the unique serial.
    """
    prefix = int(hashlib.sha256(batch.encode()).hexdigest(), 16) % 10**SERIAL_PREFIX_DIGITS
    return f"{prefix:0{SERIAL_PREFIX_DIGITS}d}{number:06d}"


def pin_digest(serial: str, pin: str) -> bytes:
    """What is stored of a PIN: its digest salted with the card's serial."""
    return hashlib.sha256(f"{serial}:{pin}".encode()).digest()


async def issue_recharge_cards(
    session: AsyncSession, *, count: int, face_value_fen: int, batch: str, now: datetime
) -> list[IssuedCard]:
    """Issue a batch of cards of one face value; each batch name is issued once; the PINs are returned only here."""
    if not 1 <= count <= MAX_BATCH:
        raise ExpoError("invalid_count", f"a batch has 1 to {MAX_BATCH} cards")
    check_amount(face_value_fen)
    batch = batch.strip()
    if not batch or len(batch) > 32:
        raise ExpoError("invalid_batch", "a batch name is 1 to 32 characters")
    if await session.scalar(select(RechargeCard.id).where(RechargeCard.batch == batch).limit(1)) is not None:
        raise Conflict("recharge_batch_exists", f"batch {batch!r} was already issued")
    cards = [
        IssuedCard(card_serial(batch, number), f"{secrets.randbelow(10**PIN_DIGITS):0{PIN_DIGITS}d}")
        for number in range(1, count + 1)
    ]
    try:
        await session.execute(
            insert(RechargeCard),
            [
                {
                    "serial": card.serial,
                    "pin_hash": pin_digest(card.serial, card.pin),
                    "face_value_fen": face_value_fen,
                    "batch": batch,
                    "created_at": now,
                }
                for card in cards
            ],
        )
    except IntegrityError as exc:
        # The same batch issued at the same moment by someone else: its serials are taken.
        raise Conflict("recharge_batch_exists", f"batch {batch!r} was already issued") from exc
    return cards


async def redeem_recharge_card(
    session: AsyncSession,
    *,
    idempotency_key: str,
    msisdn: str,
    serial: str,
    pin: str,
    limits: RiskLimits,
    now: datetime,
    credential_id: int | None = None,
) -> WalletTransfer:
    """Top a wallet up with a card's face value, once per card; a wrong serial or PIN is not told apart."""
    card = await session.scalar(
        select(RechargeCard)
        .where(RechargeCard.serial == serial)
        .with_for_update()
        .execution_options(populate_existing=True)
    )
    if card is None or not hmac.compare_digest(card.pin_hash, pin_digest(serial, pin)):
        raise ExpoError("invalid_recharge_card", "no card has this serial and PIN")
    if card.redeemed_transfer_id is not None:
        found = await ledger.existing_transfer(session, idempotency_key=idempotency_key)
        if found is not None and found.id == card.redeemed_transfer_id:
            return found
        raise Conflict("recharge_card_used", "this card has already been used")
    transfer, user, replayed = await start_top_up(
        session,
        idempotency_key=idempotency_key,
        msisdn=msisdn,
        amount_fen=card.face_value_fen,
        channel=RECHARGE_CARD_CHANNEL,
        limits=limits,
        now=now,
        reference=card.serial,
        credential_id=credential_id,
    )
    if replayed:  # the key made another top-up, not this card's (that case returned above)
        raise ExpoError("idempotency_key_reused", "this idempotency key was used for another transfer", status=422)
    claimed = await session.scalar(
        update(RechargeCard)
        .where(RechargeCard.id == card.id, RechargeCard.redeemed_transfer_id.is_(None))
        .values(redeemed_transfer_id=transfer.id)
        .returning(RechargeCard.id)
    )
    if claimed is None:
        raise Conflict("recharge_card_used", "this card has already been used")
    await credit_top_up(
        session, transfer=transfer, user=user, source=AccountKind.RECHARGE_CARDS, province_code=None, now=now
    )
    return transfer
