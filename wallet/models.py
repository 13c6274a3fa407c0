"""Wallet tables: accounts, users, merchants, the append-only ledger (transfers, postings, holds),
SMS codes and outbox, recharge cards, vouchers, utility bills and the POS journal."""

from datetime import date, datetime

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from expo.db import Base

# Ledger rows outgrow 32 bits; SQLite autoincrements only an INTEGER primary key.
BIG_ID = BigInteger().with_variant(Integer, "sqlite")


class WalletAccount(Base):
    """One account of the ledger. `balance` and `held` are kept for speed and always equal the postings and holds."""

    __tablename__ = "wallet_accounts"
    __table_args__ = (CheckConstraint("NOT restricted OR balance - held >= 0", name="restricted_not_negative"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(64), unique=True)  # e.g. user:13812345678, fee_income:31
    kind: Mapped[str] = mapped_column(String(20))
    province_code: Mapped[str | None] = mapped_column(String(2))
    restricted: Mapped[bool]  # may never go negative
    balance: Mapped[int] = mapped_column(BigInteger, default=0)
    held: Mapped[int] = mapped_column(BigInteger, default=0)  # held by pending transfers, not yet posted
    created_at: Mapped[datetime]


class WalletUser(Base):
    """A phone number's wallet: its balance and red-packet accounts, identity status and payment password."""

    __tablename__ = "wallet_users"

    id: Mapped[int] = mapped_column(primary_key=True)
    msisdn: Mapped[str] = mapped_column(String(11), unique=True)
    province_code: Mapped[str] = mapped_column(String(2))
    account_id: Mapped[int] = mapped_column(ForeignKey("wallet_accounts.id"), unique=True)
    red_packet_account_id: Mapped[int] = mapped_column(ForeignKey("wallet_accounts.id"), unique=True)
    account_class: Mapped[str] = mapped_column(String(12))
    opened_via: Mapped[str] = mapped_column(String(8))
    password_hash: Mapped[str | None] = mapped_column(String(200))
    failed_passwords: Mapped[int] = mapped_column(default=0)
    locked_until: Mapped[datetime | None]
    id_last4: Mapped[str | None] = mapped_column(String(4))  # only the last four of the verified ID number
    created_at: Mapped[datetime]


class Merchant(Base):
    """A merchant that accepts wallet payments, with its category's negotiated fee."""

    __tablename__ = "merchants"

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(32), unique=True)
    name: Mapped[str] = mapped_column(String(100))
    category: Mapped[str] = mapped_column(String(32))
    province_code: Mapped[str] = mapped_column(String(2))
    fee_rate_bp: Mapped[int]
    allows_adjust: Mapped[bool] = mapped_column(default=False)  # POS partial adjustments allowed
    account_id: Mapped[int] = mapped_column(ForeignKey("wallet_accounts.id"), unique=True)
    created_at: Mapped[datetime]


class WalletTransfer(Base):
    """One movement of money: its postings sum to zero. A pending one holds money until captured or voided."""

    __tablename__ = "wallet_transfers"
    __table_args__ = (
        Index("ix_wallet_transfers_usage", "user_id", "operation", "created_at"),
        Index("ix_wallet_transfers_state_expires_at", "state", "expires_at"),
        # Settlement matches a month's bank transfers (top-ups, withdrawals, payouts) by kind and when they finished.
        Index("ix_wallet_transfers_kind_state_finished_at", "kind", "state", "finished_at"),
    )

    id: Mapped[int] = mapped_column(BIG_ID, primary_key=True)
    idempotency_key: Mapped[str] = mapped_column(String(160), unique=True)  # caller scope + the caller's key
    kind: Mapped[str] = mapped_column(String(20))
    state: Mapped[str] = mapped_column(String(10))
    amount_fen: Mapped[int] = mapped_column(BigInteger)
    user_id: Mapped[int | None] = mapped_column(ForeignKey("wallet_users.id"))
    operation: Mapped[str | None] = mapped_column(String(12))  # the risk-limited operation it counts towards
    merchant_id: Mapped[int | None] = mapped_column(ForeignKey("merchants.id"), index=True)
    channel: Mapped[str | None] = mapped_column(String(16))  # web, sms, proximity, hall_cash, online_banking ...
    fee_fen: Mapped[int] = mapped_column(BigInteger, default=0)
    red_packet_fen: Mapped[int] = mapped_column(BigInteger, default=0)  # part of the amount paid by red packets
    voucher_fen: Mapped[int] = mapped_column(BigInteger, default=0)  # merchant voucher deducted from the price
    refunded_fen: Mapped[int] = mapped_column(BigInteger, default=0)  # payments: refunded so far
    original_id: Mapped[int | None] = mapped_column(
        BigInteger, ForeignKey("wallet_transfers.id"), index=True
    )  # refunds
    # The bank's or the merchant's reference; bank notifications look transfers up by it.
    reference: Mapped[str | None] = mapped_column(String(64), index=True)
    description: Mapped[str | None] = mapped_column(String(200))
    credential_id: Mapped[int | None] = mapped_column(ForeignKey("credentials.id"))
    created_at: Mapped[datetime]
    expires_at: Mapped[datetime | None]  # pending transfers: released after this
    finished_at: Mapped[datetime | None]  # posted or voided


class Posting(Base):
    """One leg of a transfer on one account (credit positive). Never updated, never deleted."""

    __tablename__ = "wallet_postings"
    # Settlement reads a window of postings (a month, a payout day) by when they were posted.
    __table_args__ = (Index("ix_wallet_postings_created_at", "created_at"),)

    id: Mapped[int] = mapped_column(BIG_ID, primary_key=True)
    transfer_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("wallet_transfers.id"), index=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("wallet_accounts.id"), index=True)
    amount_fen: Mapped[int] = mapped_column(BigInteger)
    created_at: Mapped[datetime]


class Hold(Base):
    """Money a pending transfer holds on a payer's account (each payer account of it has one)."""

    __tablename__ = "wallet_holds"
    __table_args__ = (UniqueConstraint("transfer_id", "account_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    transfer_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("wallet_transfers.id"))
    account_id: Mapped[int] = mapped_column(ForeignKey("wallet_accounts.id"), index=True)
    amount_fen: Mapped[int] = mapped_column(BigInteger)
    released: Mapped[bool] = mapped_column(default=False)  # captured or voided


class SmsCode(Base):
    """A verification code texted to a phone; stored hashed, good for a few tries until it expires."""

    __tablename__ = "wallet_sms_codes"

    id: Mapped[int] = mapped_column(primary_key=True)
    msisdn: Mapped[str] = mapped_column(String(11), index=True)
    purpose: Mapped[str] = mapped_column(String(20))
    transfer_id: Mapped[int | None] = mapped_column(BigInteger, ForeignKey("wallet_transfers.id"), index=True)
    code_hash: Mapped[bytes] = mapped_column(LargeBinary(48))  # salt + SHA-256
    attempts: Mapped[int] = mapped_column(default=0)
    created_at: Mapped[datetime]
    expires_at: Mapped[datetime]
    used_at: Mapped[datetime | None]


class SmsMessage(Base):
    """A text sent to or received from a phone (the SMS gateway's outbox and inbox)."""

    __tablename__ = "sms_messages"

    id: Mapped[int] = mapped_column(primary_key=True)
    direction: Mapped[str] = mapped_column(String(3))  # out | in
    msisdn: Mapped[str] = mapped_column(String(11), index=True)
    text: Mapped[str] = mapped_column(String(500))
    created_at: Mapped[datetime]


class RechargeCard(Base):
    """A prepaid recharge card: its serial is printed, its PIN scratched off; the PIN is stored hashed."""

    __tablename__ = "recharge_cards"

    id: Mapped[int] = mapped_column(primary_key=True)
    serial: Mapped[str] = mapped_column(String(20), unique=True)
    pin_hash: Mapped[bytes] = mapped_column(LargeBinary(32))
    face_value_fen: Mapped[int] = mapped_column(BigInteger)
    batch: Mapped[str] = mapped_column(String(32))
    redeemed_transfer_id: Mapped[int | None] = mapped_column(BigInteger, ForeignKey("wallet_transfers.id"))
    created_at: Mapped[datetime]


class MerchantVoucher(Base):
    """A merchant's voucher for one of its products, given to one phone number, deducted at payment."""

    __tablename__ = "merchant_vouchers"

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(24), unique=True)
    merchant_id: Mapped[int] = mapped_column(ForeignKey("merchants.id"))
    product: Mapped[str] = mapped_column(String(64))
    msisdn: Mapped[str] = mapped_column(String(11), index=True)
    value_fen: Mapped[int] = mapped_column(BigInteger)
    expires_at: Mapped[datetime]
    used_transfer_id: Mapped[int | None] = mapped_column(BigInteger, ForeignKey("wallet_transfers.id"), unique=True)
    created_at: Mapped[datetime]


class UtilityBill(Base):
    """A utility bill a biller (a utilities merchant) posted for a phone number."""

    __tablename__ = "utility_bills"
    __table_args__ = (UniqueConstraint("merchant_id", "bill_no"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    merchant_id: Mapped[int] = mapped_column(ForeignKey("merchants.id"))
    bill_no: Mapped[str] = mapped_column(String(32))
    msisdn: Mapped[str] = mapped_column(String(11), index=True)
    customer_ref: Mapped[str] = mapped_column(String(32))  # the household's account at the biller
    amount_fen: Mapped[int] = mapped_column(BigInteger)
    due_day: Mapped[date]
    status: Mapped[str] = mapped_column(String(10))  # open | paid | withdrawn
    paid_transfer_id: Mapped[int | None] = mapped_column(BigInteger, ForeignKey("wallet_transfers.id"))
    texted_at: Mapped[datetime | None]  # last bill text or reminder
    created_at: Mapped[datetime]


class PosTerminal(Base):
    """A merchant's proximity terminal, reached through its own credential; batches count its settlements."""

    __tablename__ = "pos_terminals"

    id: Mapped[int] = mapped_column(primary_key=True)
    terminal_no: Mapped[str] = mapped_column(String(16), unique=True)
    merchant_id: Mapped[int] = mapped_column(ForeignKey("merchants.id"))
    credential_id: Mapped[int] = mapped_column(ForeignKey("credentials.id"), unique=True)
    batch_no: Mapped[int] = mapped_column(default=1)  # the open batch; closed by a settlement upload
    created_at: Mapped[datetime]


class PosEntry(Base):
    """A line of a terminal's journal on the platform: sale, void or adjustment, by the terminal's serial."""

    __tablename__ = "pos_entries"
    __table_args__ = (UniqueConstraint("terminal_id", "serial"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    terminal_id: Mapped[int] = mapped_column(ForeignKey("pos_terminals.id"))
    serial: Mapped[int]
    batch_no: Mapped[int]
    entry_type: Mapped[str] = mapped_column(String(8))  # sale | void | adjust
    amount_fen: Mapped[int] = mapped_column(BigInteger)  # sale: paid; void/adjust: returned to the user
    transfer_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("wallet_transfers.id"))
    original_serial: Mapped[int | None]
    msisdn: Mapped[str] = mapped_column(String(11))
    created_at: Mapped[datetime]


class PosBatch(Base):
    """A terminal's settlement: its uploaded journal totals against the platform's, batch by batch."""

    __tablename__ = "pos_batches"
    __table_args__ = (UniqueConstraint("terminal_id", "batch_no"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    terminal_id: Mapped[int] = mapped_column(ForeignKey("pos_terminals.id"))
    batch_no: Mapped[int]
    entries: Mapped[int]
    net_fen: Mapped[int] = mapped_column(BigInteger)
    matched: Mapped[bool]
    discrepancies: Mapped[str] = mapped_column(Text)  # JSON list; a lost journal can disagree on many serials
    uploaded_at: Mapped[datetime]
