"""Matching's pure rules: each difference's code, subject and texts; the confirmation file's checks and digest."""

from datetime import date, datetime

import pytest

from expo.clock import EXPO_TZ
from expo.errors import ExpoError
from reconciliation.bank_confirmations import ConfirmationLine, check_day, check_lines, file_digest
from reconciliation.matching_rules import (
    SUBJECT_MAX,
    BankKind,
    BankRecord,
    BatchFacts,
    Code,
    Source,
    Totals,
    batch_changed,
    clip,
    close_due_before,
    confirmed_difference,
    entry_count_mismatch,
    gate_conflict,
    journal_gap,
    missing_at_bank,
    sale_not_closed,
    terminal_line,
)

AT = datetime(2010, 6, 1, 10, 0, tzinfo=EXPO_TZ)
BATCH = BatchFacts("sh_hall", "上海徐家汇", "31", 3, AT)
SETTLED = BankRecord("EXP1", BankKind.CHARGE, 16_000, "confirmed", AT, "44")


def test_clip_keeps_short_texts_and_marks_a_cut() -> None:
    assert clip("abc", 3) == "abc"
    assert clip("abcd", 3) == "ab…"
    assert len(clip("x" * 500, SUBJECT_MAX)) == SUBJECT_MAX


@pytest.mark.parametrize(
    ("now", "due"),
    [
        (datetime(2010, 6, 2, 9, 0, tzinfo=EXPO_TZ), datetime(2010, 6, 2, 0, 0, tzinfo=EXPO_TZ)),
        (datetime(2010, 6, 1, 23, 59, tzinfo=EXPO_TZ), datetime(2010, 6, 1, 0, 0, tzinfo=EXPO_TZ)),
        # 16:30 UTC on 1 June is already 2 June at the Expo.
        (datetime.fromisoformat("2010-06-01T16:30:00+00:00"), datetime(2010, 6, 2, 0, 0, tzinfo=EXPO_TZ)),
    ],
)
def test_a_sale_is_due_in_a_close_once_its_expo_day_is_over(now: datetime, due: datetime) -> None:
    assert close_due_before(now) == due


def test_a_terminal_line_names_the_close_and_the_line() -> None:
    found = terminal_line(
        BATCH, kind="missing_on_terminal", line_type="sale", ref=12, terminal_fen=None, platform_fen=16_000
    )
    assert (found.source, found.code, found.province) == (Source.TERMINAL_BATCH, "missing_on_terminal", "31")
    assert found.subject == "terminal batch 3 of hall 上海徐家汇 (terminal sh_hall): sale of order 12"
    assert (found.expected, found.found) == ("server: the line, 160.00 yuan", "terminal: no such line")
    write = terminal_line(
        BATCH, kind="missing_on_platform", line_type="write", ref=7, terminal_fen=0, platform_fen=None
    )
    assert write.subject.endswith("write of ticket 7")
    assert write.found == "terminal: the line"


def test_a_sale_not_closed_says_the_terminal_did_not_close() -> None:
    found = sale_not_closed(order_id=5, terminal="sh_hall", hall="H", province="31", amount_fen=9_000, sold_at=AT)
    assert (found.code, found.subject) == (Code.SALE_NOT_CLOSED, "order 5 sold at hall H (terminal sh_hall)")
    assert found.cause == "the terminal did not close its day after this sale"
    assert "2010-06-01 10:00" in found.expected


def test_a_close_changes_only_when_its_figures_or_its_sales_do() -> None:
    totals = Totals(2, 32_000, 0, 0, 1)
    assert batch_changed(BATCH, closed=totals, now=totals, voided_elsewhere=0, voided_elsewhere_fen=0) is None
    later = batch_changed(BATCH, closed=totals, now=totals, voided_elsewhere=1, voided_elsewhere_fen=16_000)
    assert later is not None
    assert later.code == Code.BATCH_CHANGED_AFTER_CLOSE
    assert "later voided at another device: 1 (160.00 yuan)" in later.found
    assert "voided afterwards from another device" in later.cause
    changed = batch_changed(
        BATCH, closed=totals, now=Totals(3, 48_000, 0, 0, 1), voided_elsewhere=0, voided_elsewhere_fen=0
    )
    assert changed is not None
    assert (changed.expected, changed.found) == (
        "at the close: sales 2 (320.00 yuan), voids 0 (0.00 yuan), writes 1",
        "now: sales 3 (480.00 yuan), voids 0 (0.00 yuan), writes 1",
    )


@pytest.mark.parametrize(
    ("after", "following", "subject", "expected"),
    [
        (16, 20, "gate 1002 seq 17..19", "3 journal lines after seq 16, before seq 20"),
        (16, 18, "gate 1002 seq 17", "1 journal line after seq 16, before seq 18"),
        (0, 4, "gate 1002 seq 1..3", "3 journal lines from the journal's start, before seq 4"),
    ],
)
def test_a_journal_gap_names_the_missing_seqs(after: int, following: int, subject: str, expected: str) -> None:
    found = journal_gap(gate_id=1002, after_seq=after, next_seq=following)
    assert (found.source, found.code, found.subject, found.expected) == (
        Source.GATE_JOURNAL,
        Code.JOURNAL_GAP,
        subject,
        expected,
    )


def test_gate_conflicts_and_counts_keep_their_detail() -> None:
    conflict = gate_conflict(
        gate_id=7, seq=3, code="revoked_ticket_entered", detail="ticket 9 is void", ticket_id=9, province="31"
    )
    assert (conflict.code, conflict.subject, conflict.found) == (
        "revoked_ticket_entered",
        "gate 7 seq 3",
        "ticket 9 is void",
    )
    assert conflict.cause.endswith(": ticket 9 is void")
    assert "revocation list" in conflict.cause
    counted = entry_count_mismatch(ticket_id=9, entries_used=2, entry_lines=1, province="44")
    assert (counted.code, counted.subject, counted.province) == (Code.ENTRY_COUNT_MISMATCH, "ticket 9", "44")
    assert counted.expected.startswith("1 entry ")


def test_money_missing_at_the_bank_says_whether_the_days_file_came() -> None:
    waiting = missing_at_bank(SETTLED, bank_file_received=False)
    assert (waiting.code, waiting.subject, waiting.province) == (Code.MISSING_AT_BANK, "payment EXP1", "44")
    assert waiting.cause.startswith("not yet confirmed: no bank file of 2010-06-01")
    lost = missing_at_bank(SETTLED, bank_file_received=True)
    assert "the bank lost it" in lost.cause


def test_a_confirmation_against_our_record() -> None:
    def diff(ours: BankRecord | None, amount: int = 16_000) -> tuple[str, str | None] | None:
        found = confirmed_difference(
            reference="EXP1", kind=BankKind.CHARGE, bank="ICBC", day=date(2010, 6, 1), amount_fen=amount, ours=ours
        )
        return None if found is None else (found.code, found.province)

    assert diff(SETTLED) is None
    assert diff(None) == (Code.MISSING_IN_LEDGER, None)
    assert diff(SETTLED, amount=15_000) == (Code.AMOUNT_DIFFERS, "44")
    for status in ("pending", "declined", "voided", "cancelled"):
        pending = BankRecord("EXP1", BankKind.CHARGE, 16_000, status, None, "44")
        assert diff(pending) == (Code.STATUS_DIFFERS, "44")
    posted = BankRecord("WAL1", BankKind.TOP_UP, 16_000, "posted", AT, "31")
    assert diff(posted) is None


def _line(reference: str, kind: str = "charge", amount: object = 100) -> ConfirmationLine:
    return ConfirmationLine(reference, kind, amount)


@pytest.mark.parametrize(
    ("lines", "code"),
    [
        ([_line("A", amount=0)], "confirmation_amount_invalid"),
        ([_line("A", amount=-5)], "confirmation_amount_invalid"),
        ([_line("A", amount=1.5)], "confirmation_amount_invalid"),
        ([_line("A", amount=100.0)], "confirmation_amount_invalid"),
        ([_line("A", amount=True)], "confirmation_amount_invalid"),
        ([_line("A", amount=2**53 + 1)], "confirmation_amount_invalid"),
        ([_line("A", kind="transfer")], "confirmation_kind_unknown"),
        ([_line("A"), _line("B"), _line("A", amount=200)], "confirmation_inconsistent"),
    ],
)
def test_a_bad_line_refuses_the_file(lines: list[ConfirmationLine], code: str) -> None:
    with pytest.raises(ExpoError) as refused:
        check_lines(lines)
    assert refused.value.code == code


def test_a_charge_and_its_void_may_share_a_reference() -> None:
    checked = check_lines([_line("A"), _line("A", kind="void")])
    assert [(line.reference, line.kind) for line in checked] == [("A", BankKind.CHARGE), ("A", BankKind.VOID)]


def test_the_digest_ignores_the_order_of_lines_but_not_their_content() -> None:
    one = check_lines([_line("A"), _line("B", "top_up", 300)])
    other = check_lines([_line("B", "top_up", 300), _line("A")])
    assert file_digest(one) == file_digest(other)
    assert file_digest(one) != file_digest(check_lines([_line("A"), _line("B", "top_up", 301)]))
    assert len(file_digest(one)) == 64


@pytest.mark.parametrize(
    ("day", "code"),
    [
        (date(2008, 12, 31), "confirmation_day_out_of_range"),
        (date(2011, 4, 1), "confirmation_day_out_of_range"),
        (date(2010, 6, 2), "confirmation_day_in_future"),
    ],
)
def test_a_file_confirms_a_day_of_the_period_that_has_begun(day: date, code: str) -> None:
    with pytest.raises(ExpoError) as refused:
        check_day(day, now=AT)
    assert refused.value.code == code


def test_today_and_the_periods_first_day_are_accepted() -> None:
    assert check_day(date(2010, 6, 1), now=AT) == date(2010, 6, 1)
    assert check_day(date(2009, 1, 1), now=AT) == date(2009, 1, 1)
    assert check_day(date(2011, 3, 31), now=datetime(2011, 3, 31, 23, 0, tzinfo=EXPO_TZ)) == date(2011, 3, 31)
