"""The business calendar: office hours, weekends and public holidays in the desk's time zone.

It answers two questions: which billing periods a span of time covers (for quotes and time
entries), and whether a given instant is inside office hours (for the out-of-hours rules).
Work is done per local day, so the cost grows with the number of days, never with minutes.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, timezone
from decimal import Decimal
from functools import lru_cache
from typing import Iterator

import holidays as holidays_lib

from bot.domain.config import CalendarSettings, Multipliers


class Period(str, enum.Enum):
    """A kind of time the rate card distinguishes; the names are the multiplier keys."""

    OFFICE_HOURS = "office_hours"
    OUTSIDE_OFFICE_HOURS = "outside_office_hours"
    SATURDAY = "saturday"
    SUNDAY = "sunday"
    PUBLIC_HOLIDAY = "public_holiday"


@dataclass(frozen=True)
class CalendarSegment:
    """[start, end) in aware datetimes, with every period that applies to it."""

    start: datetime
    end: datetime
    periods: frozenset[Period]

    @property
    def elapsed(self) -> timedelta:
        # Subtracting two datetimes of one zone ignores DST: subtract in UTC.
        return _utc(self.end) - _utc(self.start)

    def multiplier(self, multipliers: Multipliers) -> Decimal:
        # The highest applicable multiplier wins (a holiday evening is billed as a holiday).
        applicable: list[Decimal] = [getattr(multipliers, p.value) for p in self.periods]
        return max(applicable)


class BusinessCalendar:
    def __init__(self, settings: CalendarSettings):
        self.settings = settings
        self.tz = settings.tz
        self._office_weekdays = settings.office_weekdays

    # ---- holidays --------------------------------------------------------------------------
    def holiday_name(self, day: date) -> str | None:
        return _holidays(self.settings.holiday_country, self.settings.holiday_subdivision, day.year).get(day)

    def is_holiday(self, day: date) -> bool:
        return self.holiday_name(day) is not None

    # ---- classification ----------------------------------------------------------------------
    def day_periods(self, day: date) -> list[tuple[time | None, time | None, frozenset[Period]]]:
        """The periods of one local day as (from, to, periods); None stands for midnight."""
        extra = {Period.PUBLIC_HOLIDAY} if self.is_holiday(day) else set()
        weekday = day.weekday()
        if weekday == 5:
            return [(None, None, frozenset({Period.SATURDAY} | extra))]
        if weekday == 6:
            return [(None, None, frozenset({Period.SUNDAY} | extra))]
        if weekday not in self._office_weekdays:
            return [(None, None, frozenset({Period.OUTSIDE_OFFICE_HOURS} | extra))]
        start, end = self.settings.office_start, self.settings.office_end
        outside = frozenset({Period.OUTSIDE_OFFICE_HOURS} | extra)
        return [
            (None, start, outside),
            (start, end, frozenset({Period.OFFICE_HOURS} | extra)),
            (end, None, outside),
        ]

    def periods_at(self, instant: datetime) -> frozenset[Period]:
        instant = _require_aware(instant)
        for seg in self.segments(instant, instant + timedelta(microseconds=1)):
            return seg.periods
        raise AssertionError("a span of one microsecond always has one segment")

    def is_office_hours(self, instant: datetime) -> bool:
        return self.periods_at(instant) == frozenset({Period.OFFICE_HOURS})

    def next_office_opening(self, instant: datetime) -> datetime:
        """The first instant at or after `instant` that is inside office hours."""
        local = _require_aware(instant).astimezone(self.tz)
        day = local.date()
        for _ in range(366 * 2):
            for opens, closes, periods in self.day_periods(day):
                if periods == frozenset({Period.OFFICE_HOURS}):
                    opening = _utc(self._local(day, opens))
                    closing = _utc(self._local(day, closes))
                    if _utc(local) < closing:
                        return max(opening, _utc(local)).astimezone(self.tz)
            day += timedelta(days=1)
        raise ValueError("no office hours within two years: check the calendar settings")

    def add_office_time(self, start: datetime, duration: timedelta) -> datetime:
        """The instant when `duration` of office hours has passed since `start` (an escalation
        raised on Friday 16:30 with one office hour to wait falls due on Monday 09:30)."""
        remaining = duration
        cursor = _utc(_require_aware(start))
        for _ in range(366 * 2):
            opening = _utc(self.next_office_opening(cursor))
            closing = _utc(self._office_closing(opening))
            available = closing - opening
            if remaining <= available:
                return (opening + remaining).astimezone(self.tz)
            remaining -= available
            cursor = closing
        raise ValueError("no office hours within two years: check the calendar settings")

    def _office_closing(self, instant: datetime) -> datetime:
        local = instant.astimezone(self.tz)
        return self._local(local.date(), self.settings.office_end)

    # ---- splitting ---------------------------------------------------------------------------
    def segments(self, start: datetime, end: datetime) -> Iterator[CalendarSegment]:
        """Split [start, end) at every local boundary (office hours, midnight) in order.

        Boundaries are local wall-clock times made aware in the desk's zone, and every
        comparison happens in UTC, so a span over a DST change measures elapsed real time.
        """
        start_utc = _require_aware(start).astimezone(timezone.utc)
        end_utc = _require_aware(end).astimezone(timezone.utc)
        if end_utc <= start_utc:
            return
        day = start_utc.astimezone(self.tz).date()
        while True:
            next_day = day + timedelta(days=1)
            for frm, to, periods in self.day_periods(day):
                seg_start = _utc(self._local(day, frm))
                seg_end = _utc(self._local(next_day, None) if to is None else self._local(day, to))
                lo, hi = max(seg_start, start_utc), min(seg_end, end_utc)
                if lo < hi:
                    yield CalendarSegment(lo.astimezone(self.tz), hi.astimezone(self.tz), periods)
            if _utc(self._local(next_day, None)) >= end_utc:
                return
            day = next_day

    def _local(self, day: date, at: time | None) -> datetime:
        return datetime.combine(day, at or time(0), tzinfo=self.tz)


def _utc(dt: datetime) -> datetime:
    # Aware datetimes in the same ZoneInfo compare by wall clock, not by instant: compare in UTC.
    return dt.astimezone(timezone.utc)


def _require_aware(dt: datetime) -> datetime:
    if dt.tzinfo is None or dt.utcoffset() is None:
        raise ValueError("datetimes must be timezone-aware")
    return dt


@lru_cache(maxsize=64)
def _holidays(country: str, subdivision: str | None, year: int) -> dict[date, str]:
    return dict(holidays_lib.country_holidays(country, subdiv=subdivision, years=year).items())
