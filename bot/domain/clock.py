"""What time it is. Real time by default; a demo/test clock only when configured explicitly."""

from __future__ import annotations

import time
from datetime import datetime, timedelta, timezone
from typing import Protocol
from zoneinfo import ZoneInfo


class Clock(Protocol):
    def now(self) -> datetime:
        """An aware datetime (UTC)."""
        ...


class SystemClock:
    def now(self) -> datetime:
        return datetime.now(timezone.utc)


class ShiftedClock:
    """Starts at a chosen instant and then runs at normal speed (for demos: "it is Saturday 22:30")."""

    def __init__(self, start: datetime):
        self._start = start.astimezone(timezone.utc)
        self._t0 = time.monotonic()

    def now(self) -> datetime:
        return self._start + timedelta(seconds=time.monotonic() - self._t0)


class ManualClock:
    """Stands still until moved (for tests)."""

    def __init__(self, start: datetime):
        self._now = start.astimezone(timezone.utc)

    def now(self) -> datetime:
        return self._now

    def set(self, instant: datetime) -> None:
        self._now = instant.astimezone(timezone.utc)

    def advance(self, delta: timedelta) -> None:
        self._now += delta


def parse_local(text: str, tz: ZoneInfo) -> datetime:
    """An ISO date-time; without an offset it is local time in the desk's zone."""
    value = datetime.fromisoformat(text.strip())
    if value.tzinfo is None:
        value = value.replace(tzinfo=tz)
    return value


def clock_from_settings(fixed_now: str | None, tz: ZoneInfo) -> Clock:
    if fixed_now:
        return ShiftedClock(parse_local(fixed_now, tz))
    return SystemClock()
