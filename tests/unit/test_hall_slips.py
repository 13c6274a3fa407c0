"""Hall terminal slips: what each line type prints, masking, reprints, and the PNG image of the text."""

from datetime import datetime
from pathlib import Path

import pytest
from PIL import Image

from expo.clock import EXPO_TZ
from hall_terminals.journal import Entry, EntryType
from hall_terminals.slips import Header, render_png, slip_lines, slip_text

HEADER = Header(hall="Shanghai Xujiahui hall", clerk="SH-C001")
AT = datetime(2010, 6, 1, 2, 0, 5, tzinfo=EXPO_TZ)


def _sale(**changes: object) -> Entry:
    fields: dict[str, object] = {
        "serial": 3, "batch_no": 2, "type": EntryType.SALE, "at": AT, "order_id": 17, "ticket_id": 21,
        "amount_fen": 16000, "payment": "cash", "msisdn": "13425540001", "ticket_type": "standard",
    }  # fmt: skip
    fields.update(changes)
    return Entry(**fields)  # type: ignore[arg-type]


def test_a_sale_slip() -> None:
    lines = slip_lines(_sale(), HEADER)
    assert lines[:2] == ["EXPO 2010 SHANGHAI CHINA", "Shanghai Xujiahui hall"]
    for expected in (
        "TICKET SALE", "BATCH: 000002  SERIAL: 000003", "CLERK: SH-C001", "ORDER: 17", "TICKET: 21",
        "TYPE: standard", "PHONE: 134****0001", "PAID: CASH", "AMOUNT: CNY 160.00", "TIME: 2010-06-01 02:00:05",
    ):  # fmt: skip
        assert expected in lines
    assert "13425540001" not in "\n".join(lines)
    assert not any(line.startswith(("VISIT DAY", "CARD")) for line in lines)


def test_bank_card_peak_day_write_and_void_slips() -> None:
    card = slip_lines(_sale(payment="bank_card", approval_code="A1B2", visit_day="2010-10-03"), HEADER)
    assert "PAID: BANK CARD (APPROVAL A1B2)" in card
    assert "VISIT DAY: 2010-10-03" in card
    written = slip_lines(_sale(type=EntryType.WRITE, amount_fen=0, csn="0031000000000001", slot=2), HEADER)
    assert "TICKET WRITTEN TO CARD" in written
    assert "CARD: 0031000000000001  SLOT: 2" in written
    assert not any(line.startswith(("PAID", "AMOUNT")) for line in written)
    void = slip_lines(_sale(type=EntryType.VOID), HEADER)
    assert "VOID" in void
    assert "RETURNED: CNY 160.00" in void


def test_reprint_is_marked_and_a_close_has_no_slip() -> None:
    assert slip_text(_sale(), HEADER, reprint=True).startswith("*** REPRINT ***\nEXPO 2010")
    assert "REPRINT" not in slip_text(_sale(), HEADER)
    with pytest.raises(ValueError, match="no slip"):
        slip_lines(_sale(type=EntryType.CLOSE), HEADER)


def test_the_png_holds_the_text(tmp_path: Path) -> None:
    text = slip_text(_sale(), HEADER)
    path = render_png(text, tmp_path / "slips" / "000003.png")
    with Image.open(path) as image:
        assert image.format == "PNG"
        assert image.height >= 14 * len(text.splitlines())
        # black ink on white paper, and some of it
        assert image.getextrema() == (0, 255)
        ink = sum(image.histogram()[:128])
    assert ink > 500
    longer = render_png(text + "one more line\n", tmp_path / "b.png")
    with Image.open(longer) as image2, Image.open(path) as image1:
        assert image2.height > image1.height
