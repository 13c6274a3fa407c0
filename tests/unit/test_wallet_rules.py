"""Pure wallet rules."""

import pytest
from hypothesis import given
from hypothesis import strategies as st

from wallet.rules import BillReply, parse_bill_reply

# --- parse_bill_reply: the user's answer to a bill text ----------------------------------------------


@pytest.mark.parametrize("text", ["Y", "y", " Y ", "y\n", "\tY"])
def test_parse_bill_reply_y_alone_pays_the_bill(text: str) -> None:
    assert parse_bill_reply(text) == BillReply(None)


@pytest.mark.parametrize(
    ("text", "fen"),
    [
        ("Y50", 5_000),
        ("y 50", 5_000),
        ("Y  120.5", 12_050),
        ("Y0.01", 1),
        ("Y7.05", 705),
        ("Y5.", 500),
        ("Y9999999.99", 999_999_999),  # seven digits of yuan at most; the payment rules cap the amount itself
        ("Y５０", 5_000),  # a full-width keypad's digits
    ],
)
def test_parse_bill_reply_y_and_an_amount_in_yuan_prepays(text: str, fen: int) -> None:
    assert parse_bill_reply(text) == BillReply(fen)


@pytest.mark.parametrize(
    "text",
    [
        "",
        "N",
        "KT",
        "YES",
        "OK Y",
        "Y0",
        "Y0.00",
        "Y-5",
        "Y+5",
        "Y.5",
        "Y1.234",
        "Y1,5",
        "Y1.5.0",
        "Y12345678",
        "Y 5 0",
        "Y1e3",
        "Y²",  # a digit to isdigit() that int() refuses: must not be an amount (nor a crash)
        "Y1.²",
    ],
)
def test_parse_bill_reply_anything_else_is_not_a_reply(text: str) -> None:
    assert parse_bill_reply(text) is None


@given(st.text(max_size=20))
def test_parse_bill_reply_never_fails_and_never_gives_a_non_positive_amount(text: str) -> None:
    reply = parse_bill_reply(text)
    assert reply is None or reply.prepay_fen is None or 0 < reply.prepay_fen < 10**9


@given(st.integers(min_value=1, max_value=999_999_999))
def test_parse_bill_reply_reads_back_any_amount_written_in_yuan(fen: int) -> None:
    assert parse_bill_reply(f"Y{fen // 100}.{fen % 100:02d}") == BillReply(fen)
