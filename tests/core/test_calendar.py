"""The business calendar: office hours and holidays, checked against the published Belgian list."""

from __future__ import annotations

import json
from datetime import date, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from bot.domain.calendar import BusinessCalendar, Period
from bot.domain.config import CalendarSettings

BXL = ZoneInfo("Europe/Brussels")
CAL = BusinessCalendar(CalendarSettings())
REFERENCE = Path(__file__).resolve().parents[3] / "shared/reference/platform/holidays/belgium_public_holidays_2026_2027.json"


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=BXL)


def test_holidays_match_the_published_belgian_list():
    if not REFERENCE.exists():
        pytest.skip("shared reference material not beside the project")
    data = json.loads(REFERENCE.read_text())
    for content in data["years"].values():
        legal = {e["date"] for e in content["public"] if e["legal_holiday"]}
        assert len(legal) == 10
        for day in legal:
            assert CAL.is_holiday(date.fromisoformat(day)), day
    assert not CAL.is_holiday(date(2026, 11, 26))


@pytest.mark.parametrize(
    "instant,periods",
    [
        ("2026-11-26T08:59:59", {Period.OUTSIDE_OFFICE_HOURS}),
        ("2026-11-26T09:00", {Period.OFFICE_HOURS}),
        ("2026-11-26T16:59:59", {Period.OFFICE_HOURS}),
        ("2026-11-26T17:00", {Period.OUTSIDE_OFFICE_HOURS}),
        ("2026-11-28T22:30", {Period.SATURDAY}),
        ("2026-11-29T11:00", {Period.SUNDAY}),
        ("2026-11-11T10:00", {Period.OFFICE_HOURS, Period.PUBLIC_HOLIDAY}),
        ("2026-11-01T10:00", {Period.SUNDAY, Period.PUBLIC_HOLIDAY}),
    ],
)
def test_periods_at(instant, periods):
    assert CAL.periods_at(at(instant)) == frozenset(periods)


def test_is_office_hours_excludes_holidays():
    assert CAL.is_office_hours(at("2026-11-26T10:00"))
    assert not CAL.is_office_hours(at("2026-11-11T10:00"))
    assert not CAL.is_office_hours(at("2026-11-28T10:00"))


@pytest.mark.parametrize(
    "instant,opening",
    [
        ("2026-11-26T10:00", "2026-11-26T10:00"),
        ("2026-11-26T18:00", "2026-11-27T09:00"),
        ("2026-11-27T17:30", "2026-11-30T09:00"),
        ("2026-12-24T20:00", "2026-12-28T09:00"),  # Christmas Friday, then the weekend
        ("2026-11-10T23:00", "2026-11-12T09:00"),  # 11 November
    ],
)
def test_next_office_opening(instant, opening):
    assert CAL.next_office_opening(at(instant)) == at(opening)


def test_configurable_office_hours_and_days():
    cal = BusinessCalendar(CalendarSettings(office_days=("mon", "tue", "wed", "thu"), office_start=datetime(2000, 1, 1, 8).time()))
    assert cal.is_office_hours(at("2026-11-26T08:30"))
    assert not cal.is_office_hours(at("2026-11-27T10:00"))  # Friday is no office day here
    assert cal.periods_at(at("2026-11-27T10:00")) == frozenset({Period.OUTSIDE_OFFICE_HOURS})


def test_naive_datetimes_are_refused():
    with pytest.raises(ValueError):
        CAL.periods_at(datetime(2026, 11, 26, 10))


@pytest.mark.parametrize(
    "start,minutes,due",
    [
        ("2026-11-26T10:00", 60, "2026-11-26T11:00"),
        ("2026-11-27T16:30", 60, "2026-11-30T09:30"),  # Friday afternoon -> Monday morning
        ("2026-11-28T22:00", 60, "2026-11-30T10:00"),  # raised on Saturday night
        ("2026-11-10T16:45", 30, "2026-11-12T09:15"),  # 11 November in between
        ("2026-11-26T08:00", 8 * 60 + 30, "2026-11-27T09:30"),
    ],
)
def test_add_office_time(start, minutes, due):
    from datetime import timedelta

    assert CAL.add_office_time(at(start), timedelta(minutes=minutes)) == at(due)
