"""The wallet side of a month's settlement, from the ledger: the merchant fees each province earned and the money
that came in and went out through hall counters, banks and recharge cards.

Every figure is a sum of postings created in the window on the operator's clearing accounts (`fee_income:<province>`,
`hall_cash:<province>`, `bank_settlement`, `recharge_cards`), grouped in the database by account and by the kind and
channel of the transfer they belong to; Python only names the sums. A transfer has at most one posting per account,
so a group's row count is its number of transfers. Merchant payouts also move money through `bank_settlement`; they
are not withdrawals but the T+1 payouts of `reconciliation.payouts`, with their own section.
"""

from dataclasses import dataclass

from sqlalchemy import and_, case, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from reconciliation.rules import PLATFORM
from reconciliation.statement_rules import BANK, RECHARGE_CARD_SALES, Line, Section, Window
from wallet.models import Posting, WalletAccount, WalletTransfer
from wallet.rules import AccountKind, PaymentChannel, TransferKind

_FEE_KINDS = (TransferKind.PAYMENT.value, TransferKind.REFUND.value)
_BANK_KINDS = (TransferKind.TOP_UP.value, TransferKind.WITHDRAWAL.value)


@dataclass(frozen=True)
class _Sum:
    """One group of postings: the account they are on, their transfers' kind and channel, how many and how much."""

    account_kind: str
    account_code: str
    province: str | None
    transfer_kind: str
    proximity: bool
    transfers: int
    posted_fen: int


async def wallet_lines(session: AsyncSession, *, window: Window) -> list[Line]:
    """domain: merchant fees go to the provinces (remote all to the user's, proximity 70 : 30 user's : merchant's);
    top-ups and withdrawals settle in full. Lines with nothing to settle are left out."""
    lines: dict[tuple[Section, str, str, str], list[int]] = {}
    bases: dict[tuple[Section, str, str, str], str] = {}
    for group in await _posted_sums(session, window=window):
        named = _name(group, window)
        if named is None:
            continue
        key, basis, amount = named
        bases.setdefault(key, basis)
        count_amount = lines.setdefault(key, [0, 0])
        count_amount[0] += group.transfers
        count_amount[1] += amount
    return [
        Line(section, item, payer, payee, count, amount, bases[(section, item, payer, payee)])
        for (section, item, payer, payee), (count, amount) in sorted(lines.items())
        if count or amount
    ]


async def _posted_sums(session: AsyncSession, *, window: Window) -> list[_Sum]:
    """The window's postings on the clearing accounts, summed per account, transfer kind and proximity."""
    account_kind = WalletAccount.kind
    relevant = or_(
        and_(account_kind == AccountKind.FEE_INCOME.value, WalletTransfer.kind.in_(_FEE_KINDS)),
        and_(account_kind == AccountKind.BANK_SETTLEMENT.value, WalletTransfer.kind.in_(_BANK_KINDS)),
        account_kind.in_((AccountKind.HALL_CASH.value, AccountKind.RECHARGE_CARDS.value)),
    )
    in_window = [Posting.created_at < window.end]
    if window.start is not None:
        in_window.append(Posting.created_at >= window.start)
    if window.recorded is not None:
        in_window.append(Posting.id <= window.recorded.postings_through)
        if window.recorded.postings_after is not None:
            in_window.append(Posting.id > window.recorded.postings_after)
    # The channel test is computed in a subquery so that the GROUP BY names a column, not a repeated expression.
    postings = (
        select(
            WalletAccount.kind.label("account_kind"),
            WalletAccount.code.label("account_code"),
            WalletAccount.province_code.label("province"),
            WalletTransfer.kind.label("transfer_kind"),
            case((WalletTransfer.channel == PaymentChannel.PROXIMITY.value, 1), else_=0).label("proximity"),
            Posting.amount_fen.label("amount"),
        )
        .select_from(Posting)
        .join(WalletAccount, WalletAccount.id == Posting.account_id)
        .join(WalletTransfer, WalletTransfer.id == Posting.transfer_id)
        .where(relevant, *in_window)
        .subquery("postings")
    )
    keys = (
        postings.c.account_kind,
        postings.c.account_code,
        postings.c.province,
        postings.c.transfer_kind,
        postings.c.proximity,
    )
    rows = await session.execute(select(*keys, func.count(), func.sum(postings.c.amount)).group_by(*keys))
    return [
        _Sum(str(kind), str(code), province, str(transfer_kind), bool(proximity), int(count), int(total))
        for kind, code, province, transfer_kind, proximity, count, total in rows
    ]


def _name(group: _Sum, window: Window) -> tuple[tuple[Section, str, str, str], str, int] | None:
    """A group's line key, basis and amount, in the statement's sign convention (payer owes payee)."""
    on = f"posted {window} on {group.account_code}"
    if group.account_kind == AccountKind.FEE_INCOME.value:
        assert group.province is not None  # fee income is kept per province
        reach = "proximity" if group.proximity else "remote"
        refund = group.transfer_kind == TransferKind.REFUND.value
        item = f"merchant_fee_refunds_{reach}" if refund else f"merchant_fees_{reach}"
        what = (
            f"fee shares given back by {reach} wallet refunds" if refund else f"fee shares of {reach} wallet payments"
        )
        # The province's fee income was credited by payments and debited by refunds: its share, signed.
        return (Section.WALLET_FEES, item, PLATFORM, group.province), f"{what} {on}", group.posted_fen
    if group.account_kind == AccountKind.HALL_CASH.value:
        assert group.province is not None  # hall cash is kept per province
        # The province's halls took the cash its account was debited by: it remits it in full.
        key = (Section.WALLET_FUNDS, "hall_cash_top_ups", group.province, PLATFORM)
        return key, f"cash top-ups at the province's halls {on}", -group.posted_fen
    if group.account_kind == AccountKind.RECHARGE_CARDS.value:
        key = (Section.WALLET_FUNDS, "recharge_card_top_ups", RECHARGE_CARD_SALES, PLATFORM)
        return key, f"recharge cards redeemed {on}", -group.posted_fen
    if group.transfer_kind == TransferKind.TOP_UP.value:
        return (Section.WALLET_FUNDS, "bank_top_ups", BANK, PLATFORM), f"bank top-ups {on}", -group.posted_fen
    if group.transfer_kind == TransferKind.WITHDRAWAL.value:
        return (Section.WALLET_FUNDS, "withdrawals", PLATFORM, BANK), f"withdrawals paid {on}", group.posted_fen
    return None
