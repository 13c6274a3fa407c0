"""A party's statement as CSV (read back to the fen) and as PDF (its text, pages and fonts)."""

import csv
import io
import time
from datetime import datetime
from pathlib import Path

import pytest
from pypdf import PdfReader

from expo import fonts
from expo.clock import EXPO_TZ
from expo.money import format_fen
from reconciliation.rules import BUREAU, PLATFORM
from reconciliation.statement_export import (
    BALANCE_COLUMNS,
    LINE_COLUMNS,
    Statement,
    direction,
    party_name,
    statement_csv,
)
from reconciliation.statement_pdf import statement_pdf, yuan_text
from reconciliation.statement_rules import (
    BANK,
    BUYERS,
    FINAL_DOCUMENT,
    MERCHANTS,
    RECHARGE_CARD_SALES,
    Line,
    Section,
    lines_of_party,
    sort_lines,
)

CLOSED_AT = datetime(2010, 7, 3, 18, 0, tzinfo=EXPO_TZ)
GENERATED_AT = datetime(2010, 7, 5, 9, 30, tzinfo=EXPO_TZ)
MAY = "2010-05"


def _line(section: Section, item: str, payer: str, payee: str, count: int, amount: int, adjusts: str | None = None):
    return Line(section, item, payer, payee, count, amount, f"{item} {payer}->{payee} 2010-06", adjusts)


# A month touching every party kind, with odd fen, negative lines and adjustments of a closed month.
MONTH = [
    _line(Section.COMMISSION, "commission", BUREAU, "31", 1_203, 1_804_517),
    _line(Section.COMMISSION, "commission", BUREAU, "44", 802, 1_022_551),
    _line(Section.COMMISSION, "commission", BUREAU, "44", -3, -3_827, adjusts=MAY),
    _line(Section.PROCEEDS, "hall_sales", "44", "31", 640, 10_240_000),
    _line(Section.PROCEEDS, "hall_sales", "44", "31", -2, -32_000, adjusts=MAY),
    _line(Section.PROCEEDS, "wallet_sales", PLATFORM, "31", 95, 1_520_000),
    _line(Section.PROCEEDS, "proceeds", "31", BUREAU, 1_938, 60_145_205),
    _line(Section.WALLET_FEES, "merchant_fees_remote", PLATFORM, "44", 4_410, 88_213),
    _line(Section.WALLET_FEES, "merchant_fee_refunds_remote", PLATFORM, "44", 12, -251),
    _line(Section.WALLET_FEES, "merchant_fees_proximity", PLATFORM, "31", 977, 14_661),
    _line(Section.WALLET_FEES, "merchant_fees_proximity", PLATFORM, "44", 977, 6_283),
    _line(Section.WALLET_FEES, "merchant_fee_refunds_remote", PLATFORM, "44", 1, -5, adjusts=MAY),
    _line(Section.WALLET_FUNDS, "hall_cash_top_ups", "44", PLATFORM, 301, 3_010_000),
    _line(Section.WALLET_FUNDS, "bank_top_ups", BANK, PLATFORM, 5_120, 25_600_050),
    _line(Section.WALLET_FUNDS, "recharge_card_top_ups", RECHARGE_CARD_SALES, PLATFORM, 88, 880_000),
    _line(Section.WALLET_FUNDS, "withdrawals", PLATFORM, BANK, 41, 1_234_567),
    _line(Section.MERCHANT_PAYOUTS, "payout_2010-06-02", PLATFORM, MERCHANTS, 17, 4_441_089),
    _line(Section.MERCHANT_PAYOUTS, "payout_2010-06-03", PLATFORM, MERCHANTS, 19, 5_003_117),
    _line(Section.COMMISSION_SETTLEMENT, "commission", BUREAU, "31", 2_005, 2_827_068),
    _line(Section.COMMISSION_SETTLEMENT, "commission", "31", "44", 802, 1_022_551),
    _line(Section.INVOICES, "commission", BUREAU, "31", 1_203, 1_804_517),
    _line(Section.INVOICES, "commission", BUREAU, "44", 802, 1_022_551),
    _line(Section.INVOICES, "proceeds", BUYERS, BUREAU, 1_938, 60_145_205),
]
PARTIES = [BUREAU, PLATFORM, "31", "44"]


def _statement(party: str, lines: list[Line] = MONTH, document: str = "2010-06") -> Statement:
    return Statement(
        document=document,
        party=party,
        status="closed",
        closed_at=CLOSED_AT,
        lines=sort_lines(lines_of_party(lines, party)),
        generated_at=GENERATED_AT,
    )


def _blocks(text: str) -> list[list[list[str]]]:
    blocks: list[list[list[str]]] = [[]]
    for row in csv.reader(io.StringIO(text)):
        if row:
            blocks[-1].append(row)
        else:
            blocks.append([])
    return blocks


def _pdf_pages(pdf: bytes) -> list[str]:
    return [page.extract_text() for page in PdfReader(io.BytesIO(pdf)).pages]


# --- CSV ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("party", PARTIES)
def test_csv_reads_back_to_the_lines_and_totals_to_the_fen(party: str) -> None:
    statement = _statement(party)
    header, line_rows, balance_rows = _blocks(statement_csv(statement))

    assert dict(header) == {
        "document": "2010-06",
        "party": party,
        "party_name": party_name(party),
        "status": "closed",
        "closed_at": "2010-07-03T18:00:00+08:00",
        "generated_at": "2010-07-05T09:30:00+08:00",
    }
    assert tuple(line_rows[0]) == LINE_COLUMNS
    rows = [dict(zip(LINE_COLUMNS, row, strict=True)) for row in line_rows[1:]]
    read_back = [
        Line(
            Section(row["section"]),
            row["item"],
            row["payer"],
            row["payee"],
            int(row["count"]),
            int(row["amount_fen"]),
            row["basis"],
            row["adjusts"] or None,
        )
        for row in rows
    ]
    assert read_back == statement.lines
    assert len(read_back) >= 3
    for row in rows:
        assert row["amount_yuan"] == format_fen(int(row["amount_fen"]))
        owed_to_party = row["payee"] == party
        expected = {
            (True, "money"): "receivable",
            (False, "money"): "payable",
            (True, "invoices"): "invoice issued",
            (False, "invoices"): "invoice received",
            (True, "commission"): "accrued receivable",
            (False, "commission"): "accrued payable",
        }[owed_to_party, row["section"] if row["section"] in ("invoices", "commission") else "money"]
        assert row["direction"] == expected

    assert tuple(balance_rows[0]) == BALANCE_COLUMNS
    balances = [dict(zip(BALANCE_COLUMNS, row, strict=True)) for row in balance_rows[1:]]
    *per_counterparty, total = balances
    assert total["counterparty"] == "total"
    money = [row for row in rows if row["section"] not in ("invoices", "commission")]
    for balance in per_counterparty:
        other = balance["counterparty"]
        receivable = sum(int(r["amount_fen"]) for r in money if r["payer"] == other and r["payee"] == party)
        payable = sum(int(r["amount_fen"]) for r in money if r["payee"] == other and r["payer"] == party)
        assert (int(balance["receivable_fen"]), int(balance["payable_fen"])) == (receivable, payable)
        assert int(balance["net_fen"]) == receivable - payable
        assert balance["counterparty_name"] == party_name(other)
    assert {b["counterparty"] for b in per_counterparty} == {
        r["payer"] if r["payee"] == party else r["payee"] for r in money
    }
    for column in ("receivable", "payable", "net"):
        assert int(total[f"{column}_fen"]) == sum(int(b[f"{column}_fen"]) for b in per_counterparty)
        for balance in balances:
            assert balance[f"{column}_yuan"] == format_fen(int(balance[f"{column}_fen"]))
    assert int(total["receivable_fen"]) == sum(int(r["amount_fen"]) for r in money if r["payee"] == party)
    assert int(total["payable_fen"]) == sum(int(r["amount_fen"]) for r in money if r["payer"] == party)


def test_csv_figures_of_guangdong() -> None:
    rows = _blocks(statement_csv(_statement("44")))[2]
    assert rows[1:] == [
        ["31", party_name("31"), "1022551", "10208000", "-9185449", "10225.51", "102080.00", "-91854.49"],
        ["platform", party_name(PLATFORM), "94240", "3010000", "-2915760", "942.40", "30100.00", "-29157.60"],
        ["total", "", "1116791", "13218000", "-12101209", "11167.91", "132180.00", "-121012.09"],
    ]  # fmt: skip


def test_csv_of_an_empty_open_statement() -> None:
    statement = Statement("2010-06", "65", "open", None, [], GENERATED_AT)
    header, line_rows, balance_rows = _blocks(statement_csv(statement))
    assert dict(header)["closed_at"] == ""
    assert dict(header)["party_name"] == "Xinjiang company 新疆公司 (65)"
    assert line_rows == [list(LINE_COLUMNS)]
    assert balance_rows == [list(BALANCE_COLUMNS), ["total", "", "0", "0", "0", "0.00", "0.00", "0.00"]]


def test_direction_of_invoices() -> None:
    invoice = _line(Section.INVOICES, "commission", BUREAU, "44", 1, 100)
    assert direction(invoice, "44") == "invoice issued"
    assert direction(invoice, BUREAU) == "invoice received"


# --- PDF ---------------------------------------------------------------------------------------------

cjk_present = pytest.mark.skipif(
    not any(Path(path).is_file() for path in fonts.CJK), reason="no CJK font: apt-get install fonts-wqy-microhei"
)


@pytest.mark.parametrize(
    ("amount", "text"), [(0, "0.00"), (-5, "-0.05"), (123456789, "1,234,567.89"), (-100000, "-1,000.00")]
)
def test_yuan_text(amount: int, text: str) -> None:
    assert yuan_text(amount) == text


@cjk_present
@pytest.mark.parametrize("party", PARTIES)
def test_pdf_shows_the_party_month_every_amount_and_the_net_totals(party: str) -> None:
    statement = _statement(party)
    pdf = statement_pdf(statement)

    assert pdf.startswith(b"%PDF-")
    pages = _pdf_pages(pdf)
    assert 1 <= len(pages) <= 3
    text = "\n".join(pages)
    assert party_name(party) in text
    assert "Month 月份 2010-06" in text
    for line in statement.lines:
        assert yuan_text(line.amount_fen) in text
    rows = _blocks(statement_csv(statement))[2][1:]
    for row in rows:
        assert yuan_text(int(row[4])) in text  # each counterparty's net and the total net
    assert "Adjustments of closed month 2010-05" in text
    assert "Invoices: who invoices whom for what 发票" in text
    assert "Prepared by 制表人" in text
    assert "Approved by 审核人" in text
    assert "Generated 生成于 2010-07-05 09:30" in text
    assert f"page {len(pages)} of {len(pages)}" in pages[-1]


@cjk_present
def test_pdf_of_guangdong_in_figures() -> None:
    text = "\n".join(_pdf_pages(statement_pdf(_statement("44"))))
    assert "Guangdong company 广东公司 (44)" in text
    assert "102,400.00" in text  # hall sales remitted to Shanghai
    assert "-121,012.09" in text  # what Guangdong owes, net, over the month (the accrued commission aside)
    assert "-0.05" in text  # the adjustment of May's refunds
    for row in (
        "commission Expo bureau 世博局 accrued 应计收 802 10,225.51",
        "Accrued receivable 应计应收 10,187.24",
        "hall sales Shanghai company 上海公司 (31) payable 应付 -2 -320.00",  # May's, under the adjustments
        "Subtotal receivable 应收小计 942.40",  # wallet fees, with May's refund
        "Subtotal payable 应付小计 102,080.00",  # proceeds, with May's void
        "Subtotal net 净额 -102,080.00",
        "Invoices issued 开出发票 10,225.51",
        "Invoices received 收到发票 0.00",
        "Wallet platform operator 支付基地 942.40 30,100.00 -29,157.60",
        "Total 合计 11,167.91 132,180.00 -121,012.09",
    ):
        assert row in text


def test_final_commission_document() -> None:
    text = "\n".join(_pdf_pages(statement_pdf(_statement("31", document=FINAL_DOCUMENT))))
    assert "Final commission settlement" in text


def test_pdf_is_the_same_for_the_same_statement() -> None:
    statement = _statement(BUREAU)
    assert statement_pdf(statement) == statement_pdf(statement)


def _long_statement(count: int) -> Statement:
    payouts = [
        _line(Section.MERCHANT_PAYOUTS, f"payout_{index:04d}", PLATFORM, MERCHANTS, index, 100_000 + index * 37)
        for index in range(count)
    ]
    return _statement(PLATFORM, [*MONTH, *payouts])


def test_three_hundred_lines_paginate_with_page_numbers() -> None:
    statement = _long_statement(300)
    started = time.perf_counter()
    pdf = statement_pdf(statement)
    elapsed = time.perf_counter() - started
    print(f"{len(statement.lines)} lines rendered in {elapsed:.2f} s")

    pages = _pdf_pages(pdf)
    assert len(pages) >= 5
    for number, page in enumerate(pages, start=1):
        assert f"page {number} of {len(pages)}" in page
        assert "Generated" in page
    text = "\n".join(pages)
    for line in statement.lines:
        assert yuan_text(line.amount_fen) in text
    assert text.count("Item") >= len(pages) - 1  # the table's header is repeated on every page it runs onto


def test_a_long_basis_without_spaces_wraps_inside_its_column() -> None:
    basis = "钱包支付与退款" * 30
    line = Line(Section.WALLET_FEES, "merchant_fees_remote", PLATFORM, "44", 1, 100, basis)
    pdf = statement_pdf(_statement("44", [line]))
    assert pdf.startswith(b"%PDF-")
    assert len(_pdf_pages(pdf)) == 1


def test_without_a_cjk_font_the_latin_text_is_printed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(fonts, "CJK", ())
    if not any(Path(path).is_file() for path in fonts.LATIN):
        pytest.skip("no DejaVu font either")
    text = "\n".join(_pdf_pages(statement_pdf(_statement("44"))))
    assert "Guangdong company (44)" in text
    assert "Amount (yuan)" in text
    assert "广东" not in text
    assert "-121,012.09" in text


def test_without_any_font_file_the_core_font_still_makes_a_valid_pdf(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(fonts, "CJK", ())
    monkeypatch.setattr(fonts, "LATIN", ())
    statement = _statement(PLATFORM)
    pdf = statement_pdf(statement)

    assert pdf.startswith(b"%PDF-")
    pages = _pdf_pages(pdf)
    text = "\n".join(pages)
    assert "Wallet platform operator" in text
    assert "Month 2010-06" in text
    for line in statement.lines:
        assert yuan_text(line.amount_fen) in text
    assert f"page 1 of {len(pages)}" in pages[0]
