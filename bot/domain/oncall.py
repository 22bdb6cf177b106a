"""The on-call rota (rules page §1: an out-of-hours emergency must reach a person): who of the
service desk is on duty when, with a backup. A weekly pattern in the desk's local time
(Europe/Brussels), and dated overrides (holidays, swaps) that win over it.

A weekly shift starts on a weekday at a local time and ends at a local time; an end not after
the start runs into the next day (17:00 → 09:00 is a night). Times are wall-clock times, so a
shift keeps its hours across a DST change.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any, Mapping
from zoneinfo import ZoneInfo

WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


class RotaError(ValueError):
    """The rota in the directory file is invalid; the message names the entry and the field."""


@dataclass(frozen=True)
class Shift:
    """One line of the rota. Weekly: `weekday` 0 (Monday)…6 and `start`/`end` "HH:MM". Override:
    `weekday` None and `start`/`end` local ISO date-times "YYYY-MM-DDTHH:MM"."""

    weekday: int | None
    start: str
    end: str
    person: str
    backup: str | None = None

    @property
    def is_override(self) -> bool:
        return self.weekday is None


@dataclass(frozen=True)
class OnDuty:
    person: str
    backup: str | None
    until: datetime  # when this shift ends (aware, in the desk's zone)


def _hhmm(value: str) -> time:
    if value == "24:00":
        return time(0, 0)
    return time.fromisoformat(value)


def _window(shift: Shift, day: date, tz: ZoneInfo) -> tuple[datetime, datetime]:
    start = datetime.combine(day, _hhmm(shift.start), tzinfo=tz)
    end_day = day if shift.end != "24:00" and _hhmm(shift.end) > _hhmm(shift.start) else day + timedelta(days=1)
    return start, datetime.combine(end_day, _hhmm(shift.end), tzinfo=tz)


def on_duty(rota: tuple[Shift, ...], at: datetime, tz: ZoneInfo) -> OnDuty | None:
    """Who is on duty at `at` (aware): the last override that covers it, else the weekly shift
    that covers it (one that began the day before still runs in the morning); None if nobody."""
    if at.tzinfo is None:
        raise ValueError("on_duty needs an aware datetime")
    local = at.astimezone(tz)
    for shift in reversed([s for s in rota if s.is_override]):
        start = datetime.fromisoformat(shift.start).replace(tzinfo=tz)
        end = datetime.fromisoformat(shift.end).replace(tzinfo=tz)
        if start <= local < end:
            return OnDuty(shift.person, shift.backup, end)
    for day in (local.date(), local.date() - timedelta(days=1)):
        for shift in rota:
            if shift.weekday == day.weekday():
                start, end = _window(shift, day, tz)
                if start <= local < end:
                    return OnDuty(shift.person, shift.backup, end)
    return None


def parse_rota(data: Any, where: str, staff: Mapping[str, str]) -> tuple[Shift, ...]:
    """The directory file's `oncall` section. `staff` maps every staff e-mail (lower case) to its
    spelling in the directory: a rota names only people of the service desk."""
    if data is None:
        return ()
    if not isinstance(data, Mapping):
        raise RotaError(f"{where}: expected a mapping with weekly and overrides")
    unknown = set(data) - {"weekly", "overrides"}
    if unknown:
        raise RotaError(f"{where}: unknown field(s) {', '.join(sorted(unknown))}")
    shifts: list[Shift] = []
    for section in ("weekly", "overrides"):
        entries = data.get(section) or []
        if not isinstance(entries, list):
            raise RotaError(f"{where}.{section}: expected a list")
        for i, raw in enumerate(entries):
            w = f"{where}.{section}[{i}]"
            if not isinstance(raw, Mapping):
                raise RotaError(f"{w}: expected a mapping")
            allowed = {"days", "from", "to", "person", "backup"} if section == "weekly" else {"from", "to", "person", "backup"}
            extra = set(raw) - allowed
            if extra:
                raise RotaError(f"{w}: unknown field(s) {', '.join(sorted(extra))}")
            person = _staff(raw, "person", w, staff)
            backup = _staff(raw, "backup", w, staff, required=False)
            if backup is not None and backup.lower() == person.lower():
                raise RotaError(f"{w}.backup: the backup must be someone else than the person on duty")
            if section == "weekly":
                start, end = _clock(raw, "from", w), _clock(raw, "to", w)
                days = raw.get("days")
                if isinstance(days, str):
                    days = [days]
                if not isinstance(days, list) or not days or any(d not in WEEKDAYS for d in days):
                    raise RotaError(f"{w}.days: expected a list of {', '.join(WEEKDAYS)}, got {days!r}")
                shifts += [Shift(WEEKDAYS.index(d), start, end, person, backup) for d in days]
            else:
                start_dt, end_dt = _moment(raw, "from", w), _moment(raw, "to", w)
                if end_dt <= start_dt:
                    raise RotaError(f"{w}.to: must be after from")
                shifts.append(Shift(None, start_dt.isoformat(timespec="minutes"), end_dt.isoformat(timespec="minutes"),
                                    person, backup))
    return tuple(shifts)


def _staff(raw: Mapping[str, Any], key: str, where: str, staff: Mapping[str, str], required: bool = True) -> Any:
    value = raw.get(key)
    if value is None and not required:
        return None
    if not isinstance(value, str) or not value.strip():
        raise RotaError(f"{where}.{key}: missing")
    found = staff.get(value.strip().lower())
    if found is None:
        raise RotaError(f"{where}.{key}: {value} is not an agent or manager of the directory")
    return found


def _clock(raw: Mapping[str, Any], key: str, where: str) -> str:
    value = raw.get(key)
    if not isinstance(value, str):
        raise RotaError(f"{where}.{key}: expected a time HH:MM (quoted), got {value!r}")
    if value == "24:00" and key == "to":
        return value
    try:
        parsed = time.fromisoformat(value)
    except ValueError:
        raise RotaError(f"{where}.{key}: expected a time HH:MM, got {value!r}") from None
    return parsed.strftime("%H:%M")


def _moment(raw: Mapping[str, Any], key: str, where: str) -> datetime:
    value = raw.get(key)
    if isinstance(value, datetime):
        parsed = value
    else:
        try:
            parsed = datetime.fromisoformat(str(value))
        except ValueError:
            raise RotaError(f"{where}.{key}: expected a local date-time YYYY-MM-DDTHH:MM, got {value!r}") from None
    if parsed.tzinfo is not None:
        raise RotaError(f"{where}.{key}: a local Europe/Brussels time, without an offset")
    return parsed
