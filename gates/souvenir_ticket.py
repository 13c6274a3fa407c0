"""The souvenir ticket a souvenir terminal prints for an entered ticket: a PNG (Pillow) of a fixed size.

It shows the Expo 2010 title, the ticket id, its type (the catalogue's English and Chinese names), the day
and gate of the entry the card recorded, the terminal and its entrance, the card number masked, and the
souvenir's time on the Expo's wall clock. The Chinese name needs a CJK font; the first one found among
common system paths is used (without one Pillow draws placeholder boxes, the rest stays legible).
"""

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from PIL import Image, ImageDraw

from expo.clock import expo_local
from expo.fonts import cjk_font, latin_font
from gates.entrances import ENTRANCES
from gates.validator import TapResult
from gates.wire import Event
from simcard.record import day_date
from ticketing.rules import CATALOGUE, TicketType

SIZE = (640, 400)  # pixels: a ticket of about 80 x 50 mm at 200 dpi
MARGIN = 24
TITLE = "EXPO 2010 SHANGHAI CHINA"
TITLE_ZH = "中国2010年上海世博会"


@dataclass(frozen=True)
class SouvenirTicket:
    """What the souvenir ticket says."""

    ticket_id: int
    type_name: str
    type_name_zh: str
    entry_day: str
    entry_gate: int
    gate_id: int
    entrance: str
    csn_masked: str
    at: datetime


def mask_csn(csn: str) -> str:
    """The card number as printed: province and last four digits, the rest hidden (0031********0042)."""
    return csn[:4] + "*" * (len(csn) - 8) + csn[-4:]


def souvenir_of(result: TapResult, *, gate_id: int, entrance: str) -> SouvenirTicket:
    """The souvenir ticket of a souvenir tap (ValueError for a tap that handed out none)."""
    record, at = result.record, result.at
    if result.event is not Event.SOUVENIR or result.ticket_id is None or result.csn is None:
        raise ValueError("only a souvenir tap has a souvenir ticket")
    if record is None or at is None or result.ticket_type is None:
        raise ValueError("a souvenir tap without its record")
    kind = CATALOGUE[TicketType(result.ticket_type)]
    entered = day_date(record.last_entry_day)
    return SouvenirTicket(
        ticket_id=result.ticket_id,
        type_name=kind.name,
        type_name_zh=kind.name_zh,
        entry_day="-" if entered is None else entered.isoformat(),
        entry_gate=record.last_gate,
        gate_id=gate_id,
        entrance=entrance,
        csn_masked=mask_csn(result.csn.upper()),
        at=at,
    )


def souvenir_lines(ticket: SouvenirTicket) -> list[tuple[str, bool]]:
    """The ticket's lines, each with whether it needs the CJK font."""
    entrance = ENTRANCES.get(ticket.entrance, ticket.entrance)
    return [
        (TITLE, False),
        (TITLE_ZH, True),
        ("SOUVENIR TICKET", False),
        (f"TICKET: {ticket.ticket_id}", False),
        (f"TYPE: {ticket.type_name}", False),
        (ticket.type_name_zh, True),
        (f"ENTERED: {ticket.entry_day}  GATE {ticket.entry_gate}", False),
        (f"TERMINAL: {ticket.gate_id}  {ticket.entrance} {entrance}", False),
        (f"CARD: {ticket.csn_masked}", False),
        (f"TIME: {expo_local(ticket.at):%Y-%m-%d %H:%M:%S}", False),
    ]


def render_souvenir_ticket(ticket: SouvenirTicket, path: Path) -> Path:
    """Draw the ticket (SIZE pixels, black on white, a frame) into a PNG at `path` (its folder is created)."""
    image = Image.new("RGB", SIZE, color="white")
    draw = ImageDraw.Draw(image)
    draw.rectangle((4, 4, SIZE[0] - 5, SIZE[1] - 5), outline="darkred", width=3)
    y = MARGIN
    for row, (text, cjk) in enumerate(souvenir_lines(ticket)):
        size = 24 if row < 2 else 18
        draw.text(
            (MARGIN, y), text, fill="darkred" if row < 3 else "black", font=cjk_font(size) if cjk else latin_font(size)
        )
        y += size + 12
    path.parent.mkdir(parents=True, exist_ok=True)
    image.save(path, format="PNG")
    return path


def save_souvenir_ticket(result: TapResult, *, out_dir: Path, gate_id: int, entrance: str) -> Path:
    """The souvenir ticket of a souvenir tap, saved as `souvenir-<gate>-<seq>.png` in `out_dir`."""
    ticket = souvenir_of(result, gate_id=gate_id, entrance=entrance)
    return render_souvenir_ticket(ticket, out_dir / f"souvenir-{gate_id}-{result.seq}.png")
