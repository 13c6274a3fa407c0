"""The Expo card registry: personalising a province's new cards, and registering a card to a phone number.

A card is in stock from its personalisation until a hall clerk swaps a customer's SIM for it; it is then
the number's active card. A number has one active card: registering another one replaces it, and
registering an active card to another number moves it there.
"""

import logging
from datetime import datetime
from enum import StrEnum

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from expo.access.rules import Principal
from expo.errors import Conflict, ExpoError, Forbidden, NotFound
from expo.provinces import normalize_msisdn, province
from simcard.keys import KeySet
from simcard.keystore import export_province_keys
from simcard.personalise import new_card_state
from simcard.state import CardState
from ticketing.card_models import ExpoCard

MAX_ISSUE = 10_000
log = logging.getLogger(__name__)


class CardStatus(StrEnum):
    STOCK = "stock"  # personalised, not yet given to anyone
    ACTIVE = "active"  # the SIM of its phone number
    REPLACED = "replaced"  # its number moved on to another card


async def issue_cards(
    session: AsyncSession, *, province_code: str, count: int, root_keys: KeySet, now: datetime
) -> list[CardState]:
    """Personalise `count` new cards for a province and put them in stock: serials follow the province's highest,
    keys are diversified from the province's keys. The caller writes the returned cards' files before the commit."""
    province(province_code)
    if not 1 <= count <= MAX_ISSUE:
        raise ExpoError("invalid_count", f"issue 1 to {MAX_ISSUE} cards at a time")
    highest = await session.scalar(select(func.max(ExpoCard.serial)).where(ExpoCard.province == province_code))
    province_keys = export_province_keys(root_keys, province_code)
    first = (highest or 0) + 1
    states = [
        new_card_state(province_code, serial, province_keys, key_version=root_keys.version)
        for serial in range(first, first + count)
    ]
    session.add_all(
        ExpoCard(
            csn=state.csn.hex(),
            province=province_code,
            serial=serial,
            key_version=state.key_version,
            status=CardStatus.STOCK.value,
            last_ctr=state.ctr,
            issued_at=now,
        )
        for serial, state in enumerate(states, start=first)
    )
    await session.flush()
    log.info("issued %d cards for province %s", count, province_code)
    return states


async def load_card(session: AsyncSession, *, csn: bytes, lock: bool = False) -> ExpoCard:
    """The registered card with this CSN (row-locked if asked); `unknown_card` if the platform never issued it."""
    query = select(ExpoCard).where(ExpoCard.csn == csn.hex())
    card = await session.scalar(query.with_for_update() if lock else query)
    if card is None:
        raise NotFound("unknown_card", f"no Expo card {csn.hex()} was issued")
    return card


def check_card_province(actor: Principal, card: ExpoCard) -> None:
    """Staff act only on cards of their own province; national callers (the web/OTA front, admins) on any."""
    if not actor.sees_province(card.province):
        raise Forbidden("card_of_other_province", f"card {card.csn} belongs to province {card.province}")


async def register_card(
    session: AsyncSession, *, clerk: Principal, csn: bytes, msisdn: str, now: datetime
) -> tuple[ExpoCard, ExpoCard | None]:
    """A SIM swap: the card becomes the number's active card; the number's previous card, if any, is replaced.

    The card must be of the clerk's province (any number may be swapped onto it). Returns the card and the
    card it replaced.
    """
    number = normalize_msisdn(msisdn)
    card = await load_card(session, csn=csn, lock=True)
    check_card_province(clerk, card)
    if card.status == CardStatus.ACTIVE and card.msisdn == number:
        return card, None
    previous = await session.scalar(
        select(ExpoCard).where(ExpoCard.msisdn == number, ExpoCard.status == CardStatus.ACTIVE).with_for_update()
    )
    if previous is not None:
        previous.status = CardStatus.REPLACED.value
        await session.flush()  # the old card lets go of the number before the new one takes it
    card.status = CardStatus.ACTIVE.value
    card.msisdn = number
    card.registered_at = now
    card.registered_by = clerk.staff_id
    try:
        await session.flush()
    except IntegrityError as exc:
        raise Conflict("registration_in_progress", f"{number} is being registered to a card right now") from exc
    log.info("card %s registered to a number (replacing %s)", card.csn, previous.csn if previous else "none")
    return card, previous
