"""Gate tables: the registered gate devices, every journal line they uploaded (a card's, or a physical ticket's)
and the conflicts found in them.

Ids that come from a card or a device (gate id, seq, ticket id, counter) are unsigned 32-bit or larger,
so they are stored as BIGINT; a line's ticket id has no foreign key because an unknown ticket is itself
something to store and report.
"""

from datetime import date, datetime

from sqlalchemy import BigInteger, ForeignKey, Index, String, UniqueConstraint, false, text
from sqlalchemy.orm import Mapped, mapped_column

from expo.db import Base

_CARD_MARKED = text("card_marked")
_ANNULS = text("annuls_seq IS NOT NULL")
_PAPER = text("paper")


class GateDevice(Base):
    """A gate, handheld check terminal or souvenir terminal at one entrance, with its own credential."""

    __tablename__ = "gate_devices"

    id: Mapped[int] = mapped_column(primary_key=True)
    gate_id: Mapped[int] = mapped_column(BigInteger, unique=True)  # the id the card logs (4 bytes)
    entrance: Mapped[str] = mapped_column(String(2))
    kind: Mapped[str] = mapped_column(String(10))
    credential_id: Mapped[int] = mapped_column(ForeignKey("credentials.id"), unique=True)
    created_at: Mapped[datetime]


class EntryLine(Base):
    """One uploaded journal line; (gate_id, seq) is the gate's own numbering, so a re-upload stores nothing."""

    __tablename__ = "gate_entries"
    __table_args__ = (
        # What a card recorded happened once, whichever gate reports it.
        Index(
            "uq_gate_entries_card_event",
            "csn",
            "ctr",
            "event",
            unique=True,
            postgresql_where=_CARD_MARKED,
            sqlite_where=_CARD_MARKED,
        ),
        Index("ix_gate_entries_day_gate_id_event", "day", "gate_id", "event"),
        Index("ix_gate_entries_annuls", "gate_id", "annuls_seq", postgresql_where=_ANNULS, sqlite_where=_ANNULS),
        # A paper ticket's entries, looked up at each upload that brings new ones (few, among all the card lines).
        Index("ix_gate_entries_paper_ticket", "ticket_id", postgresql_where=_PAPER, sqlite_where=_PAPER),
    )

    gate_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("gate_devices.gate_id"), primary_key=True)
    seq: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    event: Mapped[str] = mapped_column(String(10))
    at: Mapped[datetime]  # the device's clock
    day: Mapped[date]  # the Expo-local date of `at`
    code: Mapped[str] = mapped_column(String(40))
    csn: Mapped[str | None] = mapped_column(String(16))
    ctr: Mapped[int | None] = mapped_column(BigInteger)
    ticket_id: Mapped[int | None] = mapped_column(BigInteger, index=True)
    slot: Mapped[int | None]
    check_id: Mapped[bool]
    card_marked: Mapped[bool]
    reason: Mapped[str | None] = mapped_column(String(200))
    supervisor: Mapped[str | None] = mapped_column(String(200))
    annuls_seq: Mapped[int | None] = mapped_column(BigInteger)
    paper: Mapped[bool] = mapped_column(server_default=false())  # a physical ticket's line: no card
    received_at: Mapped[datetime]


class EntryConflict(Base):
    """Something an uploaded line shows that needs a person's look: a revoked or unknown ticket, a forced
    admission, a late upload, a card event reported twice. One row per (line, code)."""

    __tablename__ = "gate_conflicts"
    __table_args__ = (UniqueConstraint("gate_id", "seq", "code"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    gate_id: Mapped[int] = mapped_column(BigInteger)
    seq: Mapped[int] = mapped_column(BigInteger)
    code: Mapped[str] = mapped_column(String(32))
    ticket_id: Mapped[int | None] = mapped_column(BigInteger)
    csn: Mapped[str | None] = mapped_column(String(16))
    detail: Mapped[str] = mapped_column(String(300))
    at: Mapped[datetime] = mapped_column(index=True)  # the line's time
    found_at: Mapped[datetime]
