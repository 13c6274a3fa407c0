"""Pure settlement rules: the settlement month, ticket commission and its 15 : 85 split, wallet fee splits,
and who remits a ticket's proceeds to whom.

Rules marked "domain" are the business's own settlement rules; those marked "ours" are
defaults of this platform, configurable where it matters. Money is integer fen and every split sums exactly to its
whole. Parties are named by a province's GB/T 2260 code ("31" is Shanghai), `PLATFORM` (the wallet
platform operator) and `BUREAU` (the Expo bureau).
"""

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, timedelta
from types import MappingProxyType

from expo.errors import ExpoError
from expo.money import split_by_weights
from expo.provinces import SHANGHAI, province
from ticketing.rules import TicketType
from ticketing.sales_rules import PaymentMethod
from wallet.rules import PaymentChannel, fee_shares

PLATFORM = "platform"
BUREAU = "bureau"

# --- the settlement month ----------------------------------------------------------------------------

_MONTH_TEXT = re.compile(r"([0-9]{4})-([0-9]{2})")
FIRST_MONTH_KEY = (2009, 1)  # ours: see Month
LAST_MONTH_KEY = (2011, 3)


@dataclass(frozen=True, order=True)
class Month:
    """A calendar month of the settlement period, written "2010-06".

    Ours: the period runs from 2009-01, so that any pre-sale of 2009 has a month, to 2011-03, five
    months after the Expo closed on 2010-10-31, for refunds, the final commission settlement and the
    adjustments of closed months. A month outside it is refused; so is the month after the last.
    """

    year: int
    month: int

    def __post_init__(self) -> None:
        if not 1 <= self.month <= 12:
            raise ExpoError("month_invalid", f"{self.year}-{self.month:02d} has no month {self.month}")
        if not FIRST_MONTH_KEY <= (self.year, self.month) <= LAST_MONTH_KEY:
            raise ExpoError(
                "month_out_of_range",
                f"{self} is outside the settlement period {_key_text(FIRST_MONTH_KEY)} .. {_key_text(LAST_MONTH_KEY)}",
                first_month=_key_text(FIRST_MONTH_KEY),
                last_month=_key_text(LAST_MONTH_KEY),
            )

    @classmethod
    def parse(cls, text: str) -> "Month":
        """A month is exactly YYYY-MM (ASCII digits, month 01-12) inside the settlement period."""
        match = _MONTH_TEXT.fullmatch(text)
        if match is None:
            raise ExpoError("month_invalid", f"{text!r} is not a month written YYYY-MM")
        return cls(int(match.group(1)), int(match.group(2)))

    @classmethod
    def of(cls, day: date) -> "Month":
        """The month a day falls in."""
        return cls(day.year, day.month)

    @property
    def first_day(self) -> date:
        return date(self.year, self.month, 1)

    @property
    def last_day(self) -> date:
        return self._following_first_day() - timedelta(days=1)

    def next(self) -> "Month":
        """The month after this one, where a closed month's later corrections land; refused after the last."""
        following = self._following_first_day()
        return Month(following.year, following.month)

    def __contains__(self, day: object) -> bool:
        return isinstance(day, date) and (day.year, day.month) == (self.year, self.month)

    def __str__(self) -> str:
        return _key_text((self.year, self.month))

    def _following_first_day(self) -> date:
        return date(self.year + self.month // 12, self.month % 12 + 1, 1)


def _key_text(key: tuple[int, int]) -> str:
    return f"{key[0]:04d}-{key[1]:02d}"


# --- ticket commission (销售酬金) ---------------------------------------------------------------------

BASIS_POINTS = 10_000
DEFAULT_COMMISSION_BP = 300  # ours: the rate is configurable and the domain gives no number
SHANGHAI_COMMISSION_WEIGHT = 15  # domain: 15% Shanghai
HOME_COMMISSION_WEIGHT = 85  # domain: 85% the buyer's home province


def check_rate_bp(rate_bp: int) -> int:
    """A rate is a whole number of basis points from 0 to 10,000 (0% to 100%)."""
    if isinstance(rate_bp, bool) or not isinstance(rate_bp, int) or not 0 <= rate_bp <= BASIS_POINTS:
        raise ExpoError("commission_rate_invalid", f"{rate_bp!r} is not a rate of 0 to {BASIS_POINTS} basis points")
    return rate_bp


@dataclass(frozen=True)
class CommissionRates:
    """The commission rate of each ticket type in basis points: a default, overridden per type where agreed."""

    default_bp: int = DEFAULT_COMMISSION_BP
    by_type: Mapping[TicketType, int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        check_rate_bp(self.default_bp)
        for rate_bp in self.by_type.values():
            check_rate_bp(rate_bp)
        # Frozen all the way down: a statement must not see its rates change under it.
        object.__setattr__(self, "by_type", MappingProxyType({TicketType(t): bp for t, bp in self.by_type.items()}))

    def rate_bp(self, ticket_type: TicketType) -> int:
        """A ticket type's own rate if it has one, else the default."""
        return self.by_type.get(ticket_type, self.default_bp)


def parse_rates(text: str) -> CommissionRates:
    """Rates written "default=300,peak=250" (basis points per ticket type); empty text is the default rate for all."""
    default_bp, by_type = DEFAULT_COMMISSION_BP, {}
    for item in filter(None, (part.strip() for part in text.split(","))):
        name, _, value = item.partition("=")
        if not value.strip().isdigit():
            raise ExpoError("commission_rate_invalid", f"{item!r} is not written type=basis_points")
        if name.strip() == "default":
            default_bp = int(value)
            continue
        try:
            by_type[TicketType(name.strip())] = int(value)
        except ValueError:
            raise ExpoError("commission_rate_invalid", f"{name.strip()!r} is not a ticket type") from None
    return CommissionRates(default_bp=default_bp, by_type=by_type)


def rates_text(rates: CommissionRates) -> str:
    """The rates written as `parse_rates` reads them, types in a fixed order, so a stored month shows its rates."""
    return ",".join([f"default={rates.default_bp}", *(f"{t.value}={bp}" for t, bp in sorted(rates.by_type.items()))])


def commission_fen(price_fen: int, *, rate_bp: int) -> int:
    """The commission on a price, rounded half up to the fen; a reversal's negative price gives the exact negative."""
    check_rate_bp(rate_bp)
    magnitude = (abs(price_fen) * rate_bp + BASIS_POINTS // 2) // BASIS_POINTS
    return -magnitude if price_fen < 0 else magnitude


def split_commission(commission: int, *, home_province: str) -> dict[str, int]:
    """domain: 15% Shanghai : 85% the buyer's home province, all to Shanghai for Shanghai's own customers.

    Shanghai's part is 15% rounded half up to the fen and the home province has the rest (largest
    remainder), so the parts sum to the commission; a void or refund splits the negative commission into
    the exact negatives of the sale's parts. Zero parts are left out.
    """
    province(home_province)
    if home_province == SHANGHAI:
        return {SHANGHAI: commission} if commission else {}
    shanghai_part, home_part = split_by_weights(commission, [SHANGHAI_COMMISSION_WEIGHT, HOME_COMMISSION_WEIGHT])
    return {party: part for party, part in ((SHANGHAI, shanghai_part), (home_province, home_part)) if part}


# --- wallet merchant fees (交易服务费) ------------------------------------------------------------------


def split_wallet_fee(
    fee_fen: int, *, channel: PaymentChannel, user_province: str, merchant_province: str
) -> dict[str, int]:
    """domain: remote fees 0 : 100% (platform : user's province); proximity 0 : 70% : 30% (platform :
    user's province : merchant's province), merged when both provinces are one; the parts sum to the fee.

    This is the split `wallet.rules.fee_shares` posts to the provinces' fee-income accounts when a payment
    is made, re-derived here so a statement can be checked against the ledger; the platform's part is 0,
    so it never appears. A negative fee (a full refund) splits into the exact negatives.
    """
    province(user_province)
    province(merchant_province)
    return fee_shares(
        fee_fen,
        proximity=channel is PaymentChannel.PROXIMITY,
        user_province=user_province,
        merchant_province=merchant_province,
    )


def split_wallet_fee_refund(
    *, fee_refunded_before: int, fee_refunding: int, channel: PaymentChannel, user_province: str, merchant_province: str
) -> dict[str, int]:
    """A refund takes back from each province what its cumulative share grows by, as the wallet posts it.

    Partial refunds therefore return, in total, exactly the parts the payment gave, with no rounding drift.
    """
    before = split_wallet_fee(
        fee_refunded_before, channel=channel, user_province=user_province, merchant_province=merchant_province
    )
    after = split_wallet_fee(
        fee_refunded_before + fee_refunding,
        channel=channel,
        user_province=user_province,
        merchant_province=merchant_province,
    )
    moved = {party: -(after.get(party, 0) - before.get(party, 0)) for party in after.keys() | before.keys()}
    return {party: part for party, part in moved.items() if part}


# --- proceeds (门票销售款项) and commission settlement --------------------------------------------------


@dataclass(frozen=True)
class Line:
    """Money one party owes another; a negative amount is owed back."""

    payer: str
    payee: str
    amount_fen: int


@dataclass(frozen=True)
class Invoice:
    """A bill one party issues to another; a negative amount is a credit note."""

    issuer: str
    billed: str
    amount_fen: int


def proceeds_remittances(price_fen: int, *, method: PaymentMethod, sale_province: str) -> list[Line]:
    """domain: a wallet-paid ticket's proceeds are remitted in full by the platform to Shanghai; a hall
    sale's by the selling province. Ours: every other payment (12580 credit card and cash on delivery,
    web online banking) lands with the selling province's gateway or courier, so it remits in full too.

    Shanghai's own non-wallet sales are already in Shanghai: nothing to remit. A void or refund gives the
    same line with the negative amount.
    """
    province(sale_province)
    payer = PLATFORM if method is PaymentMethod.WALLET else sale_province
    if payer == SHANGHAI or not price_fen:
        return []
    return [Line(payer=payer, payee=SHANGHAI, amount_fen=price_fen)]


def bureau_proceeds_remittance(proceeds_fen: int) -> list[Line]:
    """domain: Shanghai settles the proceeds with the bureau monthly; ours: in full, never net of
    commission, because the commission is invoiced to the bureau separately by each company."""
    return [Line(payer=SHANGHAI, payee=BUREAU, amount_fen=proceeds_fen)] if proceeds_fen else []


def commission_invoices(commission: int, *, home_province: str) -> list[Invoice]:
    """domain: each company invoices the bureau monthly for the part of the commission it is entitled to."""
    return [
        Invoice(issuer=party, billed=BUREAU, amount_fen=part)
        for party, part in split_commission(commission, home_province=home_province).items()
    ]


def commission_settlement(commission: int, *, home_province: str) -> list[Line]:
    """domain: the bureau settles the commission with Shanghai (monthly), and Shanghai passes the home
    province its 85% (once after ticket sales end, through the inter-province settlement).

    Ours, as we read the settlement rules: the money goes through Shanghai even though each company invoices the
    bureau for its own part; the lines carry no date, the caller decides when each one falls due.
    """
    parts = split_commission(commission, home_province=home_province)
    lines = [Line(payer=BUREAU, payee=SHANGHAI, amount_fen=commission)] if commission else []
    lines += [Line(payer=SHANGHAI, payee=party, amount_fen=part) for party, part in parts.items() if party != SHANGHAI]
    return lines
