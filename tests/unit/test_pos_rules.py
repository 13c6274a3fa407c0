"""POS journal rules: PIN-free amount, voids and adjustments, totals, upload checks, journal comparison, slips."""

from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from expo.errors import ExpoError
from wallet.pos_rules import (
    DiscrepancyKind,
    EntryType,
    JournalLine,
    Slip,
    check_upload,
    compare_journals,
    mask_msisdn,
    needs_password,
    refund_for,
    slip_text,
    totals_of,
)

SALE, VOID, ADJUST = EntryType.SALE, EntryType.VOID, EntryType.ADJUST


@pytest.mark.parametrize(("amount", "needed"), [(1, False), (20_000, False), (20_001, True), (999_999, True)])
def test_the_password_is_needed_only_above_the_pin_free_amount(amount: int, needed: bool) -> None:
    assert needs_password(amount, pin_free_fen=20_000) is needed


def test_a_void_returns_all_that_is_left() -> None:
    assert refund_for(entry_type=VOID, left_fen=750) == 750


@pytest.mark.parametrize(("left", "new", "back"), [(1_000, 999, 1), (1_000, 1, 999), (600, 250, 350)])
def test_an_adjustment_returns_the_difference(left: int, new: int, back: int) -> None:
    assert refund_for(entry_type=ADJUST, left_fen=left, new_amount_fen=new) == back


@pytest.mark.parametrize(
    ("entry_type", "left", "new", "code"),
    [
        (ADJUST, 1_000, 1_000, "adjust_exceeds_left"),
        (ADJUST, 1_000, 1_500, "adjust_exceeds_left"),
        (ADJUST, 1_000, 0, "invalid_amount"),
        (ADJUST, 1_000, -5, "invalid_amount"),
        (ADJUST, 0, 1, "nothing_left"),
        (VOID, 0, 0, "nothing_left"),
    ],
)
def test_adjustments_only_lower_what_is_left(entry_type: EntryType, left: int, new: int, code: str) -> None:
    with pytest.raises(ExpoError) as refused:
        refund_for(entry_type=entry_type, left_fen=left, new_amount_fen=new)
    assert refused.value.code == code


def test_totals_count_and_sum_by_type_and_net_out_the_returns() -> None:
    totals = totals_of(
        [
            JournalLine(1, SALE, 1_000),
            JournalLine(2, SALE, 2_500),
            JournalLine(3, ADJUST, 300),
            JournalLine(4, VOID, 1_000),
            JournalLine(5, SALE, 40),
        ]
    )
    assert (totals.sale.count, totals.sale.amount_fen) == (3, 3_540)
    assert (totals.void.count, totals.void.amount_fen) == (1, 1_000)
    assert (totals.adjust.count, totals.adjust.amount_fen) == (1, 300)
    assert (totals.net_fen, totals.count) == (2_240, 5)


def test_an_empty_batch_totals_zero() -> None:
    totals = totals_of([])
    assert (totals.count, totals.net_fen, totals.sale.amount_fen) == (0, 0, 0)


@pytest.mark.parametrize(
    ("lines", "code"),
    [
        ([JournalLine(1, SALE, 100), JournalLine(1, VOID, 100)], "duplicate_serial"),
        ([JournalLine(1, SALE, -1)], "negative_amount"),
        ([JournalLine(0, SALE, 100)], "invalid_serial"),
        ([JournalLine(-3, SALE, 100)], "invalid_serial"),
    ],
)
def test_a_garbled_upload_is_refused(lines: list[JournalLine], code: str) -> None:
    with pytest.raises(ExpoError) as refused:
        check_upload(lines)
    assert (refused.value.code, refused.value.status) == (code, 400)


def test_equal_journals_have_no_discrepancy_whatever_their_order() -> None:
    ours = [JournalLine(1, SALE, 100), JournalLine(2, VOID, 100)]
    assert compare_journals(terminal=list(reversed(ours)), platform=ours) == []
    assert check_upload(ours) == ours


def test_each_kind_of_discrepancy_is_found_by_serial() -> None:
    platform = [
        JournalLine(1, SALE, 100),
        JournalLine(2, SALE, 200),
        JournalLine(3, SALE, 300),
        JournalLine(4, SALE, 9),
    ]
    terminal = [JournalLine(1, SALE, 100), JournalLine(3, SALE, 333), JournalLine(4, VOID, 9), JournalLine(5, SALE, 5)]
    found = compare_journals(terminal=terminal, platform=platform)
    assert [(item.kind, item.serial) for item in found] == [
        (DiscrepancyKind.MISSING_ON_TERMINAL, 2),
        (DiscrepancyKind.AMOUNT_DIFFERS, 3),
        (DiscrepancyKind.AMOUNT_DIFFERS, 4),  # another transaction type under the same serial
        (DiscrepancyKind.MISSING_ON_PLATFORM, 5),
    ]
    assert (found[0].terminal, found[0].platform) == (None, platform[1])
    assert (found[1].terminal, found[1].platform) == (terminal[1], platform[2])
    assert (found[3].terminal, found[3].platform) == (terminal[3], None)


lines_strategy = st.lists(
    st.builds(JournalLine, st.integers(1, 30), st.sampled_from(list(EntryType)), st.integers(0, 10_000)),
    max_size=20,
    unique_by=lambda line: line.serial,
)


@given(terminal=lines_strategy, platform=lines_strategy)
def test_journals_match_exactly_when_they_are_equal_as_sets(
    terminal: list[JournalLine], platform: list[JournalLine]
) -> None:
    found = compare_journals(terminal=terminal, platform=platform)
    assert (not found) == (set(terminal) == set(platform))
    assert len({item.serial for item in found}) == len(found)


@pytest.mark.parametrize(("msisdn", "shown"), [("13800000001", "138****0001"), ("13423456789", "134****6789")])
def test_a_slip_masks_the_middle_of_the_phone_number(msisdn: str, shown: str) -> None:
    assert mask_msisdn(msisdn) == shown


def test_a_reprinted_slip_shows_yuan_shanghai_time_and_the_mark() -> None:
    slip = Slip(
        merchant_name="Expo Noodles",
        merchant_code="NOODLES",
        terminal_no="T-01",
        serial=7,
        batch_no=2,
        entry_type=ADJUST,
        msisdn="13800000001",
        amount_fen=1_250,
        at=datetime(2010, 6, 1, 2, 5, 9, tzinfo=UTC),
        transfer_id=42,
        original_serial=5,
    )
    text = slip_text(slip, reprint=True)
    assert text.startswith("*** REPRINT ***\n")
    for part in (
        "Expo Noodles",
        "T-01",
        "SERIAL: 000007",
        "BATCH: 000002",
        "TYPE: ADJUST",
        "ORIGINAL SERIAL: 000005",
        "138****0001",
        "CNY 12.50",
        "2010-06-01 10:05:09",
        "REF: 42",
    ):
        assert part in text
    assert "13800000001" not in text
    assert "REPRINT" not in slip_text(slip, reprint=False)
