"""Settlement tables: closed months and their statement lines, T+1 merchant payouts, bank confirmations, the
final commission settlement and the discrepancies matching found.

A closed month's lines are never updated or deleted; a later correction is a new line of a later month that
names the month it corrects (`adjusts`).
"""

from datetime import date, datetime

from sqlalchemy import BigInteger, ForeignKey, Index, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from expo.db import Base
from wallet.models import BIG_ID


class SettlementMonth(Base):
    """A closed month: the window of records it settled and the commission rates it used."""

    __tablename__ = "settlement_months"

    month: Mapped[str] = mapped_column(String(7), primary_key=True)  # 2010-06
    # The records it covers: recorded at or after `window_start` (None: from the beginning) and before `window_end`.
    window_start: Mapped[datetime | None]
    window_end: Mapped[datetime]
    rates: Mapped[str] = mapped_column(String(400))  # the commission rates in basis points, "default=300,peak=250"
    # The last payment and posting ids recorded when it closed: later ones dated into its window are late records,
    # carried into a later month as adjustments.
    payments_through: Mapped[int] = mapped_column(BigInteger)
    postings_through: Mapped[int] = mapped_column(BigInteger)
    lines: Mapped[int]
    closed_at: Mapped[datetime]
    closed_by: Mapped[str] = mapped_column(String(100))


class StatementLine(Base):
    """One figure of a settlement document: `payer` owes `payee` `amount_fen` for `count` records of `item`.

    `document` is a month ("2010-06") or "commission-final". An invoice is a line of section "invoices":
    the payee issues it, the payer is billed.
    """

    __tablename__ = "statement_lines"
    __table_args__ = (Index("ix_statement_lines_document_section", "document", "section"),)

    id: Mapped[int] = mapped_column(BIG_ID, primary_key=True)
    document: Mapped[str] = mapped_column(String(16))
    section: Mapped[str] = mapped_column(String(24))
    item: Mapped[str] = mapped_column(String(40))
    payer: Mapped[str] = mapped_column(String(40))
    payee: Mapped[str] = mapped_column(String(40))
    count: Mapped[int] = mapped_column(BigInteger)
    amount_fen: Mapped[int] = mapped_column(BigInteger)
    adjusts: Mapped[str | None] = mapped_column(String(7))  # the closed month this line corrects
    basis: Mapped[str] = mapped_column(String(300))  # what the figure is computed from


class PayoutRun(Base):
    """A T+1 payout day that has been run: it paid merchants what they earned before `cutoff`."""

    __tablename__ = "payout_runs"

    payout_day: Mapped[date] = mapped_column(primary_key=True)
    covered_from: Mapped[datetime | None]  # the previous run's cutoff (None: from the beginning)
    cutoff: Mapped[datetime]  # the payout day's 00:00, Asia/Shanghai
    merchants: Mapped[int]
    amount_fen: Mapped[int] = mapped_column(BigInteger)
    run_at: Mapped[datetime]


class MerchantPayout(Base):
    """One merchant's line of a payout day's file: its payments, fees and refunds since the last payout, and
    the net paid out through the ledger (a `merchant_payout` transfer); a net not above zero is carried."""

    __tablename__ = "merchant_payouts"
    __table_args__ = (UniqueConstraint("payout_day", "merchant_id"),)

    id: Mapped[int] = mapped_column(BIG_ID, primary_key=True)
    payout_day: Mapped[date] = mapped_column(ForeignKey("payout_runs.payout_day"))
    merchant_id: Mapped[int] = mapped_column(ForeignKey("merchants.id"), index=True)
    payments: Mapped[int]
    gross_fen: Mapped[int] = mapped_column(BigInteger)
    fee_fen: Mapped[int] = mapped_column(BigInteger)
    refunds: Mapped[int]
    refunded_fen: Mapped[int] = mapped_column(BigInteger)  # returned to users, net of the fees given back
    # Owed from earlier days and not yet paid; on a run's first day it includes records dated before the last
    # cutoff but posted after that run (paid, or netted, now).
    carried_in_fen: Mapped[int] = mapped_column(BigInteger)
    amount_fen: Mapped[int] = mapped_column(BigInteger)  # paid out this day (0: nothing to pay)
    transfer_id: Mapped[int | None] = mapped_column(BigInteger, ForeignKey("wallet_transfers.id"))


class BankConfirmationFile(Base):
    """A bank's confirmation file for one day; the same file uploaded again changes nothing."""

    __tablename__ = "bank_confirmation_files"
    __table_args__ = (UniqueConstraint("bank", "day"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    bank: Mapped[str] = mapped_column(String(16))
    day: Mapped[date]
    digest: Mapped[str] = mapped_column(String(64))  # SHA-256 of the file's canonical lines
    lines: Mapped[int]
    amount_fen: Mapped[int] = mapped_column(BigInteger)
    received_at: Mapped[datetime]


class BankConfirmation(Base):
    """One movement a bank confirms: our reference, what it was and its amount."""

    __tablename__ = "bank_confirmations"
    __table_args__ = (
        UniqueConstraint("bank", "reference", "kind"),
        Index("ix_bank_confirmations_reference_kind", "reference", "kind"),  # is this record of ours confirmed?
    )

    id: Mapped[int] = mapped_column(BIG_ID, primary_key=True)
    file_id: Mapped[int] = mapped_column(ForeignKey("bank_confirmation_files.id"), index=True)
    bank: Mapped[str] = mapped_column(String(16))
    day: Mapped[date] = mapped_column(index=True)
    reference: Mapped[str] = mapped_column(String(64))
    kind: Mapped[str] = mapped_column(String(12))
    amount_fen: Mapped[int] = mapped_column(BigInteger)


class CommissionFinal(Base):
    """The once-only settlement of the commission after ticket sales ended (its lines: "commission-final")."""

    __tablename__ = "commission_final"

    id: Mapped[int] = mapped_column(primary_key=True)  # always 1: there is one
    through_month: Mapped[str] = mapped_column(String(7))
    settled_at: Mapped[datetime]
    settled_by: Mapped[str] = mapped_column(String(100))


class Discrepancy(Base):
    """A difference matching found between two records of one thing, and its likely cause."""

    __tablename__ = "discrepancies"
    __table_args__ = (Index("ix_discrepancies_month_source", "month", "source"),)

    id: Mapped[int] = mapped_column(BIG_ID, primary_key=True)
    month: Mapped[str] = mapped_column(String(7))
    source: Mapped[str] = mapped_column(String(16))  # terminal_batch | gate_journal | bank
    code: Mapped[str] = mapped_column(String(32))
    province: Mapped[str | None] = mapped_column(String(2))
    subject: Mapped[str] = mapped_column(String(100))  # the record: a reference, "gate 1002 seq 17", ...
    expected: Mapped[str] = mapped_column(String(200))
    found: Mapped[str] = mapped_column(String(200))
    cause: Mapped[str] = mapped_column(Text)
    found_at: Mapped[datetime]
