"""The souvenir ticket image: a PNG of the fixed size with the ticket's details, only for a souvenir tap."""

from datetime import timedelta
from pathlib import Path

import pytest
from PIL import Image

from gates.souvenir_ticket import SIZE, mask_csn, save_souvenir_ticket, souvenir_lines, souvenir_of
from gates.validator import TapResult
from tests.unit.gates.support import GATE_ID, Gate, at, card_with, ticket


@pytest.fixture
def souvenir_tap(tmp_path: Path) -> TapResult:
    gate = Gate(tmp_path, when=at("2010-06-01", "09:30"))
    card = card_with(ticket("standard_concession", ticket_id=4711))
    gate.validator.entry(gate.channel(card))
    gate.clock.advance(timedelta(hours=5))
    result = gate.validator.souvenir(gate.channel(card))
    assert result.code == "ok"
    return result


def test_the_png_opens_with_the_right_size(souvenir_tap: TapResult, tmp_path: Path) -> None:
    path = save_souvenir_ticket(souvenir_tap, out_dir=tmp_path / "out", gate_id=GATE_ID, entrance="W2")
    assert path == tmp_path / "out" / f"souvenir-{GATE_ID}-{souvenir_tap.seq}.png"
    with Image.open(path) as image:
        assert image.format == "PNG"
        assert image.size == SIZE
        assert image.getextrema() != ((255, 255), (255, 255), (255, 255))  # something is drawn


def test_the_ticket_says_what_was_collected(souvenir_tap: TapResult) -> None:
    lines = [text for text, _ in souvenir_lines(souvenir_of(souvenir_tap, gate_id=GATE_ID, entrance="W2"))]
    assert "TICKET: 4711" in lines
    assert "TYPE: Standard day concession" in lines
    assert "平日优惠票" in lines
    assert f"ENTERED: 2010-06-01  GATE {GATE_ID}" in lines
    assert f"TERMINAL: {GATE_ID}  W2 Ferry pier 2 (water)" in lines
    assert "CARD: 0031********0042" in lines
    assert "TIME: 2010-06-01 14:30:00" in lines


def test_the_card_number_is_masked() -> None:
    assert mask_csn("0031000000000042") == "0031********0042"


def test_a_refusal_has_no_souvenir_ticket(tmp_path: Path) -> None:
    gate = Gate(tmp_path, when=at("2010-06-01"))
    refused = gate.validator.souvenir(gate.channel(card_with(ticket("standard"))))
    assert refused.code == "not_entered"
    with pytest.raises(ValueError, match="souvenir tap"):
        souvenir_of(refused, gate_id=GATE_ID, entrance="W2")
