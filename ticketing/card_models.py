"""Expo card tables: the card registry (stock, registration to a number) and the writes of tickets to cards."""

from datetime import datetime

from sqlalchemy import BigInteger, ForeignKey, Index, LargeBinary, String, UniqueConstraint, text
from sqlalchemy.orm import Mapped, mapped_column

from expo.db import Base

_ACTIVE = text("status = 'active'")
_CONFIRMED = text("state = 'confirmed'")


class ExpoCard(Base):
    """A personalised Expo card (SIM): in stock until a clerk registers it to a phone number at a SIM swap."""

    __tablename__ = "expo_cards"
    __table_args__ = (
        # A number has one active card; registering another card replaces it.
        Index(
            "uq_expo_cards_one_active_per_msisdn", "msisdn", unique=True, postgresql_where=_ACTIVE, sqlite_where=_ACTIVE
        ),
        UniqueConstraint("province", "serial"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    csn: Mapped[str] = mapped_column(String(16), unique=True)  # hex, 8 bytes
    province: Mapped[str] = mapped_column(String(2))
    serial: Mapped[int] = mapped_column(BigInteger)  # the CSN's last 6 bytes
    key_version: Mapped[int]
    status: Mapped[str] = mapped_column(String(12))  # stock | active | replaced
    msisdn: Mapped[str | None] = mapped_column(String(11))
    # The highest transaction counter the platform has seen in one of the card's session answers.
    last_ctr: Mapped[int] = mapped_column(BigInteger, default=0)
    issued_at: Mapped[datetime]
    registered_at: Mapped[datetime | None]
    registered_by: Mapped[int | None] = mapped_column(ForeignKey("staff.id"))


class CardWrite(Base):
    """One attempt at writing a ticket to a card slot; at most one attempt per ticket is ever confirmed."""

    __tablename__ = "card_writes"
    __table_args__ = (
        UniqueConstraint("ticket_id", "attempt"),
        Index("ix_card_writes_credential_id_confirmed_at", "credential_id", "confirmed_at"),  # a terminal's writes
        Index(
            "uq_card_writes_one_confirmed_per_ticket",
            "ticket_id",
            unique=True,
            postgresql_where=_CONFIRMED,
            sqlite_where=_CONFIRMED,
        ),
        Index(
            "uq_card_writes_one_confirmed_per_slot",
            "csn",
            "slot",
            unique=True,
            postgresql_where=_CONFIRMED,
            sqlite_where=_CONFIRMED,
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    ticket_id: Mapped[int] = mapped_column(ForeignKey("tickets.id"))
    attempt: Mapped[int]  # 1, 2, ... per ticket
    csn: Mapped[str] = mapped_column(String(16), ForeignKey("expo_cards.csn"), index=True)
    slot: Mapped[int]
    # awaiting_session -> awaiting_result -> confirmed, or failed (with `failure`) at any step.
    state: Mapped[str] = mapped_column(String(20))
    failure: Mapped[str | None] = mapped_column(String(32))
    rnd_t: Mapped[bytes] = mapped_column(LargeBinary(8))
    ctr: Mapped[int | None] = mapped_column(BigInteger)  # the card's counter (u32) of the session
    record: Mapped[bytes | None] = mapped_column(LargeBinary(32))  # the record sent in WRITE TICKET
    credential_id: Mapped[int] = mapped_column(ForeignKey("credentials.id"))
    staff_id: Mapped[int | None] = mapped_column(ForeignKey("staff.id"))
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]
    confirmed_at: Mapped[datetime | None]
