"""Ticket platform tables: day stock, orders, tickets, payments and the order journal."""

from datetime import date, datetime

from sqlalchemy import CheckConstraint, ForeignKey, Index, String, UniqueConstraint, text
from sqlalchemy.orm import Mapped, mapped_column

from expo.db import Base


class DayStock(Base):
    """Capacity of one Expo day for dated (peak-day) tickets; `sold` counts held and sold tickets."""

    __tablename__ = "day_stock"
    __table_args__ = (CheckConstraint("sold >= 0 AND sold <= capacity", name="within_capacity"),)

    day: Mapped[date] = mapped_column(primary_key=True)
    capacity: Mapped[int]
    sold: Mapped[int] = mapped_column(default=0)


class Order(Base):
    """One sale for one phone number, through one channel, paid one way."""

    __tablename__ = "orders"
    __table_args__ = (
        UniqueConstraint("credential_id", "idempotency_key"),
        Index("ix_orders_status_expires_at", "status", "expires_at"),
        # A terminal's sales over an interval (its day close, and matching the closes).
        Index("ix_orders_credential_id_created_at", "credential_id", "created_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    credential_id: Mapped[int] = mapped_column(ForeignKey("credentials.id"))
    idempotency_key: Mapped[str] = mapped_column(String(100))
    channel: Mapped[str] = mapped_column(String(10))
    sale_province: Mapped[str] = mapped_column(String(2), index=True)
    hall: Mapped[str | None] = mapped_column(String(64))
    staff_id: Mapped[int | None] = mapped_column(ForeignKey("staff.id"))
    msisdn: Mapped[str] = mapped_column(String(11), index=True)
    home_province: Mapped[str] = mapped_column(String(2))
    product: Mapped[str] = mapped_column(String(24))
    visit_day: Mapped[date | None]
    quantity: Mapped[int]
    unit_price_fen: Mapped[int]
    amount_fen: Mapped[int]
    carrier: Mapped[str] = mapped_column(String(12))
    payment_method: Mapped[str] = mapped_column(String(16))
    status: Mapped[str] = mapped_column(String(20))
    concession_category: Mapped[str | None] = mapped_column(String(16))
    concession_id_last4: Mapped[str | None] = mapped_column(String(4))
    # A peak-day upgrade order names the ticket it upgrades (tickets and orders refer to each other).
    upgrade_ticket_id: Mapped[int | None] = mapped_column(ForeignKey("tickets.id", use_alter=True), index=True)
    created_at: Mapped[datetime]
    paid_at: Mapped[datetime | None]
    expires_at: Mapped[datetime | None]
    closed_at: Mapped[datetime | None]


class Ticket(Base):
    """An Expo ticket; its carrier (Expo card, QR voucher or physical) is filled in by later steps."""

    __tablename__ = "tickets"
    __table_args__ = (
        # The operator's rule: one unused mobile ticket per phone number at a time.
        Index(
            "uq_tickets_one_unused_per_msisdn",
            "msisdn",
            unique=True,
            postgresql_where=text("status IN ('pending', 'issued') AND carrier <> 'physical'"),
            sqlite_where=text("status IN ('pending', 'issued') AND carrier <> 'physical'"),
        ),
        # Paid tickets still on a QR voucher: where the voucher sweep looks for a voucher not yet issued.
        Index(
            "ix_tickets_paid_on_voucher",
            "id",
            postgresql_where=text("carrier = 'qr_voucher' AND status = 'issued'"),
            sqlite_where=text("carrier = 'qr_voucher' AND status = 'issued'"),
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    order_id: Mapped[int] = mapped_column(ForeignKey("orders.id"), index=True)
    msisdn: Mapped[str] = mapped_column(String(11))
    home_province: Mapped[str] = mapped_column(String(2))
    ticket_type: Mapped[str] = mapped_column(String(24))
    visit_day: Mapped[date | None]
    upgrade_day: Mapped[date | None]
    carrier: Mapped[str] = mapped_column(String(12))
    status: Mapped[str] = mapped_column(String(12))
    entries_used: Mapped[int] = mapped_column(default=0)
    last_entry_day: Mapped[date | None]
    created_at: Mapped[datetime]


class Payment(Base):
    """Money for an order: the charge, and any void or refund paid back."""

    __tablename__ = "payments"
    # Settlement reads a month's confirmed charges, voids and refunds by when their money moved.
    __table_args__ = (Index("ix_payments_kind_status_settled_at", "kind", "status", "settled_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    order_id: Mapped[int] = mapped_column(ForeignKey("orders.id"), index=True)
    kind: Mapped[str] = mapped_column(String(8))
    method: Mapped[str] = mapped_column(String(16))
    amount_fen: Mapped[int]
    status: Mapped[str] = mapped_column(String(10))
    reference: Mapped[str] = mapped_column(String(64), unique=True)
    external_ref: Mapped[str | None] = mapped_column(String(64))
    masked_account: Mapped[str | None] = mapped_column(String(24))
    created_at: Mapped[datetime]
    settled_at: Mapped[datetime | None]


class OrderEvent(Base):
    """The journal of every state change of an order: what, when, who and from where."""

    __tablename__ = "order_events"
    # A terminal's voids over an interval: its day close and the settlement's matching look them up.
    __table_args__ = (
        Index(
            "ix_order_events_void_credential_id_at",
            "credential_id",
            "at",
            postgresql_where=text("event = 'void'"),
            sqlite_where=text("event = 'void'"),
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    order_id: Mapped[int] = mapped_column(ForeignKey("orders.id"), index=True)
    at: Mapped[datetime]
    event: Mapped[str] = mapped_column(String(24))
    status_from: Mapped[str | None] = mapped_column(String(20))
    status_to: Mapped[str] = mapped_column(String(20))
    credential_id: Mapped[int | None] = mapped_column(ForeignKey("credentials.id"))
    staff_id: Mapped[int | None] = mapped_column(ForeignKey("staff.id"))
    province: Mapped[str | None] = mapped_column(String(2))
    detail: Mapped[str | None] = mapped_column(String(200))
