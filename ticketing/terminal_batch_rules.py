"""Pure rules of a hall terminal's day close: its uploaded journal checked, totalled and compared with ours.

A hall terminal journals every sale, void and card write it made; at the day close it uploads the lines of
its open batch and the platform compares them with what it recorded for that terminal (its credential)
since the terminal's last close. A line is named by its type and reference: the order for a sale or a
void, the ticket for a card write. Amounts are what the sale took or the void gave back; writes carry 0.
"""

from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum

from expo.errors import ExpoError


class LineType(StrEnum):
    SALE = "sale"
    VOID = "void"
    WRITE = "write"


class DiscrepancyKind(StrEnum):
    MISSING_ON_PLATFORM = "missing_on_platform"  # the terminal journaled what the platform never recorded for it
    MISSING_ON_TERMINAL = "missing_on_terminal"  # the platform recorded what the terminal's journal lacks
    AMOUNT_DIFFERS = "amount_differs"  # both have it, with another amount


@dataclass(frozen=True)
class BatchLine:
    """One line of a journal, the terminal's (with its serial) or the platform's (serial None)."""

    line_type: LineType
    ref: int  # the order id of a sale or void, the ticket id of a card write
    amount_fen: int = 0
    serial: int | None = None


@dataclass(frozen=True)
class TypeTotal:
    count: int
    amount_fen: int


@dataclass(frozen=True)
class Discrepancy:
    """A line the two journals disagree on; the amounts are None on the side that lacks it."""

    kind: DiscrepancyKind
    line_type: LineType
    ref: int
    serial: int | None
    terminal_fen: int | None
    platform_fen: int | None


def check_upload(lines: Iterable[BatchLine]) -> list[BatchLine]:
    """An upload names each serial and each (type, reference) once; serials and references are positive,
    amounts not negative and a write carries no amount."""
    checked: list[BatchLine] = []
    serials: set[int] = set()
    refs: set[tuple[LineType, int]] = set()
    for line in lines:
        serial = line.serial or 0
        if serial <= 0 or line.ref <= 0:
            raise ExpoError("invalid_entry", "serials and references are positive numbers", status=400, serial=serial)
        if line.amount_fen < 0 or (line.line_type == LineType.WRITE and line.amount_fen != 0):
            raise ExpoError("invalid_entry", f"serial {serial} has an impossible amount", status=400, serial=serial)
        if serial in serials or (line.line_type, line.ref) in refs:
            raise ExpoError("duplicate_entry", f"serial {serial} repeats an entry", status=400, serial=serial)
        serials.add(serial)
        refs.add((line.line_type, line.ref))
        checked.append(line)
    return checked


def totals_of(lines: Iterable[BatchLine]) -> dict[LineType, TypeTotal]:
    """Count and sum a journal by line type (every type present, zero when none)."""
    counts = dict.fromkeys(LineType, 0)
    sums = dict.fromkeys(LineType, 0)
    for line in lines:
        counts[line.line_type] += 1
        sums[line.line_type] += line.amount_fen
    return {kind: TypeTotal(counts[kind], sums[kind]) for kind in LineType}


def compare_journals(*, terminal: Iterable[BatchLine], platform: Iterable[BatchLine]) -> list[Discrepancy]:
    """Every (type, reference) the terminal's and the platform's journals of one batch disagree on, in order."""
    ours = {(line.line_type, line.ref): line for line in platform}
    theirs = {(line.line_type, line.ref): line for line in terminal}
    found: list[Discrepancy] = []
    for key in sorted(ours.keys() | theirs.keys()):
        mine, yours = ours.get(key), theirs.get(key)
        serial = yours.serial if yours else None
        if mine is None and yours is not None:
            kind = DiscrepancyKind.MISSING_ON_PLATFORM
        elif yours is None:
            kind = DiscrepancyKind.MISSING_ON_TERMINAL
        elif mine is not None and mine.amount_fen != yours.amount_fen:
            kind = DiscrepancyKind.AMOUNT_DIFFERS
        else:
            continue
        found.append(
            Discrepancy(
                kind, key[0], key[1], serial, yours.amount_fen if yours else None, mine.amount_fen if mine else None
            )
        )
    return found
