"""One party's settlement statement as an A4 PDF a finance person files: a table per section with its
subtotals and the adjustments of closed months under their own heading, the balance per counterparty,
who invoices whom for what, "page x of y", the generation time on every page and lines for the preparer's
and the approver's signatures.

Chinese needs a CJK TrueType font (`expo.fonts.CJK`; the test command installs fonts-wqy-microhei). Without
one the statement is still printed, in Latin only: the Chinese is dropped rather than drawn as boxes.
"""

import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from itertools import groupby
from pathlib import Path
from typing import Literal

from fpdf import FPDF
from fpdf.enums import XPos, YPos

from expo import fonts
from expo.clock import EXPO_TZ
from expo.money import format_fen
from reconciliation.statement_export import (
    ACCRUED_PAYABLE,
    ACCRUED_RECEIVABLE,
    INVOICE_ISSUED,
    PAYABLE,
    RECEIVABLE,
    SECTION_TITLES,
    Statement,
    counterparty,
    direction,
    document_title,
    inflow_outflow,
    item_label,
    local_time,
    party_name,
    total_balance,
)
from reconciliation.statement_rules import Line, Section, balances

# fontTools reports each font subset at INFO: a server's log would fill with glyph lists.
logging.getLogger("fontTools").setLevel(logging.WARNING)

FAMILY = "statement"
CORE_FAMILY = "helvetica"
BODY_PT = 8.5
NOTE_PT = 6.5
LINE_MM = 4.0
NOTE_MM = 3.0
PAD_MM = 0.8
FIRST_CJK = 0x2E80  # CJK radicals onwards: ideographs, CJK punctuation, full-width forms
HEADING_ROOM_MM = 22  # a heading is never left alone at the foot of a page
SIGNATURE_ROOM_MM = 32
GREY = 110
_SPACE_BEFORE_PUNCTUATION = re.compile(r" ([):;,.])")  # left where the Chinese was dropped
RULE_GREY = 200
SHADE = 236


@dataclass(frozen=True)
class _Column:
    title: str
    width: float
    align: Literal["L", "R"]


LINE_TABLE = (
    _Column("Item 项目", 66, "L"),
    _Column("Counterparty 对方", 50, "L"),
    _Column("Direction 方向", 24, "L"),
    _Column("Count 笔数", 14, "R"),
    _Column("Amount 金额 (yuan 元)", 26, "R"),
)
BALANCE_TABLE = (
    _Column("Counterparty 对方", 60, "L"),
    _Column("Receivable 应收 (yuan 元)", 40, "R"),
    _Column("Payable 应付 (yuan 元)", 40, "R"),
    _Column("Net 净额 (yuan 元)", 40, "R"),
)
DIRECTION_TEXT = {
    RECEIVABLE: "receivable 应收",
    PAYABLE: "payable 应付",
    INVOICE_ISSUED: "issued 开出",
    ACCRUED_RECEIVABLE: "accrued 应计收",
    ACCRUED_PAYABLE: "accrued 应计付",
}
INVOICE_RECEIVED_TEXT = "received 收到"


def yuan_text(amount_fen: int) -> str:
    """Fen as the yuan a finance person reads, with thousands separators: 123456789 -> '1,234,567.89'."""
    text = format_fen(amount_fen)
    sign = "-" if text.startswith("-") else ""
    whole, _, fen = text.lstrip("-").partition(".")
    return f"{sign}{int(whole):,}.{fen}"


def _when(moment: datetime) -> str:
    local = local_time(moment)
    return f"{local:%Y-%m-%d %H:%M}" + (" Asia/Shanghai" if local.tzinfo is not None else "")


def _typeface(pdf: FPDF) -> tuple[str, bool]:
    """Load the first font present: a CJK one (Chinese drawn), else a Unicode Latin one, else the core
    Helvetica (Latin-1 only). Says the family and whether it draws Chinese."""
    for path, chinese in [*((path, True) for path in fonts.CJK), *((path, False) for path in fonts.LATIN)]:
        if Path(path).is_file():
            pdf.add_font(FAMILY, "", path)  # a .ttc collection: its first face
            return FAMILY, chinese
    return CORE_FAMILY, False


class _StatementDocument(FPDF):
    """The statement being laid out; rows are measured first so none is ever split across pages."""

    def __init__(self, statement: Statement) -> None:
        super().__init__(orientation="portrait", unit="mm", format="A4")
        self.statement = statement
        self.family, self.chinese = _typeface(self)
        self.columns: Sequence[_Column] = ()  # the open table, whose header is repeated after a page break
        generated = statement.generated_at
        self.set_creation_date(generated if generated.tzinfo is not None else generated.replace(tzinfo=EXPO_TZ))
        self.set_title(self.printable(f"Settlement statement {statement.document} {party_name(statement.party)}"))
        self.set_author("Expo settlement")
        self.set_margins(15, 15, 15)
        self.set_auto_page_break(auto=True, margin=18)

    def printable(self, text: str) -> str:
        """The text as the loaded font can draw it: Chinese dropped without a CJK font, Latin-1 for the core font."""
        if self.chinese:
            return text
        text = "".join(char for char in text if ord(char) < FIRST_CJK)
        if self.family == CORE_FAMILY:
            text = text.encode("latin-1", "ignore").decode("latin-1")
        return _SPACE_BEFORE_PUNCTUATION.sub(r"\1", " ".join(text.split()))

    def use(self, size: float, grey: int = 0) -> None:
        self.set_font(self.family, "", size)
        self.set_text_color(grey)

    def header(self) -> None:
        if self.page_no() > 1:
            self.use(NOTE_PT, GREY)
            title = f"{party_name(self.statement.party)} · {document_title(self.statement.document)}"
            self.cell(0, NOTE_MM, self.printable(title), new_x=XPos.LMARGIN, new_y=YPos.NEXT)
            self.ln(2)

    def footer(self) -> None:
        self.set_y(-13)
        self.use(NOTE_PT, GREY)
        generated = self.printable(f"Generated 生成于 {_when(self.statement.generated_at)}")
        self.cell(self.epw / 2, NOTE_MM, generated, new_x=XPos.RIGHT, new_y=YPos.TOP)
        self.cell(self.epw / 2, NOTE_MM, f"page {self.page_no()} of {{nb}}", align="R")

    def render(self) -> None:
        statement = self.statement
        self.add_page()
        self.title_block()
        for section in Section:
            if section is Section.INVOICES:
                self.balances_block()
            section_lines = [line for line in statement.lines if line.section is section]
            if section_lines:
                self.section_block(section, section_lines)
            elif section is Section.INVOICES:
                self.heading(SECTION_TITLES[section], 12)
                self.note("No invoices are issued or received on this statement. 本期无发票。")
        self.signatures()

    def title_block(self) -> None:
        statement = self.statement
        for size, text in (
            (16, "Settlement statement 结算单"),
            (12, party_name(statement.party)),
            (12, document_title(statement.document)),
        ):
            self.use(size)
            self.cell(0, size * 0.5, self.printable(text), new_x=XPos.LMARGIN, new_y=YPos.NEXT)
        status = f"Status 状态: {statement.status}"
        if statement.closed_at is not None:
            status += f"; closed 结账于 {_when(statement.closed_at)}"
        self.note(status)
        self.note(f"Generated 生成于 {_when(statement.generated_at)}")
        self.note("Each line: the payer owes the payee the amount; a negative amount is owed back. 负数为退回。")
        self.ln(2)

    def note(self, text: str) -> None:
        self.use(BODY_PT - 0.5, GREY)
        self.multi_cell(0, LINE_MM, self.printable(text), new_x=XPos.LMARGIN, new_y=YPos.NEXT)

    def heading(self, text: str, size: float) -> None:
        self.columns = ()
        if self.get_y() + HEADING_ROOM_MM > self.page_break_trigger:
            self.add_page()
        self.ln(2)
        self.use(size)
        self.cell(0, size * 0.5, self.printable(text), new_x=XPos.LMARGIN, new_y=YPos.NEXT)
        self.ln(1)

    def open_table(self, columns: Sequence[_Column]) -> None:
        self.columns = columns
        self.row([column.title for column in columns], shade=True)

    def section_block(self, section: Section, section_lines: list[Line]) -> None:
        party = self.statement.party
        self.heading(SECTION_TITLES[section], 12)
        own = [line for line in section_lines if line.adjusts is None]
        if own:
            self.line_table(own)
        corrections = [line for line in section_lines if line.adjusts is not None]
        for month, group in groupby(corrections, key=lambda line: line.adjusts):
            self.heading(f"Adjustments of closed month {month} 以前月份调整", 10)
            self.line_table(list(group))
        inflow, outflow = inflow_outflow(section_lines, party)
        if section is Section.INVOICES:
            subtotals = [("Invoices issued 开出发票", inflow), ("Invoices received 收到发票", outflow)]
        elif section is Section.COMMISSION:
            subtotals = [("Accrued receivable 应计应收", inflow), ("Accrued payable 应计应付", outflow)]
            subtotals.append(("Accrued net, paid by the final settlement 应计净额（最终清算时支付）", inflow - outflow))
        else:
            subtotals = [("Subtotal receivable 应收小计", inflow), ("Subtotal payable 应付小计", outflow)]
            subtotals.append(("Subtotal net 净额", inflow - outflow))
        for label, amount in subtotals:
            self.row([label, "", "", "", yuan_text(amount)], shade=True)

    def line_table(self, table_lines: list[Line]) -> None:
        party = self.statement.party
        self.open_table(LINE_TABLE)
        for line in table_lines:
            side = direction(line, party)
            cells = [
                item_label(line.item),
                party_name(counterparty(line, party)),
                DIRECTION_TEXT.get(side, INVOICE_RECEIVED_TEXT),
                f"{line.count:,}",
                yuan_text(line.amount_fen),
            ]
            self.row(cells, note=line.basis)

    def balances_block(self) -> None:
        party = self.statement.party
        self.heading("Balances by counterparty 往来余额", 12)
        self.note(
            f"Net = receivable - payable: positive, the counterparty owes {party_name(party)}; negative, "
            f"{party_name(party)} owes the counterparty. Invoices are not money and are not included."
        )
        party_balances = balances(self.statement.lines, party)
        self.open_table(BALANCE_TABLE)
        for balance in party_balances:
            figures = (balance.receivable_fen, balance.payable_fen, balance.net_fen)
            self.row([party_name(balance.counterparty), *(yuan_text(figure) for figure in figures)])
        total = total_balance(party_balances)
        figures = (total.receivable_fen, total.payable_fen, total.net_fen)
        self.row(["Total 合计", *(yuan_text(figure) for figure in figures)], shade=True)

    def wrap(self, text: str, width: float) -> list[str]:
        """The text broken into lines that fit the column, at spaces, or inside a word wider than the column
        (Chinese has no spaces). Ours rather than fpdf2's multi_cell, which is slow on hundreds of rows."""
        room = width - 2 * self.c_margin
        lines: list[str] = []
        current = ""
        for word in text.split(" "):
            candidate = f"{current} {word}" if current else word
            if self.get_string_width(candidate) <= room:
                current = candidate
                continue
            if current:
                lines.append(current)
            current = word
            while len(current) > 1 and self.get_string_width(current) > room:
                cut = len(current) - 1
                while cut > 1 and self.get_string_width(current[:cut]) > room:
                    cut -= 1
                lines.append(current[:cut])
                current = current[cut:]
        lines.append(current)
        return lines

    def row(self, cells: Sequence[str], *, note: str = "", shade: bool = False) -> None:
        """One table row, measured first: it moves whole to the next page (under the table's header) if it
        does not fit."""
        columns = self.columns
        texts = [self.printable(cell) for cell in cells]
        self.use(BODY_PT)
        wrapped = [self.wrap(text, column.width) for text, column in zip(texts, columns, strict=True)]
        self.use(NOTE_PT)
        note_lines = self.wrap(self.printable(note), columns[0].width) if note else []
        height = max(len(lines) for lines in wrapped) * LINE_MM
        height = max(height, len(wrapped[0]) * LINE_MM + len(note_lines) * NOTE_MM) + 2 * PAD_MM
        if self.get_y() + height > self.page_break_trigger:
            self.add_page()
            if not shade or texts != [self.printable(column.title) for column in columns]:
                self.open_table(columns)
        top, left = self.get_y(), self.l_margin
        width = sum(column.width for column in columns)
        if shade:
            self.set_fill_color(SHADE)
            self.rect(left, top, width, height, style="F")
        self.use(BODY_PT)
        x = left
        for lines, column in zip(wrapped, columns, strict=True):
            self.draw_lines(lines, column, x=x, top=top + PAD_MM, height=LINE_MM)
            x += column.width
        if note_lines:
            self.use(NOTE_PT, GREY)
            self.draw_lines(
                note_lines, columns[0], x=left, top=top + PAD_MM + len(wrapped[0]) * LINE_MM, height=NOTE_MM
            )
        self.set_draw_color(RULE_GREY)
        self.line(left, top + height, left + width, top + height)
        self.set_xy(left, top + height)

    def draw_lines(self, lines: list[str], column: _Column, *, x: float, top: float, height: float) -> None:
        for index, text in enumerate(lines):
            self.set_xy(x, top + index * height)
            self.cell(column.width, height, text, align=column.align)

    def signatures(self) -> None:
        self.columns = ()
        if self.get_y() + SIGNATURE_ROOM_MM > self.page_break_trigger:
            self.add_page()
        self.ln(10)
        self.use(BODY_PT + 1)
        for role in ("Prepared by 制表人", "Approved by 审核人"):
            self.cell(34, 8, self.printable(role), new_x=XPos.RIGHT, new_y=YPos.TOP)
            self.cell(70, 8, "_" * 34, new_x=XPos.RIGHT, new_y=YPos.TOP)
            self.cell(20, 8, self.printable("Date 日期"), new_x=XPos.RIGHT, new_y=YPos.TOP)
            self.cell(0, 8, "_" * 18, new_x=XPos.LMARGIN, new_y=YPos.NEXT)
            self.ln(4)


def statement_pdf(statement: Statement) -> bytes:
    """The statement as an A4 PDF: sections with subtotals, adjustments apart, balances, invoices, signatures."""
    document = _StatementDocument(statement)
    document.render()
    return bytes(document.output())
