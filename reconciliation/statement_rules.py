"""Pure statement rules: the lines a settlement document is made of, what one party sees of it, and the
adjustments that carry a closed month's later corrections into the month being settled.

A line says that `payer` owes `payee` `amount_fen` for `count` records of `item`; a negative amount is owed
back. An invoice is a line of section "invoices" whose payee issues it and whose payer is billed.
"""

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from expo.access.rules import Principal, Role
from expo.clock import expo_local
from expo.errors import ExpoError, Forbidden
from expo.provinces import PROVINCES
from reconciliation.rules import BUREAU, PLATFORM

BANK = "bank"  # the banks, through UnionPay: top-ups in, withdrawals and merchant payouts out
MERCHANTS = "merchants"  # the wallet's merchants, paid T+1 (each one's figure is in the day's payout file)
BUYERS = "buyers"  # ticket buyers: the bureau invoices them the proceeds
RECHARGE_CARD_SALES = "recharge_card_sales"  # the prepaid recharge cards sold, redeemed into wallets

FINAL_DOCUMENT = "commission-final"


class Section(StrEnum):
    """The parts of a statement, in the order they are printed."""

    COMMISSION = "commission"  # ticket commission accrued: the bureau owes each company its part
    PROCEEDS = "proceeds"  # ticket proceeds remitted to Shanghai, and by Shanghai to the bureau
    WALLET_FEES = "wallet_fees"  # merchant service fees: the platform owes each province its share
    WALLET_FUNDS = "wallet_funds"  # top-ups and withdrawals, settled in full
    MERCHANT_PAYOUTS = "merchant_payouts"  # T+1 payouts to merchants, net of fees
    COMMISSION_SETTLEMENT = "commission_settlement"  # the final settlement: bureau -> Shanghai -> provinces
    INVOICES = "invoices"  # who invoices whom for what (the payee issues, the payer is billed)


SECTION_ORDER = {section: index for index, section in enumerate(Section)}
# Lines that move no money this month: the monthly commission is accrued and invoiced, and paid only by the final
# settlement (whose lines are money); invoices are bills.
NON_CASH_SECTIONS = frozenset({Section.COMMISSION, Section.INVOICES})


@dataclass(frozen=True)
class Recorded:
    """Which inserted records a close counts, by id: payments and ledger postings after the previous close's
    last ids (None: from the first) up to the last ids this close saw."""

    payments_after: int | None
    payments_through: int
    postings_after: int | None
    postings_through: int


@dataclass(frozen=True)
class Window:
    """The records a settlement covers: dated at or after `start` (None: from the beginning), before `end`, and,
    with `recorded`, inserted within its id bounds (a month's own records, or a closed month's late ones)."""

    start: datetime | None
    end: datetime
    recorded: Recorded | None = None

    def __str__(self) -> str:
        start = "the beginning" if self.start is None else f"{expo_local(self.start):%Y-%m-%d %H:%M}"
        dated = f"{start} .. {expo_local(self.end):%Y-%m-%d %H:%M} (Asia/Shanghai)"
        late = self.recorded is not None and self.recorded.payments_after is not None
        return f"{dated}, recorded after its close" if late else dated


@dataclass(frozen=True)
class Line:
    """One figure of a settlement document; `basis` says which records it sums, so it can be traced."""

    section: Section
    item: str
    payer: str
    payee: str
    count: int
    amount_fen: int
    basis: str
    adjusts: str | None = None  # the closed month ("2010-05") this line corrects

    @property
    def key(self) -> tuple[str, str, str, str, str | None]:
        return (self.section.value, self.item, self.payer, self.payee, self.adjusts)


def sort_lines(lines: Iterable[Line]) -> list[Line]:
    """Print order: section, then item, payer, payee; adjustments after the month's own lines."""
    return sorted(
        lines,
        key=lambda line: (SECTION_ORDER[line.section], line.adjusts or "", line.item, line.payer, line.payee),
    )


def party_names() -> frozenset[str]:
    """Every party a statement can be pulled for: the bureau, the platform and each provincial company."""
    return frozenset({BUREAU, PLATFORM, *PROVINCES})


def check_party(party: str) -> str:
    """A statement's party is the bureau, the platform or a province's two-digit code."""
    if party not in party_names():
        raise ExpoError("unknown_party", f"{party!r} is not a party to the settlement: bureau, platform or a province")
    return party


def party_of_caller(principal: Principal, asked: str | None) -> str:
    """Each party sees only its own statement: the bureau the bureau's, a company's finance office its province's,
    the platform's finance office (no province) the platform's; the operator's admins any party they name."""
    if principal.role is Role.ADMIN:
        if asked is None:
            raise ExpoError("party_required", "name the party whose statement to read: bureau, platform or a province")
        return check_party(asked)
    own = BUREAU if principal.role is Role.BUREAU else principal.province_code or PLATFORM
    if asked is not None and check_party(asked) != own:
        raise Forbidden("statement_forbidden", f"this credential reads the statements of {own} only", party=own)
    return own


def lines_of_party(lines: Iterable[Line], party: str) -> list[Line]:
    """A party sees exactly the lines it pays or is paid on (invoices it issues or is billed)."""
    return [line for line in lines if party in (line.payer, line.payee)]


@dataclass(frozen=True)
class Balance:
    """What a party is owed by (positive) or owes (negative) one counterparty over a statement."""

    counterparty: str
    receivable_fen: int
    payable_fen: int

    @property
    def net_fen(self) -> int:
        return self.receivable_fen - self.payable_fen


def balances(lines: Iterable[Line], party: str) -> list[Balance]:
    """Per counterparty, what `party` is owed and owes on its money lines: the commission accruals and the invoices
    are left out, since the commission is paid once, by the final settlement."""
    receivable: dict[str, int] = {}
    payable: dict[str, int] = {}
    for line in lines:
        if line.section in NON_CASH_SECTIONS:
            continue
        if line.payee == party:
            receivable[line.payer] = receivable.get(line.payer, 0) + line.amount_fen
        if line.payer == party:
            payable[line.payee] = payable.get(line.payee, 0) + line.amount_fen
    return [
        Balance(counterparty, receivable.get(counterparty, 0), payable.get(counterparty, 0))
        for counterparty in sorted(receivable.keys() | payable.keys())
    ]
