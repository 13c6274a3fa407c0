"""Pure rules of matching: what each difference between two records of one thing is called, and how it is told.

Matching compares three pairs of records: a hall terminal's day closes with the server's sales, a gate's
journal with the server's entries and tickets, and the ledger's bank-side money with the banks' confirmation
files. Each difference found becomes a `DiscrepancyFound`: its source, a stable code, the province it concerns
(None: no one province), the record (`subject`), what one side expected, what the other has, and its likely
cause in a sentence a finance person understands. The texts fit the report's columns (`clip`).
"""

from dataclasses import dataclass
from datetime import date, datetime, time
from enum import StrEnum

from expo.clock import EXPO_TZ, expo_local
from expo.money import format_fen

SUBJECT_MAX = 100
TEXT_MAX = 200


class Source(StrEnum):
    TERMINAL_BATCH = "terminal_batch"  # hall terminal day closes against the server's sales
    GATE_JOURNAL = "gate_journal"  # gate journals against the server's entries and tickets
    BANK = "bank"  # the ledger's bank-side money against the banks' confirmation files


class Code(StrEnum):
    """The codes matching finds itself; stored terminal and gate findings keep their own codes."""

    SALE_NOT_CLOSED = "sale_not_closed"
    BATCH_CHANGED_AFTER_CLOSE = "batch_changed_after_close"
    JOURNAL_GAP = "journal_gap"
    ENTRY_COUNT_MISMATCH = "entry_count_mismatch"
    MISSING_AT_BANK = "missing_at_bank"
    MISSING_IN_LEDGER = "missing_in_ledger"
    AMOUNT_DIFFERS = "amount_differs"
    STATUS_DIFFERS = "status_differs"


class BankKind(StrEnum):
    """What a bank confirms: ticket money through the bank gateway, and wallet money in and out through banks."""

    CHARGE = "charge"  # a ticket charged to a credit card or online banking
    REFUND = "refund"  # a ticket's charge paid back (the bank knows it by the charge's reference)
    VOID = "void"  # a ticket's charge cancelled on its day (likewise)
    TOP_UP = "top_up"  # a wallet top-up by bank card or online banking
    WITHDRAWAL = "withdrawal"  # a wallet withdrawal paid out to a card
    PAYOUT = "payout"  # a merchant's T+1 payout ("payout:<day>:<merchant code>")


@dataclass(frozen=True)
class DiscrepancyFound:
    """One difference, as stored in a month's report (`reconciliation.models.Discrepancy`)."""

    source: Source
    code: str
    province: str | None
    subject: str
    expected: str
    found: str
    cause: str


def clip(text: str, limit: int) -> str:
    """A text cut to a column's width, marked with an ellipsis where it was cut."""
    return text if len(text) <= limit else text[: limit - 1] + "…"


def found(
    source: Source, code: str, *, province: str | None, subject: str, expected: str, found: str, cause: str
) -> DiscrepancyFound:
    """A discrepancy whose texts fit the report's columns."""
    return DiscrepancyFound(
        source, code, province, clip(subject, SUBJECT_MAX), clip(expected, TEXT_MAX), clip(found, TEXT_MAX), cause
    )


def money(amount_fen: int) -> str:
    """Fen as a finance person reads it."""
    return f"{format_fen(amount_fen)} yuan"


def when(at: datetime) -> str:
    """An instant on the Expo's wall clock, to the minute."""
    return f"{expo_local(at):%Y-%m-%d %H:%M}"


# --- hall terminal day closes ----------------------------------------------------------------------------


@dataclass(frozen=True)
class BatchFacts:
    """Which day close a finding is about: its terminal (credential label), hall, province and number."""

    terminal: str
    hall: str | None
    province: str | None
    batch_no: int
    closed_at: datetime

    @property
    def subject(self) -> str:
        return f"terminal batch {self.batch_no} of hall {self.hall or '-'} (terminal {self.terminal})"


_LINE_CAUSES = {
    "missing_on_platform": (
        "the terminal journaled something the server never recorded for it: the request never reached the server "
        "or failed there, so the customer may hold a ticket or money the server does not know of"
    ),
    "missing_on_terminal": (
        "the server recorded something for this terminal that its journal lacks: the terminal lost the reply or its "
        "journal, or another device used this terminal's credential"
    ),
    "amount_differs": (
        "the terminal journaled another amount than the server recorded: a keying or software fault at the counter"
    ),
}


def terminal_line(
    batch: BatchFacts, *, kind: str, line_type: str, ref: int, terminal_fen: int | None, platform_fen: int | None
) -> DiscrepancyFound:
    """A line the terminal's journal and the server's records disagreed on when the terminal closed its day."""
    what = f"{line_type} of ticket {ref}" if line_type == "write" else f"{line_type} of order {ref}"

    def side(amount: int | None) -> str:
        if amount is None:
            return "no such line"
        return "the line" if line_type == "write" else f"the line, {money(amount)}"

    return found(
        Source.TERMINAL_BATCH,
        kind,
        province=batch.province,
        subject=f"{batch.subject}: {what}",
        expected=f"server: {side(platform_fen)}",
        found=f"terminal: {side(terminal_fen)}",
        cause=_LINE_CAUSES.get(kind, "the terminal's journal and the server's records disagree on this line"),
    )


def sale_not_closed(
    *, order_id: int, terminal: str, hall: str | None, province: str, amount_fen: int, sold_at: datetime
) -> DiscrepancyFound:
    """A hall sale no day close of its terminal covers, though its day is over."""
    return found(
        Source.TERMINAL_BATCH,
        Code.SALE_NOT_CLOSED,
        province=province,
        subject=f"order {order_id} sold at hall {hall or '-'} (terminal {terminal})",
        expected=f"a day close of terminal {terminal} after {when(sold_at)}",
        found=f"no close since the sale of {money(amount_fen)}",
        cause="the terminal did not close its day after this sale",
    )


def close_due_before(now: datetime) -> datetime:
    """A terminal closes its day at the end of it: sales before today's 00:00 (Expo time) are due in a close."""
    return datetime.combine(expo_local(now).date(), time(0), tzinfo=EXPO_TZ)


@dataclass(frozen=True)
class Totals:
    """A day close's figures of one side: sales and voids (count, fen) and card writes (count)."""

    sales: int
    sales_fen: int
    voids: int
    voids_fen: int
    writes: int

    def __str__(self) -> str:
        return (
            f"sales {self.sales} ({money(self.sales_fen)}), voids {self.voids} ({money(self.voids_fen)}), "
            f"writes {self.writes}"
        )


def batch_changed(
    batch: BatchFacts, *, closed: Totals, now: Totals, voided_elsewhere: int, voided_elsewhere_fen: int
) -> DiscrepancyFound | None:
    """A day close whose figures the server no longer agrees with: its records of the interval changed, or a
    sale it closed was voided afterwards from another device (the terminal's cash no longer matches)."""
    if closed == now and not voided_elsewhere:
        return None
    later = f"; later voided at another device: {voided_elsewhere} ({money(voided_elsewhere_fen)})"
    if closed != now:
        cause = (
            "the server's records of the closed interval changed after the close: a sale or void was recorded "
            "with an earlier time (a request still running at the close), or a record was corrected"
        )
    else:
        cause = (
            "a sale this close counted was voided afterwards from another device, so the money this terminal "
            "handed in no longer matches the sales standing"
        )
    return found(
        Source.TERMINAL_BATCH,
        Code.BATCH_CHANGED_AFTER_CLOSE,
        province=batch.province,
        subject=f"{batch.subject}, closed {when(batch.closed_at)}",
        expected=f"at the close: {closed}",
        found=f"now: {now}" + (later if voided_elsewhere else ""),
        cause=cause,
    )


# --- gate journals ----------------------------------------------------------------------------------------


def journal_gap(*, gate_id: int, after_seq: int, next_seq: int) -> DiscrepancyFound:
    """Seq numbers a gate skipped before a line of the month (`after_seq` 0: its journal's start): lines it
    journaled and never uploaded."""
    first, last = after_seq + 1, next_seq - 1
    span = str(first) if first == last else f"{first}..{last}"
    count = last - first + 1
    after = f"after seq {after_seq}" if after_seq else "from the journal's start"
    return found(
        Source.GATE_JOURNAL,
        Code.JOURNAL_GAP,
        province=None,
        subject=f"gate {gate_id} seq {span}",
        expected=f"{count} journal line{'s' if count > 1 else ''} {after}, before seq {next_seq}",
        found="never uploaded",
        cause=(
            "the gate journaled these lines but never uploaded them: it is still offline, lost its journal, or its "
            "upload was refused; the entries they record are not counted"
        ),
    )


_CONFLICT_CAUSES = {
    "revoked_ticket_entered": "a void or refunded ticket was let in: the gate's revocation list was out of date",
    "unknown_ticket": "the card names a ticket the server never sold: a forged or corrupted card record",
    "ticket_not_on_card": "the ticket was written to another card: a copied ticket or a card swapped after the write",
    "forced_admission": "a supervisor forced the admission; it needs the supervisor's review",
    "late_upload": "the gate uploaded long after the entry: it was cut off from the server (or its clock is wrong)",
    "duplicate_card_event": "two journal lines report one card event: a gate re-numbered its journal, or two gates "
    "both recorded the same tap",
    "physical_ticket_reused": "a paper ticket entered twice the same day or more often than its type allows: "
    "a copied ticket",
}


def gate_conflict(
    *, gate_id: int, seq: int, code: str, detail: str, ticket_id: int | None, province: str | None
) -> DiscrepancyFound:
    """A conflict the server found when it took in a gate's line of the month."""
    ticket = f"ticket {ticket_id}" if ticket_id is not None else "no ticket named"
    return found(
        Source.GATE_JOURNAL,
        code,
        province=province,
        subject=f"gate {gate_id} seq {seq}",
        expected=f"an entry the server's records allow ({ticket})",
        found=detail,
        cause=_CONFLICT_CAUSES.get(code, "the gate's line does not agree with the server's records") + f": {detail}",
    )


def entry_count_mismatch(
    *, ticket_id: int, entries_used: int, entry_lines: int, province: str | None
) -> DiscrepancyFound:
    """A ticket whose entries used differ from the admissions the gates' journals hold for it."""
    return found(
        Source.GATE_JOURNAL,
        Code.ENTRY_COUNT_MISMATCH,
        province=province,
        subject=f"ticket {ticket_id}",
        expected=f"{entry_lines} entr{'y' if entry_lines == 1 else 'ies'} in the gate journals (not annulled)",
        found=f"entries used on the ticket: {entries_used}",
        cause=(
            "the ticket's entry count was changed outside the gates' journals (a manual correction, or an upload "
            "that failed half-way): visits and souvenir rights are counted wrong"
        ),
    )


# --- the ledger against the banks -------------------------------------------------------------------------


@dataclass(frozen=True)
class BankRecord:
    """Our side of a bank movement: a gateway ticket payment or a wallet transfer through a bank."""

    reference: str
    kind: BankKind
    amount_fen: int
    status: str
    at: datetime | None
    province: str | None

    @property
    def subject(self) -> str:
        what = {
            BankKind.CHARGE: "payment",
            BankKind.REFUND: "payment refund",
            BankKind.VOID: "payment void",
            BankKind.TOP_UP: "top-up",
            BankKind.WITHDRAWAL: "withdrawal",
            BankKind.PAYOUT: "merchant payout",
        }[self.kind]
        return f"{what} {self.reference}"


SETTLED_STATUSES = frozenset({"confirmed", "posted"})  # a ticket payment's, a wallet transfer's


def missing_at_bank(record: BankRecord, *, bank_file_received: bool) -> DiscrepancyFound:
    """Money we recorded through a bank that no bank's file confirms."""
    assert record.at is not None
    cause = (
        "the bank's files of that day do not confirm it: the bank lost it, or it went through a bank whose file "
        "has not been uploaded"
        if bank_file_received
        else f"not yet confirmed: no bank file of {expo_local(record.at).date()} has been uploaded"
    )
    return found(
        Source.BANK,
        Code.MISSING_AT_BANK,
        province=record.province,
        subject=record.subject,
        expected=f"a bank's {record.kind} of {money(record.amount_fen)} (ours, settled {when(record.at)})",
        found="no bank confirmation",
        cause=cause,
    )


def confirmed_difference(
    *, reference: str, kind: BankKind, bank: str, day: date, amount_fen: int, ours: BankRecord | None
) -> DiscrepancyFound | None:
    """A bank's confirmation against our record of the same reference and kind; None when they agree."""
    theirs = f"{bank} confirms a {kind} of {money(amount_fen)} on {day}"
    if ours is None:
        return found(
            Source.BANK,
            Code.MISSING_IN_LEDGER,
            province=None,
            subject=BankRecord(reference, kind, amount_fen, "", None, None).subject,
            expected="a settled record of ours",
            found=theirs,
            cause=(
                "we hold no record of this: a late bank notification was never applied, or a charge we took for "
                "failed and never wrote went through at the bank"
            ),
        )
    if ours.status not in SETTLED_STATUSES:
        return found(
            Source.BANK,
            Code.STATUS_DIFFERS,
            province=ours.province,
            subject=ours.subject,
            expected=f"ours: {ours.status}, {money(ours.amount_fen)}",
            found=theirs,
            cause=(
                f"we have it {ours.status} but the bank moved the money: its late answer was never applied, "
                "or we gave up on it too early"
            ),
        )
    if ours.amount_fen != amount_fen:
        return found(
            Source.BANK,
            Code.AMOUNT_DIFFERS,
            province=ours.province,
            subject=ours.subject,
            expected=f"ours: {money(ours.amount_fen)}",
            found=theirs,
            cause="the bank moved another amount than we recorded: a partial capture or an error at the bank",
        )
    return None
