"""The physical ticket a hall prints for an exchanged voucher: a PNG and a PDF of the same picture (Pillow).

It shows the Expo title in Chinese and English, the ticket type (the catalogue's Chinese and English names),
the days it is valid on, the ticket id, the QR code of its signed physical-ticket code and that code in
groups of six for typing, the hall that printed it and when (the Expo's wall clock). Gates read the QR (or
the typed code) and verify it offline; nothing else on the paper counts. The Chinese text needs a CJK font
(fonts-wqy-microhei); without one Pillow draws placeholder boxes and the rest stays legible.
"""

from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path

from PIL import Image, ImageDraw

from expo.clock import expo_local
from expo.fonts import cjk_font, mono_font
from ticketing.qr import qr_image
from ticketing.rules import CATALOGUE, TicketType
from ticketing.signed_codes import TicketClaim, grouped

WIDTH = 1000  # pixels: about 127 mm at 200 dpi
DPI = 200
MARGIN = 28
QR_BOX = 6  # pixels per QR module: 0.76 mm at 200 dpi, read by any gate scanner
GROUPS_PER_LINE = 8
TITLE_ZH = "中国2010年上海世博会 门票"
TITLE = "EXPO 2010 SHANGHAI CHINA  TICKET"


@dataclass(frozen=True)
class PhysicalTicket:
    """What the paper says: the verified claim of its code, the code, the printing hall and time."""

    claim: TicketClaim
    code: str
    hall: str
    at: datetime
    reprint: bool = False


@dataclass(frozen=True)
class PrintedTicket:
    """The files of one printed ticket."""

    png: Path
    pdf: Path


def valid_days(ticket_type: TicketType, *, first_day: date, last_day: date, upgrade_day: date | None) -> list[str]:
    """The validity lines: the days (an undated type: standard days only), a peak-day upgrade, and what the
    type allows (entries, evening, ID)."""
    kind = CATALOGUE[ticket_type]
    days = f"{first_day}" if first_day == last_day else f"{first_day} – {last_day}"
    visits = kind.entries_allowed
    return [
        f"有效期 VALID: {days}{'' if kind.dated else '  平日 STANDARD DAYS'}",
        *([f"指定日升级 PEAK-DAY UPGRADE: {upgrade_day}"] if upgrade_day is not None else []),
        *([f"{visits}次 {visits} VISITS, ONE ENTRY A DAY"] if visits > 1 else []),
        *(["17:00起入园 ENTRY FROM 17:00"] if kind.evening else []),
        *(["凭证件入园 ID CHECKED AT ENTRY"] if kind.concession else []),
    ]


def ticket_lines(ticket: PhysicalTicket) -> list[tuple[str, int, str]]:
    """The ticket's text lines beside the QR code, each with its font size and colour."""
    claim = ticket.claim
    kind = CATALOGUE[claim.ticket_type]
    validity = valid_days(
        claim.ticket_type, first_day=claim.first_day, last_day=claim.last_day, upgrade_day=claim.upgrade_day
    )
    return [
        *([("*** REPRINT ***", 20, "black")] if ticket.reprint else []),
        (TITLE_ZH, 32, "darkred"),
        (TITLE, 22, "darkred"),
        (f"{kind.name_zh}  {kind.name}", 26, "black"),
        *((line, 19, "black") for line in validity),
        (f"票号 TICKET: {claim.ticket_id}", 22, "black"),
        (ticket.hall, 18, "black"),
        (f"出票 ISSUED: {expo_local(ticket.at):%Y-%m-%d %H:%M:%S}", 18, "black"),
    ]


def code_lines(code: str) -> list[str]:
    """The code in groups of six, a few groups to a line, for a person to type it at a gate."""
    groups = grouped(code).split("-")
    return ["-".join(groups[i : i + GROUPS_PER_LINE]) for i in range(0, len(groups), GROUPS_PER_LINE)]


def render_physical_ticket(ticket: PhysicalTicket) -> Image.Image:
    """The ticket's picture: text on the left, the QR code on the right, the typed code across the foot."""
    qr = qr_image(ticket.code, box_size=QR_BOX)
    lines = ticket_lines(ticket)
    text_height = sum(size + 12 for _, size, _ in lines)
    codes = code_lines(ticket.code)
    top = MARGIN + max(text_height, qr.height)
    height = top + 12 + 28 * len(codes) + MARGIN
    image = Image.new("RGB", (WIDTH, height), color="white")
    draw = ImageDraw.Draw(image)
    draw.rectangle((4, 4, WIDTH - 5, height - 5), outline="darkred", width=3)
    y = MARGIN
    for text, size, colour in lines:
        draw.text((MARGIN, y), text, fill=colour, font=cjk_font(size))
        y += size + 12
    image.paste(qr.convert("RGB"), (WIDTH - MARGIN - qr.width, MARGIN // 2))
    for row, text in enumerate(codes):
        draw.text((MARGIN, top + 12 + 28 * row), text, fill="black", font=mono_font(20))
    return image


def print_physical_ticket(ticket: PhysicalTicket, *, out_dir: Path) -> PrintedTicket:
    """Save the ticket as `ticket-<id>.png` and `.pdf` in `out_dir` (a reprint: `ticket-<id>-reprint.*`)."""
    image = render_physical_ticket(ticket)
    stem = f"ticket-{ticket.claim.ticket_id}{'-reprint' if ticket.reprint else ''}"
    out_dir.mkdir(parents=True, exist_ok=True)
    png, pdf = out_dir / f"{stem}.png", out_dir / f"{stem}.pdf"
    image.save(png, format="PNG")
    image.save(pdf, format="PDF", resolution=DPI)
    return PrintedTicket(png, pdf)
