"""The printed physical ticket: its QR reads back to its code, the PDF is a PDF, and the paper says what the
code says (type in both languages, valid days, ticket id, the code in groups, hall and time)."""

from datetime import date, datetime
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from PIL import Image

from expo.clock import EXPO_TZ
from hall_terminals.physical_print import (
    PhysicalTicket,
    code_lines,
    print_physical_ticket,
    ticket_lines,
    valid_days,
)
from ticketing.qr import read_qr
from ticketing.rules import CATALOGUE, TicketType
from ticketing.signed_codes import CodeKind, TicketClaim, claim_for, grouped, sign_claim

KEY = Ed25519PrivateKey.from_private_bytes(bytes(range(32)))
AT = datetime(2010, 10, 1, 2, 5, tzinfo=EXPO_TZ)
HALL = "Shanghai Xujiahui hall"


def _ticket(ticket_type: TicketType, *, upgrade_day: date | None = None, reprint: bool = False) -> PhysicalTicket:
    dated = CATALOGUE[ticket_type].dated
    claim = claim_for(CodeKind.PHYSICAL, kid=1, ticket_id=8123, ticket_type=ticket_type,
                      visit_day=date(2010, 10, 3) if dated else None, upgrade_day=upgrade_day)  # fmt: skip
    return PhysicalTicket(claim, sign_claim(claim, KEY), hall=HALL, at=AT, reprint=reprint)


@pytest.mark.parametrize("ticket_type", list(TicketType))
def test_the_png_reads_back_to_the_code_and_the_pdf_is_a_pdf(tmp_path: Path, ticket_type: TicketType) -> None:
    ticket = _ticket(ticket_type)
    printed = print_physical_ticket(ticket, out_dir=tmp_path / "tickets")
    assert (printed.png.name, printed.pdf.name) == ("ticket-8123.png", "ticket-8123.pdf")
    assert read_qr(printed.png) == ticket.code
    assert printed.pdf.read_bytes().startswith(b"%PDF")
    with Image.open(printed.png) as image:
        assert image.format == "PNG"
        assert image.width == 1000
        assert image.height > 400


def test_a_reprint_has_its_own_files_and_says_so(tmp_path: Path) -> None:
    ticket = _ticket(TicketType.STANDARD, reprint=True)
    printed = print_physical_ticket(ticket, out_dir=tmp_path)
    assert printed.png.name == "ticket-8123-reprint.png"
    assert read_qr(printed.png) == ticket.code
    assert ticket_lines(ticket)[0][0] == "*** REPRINT ***"


def test_what_the_paper_says() -> None:
    ticket = _ticket(TicketType.PEAK_CONCESSION)
    texts = [text for text, _, _ in ticket_lines(ticket)]
    assert texts[:2] == ["中国2010年上海世博会 门票", "EXPO 2010 SHANGHAI CHINA  TICKET"]
    for expected in (
        "指定日优惠票  Peak day concession", "有效期 VALID: 2010-10-03", "凭证件入园 ID CHECKED AT ENTRY",
        "票号 TICKET: 8123", HALL, "出票 ISSUED: 2010-10-01 02:05:00",
    ):  # fmt: skip
        assert expected in texts
    assert "".join(code_lines(ticket.code)).replace("-", "") == ticket.code
    assert "-".join(code_lines(ticket.code)) == grouped(ticket.code)
    assert all(len(line) <= 55 for line in code_lines(ticket.code))


def _claim(ticket_type: TicketType, upgrade_day: date | None = None) -> TicketClaim:
    return _ticket(ticket_type, upgrade_day=upgrade_day).claim


@pytest.mark.parametrize(
    ("ticket_type", "upgrade_day", "expected"),
    [
        (TicketType.PEAK, None, ["有效期 VALID: 2010-10-03"]),
        (TicketType.STANDARD, None, ["有效期 VALID: 2010-05-04 – 2010-10-24  平日 STANDARD DAYS"]),
        (
            TicketType.STANDARD,
            date(2010, 10, 31),
            ["有效期 VALID: 2010-05-04 – 2010-10-31  平日 STANDARD DAYS", "指定日升级 PEAK-DAY UPGRADE: 2010-10-31"],
        ),
        (
            TicketType.EVENING,
            None,
            ["有效期 VALID: 2010-05-04 – 2010-10-24  平日 STANDARD DAYS", "17:00起入园 ENTRY FROM 17:00"],
        ),
        (
            TicketType.PASS_7,
            None,
            ["有效期 VALID: 2010-05-01 – 2010-10-31  平日 STANDARD DAYS", "7次 7 VISITS, ONE ENTRY A DAY"],
        ),
    ],
)
def test_valid_days(ticket_type: TicketType, upgrade_day: date | None, expected: list[str]) -> None:
    claim = _claim(ticket_type, upgrade_day)
    assert valid_days(claim.ticket_type, first_day=claim.first_day, last_day=claim.last_day,
                      upgrade_day=claim.upgrade_day) == expected  # fmt: skip
