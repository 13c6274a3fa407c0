"""Tables of tickets without a card: QR exchange vouchers, the physical tickets they are exchanged for, and
the MMS outbox the vouchers are sent through."""

from datetime import date, datetime

from sqlalchemy import ForeignKey, LargeBinary, String
from sqlalchemy.orm import Mapped, mapped_column

from expo.db import Base

CODE_LENGTH = 127  # ticketing.signed_codes.CODE_CHARS


class Voucher(Base):
    """The QR exchange voucher of one paid QR-voucher ticket: its signed code, its sends and its one exchange."""

    __tablename__ = "vouchers"

    id: Mapped[int] = mapped_column(primary_key=True)
    ticket_id: Mapped[int] = mapped_column(ForeignKey("tickets.id"), unique=True)
    order_id: Mapped[int] = mapped_column(ForeignKey("orders.id"), index=True)
    msisdn: Mapped[str] = mapped_column(String(11))
    kid: Mapped[int]
    code: Mapped[str] = mapped_column(String(CODE_LENGTH), unique=True)
    first_day: Mapped[date]
    last_day: Mapped[date]
    issued_at: Mapped[datetime]
    # Set when a sender claims the voucher (before the MMS goes out); cleared again when the send fails.
    sent_at: Mapped[datetime | None] = mapped_column(index=True)
    sends: Mapped[int] = mapped_column(default=0)
    exchanged_at: Mapped[datetime | None]
    exchanged_into: Mapped[str | None] = mapped_column(String(12))  # physical | expo_card
    exchange_province: Mapped[str | None] = mapped_column(String(2))
    exchange_hall: Mapped[str | None] = mapped_column(String(64))
    exchange_credential_id: Mapped[int | None] = mapped_column(ForeignKey("credentials.id"))
    exchange_staff_id: Mapped[int | None] = mapped_column(ForeignKey("staff.id"))


class PhysicalTicket(Base):
    """A paper ticket a hall printed in exchange for a voucher: its own signed code, verified by gates offline."""

    __tablename__ = "physical_tickets"

    id: Mapped[int] = mapped_column(primary_key=True)
    ticket_id: Mapped[int] = mapped_column(ForeignKey("tickets.id"), unique=True)
    voucher_id: Mapped[int] = mapped_column(ForeignKey("vouchers.id"), unique=True)
    kid: Mapped[int]
    code: Mapped[str] = mapped_column(String(CODE_LENGTH), unique=True)
    first_day: Mapped[date]
    last_day: Mapped[date]
    issued_at: Mapped[datetime]
    province: Mapped[str] = mapped_column(String(2))
    hall: Mapped[str | None] = mapped_column(String(64))
    credential_id: Mapped[int] = mapped_column(ForeignKey("credentials.id"))
    staff_id: Mapped[int | None] = mapped_column(ForeignKey("staff.id"))


class MmsMessage(Base):
    """An MMS sent to a phone: subject, text and one PNG picture (the MMS centre picks it up from here)."""

    __tablename__ = "mms_outbox"

    id: Mapped[int] = mapped_column(primary_key=True)
    msisdn: Mapped[str] = mapped_column(String(11), index=True)
    subject: Mapped[str] = mapped_column(String(100))
    text: Mapped[str] = mapped_column(String(500))
    image_png: Mapped[bytes] = mapped_column(LargeBinary)
    created_at: Mapped[datetime]
