"""A bank's confirmation file for one day: checked, stored once, and replayed when it is uploaded again.

The file lists what the bank moved for us that day: each line our reference, its kind (`BankKind`) and its
amount in fen. A refund or void is named by the reference of the charge it pays back, the reference the bank
was given. A file is all or nothing: one bad line refuses it and nothing is stored. The same (bank, day) again
with the same lines, in any order, replays the stored summary; with other lines it is refused, because a bank's
day is confirmed once and a correction comes as the next day's movement.
The digest is SHA-256 over the canonical lines: sorted, one "reference TAB kind TAB amount" per line.
"""

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime

from sqlalchemy import insert, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from expo.clock import expo_local
from expo.errors import Conflict, ExpoError
from reconciliation.locks import lock_settlement
from reconciliation.matching_rules import BankKind
from reconciliation.models import BankConfirmation, BankConfirmationFile, SettlementMonth
from reconciliation.rules import Month

FIRST_DAY = date(2009, 1, 1)  # the settlement period (`reconciliation.rules.Month`)
LAST_DAY = date(2011, 3, 31)
MAX_AMOUNT_FEN = 2**53
_LOOKUP_CHUNK = 500  # references per query: well under both databases' parameter limits


@dataclass(frozen=True)
class ConfirmationLine:
    """One movement as the bank reports it; `kind` and `amount_fen` are checked by `check_file`."""

    reference: str
    kind: str
    amount_fen: object


@dataclass(frozen=True)
class CheckedLine:
    reference: str
    kind: BankKind
    amount_fen: int


@dataclass(frozen=True)
class FileSummary:
    """A stored file: its bank, day, number of lines, total, digest, when it came, and whether this was a replay."""

    bank: str
    day: date
    lines: int
    amount_fen: int
    digest: str
    received_at: datetime
    replayed: bool


def check_day(day: date, *, now: datetime) -> date:
    """A file confirms a day of the settlement period that has begun (Expo time)."""
    if not FIRST_DAY <= day <= LAST_DAY:
        raise ExpoError(
            "confirmation_day_out_of_range",
            f"{day} is outside the settlement period {FIRST_DAY} .. {LAST_DAY}",
            day=day.isoformat(),
        )
    if day > expo_local(now).date():
        raise ExpoError("confirmation_day_in_future", f"{day} has not come yet", day=day.isoformat())
    return day


def check_lines(lines: Sequence[ConfirmationLine]) -> list[CheckedLine]:
    """Each line has a known kind and a positive whole amount, and names its (reference, kind) once."""
    checked: list[CheckedLine] = []
    seen: set[tuple[str, str]] = set()
    for line in lines:
        amount = line.amount_fen
        if isinstance(amount, bool) or not isinstance(amount, int) or not 0 < amount <= MAX_AMOUNT_FEN:
            raise ExpoError(
                "confirmation_amount_invalid",
                f"{line.reference}: the amount is a whole number of fen above 0, not {amount!r}",
                reference=line.reference,
            )
        try:
            kind = BankKind(line.kind)
        except ValueError:
            known = ", ".join(k.value for k in BankKind)
            raise ExpoError(
                "confirmation_kind_unknown",
                f"{line.reference}: {line.kind!r} is not a kind of movement ({known})",
                reference=line.reference,
            ) from None
        if (line.reference, kind) in seen:
            raise ExpoError(
                "confirmation_inconsistent",
                f"{line.reference}: the file confirms its {kind} twice",
                reference=line.reference,
            )
        seen.add((line.reference, kind))
        checked.append(CheckedLine(line.reference, kind, amount))
    return checked


def file_digest(lines: Sequence[CheckedLine]) -> str:
    """SHA-256 of the canonical lines: the same movements in any order give the same digest."""
    canonical = sorted(f"{line.reference}\t{line.kind.value}\t{line.amount_fen}\n" for line in lines)
    return hashlib.sha256("".join(canonical).encode()).hexdigest()


async def store_confirmations(
    session: AsyncSession, *, bank: str, day: date, lines: Sequence[ConfirmationLine], now: datetime
) -> FileSummary:
    """Store a bank's file of a day once: refused whole if a line is bad, replayed if the same file came before,
    refused if another file of that bank and day did, or if a line confirms again what an earlier file did, or
    if its month is closed."""
    checked = check_lines(lines)
    check_day(day, now=now)
    digest = file_digest(checked)
    # Wait for a close in flight: the file then lands before it (and is matched) or finds the month closed; never
    # between the close's matching and its commit, where nothing would ever match it.
    await lock_settlement(session)
    earlier = await _file_of(session, bank=bank, day=day)
    if earlier is not None:
        return _replay(earlier, digest=digest)
    await _refuse_confirmed_before(session, bank=bank, lines=checked)
    month = Month.of(day)
    if await session.get(SettlementMonth, str(month)) is not None:
        raise Conflict(
            "month_closed", f"{month} is closed: its matching report is final, so its bank files come before the close"
        )
    row = BankConfirmationFile(
        bank=bank,
        day=day,
        digest=digest,
        lines=len(checked),
        amount_fen=sum(line.amount_fen for line in checked),
        received_at=now,
    )
    try:
        async with session.begin_nested():
            session.add(row)
            await session.flush()
    except IntegrityError:
        # The same bank and day came in concurrently and was committed first.
        earlier = await _file_of(session, bank=bank, day=day)
        if earlier is None:
            raise
        return _replay(earlier, digest=digest)
    if checked:
        await session.execute(
            insert(BankConfirmation),
            [
                {
                    "file_id": row.id,
                    "bank": bank,
                    "day": day,
                    "reference": line.reference,
                    "kind": line.kind.value,
                    "amount_fen": line.amount_fen,
                }
                for line in checked
            ],
        )
    return _summary(row, replayed=False)


async def _file_of(session: AsyncSession, *, bank: str, day: date) -> BankConfirmationFile | None:
    return await session.scalar(
        select(BankConfirmationFile).where(BankConfirmationFile.bank == bank, BankConfirmationFile.day == day)
    )


def _replay(earlier: BankConfirmationFile, *, digest: str) -> FileSummary:
    if earlier.digest != digest:
        raise Conflict(
            "confirmation_file_conflict",
            f"{earlier.bank}'s file of {earlier.day} was uploaded before with other lines",
            bank=earlier.bank,
            day=earlier.day.isoformat(),
            digest=earlier.digest,
        )
    return _summary(earlier, replayed=True)


async def _refuse_confirmed_before(session: AsyncSession, *, bank: str, lines: Sequence[CheckedLine]) -> None:
    """A bank confirms a movement once: a (reference, kind) of an earlier file of the bank is inconsistent."""
    wanted = {(line.reference, line.kind.value) for line in lines}
    references = sorted({line.reference for line in lines})
    for start in range(0, len(references), _LOOKUP_CHUNK):
        rows = await session.execute(
            select(BankConfirmation.reference, BankConfirmation.kind, BankConfirmation.day).where(
                BankConfirmation.bank == bank,
                BankConfirmation.reference.in_(references[start : start + _LOOKUP_CHUNK]),
            )
        )
        for reference, kind, day in rows:
            if (reference, kind) in wanted:
                raise ExpoError(
                    "confirmation_inconsistent",
                    f"{reference}: {bank} already confirmed its {kind} in the file of {day}",
                    reference=reference,
                )


def _summary(row: BankConfirmationFile, *, replayed: bool) -> FileSummary:
    return FileSummary(row.bank, row.day, row.lines, row.amount_fen, row.digest, row.received_at, replayed)
