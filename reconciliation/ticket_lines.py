"""The ticket side of a settlement: the commission each company accrued and invoices, the proceeds remitted to
Shanghai and by Shanghai to the bureau, and the final commission settlement, as statement lines.

Both figures come from the payments whose money moved in the window (a sale when its charge was confirmed, a void
or refund, negated, when its money went back), aggregated in the database; Python only labels the sums.
"""

from collections.abc import Iterable, Sequence
from dataclasses import astuple, dataclass

from sqlalchemy import case, func, literal, select
from sqlalchemy.ext.asyncio import AsyncSession

from expo.provinces import SHANGHAI
from reconciliation.commission import CHARGE, accrue_commission, settled_in
from reconciliation.rules import BUREAU, PLATFORM, CommissionRates
from reconciliation.statement_rules import BUYERS, Line, Section, Window
from ticketing.models import Order, Payment
from ticketing.sales_rules import PaymentMethod


async def commission_lines(
    session: AsyncSession,
    *,
    window: Window,
    rates: CommissionRates,
    closed: Sequence[tuple[Window, CommissionRates]] = (),
) -> list[Line]:
    """domain: each company's commission of the window is owed by the bureau and invoiced to it monthly; a void or
    refund reverses its sale's commission at the rate of the month the sale was settled in (`closed`)."""
    basis = f"commission on ticket charges, voids and refunds settled {window}"
    lines: list[Line] = []
    for row in await accrue_commission(session, window=window, rates=rates, closed=closed):
        company = row.company
        if row.sales:
            lines.append(
                Line(
                    Section.COMMISSION,
                    "commission_on_sales",
                    BUREAU,
                    company,
                    row.sales,
                    row.sales_commission_fen,
                    basis,
                )
            )
        if row.reversals:
            lines.append(
                Line(
                    Section.COMMISSION,
                    "commission_reversed",
                    BUREAU,
                    company,
                    row.reversals,
                    -row.reversed_commission_fen,
                    basis,
                )
            )
        lines.append(
            Line(Section.INVOICES, "commission", BUREAU, company, row.sales + row.reversals, row.commission_fen, basis)
        )
    return lines


async def proceeds_lines(session: AsyncSession, *, window: Window) -> list[Line]:
    """domain: the selling province (the platform, for wallet-paid tickets) remits the proceeds in full to Shanghai,
    Shanghai remits all of them to the bureau, and the bureau invoices them to the buyers."""
    payer = case((Payment.method == PaymentMethod.WALLET.value, literal(PLATFORM)), else_=Order.sale_province)
    is_sale = Payment.kind == CHARGE
    query = (
        select(
            payer.label("payer"),
            func.sum(case((is_sale, 1), else_=0)),
            func.sum(case((is_sale, Payment.amount_fen), else_=0)),
            func.sum(case((is_sale, 0), else_=1)),
            func.sum(case((is_sale, 0), else_=Payment.amount_fen)),
        )
        .join(Order, Order.id == Payment.order_id)
        .where(*settled_in(window))
        .group_by(payer)
        .order_by(payer)
    )
    basis = f"ticket charges, voids and refunds settled {window}"
    lines: list[Line] = []
    whole = _Movements(0, 0, 0, 0)
    for row in (await session.execute(query)).all():
        remitter, moved = str(row[0]), _Movements(int(row[1]), int(row[2]), int(row[3]), int(row[4]))
        whole = _Movements(*(a + b for a, b in zip(astuple(whole), astuple(moved), strict=True)))
        if remitter != SHANGHAI:  # Shanghai's own non-wallet sales are already in Shanghai
            lines += moved.lines(remitter, SHANGHAI, basis)
    lines += whole.lines(SHANGHAI, BUREAU, basis)
    if whole.sales or whole.reversals:
        count, net = whole.sales + whole.reversals, whole.sold - whole.reversed
        lines.append(Line(Section.INVOICES, "ticket_proceeds", BUYERS, BUREAU, count, net, basis))
    return lines


@dataclass(frozen=True)
class _Movements:
    """Sales and reversals of one remitter: how many and how much (both amounts positive)."""

    sales: int
    sold: int
    reversals: int
    reversed: int

    def lines(self, payer: str, payee: str, basis: str) -> list[Line]:
        lines = []
        if self.sales:
            lines.append(Line(Section.PROCEEDS, "ticket_sales", payer, payee, self.sales, self.sold, basis))
        if self.reversals:
            lines.append(
                Line(Section.PROCEEDS, "ticket_reversals", payer, payee, self.reversals, -self.reversed, basis)
            )
        return lines


def final_commission_lines(accrued: Iterable[Line], *, through: str) -> list[Line]:
    """domain: after ticket sales end the bureau pays Shanghai the whole commission of every closed month and
    Shanghai passes each province its part, through the inter-province settlement.

    The parts are the companies' accrued commission lines (adjustments included) summed per company, so the
    settlement equals, to the fen, what each company invoiced.
    """
    per_company: dict[str, int] = {}
    for line in accrued:
        if line.section is Section.COMMISSION:
            per_company[line.payee] = per_company.get(line.payee, 0) + line.amount_fen
    basis = f"commission accrued in the closed months through {through}"
    whole = sum(per_company.values())
    lines = [Line(Section.COMMISSION_SETTLEMENT, "commission", BUREAU, SHANGHAI, len(per_company), whole, basis)]
    lines += [
        Line(Section.COMMISSION_SETTLEMENT, "commission_share", SHANGHAI, company, 1, part, basis)
        for company, part in sorted(per_company.items())
        if company != SHANGHAI and part
    ]
    return lines if whole or len(lines) > 1 else []
