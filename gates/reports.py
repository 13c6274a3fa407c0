"""What the gates recorded, for the back office: entries per entrance and per gate of a day, and conflicts.

A gate's entries are admitted + forced - annulled, where an entry annulled twice (once by the gate when
the turnstile did not turn, once on the card at its next tap) is taken back once.
"""

from collections import Counter, defaultdict
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta

from sqlalchemy import distinct, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from expo.clock import EXPO_TZ
from gates.entrances import ENTRANCES
from gates.models import EntryConflict, EntryLine, GateDevice
from gates.wire import Event

MAX_CONFLICTS = 5000


@dataclass(frozen=True)
class GateCount:
    """One gate's lines of a day by event, and the entries they make (the API's shape too)."""

    gate_id: int
    entrance: str
    kind: str
    admitted: int
    forced: int
    annulled: int
    refused: int
    souvenirs: int
    entries: int


@dataclass(frozen=True)
class DayCounts:
    """A day's entries: every entrance (in the park's order) and every gate that uploaded a line of the day."""

    day: date
    entrances: dict[str, int]
    gates: list[GateCount]

    @property
    def total(self) -> int:
        return sum(self.entrances.values())


async def day_counts(session: AsyncSession, *, day: date) -> DayCounts:
    """The lines of an Expo day (the gate's clock decides the day) counted per gate and per entrance."""
    # Annulled lines count their distinct annulled seqs: the gate's line and the card's line are one annulment.
    rows = await session.execute(
        select(
            EntryLine.gate_id,
            EntryLine.event,
            func.count(),
            func.count(distinct(EntryLine.annuls_seq)),
        )
        .where(EntryLine.day == day)
        .group_by(EntryLine.gate_id, EntryLine.event)
    )
    by_gate: dict[int, Counter[str]] = defaultdict(Counter)
    for gate_id, event, lines, annulments in rows:
        by_gate[gate_id][event] = annulments if event == Event.ANNULLED else lines
    devices = {
        device.gate_id: device
        for device in await session.scalars(select(GateDevice).where(GateDevice.gate_id.in_(list(by_gate))))
    }
    gates = [
        GateCount(
            gate_id=gate_id,
            entrance=devices[gate_id].entrance,
            kind=devices[gate_id].kind,
            admitted=events[Event.ADMITTED],
            forced=events[Event.FORCED],
            annulled=events[Event.ANNULLED],
            refused=events[Event.REFUSED],
            souvenirs=events[Event.SOUVENIR],
            entries=events[Event.ADMITTED] + events[Event.FORCED] - events[Event.ANNULLED],
        )
        for gate_id, events in sorted(by_gate.items())
    ]
    entrances = dict.fromkeys(ENTRANCES, 0)
    for gate in gates:
        entrances[gate.entrance] += gate.entries
    return DayCounts(day=day, entrances=entrances, gates=gates)


async def day_conflicts(
    session: AsyncSession, *, day: date, code: str | None, limit: int
) -> tuple[list[EntryConflict], bool]:
    """The conflicts of lines decided on an Expo day, oldest first (at most 5000), and whether there are more."""
    limit = max(1, min(limit, MAX_CONFLICTS))
    start = datetime.combine(day, time(0), tzinfo=EXPO_TZ)
    query = (
        select(EntryConflict)
        .where(EntryConflict.at >= start, EntryConflict.at < start + timedelta(days=1))
        .order_by(EntryConflict.at, EntryConflict.id)
        .limit(limit + 1)
    )
    if code is not None:
        query = query.where(EntryConflict.code == code)
    rows = list(await session.scalars(query))
    return rows[:limit], len(rows) > limit
