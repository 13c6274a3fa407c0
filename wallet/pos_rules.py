"""Pure rules of the proximity terminals' journal: entry types, totals, adjustments, slips, settlement.

A terminal numbers its own transactions (the serial) and keeps a journal; the platform keeps the same
journal in `pos_entries`. Totals and the settlement comparison run over one open batch; a settlement
closes it. Amounts are what moved in the wallet: a sale's paid amount, a void's or adjustment's refund.
"""

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from expo.clock import expo_local
from expo.errors import Conflict, ExpoError
from expo.money import format_fen


class EntryType(StrEnum):
    SALE = "sale"
    VOID = "void"  # adjust to 0: all that is left of the sale goes back
    ADJUST = "adjust"  # adjust to a lower non-zero amount: the difference goes back


class DiscrepancyKind(StrEnum):
    MISSING_ON_PLATFORM = "missing_on_platform"  # the terminal journaled a serial the platform never recorded
    MISSING_ON_TERMINAL = "missing_on_terminal"  # the platform recorded a serial the terminal's journal lacks
    AMOUNT_DIFFERS = "amount_differs"  # both have the serial, with another amount or transaction type


def needs_password(amount_fen: int, *, pin_free_fen: int) -> bool:
    """A tap alone pays up to the PIN-free amount; above it the user types the payment password."""
    return amount_fen > pin_free_fen


def refund_for(*, entry_type: EntryType, left_fen: int, new_amount_fen: int = 0) -> int:
    """What a void (new amount 0) or an adjustment returns: the sale's remainder down to the new amount."""
    if left_fen <= 0:
        raise Conflict("nothing_left", "this sale was already returned in full")
    if entry_type == EntryType.VOID:
        return left_fen
    if new_amount_fen <= 0:
        raise ExpoError("invalid_amount", "an adjustment's new amount is a positive number of fen (0 is a void)")
    if new_amount_fen >= left_fen:
        raise Conflict(
            "adjust_exceeds_left", f"an adjustment lowers the sale below the {left_fen} fen left", left_fen=left_fen
        )
    return left_fen - new_amount_fen


@dataclass(frozen=True)
class JournalLine:
    """One line of a journal, the terminal's or the platform's."""

    serial: int
    entry_type: EntryType
    amount_fen: int


@dataclass(frozen=True)
class TypeTotal:
    count: int
    amount_fen: int


@dataclass(frozen=True)
class Totals:
    """A batch's totals by transaction type; net is what the merchant keeps of it."""

    sale: TypeTotal
    void: TypeTotal
    adjust: TypeTotal

    @property
    def net_fen(self) -> int:
        return self.sale.amount_fen - self.void.amount_fen - self.adjust.amount_fen

    @property
    def count(self) -> int:
        return self.sale.count + self.void.count + self.adjust.count


def totals_of(lines: Iterable[JournalLine]) -> Totals:
    """Count and sum a journal by transaction type."""
    counts = dict.fromkeys(EntryType, 0)
    sums = dict.fromkeys(EntryType, 0)
    for line in lines:
        counts[line.entry_type] += 1
        sums[line.entry_type] += line.amount_fen
    by_type = {kind: TypeTotal(counts[kind], sums[kind]) for kind in EntryType}
    return Totals(sale=by_type[EntryType.SALE], void=by_type[EntryType.VOID], adjust=by_type[EntryType.ADJUST])


def check_upload(lines: Iterable[JournalLine]) -> list[JournalLine]:
    """An uploaded journal names each serial once, with positive serials and no negative amounts."""
    checked: list[JournalLine] = []
    seen: set[int] = set()
    for line in lines:
        if line.serial <= 0:
            raise ExpoError("invalid_serial", "serials are positive numbers", status=400, serial=line.serial)
        if line.serial in seen:
            raise ExpoError(
                "duplicate_serial", f"serial {line.serial} appears twice in the upload", status=400, serial=line.serial
            )
        if line.amount_fen < 0:
            raise ExpoError(
                "negative_amount", f"serial {line.serial} has a negative amount", status=400, serial=line.serial
            )
        seen.add(line.serial)
        checked.append(line)
    return checked


@dataclass(frozen=True)
class Discrepancy:
    """A serial on which the terminal's and the platform's journals disagree (None: that side lacks it)."""

    kind: DiscrepancyKind
    serial: int
    terminal: JournalLine | None
    platform: JournalLine | None


def compare_journals(*, terminal: Iterable[JournalLine], platform: Iterable[JournalLine]) -> list[Discrepancy]:
    """Every serial the two journals of one batch disagree on, by serial."""
    ours = {line.serial: line for line in platform}
    theirs = {line.serial: line for line in terminal}
    found: list[Discrepancy] = []
    for serial in sorted(ours.keys() | theirs.keys()):
        mine, yours = ours.get(serial), theirs.get(serial)
        if mine is None:
            found.append(Discrepancy(DiscrepancyKind.MISSING_ON_PLATFORM, serial, terminal=yours, platform=None))
        elif yours is None:
            found.append(Discrepancy(DiscrepancyKind.MISSING_ON_TERMINAL, serial, terminal=None, platform=mine))
        elif (mine.entry_type, mine.amount_fen) != (yours.entry_type, yours.amount_fen):
            found.append(Discrepancy(DiscrepancyKind.AMOUNT_DIFFERS, serial, terminal=yours, platform=mine))
    return found


# --- slips -------------------------------------------------------------------------------------------


def mask_msisdn(msisdn: str) -> str:
    """A slip shows the phone number's first three and last four digits only: 138****0001."""
    if len(msisdn) < 8:
        return "*" * len(msisdn)
    return f"{msisdn[:3]}{'*' * (len(msisdn) - 7)}{msisdn[-4:]}"


@dataclass(frozen=True)
class Slip:
    """What a terminal prints for one journal line."""

    merchant_name: str
    merchant_code: str
    terminal_no: str
    serial: int
    batch_no: int
    entry_type: EntryType
    msisdn: str
    amount_fen: int
    at: datetime
    transfer_id: int
    original_serial: int | None


def slip_text(slip: Slip, *, reprint: bool) -> str:
    """The printed slip: merchant, terminal, serial and batch, type, masked phone, yuan, Shanghai time."""
    local = expo_local(slip.at)
    lines = [
        *(["*** REPRINT ***"] if reprint else []),
        f"MERCHANT: {slip.merchant_name}",
        f"MERCHANT NO: {slip.merchant_code}",
        f"TERMINAL: {slip.terminal_no}",
        f"BATCH: {slip.batch_no:06d}  SERIAL: {slip.serial:06d}",
        f"TYPE: {slip.entry_type.value.upper()}",
        *([f"ORIGINAL SERIAL: {slip.original_serial:06d}"] if slip.original_serial is not None else []),
        f"PHONE: {mask_msisdn(slip.msisdn)}",
        f"AMOUNT: CNY {format_fen(slip.amount_fen)}",
        f"TIME: {local:%Y-%m-%d %H:%M:%S}",
        f"REF: {slip.transfer_id}",
    ]
    return "\n".join(lines) + "\n"
