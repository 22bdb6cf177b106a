"""Parsing what people type: dates, times, durations, numbers, in English, French and Dutch."""

from __future__ import annotations

import re
from datetime import date, datetime, time, timedelta, timezone, tzinfo

from bot.domain.validation import Invalid, clean_text

_RELATIVE_DAYS = {
    "today": 0, "aujourd'hui": 0, "aujourd’hui": 0, "vandaag": 0,
    "tomorrow": 1, "demain": 1, "morgen": 1,
    "yesterday": -1, "hier": -1, "gisteren": -1,
    "day after tomorrow": 2, "après-demain": 2, "apres-demain": 2, "overmorgen": 2,
}


def parse_date(text: str, today: date) -> date:
    """2026-11-27, 27/11/2026, 27-11-2026, 27.11.2026, 27/11 (this year), today, demain, morgen…"""
    value = clean_text(text).lower()
    if value in _RELATIVE_DAYS:
        return today + timedelta(days=_RELATIVE_DAYS[value])
    try:
        if re.fullmatch(r"\d{4}-\d{1,2}-\d{1,2}", value):
            y, m, d = (int(p) for p in value.split("-"))
            return date(y, m, d)
        match = re.fullmatch(r"(\d{1,2})[/.\-](\d{1,2})(?:[/.\-](\d{2}|\d{4}))?", value)
        if match:
            d, m = int(match.group(1)), int(match.group(2))
            yy = match.group(3)
            year = today.year if yy is None else (2000 + int(yy) if len(yy) == 2 else int(yy))
            return date(year, m, d)
    except ValueError:
        raise Invalid("validation.date") from None
    raise Invalid("validation.date")


def parse_time(text: str) -> time:
    """14:30, 14h30, 14h, 14.30, 9u30 (Dutch), 2:30 pm."""
    value = clean_text(text).lower().replace(" ", "")
    match = re.fullmatch(r"(\d{1,2})(?:[:hu.](\d{2})?)?(am|pm)?", value)
    if not match:
        raise Invalid("validation.time")
    hours, minutes = int(match.group(1)), int(match.group(2) or 0)
    suffix = match.group(3)
    if suffix:
        if not 1 <= hours <= 12:
            raise Invalid("validation.time")
        hours = hours % 12 + (12 if suffix == "pm" else 0)
    if not (0 <= hours < 24 and 0 <= minutes < 60):
        raise Invalid("validation.time")
    return time(hours, minutes)


_DURATION_UNITS = {"h": 60, "u": 60, "hr": 60, "hrs": 60, "hour": 60, "hours": 60, "heure": 60, "heures": 60,
                   "uur": 60, "m": 1, "min": 1, "mins": 1, "minute": 1, "minutes": 1, "minuten": 1}


def parse_duration(text: str) -> timedelta:
    """45m, 1h30, 1h 30m, 1:30, 1.5h, 1,5 h, 2 hours, 90 min, 1u30."""
    value = clean_text(text).lower()
    compact = value.replace(" ", "")
    minutes: float | None = None
    if m := re.fullmatch(r"(\d{1,2}):(\d{2})", compact):
        if int(m.group(2)) < 60:
            minutes = int(m.group(1)) * 60 + int(m.group(2))
    elif m := re.fullmatch(r"(\d{1,3})[hu](\d{1,2})(?:m|min)?", compact):
        if int(m.group(2)) < 60:
            minutes = int(m.group(1)) * 60 + int(m.group(2))
    elif m := re.fullmatch(r"(\d+(?:[.,]\d+)?)\s*([a-z]+)", value):
        unit = _DURATION_UNITS.get(m.group(2))
        if unit is not None:
            minutes = float(m.group(1).replace(",", ".")) * unit
    elif m := re.fullmatch(r"(\d+(?:[.,]\d+)?)", compact):
        # A bare number is hours ("2" = two hours), the way people say it.
        minutes = float(m.group(1).replace(",", ".")) * 60
    if minutes is None:
        raise Invalid("validation.duration")
    duration = timedelta(minutes=round(minutes))
    if duration <= timedelta(0):
        raise Invalid("validation.duration_positive")
    if duration > timedelta(hours=24):
        raise Invalid("validation.duration_max", {"hours": 24})
    return duration


def parse_int(text: str, minimum: int, maximum: int) -> int:
    value = clean_text(text)
    if not re.fullmatch(r"\d{1,6}", value):
        raise Invalid("validation.number", {"min": minimum, "max": maximum})
    number = int(value)
    if not minimum <= number <= maximum:
        raise Invalid("validation.number", {"min": minimum, "max": maximum})
    return number


def combine_local(day: date, at: time, tz: tzinfo) -> datetime:
    """`at` on `day` in `tz`. A time with an offset ("02:30+01:00", chosen on the night the
    clocks go back) is that instant; a time without one must exist once on the wall clock, else
    Invalid explains the spring gap or the autumn repeat, so the person can be asked again."""
    if at.tzinfo is not None:
        moment = datetime.combine(day, at).astimezone(tz)
        if moment.replace(tzinfo=None) != datetime.combine(day, at.replace(tzinfo=None)):
            raise Invalid("validation.time_offset", {"time": f"{at:%H:%M}"})
        return moment
    naive = datetime.combine(day, at)
    first, second = naive.replace(tzinfo=tz, fold=0), naive.replace(tzinfo=tz, fold=1)
    if first.utcoffset() == second.utcoffset():
        return first
    round_trip = first.astimezone(timezone.utc).astimezone(tz)
    if round_trip.replace(tzinfo=None) != naive:
        # The spring gap: this wall time is skipped (02:00 becomes 03:00).
        raise Invalid("validation.time_gap", {"time": f"{at:%H:%M}", "suggestion": f"{round_trip:%H:%M}"})
    raise Invalid("validation.time_twice", {
        "time": f"{at:%H:%M}", "first": _with_offset(first), "second": _with_offset(second)})


def _with_offset(moment: datetime) -> str:
    offset = moment.utcoffset() or timedelta(0)
    hours, rest = divmod(int(offset.total_seconds()) // 60, 60)
    return f"{moment:%H:%M}{'+' if offset >= timedelta(0) else '-'}{abs(hours):02d}:{rest:02d}"


_OFFSET = re.compile(r"(?P<time>.+?)\s*(?:(?P<sign>[+-])(?P<h>\d{1,2}):?(?P<m>\d{2})?|(?P<zone>cest|cet|utc|z))")
_ZONES = {"cest": timedelta(hours=2), "cet": timedelta(hours=1), "utc": timedelta(0), "z": timedelta(0)}


def parse_time_on(day: date, text: str, tz: tzinfo) -> datetime:
    """A time typed for `day`, local in `tz` ("16:00", "16h"), or with its offset or zone
    ("02:30+01:00", "02:30 CET") where the local time happens twice; checked by combine_local."""
    value = clean_text(text).lower()
    match = _OFFSET.fullmatch(value)
    if match is None:
        return combine_local(day, parse_time(value), tz)
    if match.group("zone"):
        offset = _ZONES[match.group("zone")]
    else:
        offset = timedelta(hours=int(match.group("h")), minutes=int(match.group("m") or 0))
        if match.group("sign") == "-":
            offset = -offset
    if offset >= timedelta(hours=15) or offset <= -timedelta(hours=15):
        raise Invalid("validation.time")
    return combine_local(day, parse_time(match.group("time")).replace(tzinfo=timezone(offset)), tz)
