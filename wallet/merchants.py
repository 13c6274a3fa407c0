"""Merchants: registration with a category and a negotiated fee within the category's bounds."""

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from expo.errors import Conflict
from expo.provinces import province
from wallet.ledger import new_account
from wallet.models import Merchant, WalletAccount
from wallet.rules import AccountKind, check_fee_rate, fee_category


async def create_merchant(
    session: AsyncSession,
    *,
    code: str,
    name: str,
    category: str,
    province_code: str,
    fee_rate_bp: int | None,
    allows_adjust: bool,
    now: datetime,
) -> Merchant:
    """Register a merchant; without a negotiated rate it pays its category's guide price."""
    kind = fee_category(category)
    province(province_code)
    rate = check_fee_rate(kind, kind.guide_bp if fee_rate_bp is None else fee_rate_bp)
    if await session.scalar(select(Merchant.id).where(Merchant.code == code)) is not None:
        raise Conflict("merchant_exists", f"merchant code {code} is taken")
    try:
        account = await new_account(
            session, code=f"merchant:{code}", kind=AccountKind.MERCHANT, province_code=province_code, now=now
        )
    except IntegrityError as exc:
        # The same code registered at the same instant: the other registration won the account's unique code.
        raise Conflict("merchant_exists", f"merchant code {code} is taken") from exc
    merchant = Merchant(
        code=code,
        name=name,
        category=kind.name,
        province_code=province_code,
        fee_rate_bp=rate,
        allows_adjust=allows_adjust,
        account_id=account.id,
        created_at=now,
    )
    session.add(merchant)
    await session.flush()
    return merchant


async def merchant_balance(session: AsyncSession, *, merchant: Merchant) -> int:
    """What the platform owes the merchant now."""
    return int(await session.scalar(select(WalletAccount.balance).where(WalletAccount.id == merchant.account_id)) or 0)
