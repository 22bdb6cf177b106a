"""Parsing what people type: dates, times, durations, numbers, in English, French and Dutch."""

from __future__ import annotations

import re
from datetime import date, datetime, time, timedelta, tzinfo

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
    return datetime.combine(day, at, tzinfo=tz)
