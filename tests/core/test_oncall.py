"""The on-call rota (bot/domain/oncall.py): who is on duty when, in Brussels wall-clock time."""

from __future__ import annotations

from datetime import datetime, timezone
from zoneinfo import ZoneInfo

import pytest

from bot.domain.directory import DirectoryError, parse_directory
from bot.domain.oncall import on_duty

BRU = ZoneInfo("Europe/Brussels")
STAFF = {
    "agents": [{"name": "Sofie", "email": "sofie@cs.be"}, {"name": "Thomas", "email": "thomas@cs.be"}],
    "managers": [{"name": "Naïda", "email": "naida@cs.be", "level": 1}],
}


def rota(oncall):  # type: ignore[no-untyped-def]
    return parse_directory({**STAFF, "oncall": oncall}).rota


WEEK = {
    "weekly": [
        {"days": ["mon", "tue", "wed", "thu", "fri"], "from": "17:00", "to": "09:00",
         "person": "SOFIE@cs.be", "backup": "thomas@cs.be"},
        {"days": ["sat", "sun"], "from": "09:00", "to": "09:00", "person": "thomas@cs.be", "backup": "sofie@cs.be"},
    ],
    "overrides": [
        {"from": "2026-12-24T17:00", "to": "2026-12-26T09:00", "person": "naida@cs.be", "backup": "thomas@cs.be"},
    ],
}


@pytest.mark.parametrize(
    ("local", "person", "backup"),
    [
        ("2026-11-30T17:00", "sofie@cs.be", "thomas@cs.be"),   # Monday evening: the shift starts
        ("2026-12-01T08:59", "sofie@cs.be", "thomas@cs.be"),   # Tuesday morning: Monday's night runs on
        ("2026-12-01T09:00", None, None),                      # office hours: nobody on call
        ("2026-12-05T08:30", "sofie@cs.be", "thomas@cs.be"),   # Saturday morning: Friday's night
        ("2026-12-05T09:00", "thomas@cs.be", "sofie@cs.be"),   # Saturday's day-and-night shift
        ("2026-12-07T08:00", "thomas@cs.be", "sofie@cs.be"),   # Monday morning: Sunday's shift
        ("2026-12-24T20:00", "naida@cs.be", "thomas@cs.be"),   # Christmas Eve: the override wins
        ("2026-12-26T09:00", "thomas@cs.be", "sofie@cs.be"),   # override over, Saturday's shift
        ("2026-03-29T03:30", "thomas@cs.be", "sofie@cs.be"),   # the DST night: wall clock
    ],
)
def test_on_duty(local: str, person: str | None, backup: str | None) -> None:
    at = datetime.fromisoformat(local).replace(tzinfo=BRU).astimezone(timezone.utc)
    duty = on_duty(rota(WEEK), at, BRU)
    assert (duty.person if duty else None, duty.backup if duty else None) == (person, backup)


def test_on_duty_says_until_when() -> None:
    duty = on_duty(rota(WEEK), datetime(2026, 11, 30, 20, 0, tzinfo=BRU), BRU)
    assert duty is not None and duty.until == datetime(2026, 12, 1, 9, 0, tzinfo=BRU)


def test_empty_rota_has_nobody() -> None:
    assert on_duty((), datetime(2026, 11, 30, 20, 0, tzinfo=BRU), BRU) is None
    assert parse_directory(STAFF).rota == ()


@pytest.mark.parametrize(
    ("oncall", "message"),
    [
        ({"weekly": [{"days": ["mon"], "from": "17:00", "to": "09:00", "person": "jan@acme.be"}]},
         r"oncall.weekly\[0\].person: jan@acme.be is not an agent or manager"),
        ({"weekly": [{"days": ["monday"], "from": "17:00", "to": "09:00", "person": "sofie@cs.be"}]},
         r"oncall.weekly\[0\].days"),
        ({"weekly": [{"days": ["mon"], "from": "5pm", "to": "09:00", "person": "sofie@cs.be"}]},
         r"oncall.weekly\[0\].from"),
        ({"weekly": [{"days": ["mon"], "from": "17:00", "to": "09:00", "person": "sofie@cs.be",
                      "backup": "Sofie@cs.be"}]}, r"backup: the backup must be someone else"),
        ({"overrides": [{"from": "2026-12-24T17:00", "to": "2026-12-24T09:00", "person": "sofie@cs.be"}]},
         r"oncall.overrides\[0\].to: must be after from"),
        ({"overrides": [{"from": "2026-12-24T17:00+01:00", "to": "2026-12-25T09:00", "person": "sofie@cs.be"}]},
         r"without an offset"),
        ({"rota": []}, r"unknown field"),
    ],
)
def test_bad_rota_is_refused_with_the_entry_named(oncall: object, message: str) -> None:
    with pytest.raises(DirectoryError, match=message):
        rota(oncall)
