"""Pure wallet rules: account kinds, transfer kinds, merchant fees by category, fee splits and risk limits.

Numbers marked "documents" come from the operator's 2009-2010 wallet planning; everything else is a
configurable default of ours, named as such.
"""

from dataclasses import dataclass, field
from enum import StrEnum

from expo.errors import ExpoError
from expo.money import split_by_weights

MAX_WALLET_PAYMENT_FEN = 1_000_000 - 1  # documents: payments of 10,000 yuan and more go through bank cards


class AccountKind(StrEnum):
    """What an account of the ledger holds; the sign convention is credit positive."""

    USER = "user"  # a user's own balance (自有账户)
    RED_PACKET = "red_packet"  # a user's operator red packets (红包), spent before the balance
    MERCHANT = "merchant"  # what the platform owes a merchant until it is paid out
    FEE_INCOME = "fee_income"  # one per province: the merchant service fees it earns
    BUREAU_RECEIVABLE = "bureau_receivable"  # wallet-paid ticket proceeds owed to Shanghai and the bureau
    BANK_SETTLEMENT = "bank_settlement"  # money moving through the banks (top-ups in, withdrawals out)
    HALL_CASH = "hall_cash"  # one per province: cash taken at hall counters
    RECHARGE_CARDS = "recharge_cards"  # pays out the face value of each redeemed recharge card (goes negative)
    MARKETING = "marketing"  # the red-packet budget
    OPERATOR_FUNDS = "operator_funds"  # the operator's own money that funds the marketing budget
    SUSPENSE = "suspense"  # money whose home is not known yet


# Accounts that hold someone's money never go negative; the operator's clearing accounts may.
RESTRICTED_KINDS = frozenset({AccountKind.USER, AccountKind.RED_PACKET, AccountKind.MERCHANT, AccountKind.MARKETING})


class TransferKind(StrEnum):
    TOP_UP = "top_up"
    WITHDRAWAL = "withdrawal"
    PAYMENT = "payment"
    REFUND = "refund"
    TICKET_PAYMENT = "ticket_payment"
    RED_PACKET = "red_packet"
    MARKETING_FUNDING = "marketing_funding"
    MERCHANT_PAYOUT = "merchant_payout"  # T+1: a merchant's net paid out to its bank (reconciliation.payouts)


class TransferState(StrEnum):
    PENDING = "pending"  # money held on the payer, waiting for a confirmation
    POSTED = "posted"
    VOIDED = "voided"  # a hold released without moving money


class PaymentChannel(StrEnum):
    """How a payment reaches the wallet; it decides how the user confirms it."""

    WEB = "web"  # remote: the user types the payment password
    SMS = "sms"  # remote: the user confirms with a code texted to the phone
    PROXIMITY = "proximity"  # a POS or reader: the card tap, and the password above the PIN-free amount


REMOTE_CHANNELS = frozenset({PaymentChannel.WEB, PaymentChannel.SMS})


@dataclass(frozen=True)
class FeeCategory:
    """A merchant category's transaction-service fee in basis points: guide price and promotional price."""

    name: str
    proximity: bool
    guide_bp: int
    promo_bp: int


# documents: 交易服务费 by category (guide / promotional); one number means both.
FEE_CATEGORIES = {
    category.name: category
    for category in (
        FeeCategory("virtual_goods", proximity=False, guide_bp=1500, promo_bp=1000),
        FeeCategory("utilities", proximity=False, guide_bp=0, promo_bp=0),
        FeeCategory("public_transport_remote", proximity=False, guide_bp=0, promo_bp=0),
        FeeCategory("donations", proximity=False, guide_bp=0, promo_bp=0),
        FeeCategory("other_remote", proximity=False, guide_bp=100, promo_bp=100),
        FeeCategory("restaurants", proximity=True, guide_bp=300, promo_bp=100),
        FeeCategory("entertainment", proximity=True, guide_bp=400, promo_bp=200),
        FeeCategory("retail", proximity=True, guide_bp=100, promo_bp=100),
        FeeCategory("public_transport", proximity=True, guide_bp=100, promo_bp=0),
    )
}


def fee_category(name: str) -> FeeCategory:
    """The category by name; an unknown one is refused."""
    category = FEE_CATEGORIES.get(name)
    if category is None:
        raise ExpoError("unknown_category", f"{name!r} is not a merchant category", categories=sorted(FEE_CATEGORIES))
    return category


def check_fee_rate(category: FeeCategory, rate_bp: int) -> int:
    """A negotiated rate must lie between the category's promotional and guide prices."""
    if not category.promo_bp <= rate_bp <= category.guide_bp:
        raise ExpoError(
            "fee_rate_out_of_bounds",
            f"a {category.name} merchant's fee lies between {category.promo_bp} and {category.guide_bp} basis points",
        )
    return rate_bp


def fee_for(amount_fen: int, rate_bp: int) -> int:
    """The fee on an amount, rounded half up to the fen."""
    return (amount_fen * rate_bp + 5000) // 10_000


def fee_shares(fee_fen: int, *, proximity: bool, user_province: str, merchant_province: str) -> dict[str, int]:
    """documents: remote fees go 100% to the user's province; proximity 70% user's : 30% merchant's."""
    if not proximity:
        return {user_province: fee_fen} if fee_fen else {}
    user_part, merchant_part = split_by_weights(fee_fen, [70, 30])
    shares: dict[str, int] = {}
    for province, part in ((user_province, user_part), (merchant_province, merchant_part)):
        if part:
            shares[province] = shares.get(province, 0) + part
    return shares


def part_refunded(part_fen: int, *, whole_fen: int, refunded_before: int, refunding: int) -> int:
    """The share of `part` a refund returns: proportional and cumulative, so a full refund returns exactly `part`."""
    after = part_fen * (refunded_before + refunding) // whole_fen
    return after - part_fen * refunded_before // whole_fen


def check_amount(amount_fen: int, *, ceiling: int = MAX_WALLET_PAYMENT_FEN) -> int:
    """Amounts are positive whole fen under the wallet's ceiling."""
    if amount_fen <= 0:
        raise ExpoError("invalid_amount", "the amount must be a positive number of fen")
    if amount_fen > ceiling:
        raise ExpoError(
            "amount_needs_bank_card", "payments of 10,000 yuan and more go through bank cards", ceiling_fen=ceiling
        )
    return amount_fen


# --- risk limits -------------------------------------------------------------------------------------


class AccountClass(StrEnum):
    BASIC = "basic"  # opened by SMS or web, identity not verified
    REAL_NAME = "real_name"  # identity verified in a hall


class LimitedOperation(StrEnum):
    TOP_UP = "top_up"
    WITHDRAWAL = "withdrawal"
    PAYMENT = "payment"  # merchant payments, bills and tickets


@dataclass(frozen=True)
class Limit:
    """Most money and most operations in one period."""

    amount_fen: int
    count: int


@dataclass(frozen=True)
class OperationLimits:
    day: Limit
    month: Limit


@dataclass(frozen=True)
class RiskLimits:
    """Per account class and operation, the day's and the month's limits (configurable; ours by default)."""

    table: dict[AccountClass, dict[LimitedOperation, OperationLimits]] = field(default_factory=dict)

    def of(self, account_class: AccountClass, operation: LimitedOperation) -> OperationLimits:
        return self.table[account_class][operation]


def _limits(day_yuan: int, day_count: int, month_yuan: int, month_count: int) -> OperationLimits:
    return OperationLimits(Limit(day_yuan * 100, day_count), Limit(month_yuan * 100, month_count))


DEFAULT_LIMITS = RiskLimits(
    {
        AccountClass.BASIC: {
            LimitedOperation.TOP_UP: _limits(1_000, 10, 5_000, 50),
            LimitedOperation.WITHDRAWAL: _limits(500, 2, 1_000, 5),
            LimitedOperation.PAYMENT: _limits(1_000, 50, 5_000, 300),
        },
        AccountClass.REAL_NAME: {
            LimitedOperation.TOP_UP: _limits(10_000, 20, 50_000, 200),
            LimitedOperation.WITHDRAWAL: _limits(10_000, 5, 50_000, 20),
            LimitedOperation.PAYMENT: _limits(20_000, 200, 100_000, 2_000),
        },
    }
)


@dataclass(frozen=True)
class Usage:
    """What an account has done so far in the day and the month of one operation."""

    day_fen: int
    day_count: int
    month_fen: int
    month_count: int


def check_limits(limits: OperationLimits, usage: Usage, *, amount_fen: int, operation: LimitedOperation) -> None:
    """Refuse an operation that would pass the day's or the month's amount or count."""
    for period, limit, used_fen, used_count in (
        ("day", limits.day, usage.day_fen, usage.day_count),
        ("month", limits.month, usage.month_fen, usage.month_count),
    ):
        if used_count + 1 > limit.count:
            raise ExpoError(
                f"{operation}_count_limit",
                f"the {period}'s limit of {limit.count} {operation.replace('_', '-')}s is reached",
                period=period,
                limit=limit.count,
            )
        if used_fen + amount_fen > limit.amount_fen:
            raise ExpoError(
                f"{operation}_amount_limit",
                f"this would pass the {period}'s {operation.replace('_', '-')} limit of {limit.amount_fen} fen",
                period=period,
                limit_fen=limit.amount_fen,
                remaining_fen=max(limit.amount_fen - used_fen, 0),
            )


def parse_limits(document: dict[str, dict[str, dict[str, dict[str, int]]]]) -> RiskLimits:
    """Limits from a JSON document: {class: {operation: {day|month: {amount_fen, count}}}}; all must be given."""
    table: dict[AccountClass, dict[LimitedOperation, OperationLimits]] = {}
    for account_class in AccountClass:
        per_class = document[account_class.value]
        table[account_class] = {}
        for operation in LimitedOperation:
            entry = per_class[operation.value]
            table[account_class][operation] = OperationLimits(
                Limit(int(entry["day"]["amount_fen"]), int(entry["day"]["count"])),
                Limit(int(entry["month"]["amount_fen"]), int(entry["month"]["count"])),
            )
    return RiskLimits(table)


# --- SMS replies -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class BillReply:
    """A user's answer to a bill text: pay the bill, or prepay an amount."""

    prepay_fen: int | None


def parse_bill_reply(text: str) -> BillReply | None:
    """documents: "Y" pays the texted bill, "Y"+amount (yuan, 2 decimals at most) prepays; else not a reply."""
    body = text.strip().upper()
    if not body.startswith("Y"):
        return None
    rest = body[1:].strip()
    if not rest:
        return BillReply(None)
    whole, _, cents = rest.partition(".")
    # isdecimal, not isdigit: "²" is a digit that int() refuses; full-width ５０ is decimal and int() reads it.
    if not whole.isdecimal() or len(cents) > 2 or (cents and not cents.isdecimal()) or len(whole) > 7:
        return None
    fen = int(whole) * 100 + int(cents.ljust(2, "0") or 0)
    return BillReply(fen) if fen > 0 else None
