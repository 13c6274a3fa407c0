"""The slips a hall terminal prints: plain text for the receipt printer and a PNG image of the same text.

A slip is made from one journal line and the terminal's header (hall and clerk); a reprint says so on top.
The phone number is masked, amounts are yuan, times are the Expo's wall clock (Asia/Shanghai).
"""

from dataclasses import dataclass
from pathlib import Path

from PIL import Image, ImageDraw, ImageFont

from expo.clock import expo_local
from expo.money import format_fen
from hall_terminals.journal import Entry, EntryType
from wallet.pos_rules import mask_msisdn

TITLES = {
    EntryType.SALE: "TICKET SALE",
    EntryType.WRITE: "TICKET WRITTEN TO CARD",
    EntryType.VOID: "VOID",
    EntryType.EXCHANGE: "VOUCHER EXCHANGED",
}
PAYMENTS = {"cash": "CASH", "bank_card": "BANK CARD"}
INTOS = {"physical": "PHYSICAL TICKET", "expo_card": "EXPO CARD"}
WIDTH = 40  # characters of the receipt printer
MARGIN, LINE_HEIGHT, CHAR_WIDTH = 12, 14, 6  # pixels of the PNG, for Pillow's built-in 6x11 font


@dataclass(frozen=True)
class Header:
    """Who printed the slip: the hall and the clerk logged in at the terminal."""

    hall: str
    clerk: str


def slip_lines(entry: Entry, header: Header, *, reprint: bool = False) -> list[str]:
    """The slip of a sale, write, void or exchange: hall, clerk, batch and serial, what happened, for whom, how
    much, onto what."""
    if entry.type not in TITLES:
        raise ValueError(f"a {entry.type} line has no slip")
    rule = "-" * WIDTH
    return [
        *(["*** REPRINT ***"] if reprint else []),
        "EXPO 2010 SHANGHAI CHINA",
        header.hall,
        rule,
        TITLES[entry.type],
        f"BATCH: {entry.batch_no:06d}  SERIAL: {entry.serial:06d}",
        f"CLERK: {entry.clerk or header.clerk}",
        *([f"ORDER: {entry.order_id}"] if entry.order_id is not None else []),
        *([f"TICKET: {entry.ticket_id}"] if entry.ticket_id is not None else []),
        *([f"TYPE: {entry.ticket_type}"] if entry.ticket_type else []),
        *([f"VISIT DAY: {entry.visit_day}"] if entry.visit_day else []),
        *([f"PHONE: {mask_msisdn(entry.msisdn)}"] if entry.msisdn else []),
        *_money_lines(entry),
        *([f"INTO: {INTOS.get(entry.into, entry.into.upper())}"] if entry.into else []),
        *([f"CARD: {entry.csn.upper()}{_slot(entry)}"] if entry.csn else []),
        f"TIME: {expo_local(entry.at):%Y-%m-%d %H:%M:%S}",
        rule,
    ]


def _slot(entry: Entry) -> str:
    return "" if entry.slot is None else f"  SLOT: {entry.slot}"


def _money_lines(entry: Entry) -> list[str]:
    if entry.type == EntryType.SALE:
        paid = PAYMENTS.get(entry.payment or "", (entry.payment or "").upper())
        approval = f" (APPROVAL {entry.approval_code})" if entry.approval_code else ""
        return [f"PAID: {paid}{approval}", f"AMOUNT: CNY {format_fen(entry.amount_fen)}"]
    if entry.type == EntryType.VOID:
        return [f"RETURNED: CNY {format_fen(entry.amount_fen)}"]
    return []


def slip_text(entry: Entry, header: Header, *, reprint: bool = False) -> str:
    """The slip as the receipt printer gets it."""
    return "\n".join(slip_lines(entry, header, reprint=reprint)) + "\n"


def render_png(text: str, path: Path) -> Path:
    """The slip's text drawn black on white into a PNG at `path` (its folder is created)."""
    lines = text.rstrip("\n").split("\n")
    width = 2 * MARGIN + CHAR_WIDTH * max(WIDTH, *(len(line) for line in lines))
    height = 2 * MARGIN + LINE_HEIGHT * len(lines)
    image = Image.new("L", (width, height), color=255)
    draw = ImageDraw.Draw(image)
    font = ImageFont.load_default_imagefont()
    for row, line in enumerate(lines):
        draw.text((MARGIN, MARGIN + row * LINE_HEIGHT), line, fill=0, font=font)
    path.parent.mkdir(parents=True, exist_ok=True)
    image.save(path, format="PNG")
    return path
