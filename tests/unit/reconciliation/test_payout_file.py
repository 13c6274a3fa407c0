"""A payout day's file as CSV: the header, amounts in fen and yuan, carried nets, quoting of merchants' names."""

import csv
import io
from dataclasses import replace
from datetime import date

import pytest

from reconciliation.payout_file import COLUMNS, PayoutFileRow, payout_file_csv

DAY = date(2010, 6, 17)
PAID = PayoutFileRow(
    payout_day=DAY,
    merchant_code="EBOOK",
    merchant_name="Merchant EBOOK",
    province="44",
    payments=3,
    gross_fen=12_345,
    fee_fen=123,
    refunds=1,
    refunded_fen=4_951,
    carried_in_fen=-1_000,
    amount_fen=6_271,
    reference="payout:2010-06-17:EBOOK",
)
CARRIED = PayoutFileRow(DAY, "GAMES", 'Games, "Online" Ltd', "11", 0, 0, 0, 2, 5_100, 1_700, 0, None)


def test_the_file_is_a_header_then_one_line_per_merchant() -> None:
    assert payout_file_csv([PAID, CARRIED]).splitlines() == [
        ",".join(COLUMNS),
        "2010-06-17,EBOOK,Merchant EBOOK,44,3,12345,123.45,123,1.23,1,4951,49.51,-1000,-10.00,6271,62.71,"
        "payout:2010-06-17:EBOOK",
        '2010-06-17,GAMES,"Games, ""Online"" Ltd",11,0,0,0.00,0,0.00,2,5100,51.00,1700,17.00,0,0.00,',
    ]


def test_an_empty_day_is_the_header_alone() -> None:
    assert payout_file_csv([]) == ",".join(COLUMNS) + "\n"


def test_a_spreadsheet_reads_back_every_figure() -> None:
    [header, *rows] = list(csv.reader(io.StringIO(payout_file_csv([PAID, CARRIED]))))
    assert tuple(header) == COLUMNS
    read = [dict(zip(header, row, strict=True)) for row in rows]
    assert [row["merchant"] for row in read] == ["EBOOK", "GAMES"]
    assert read[1]["name"] == 'Games, "Online" Ltd'
    for row, source in zip(read, (PAID, CARRIED), strict=True):
        for name in ("gross", "fee", "refunded", "carried_in", "amount"):
            fen = getattr(source, f"{name}_fen")
            assert int(row[f"{name}_fen"]) == fen
            assert round(float(row[f"{name}_yuan"]) * 100) == fen


@pytest.mark.parametrize(
    ("row", "carried_out"),
    [
        (PAID, 0),  # -1_000 + 12_345 - 123 - 4_951 = 6_271, all paid
        (CARRIED, 1_700 - 5_100),  # refunds outweigh what was carried: owed back
        (replace(PAID, amount_fen=6_000), 271),  # the account covered only part of the net
    ],
)
def test_what_a_merchant_still_carries_after_the_day(row: PayoutFileRow, carried_out: int) -> None:
    assert row.carried_out_fen == carried_out
