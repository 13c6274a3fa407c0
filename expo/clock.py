"""Time is injected: services take `now` from a Clock; the Expo runs in Asia/Shanghai."""

from datetime import UTC, datetime, timedelta
from typing import Protocol
from zoneinfo import ZoneInfo

EXPO_TZ = ZoneInfo("Asia/Shanghai")


class Clock(Protocol):
    """Source of the current instant (timezone-aware)."""

    def now(self) -> datetime: ...


class SystemClock:
    """The wall clock, in the Expo's time zone."""

    def now(self) -> datetime:
        return datetime.now(UTC).astimezone(EXPO_TZ)


class FixedClock:
    """A clock that stands still until moved; for tests, the demo and replays."""

    def __init__(self, at: datetime) -> None:
        if at.tzinfo is None:
            raise ValueError("FixedClock needs an aware datetime")
        self._at = at

    def now(self) -> datetime:
        return self._at

    def advance(self, delta: timedelta) -> None:
        self._at = self._at + delta

    def set(self, at: datetime) -> None:
        self._at = at


def expo_local(at: datetime) -> datetime:
    """The same instant on the Expo's wall clock (Asia/Shanghai)."""
    return at.astimezone(EXPO_TZ)


class OffsetClock:
    """The wall clock shifted by a fixed offset: a running Expo day for the demo and load tests.

    Every worker of one server gets the same offset, so they agree on the time.
    """

    def __init__(self, offset: timedelta) -> None:
        self._offset = offset

    def now(self) -> datetime:
        return (datetime.now(UTC) + self._offset).astimezone(EXPO_TZ)
