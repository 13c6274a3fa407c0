"""A T+1 payout day's file: one line per merchant paid or carrying a net that day, as the bank and the merchants
reconcile it: its payments, fees and refunds since the last payout, what it carried in (late records dated before
the last payout's cutoff included), what was paid and the payout's bank reference.

`payout_file` reads a day that has been run; `payout_file_csv` is pure and renders the rows. Amounts are integer
fen, each also rendered in yuan (`expo.money.format_fen`), so every figure adds up to the fen.
"""

import csv
import io
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from expo.errors import NotFound
from expo.money import format_fen
from reconciliation.models import MerchantPayout, PayoutRun
from wallet.models import Merchant, WalletTransfer

COLUMNS = (
    "payout_day",
    "merchant",
    "name",
    "province",
    "payments",
    "gross_fen",
    "gross_yuan",
    "fee_fen",
    "fee_yuan",
    "refunds",
    "refunded_fen",
    "refunded_yuan",
    "carried_in_fen",
    "carried_in_yuan",
    "amount_fen",
    "amount_yuan",
    "reference",
)


@dataclass(frozen=True)
class PayoutFileRow:
    """One merchant's line of a payout day: `amount_fen` = `carried_in_fen` + `gross_fen` - `fee_fen` -
    `refunded_fen` when that is above zero and its account covers it; else what it covered, the rest carried."""

    payout_day: date
    merchant_code: str
    merchant_name: str
    province: str
    payments: int
    gross_fen: int
    fee_fen: int
    refunds: int
    refunded_fen: int  # returned to users, net of the fees given back
    # Owed from earlier days and not yet paid; on a run's first day, what the merchant's account shows owed from
    # before the last run's cutoff, so it includes records dated before that cutoff that were posted after it ran.
    carried_in_fen: int
    amount_fen: int
    reference: str | None  # the payout transfer's bank reference; None when nothing was paid

    @property
    def carried_out_fen(self) -> int:
        """What the merchant is still owed (negative: owes back) after this day's payout."""
        return self.carried_in_fen + self.gross_fen - self.fee_fen - self.refunded_fen - self.amount_fen


async def payout_file(session: AsyncSession, *, payout_day: date) -> list[PayoutFileRow]:
    """A run payout day's lines, by merchant code; a day not run (not a working day, or not yet) is not found."""
    if await session.get(PayoutRun, payout_day) is None:
        raise NotFound("payout_day_not_run", f"no payouts were run for {payout_day}", payout_day=payout_day.isoformat())
    rows = await session.execute(
        select(
            Merchant.code,
            Merchant.name,
            Merchant.province_code,
            MerchantPayout.payments,
            MerchantPayout.gross_fen,
            MerchantPayout.fee_fen,
            MerchantPayout.refunds,
            MerchantPayout.refunded_fen,
            MerchantPayout.carried_in_fen,
            MerchantPayout.amount_fen,
            WalletTransfer.reference,
        )
        .join(Merchant, Merchant.id == MerchantPayout.merchant_id)
        .outerjoin(WalletTransfer, WalletTransfer.id == MerchantPayout.transfer_id)
        .where(MerchantPayout.payout_day == payout_day)
        .order_by(Merchant.code)
    )
    return [PayoutFileRow(payout_day, *row) for row in rows]


def payout_file_csv(rows: Iterable[PayoutFileRow]) -> str:
    """The day's file as CSV text: a header, then one line per merchant with its amounts in fen and in yuan."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(COLUMNS)
    for row in rows:
        amounts = (row.gross_fen, row.fee_fen, row.refunded_fen, row.carried_in_fen, row.amount_fen)
        gross, fee, refunded, carried_in, paid = ((fen, format_fen(fen)) for fen in amounts)
        writer.writerow(
            (
                row.payout_day.isoformat(),
                row.merchant_code,
                row.merchant_name,
                row.province,
                row.payments,
                *gross,
                *fee,
                row.refunds,
                *refunded,
                *carried_in,
                *paid,
                row.reference or "",
            )
        )
    return out.getvalue()
