"""Many gates at once with emulated cards in this process: the volume runs of a park day, without PC/SC.

Every visitor is a new card of a province, personalised from that province's keys and holding one signed
ticket, as the platform would have written it. Every gate is a `Validator` with its own SQLite journal, and
a tap is the gate's whole decision over `AppletChannel`: SELECT, OPEN SESSION, READ TICKET, MARK ENTRY and
the journal line, the same code as through pcscd. Making a visitor's card is not part of the timed tap.

A day's taps are planned from a seed, so every worker process plans the same day and runs only its own
gates (gate number modulo the number of workers): nothing crosses between processes but the figures.
"""

import random
import time
from collections import Counter
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from datetime import time as wall_time
from pathlib import Path

from expo.clock import EXPO_TZ, FixedClock
from expo.provinces import PROVINCES
from gates.entrances import ENTRANCES
from gates.journal import GateJournal
from gates.sam import Sam
from gates.validator import Validator
from simcard.applet import CardApplet
from simcard.channel import AppletChannel
from simcard.keys import KEY_TYPES, KEY_VALIDATE, KeySet, province_key
from simcard.personalise import new_card_state
from simcard.record import EVENT_WRITTEN, LogEntry, sign
from ticketing.card_rules import ticket_record
from ticketing.rules import TicketType

PEAK_DAY = date(2010, 10, 16)  # the Expo's busiest day: 1,032,700 visitors
PEAK_DAY_ENTRIES = 1_032_700
OPENING = wall_time(9, 0)
# Share of the day's arrivals in each hour from 09:00 (the morning rush; evening tickets from 17:00).
HOURLY_SHARE = (0.22, 0.20, 0.15, 0.10, 0.07, 0.05, 0.04, 0.04, 0.06, 0.04, 0.02, 0.01)
# The tickets of a standard day's visitors (the evening share arrives from 17:00).
TICKET_MIX = (
    (TicketType.STANDARD, 0.70),
    (TicketType.STANDARD_CONCESSION, 0.14),
    (TicketType.PASS_3, 0.05),
    (TicketType.PASS_7, 0.03),
    (TicketType.EVENING, 0.08),
)
EVENING_HOUR = 17


@dataclass(frozen=True)
class Tap:
    """One planned tap: which gate, which visitor (card serial and ticket) and when."""

    gate: int  # 0-based index over every gate of the park
    visitor: int
    ticket_type: TicketType
    at: datetime


@dataclass(frozen=True)
class Park:
    """The gates of the day: `per_entrance` gates at each of the 13 entrances, numbered 1001, 1002, ..."""

    per_entrance: int

    @property
    def gates(self) -> int:
        return self.per_entrance * len(ENTRANCES)

    def gate_id(self, gate: int) -> int:
        """Entrance k (1-based, in ENTRANCES order) numbers its gates k*1000 + 1, ..."""
        return (gate // self.per_entrance + 1) * 1000 + gate % self.per_entrance + 1

    def entrance(self, gate: int) -> str:
        return list(ENTRANCES)[gate // self.per_entrance]


def plan_day(*, entries: int, park: Park, day: date = PEAK_DAY, seed: int = 2010) -> Iterator[Tap]:
    """`entries` taps in time order over the opening hours, each a new visitor at a random gate.

    Evening tickets arrive from 17:00; the others follow HOURLY_SHARE. Visitor numbers are 1, 2, ...
    """
    rng = random.Random(seed)  # noqa: S311  # a repeatable plan, not a secret
    opening = datetime.combine(day, OPENING, tzinfo=EXPO_TZ)
    hours = [round(entries * share / sum(HOURLY_SHARE)) for share in HOURLY_SHARE]
    hours[0] += entries - sum(hours)
    day_types = [t for t, _ in TICKET_MIX if t is not TicketType.EVENING]
    day_weights = [w for t, w in TICKET_MIX if t is not TicketType.EVENING]
    evening_share = dict(TICKET_MIX)[TicketType.EVENING] / sum(HOURLY_SHARE[EVENING_HOUR - OPENING.hour :])
    visitor = 0
    for hour, count in enumerate(hours):
        start = opening + timedelta(hours=hour)
        for n in range(count):
            visitor += 1
            at = start + timedelta(seconds=3600 * n / count)
            evening = at.hour >= EVENING_HOUR and rng.random() < evening_share
            kind = TicketType.EVENING if evening else rng.choices(day_types, day_weights)[0]
            yield Tap(gate=rng.randrange(park.gates), visitor=visitor, ticket_type=kind, at=at)


class CardFactory:
    """Visitors' cards from the root keys, as the provinces would have personalised and written them."""

    def __init__(self, root: KeySet) -> None:
        self._root = root
        self._provinces = sorted(PROVINCES)
        self._province_keys: dict[str, Mapping[int, bytes]] = {}

    def _keys_of(self, province: str) -> Mapping[int, bytes]:
        keys = self._province_keys.get(province)
        if keys is None:
            keys = {t: province_key(self._root[t], province, t) for t in KEY_TYPES}
            self._province_keys[province] = keys
        return keys

    def card(self, visitor: int, ticket_type: TicketType) -> CardApplet:
        """Visitor n's card: a card of one of the 31 provinces with ticket n in slot 1, signed for it."""
        province = self._provinces[visitor % len(self._provinces)]
        state = new_card_state(province, visitor, self._keys_of(province), self._root.version)
        record = ticket_record(
            ticket_id=visitor,
            ticket_type=ticket_type.value,
            visit_day=None,
            upgrade_day=None,
            channel="hall",
            province=province,
            key_version=self._root.version,
        )
        raw = sign(record, state.keys[KEY_VALIDATE], state.csn)
        written = state.with_slot(1, raw, log_entry=LogEntry(0, EVENT_WRITTEN, visitor).encode())
        return CardApplet(written)


@dataclass
class WorkerFigures:
    """What one worker process saw: taps by outcome, the tap times (ms) and the busy seconds."""

    outcomes: Counter[str] = field(default_factory=Counter)
    tap_ms: list[float] = field(default_factory=list)
    seconds: float = 0.0
    card_seconds: float = 0.0


def run_gates(
    *,
    worker: int,
    workers: int,
    entries: int,
    park: Park,
    root: KeySet,
    folder: Path,
    durable: bool,
    seed: int = 2010,
) -> WorkerFigures:
    """Run this worker's gates through the planned day; every tap's outcome and time is counted."""
    sam = Sam.from_root(root)
    clock = FixedClock(datetime.combine(PEAK_DAY, OPENING, tzinfo=EXPO_TZ))
    validators: dict[int, Validator] = {}
    factory = CardFactory(root)
    figures = WorkerFigures()
    started = time.perf_counter()
    for tap in plan_day(entries=entries, park=park, seed=seed):
        if tap.gate % workers != worker:
            continue
        validator = validators.get(tap.gate)
        if validator is None:
            journal = GateJournal(folder / f"gate-{park.gate_id(tap.gate)}.db", durable=durable)
            validator = Validator(
                gate_id=park.gate_id(tap.gate), entrance=park.entrance(tap.gate), sam=sam, journal=journal, clock=clock
            )
            validators[tap.gate] = validator
        made = time.perf_counter()
        applet = factory.card(tap.visitor, tap.ticket_type)
        applet.power_on()
        clock.set(tap.at)
        tapped = time.perf_counter()
        result = validator.entry(AppletChannel(applet))
        done = time.perf_counter()
        figures.card_seconds += tapped - made
        figures.tap_ms.append((done - tapped) * 1000)
        figures.outcomes[result.code] += 1
    figures.seconds = time.perf_counter() - started
    for validator in validators.values():
        validator.journal.close()
    return figures
