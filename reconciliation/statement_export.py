"""One party's settlement statement as a finance person reads it: the names, titles and directions shared by
its exports, and the CSV export (the PDF is `reconciliation.statement_pdf`).

Pure: the caller has already pulled the party's lines (`lines_of_party`, `sort_lines`). Amounts stay integer
fen; yuan is only ever a rendering of them (`expo.money.format_fen`), so every figure adds up to the fen.
"""

import csv
import io
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from types import MappingProxyType

from expo.clock import EXPO_TZ
from expo.money import format_fen
from expo.provinces import PROVINCES
from reconciliation.rules import BUREAU, PLATFORM
from reconciliation.statement_rules import (
    BANK,
    BUYERS,
    FINAL_DOCUMENT,
    MERCHANTS,
    RECHARGE_CARD_SALES,
    Balance,
    Line,
    Section,
    balances,
)

RECEIVABLE = "receivable"
PAYABLE = "payable"
INVOICE_ISSUED = "invoice issued"
INVOICE_RECEIVED = "invoice received"
ACCRUED_RECEIVABLE = "accrued receivable"  # commission: invoiced now, paid by the final settlement
ACCRUED_PAYABLE = "accrued payable"

SECTION_TITLES: Mapping[Section, str] = MappingProxyType(
    {
        Section.COMMISSION: "Ticket commission 销售酬金",
        Section.PROCEEDS: "Ticket proceeds 门票销售款项",
        Section.WALLET_FEES: "Wallet merchant fees 交易服务费",
        Section.WALLET_FUNDS: "Wallet top-ups and withdrawals 充值与提现",
        Section.MERCHANT_PAYOUTS: "Merchant payouts T+1 商户结算",
        Section.COMMISSION_SETTLEMENT: "Commission settlement 酬金清算",
        Section.INVOICES: "Invoices: who invoices whom for what 发票",
    }
)

_OTHER_PARTIES: Mapping[str, str] = MappingProxyType(
    {
        BUREAU: "Expo bureau 世博局",
        PLATFORM: "Wallet platform operator 支付基地",
        BANK: "Banks via UnionPay 银行(银联)",
        MERCHANTS: "Wallet merchants 商户",
        BUYERS: "Ticket buyers 购票人",
        RECHARGE_CARD_SALES: "Recharge card sales 充值卡销售",
    }
)

LINE_COLUMNS = (
    "section",
    "item",
    "payer",
    "payee",
    "direction",
    "count",
    "amount_fen",
    "amount_yuan",
    "adjusts",
    "basis",
)
BALANCE_COLUMNS = (
    "counterparty",
    "counterparty_name",
    "receivable_fen",
    "payable_fen",
    "net_fen",
    "receivable_yuan",
    "payable_yuan",
    "net_yuan",
)
TOTAL = "total"


@dataclass(frozen=True)
class Statement:
    """A party's statement for a document ("2010-06" or "commission-final"): its lines, already the party's own
    and in print order."""

    document: str
    party: str
    status: str
    closed_at: datetime | None
    lines: list[Line]
    generated_at: datetime


def party_name(party: str) -> str:
    """A party as printed: a province's company in English and Chinese, or the bureau, platform, banks ..."""
    company = PROVINCES.get(party)
    if company is not None:
        return f"{company.name} company {company.name_zh}公司 ({party})"
    return _OTHER_PARTIES.get(party, party)


def document_title(document: str) -> str:
    """What a statement covers: a settlement month, or the final commission settlement after ticket sales end."""
    if document == FINAL_DOCUMENT:
        return "Final commission settlement 酬金最终清算"
    return f"Month 月份 {document}"


def item_label(item: str) -> str:
    """A line's item as a person reads it: "merchant_fees_remote" -> "merchant fees remote"."""
    return item.replace("_", " ")


def counterparty(line: Line, party: str) -> str:
    """The other side of a line the party is on."""
    return line.payer if line.payee == party else line.payee


def direction(line: Line, party: str) -> str:
    """From the party's view: it is owed a line it is the payee of, owes one it pays; on an invoice the payee
    issues and the payer is billed."""
    receiving = line.payee == party
    if line.section is Section.INVOICES:
        return INVOICE_ISSUED if receiving else INVOICE_RECEIVED
    if line.section is Section.COMMISSION:
        return ACCRUED_RECEIVABLE if receiving else ACCRUED_PAYABLE
    return RECEIVABLE if receiving else PAYABLE


def inflow_outflow(lines: Iterable[Line], party: str) -> tuple[int, int]:
    """The sums of the lines the party is the payee of (owed to it, or invoiced by it) and the payer of."""
    inflow = outflow = 0
    for line in lines:
        if line.payee == party:
            inflow += line.amount_fen
        if line.payer == party:
            outflow += line.amount_fen
    return inflow, outflow


def total_balance(party_balances: Iterable[Balance]) -> Balance:
    """The party's position over all counterparties: the sum of its per-counterparty balances."""
    receivable = payable = 0
    for balance in party_balances:
        receivable += balance.receivable_fen
        payable += balance.payable_fen
    return Balance(TOTAL, receivable, payable)


def local_time(moment: datetime) -> datetime:
    """An instant in the Expo's time zone (Asia/Shanghai); a naive time is taken as already local."""
    return moment.astimezone(EXPO_TZ) if moment.tzinfo is not None else moment


def statement_csv(statement: Statement) -> str:
    """The statement as CSV blocks separated by an empty row: header fields, one row per line, then the balance
    per counterparty and the total; amounts in exact fen, with yuan beside them for reading."""
    out = io.StringIO()
    writer = csv.writer(out)
    party = statement.party
    writer.writerows(
        [
            ("document", statement.document),
            ("party", party),
            ("party_name", party_name(party)),
            ("status", statement.status),
            ("closed_at", local_time(statement.closed_at).isoformat() if statement.closed_at else ""),
            ("generated_at", local_time(statement.generated_at).isoformat()),
            (),
            LINE_COLUMNS,
        ]
    )
    writer.writerows(
        (
            line.section.value,
            line.item,
            line.payer,
            line.payee,
            direction(line, party),
            line.count,
            line.amount_fen,
            format_fen(line.amount_fen),
            line.adjusts or "",
            line.basis,
        )
        for line in statement.lines
    )
    writer.writerows([(), BALANCE_COLUMNS])
    party_balances = balances(statement.lines, party)
    for balance in [*party_balances, total_balance(party_balances)]:
        name = "" if balance.counterparty == TOTAL else party_name(balance.counterparty)
        figures = (balance.receivable_fen, balance.payable_fen, balance.net_fen)
        writer.writerow((balance.counterparty, name, *figures, *(format_fen(figure) for figure in figures)))
    return out.getvalue()
