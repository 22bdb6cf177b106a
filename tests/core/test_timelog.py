"""Parsing `logtime` commands, and the billing report adding up exactly."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest

from bot.dialogs.intents import ticket_number_pattern
from bot.domain.model import TimeEntry
from bot.domain.time_entries import (billing_csv_rows, billing_report, billing_totals, month_bounds, parse_logtime,
                                     worked_already)
from bot.domain.validation import Invalid

BXL = ZoneInfo("Europe/Brussels")
NOW = datetime(2026, 11, 26, 18, 0, tzinfo=BXL)
SERVICES = ("teamviewer", "parameters", "database", "development")
PATTERN = ticket_number_pattern("CS-{year}-{seq:05d}")


def parse(text: str):
    return parse_logtime(text, NOW, SERVICES, PATTERN)


@pytest.mark.parametrize(
    "text,minutes,start,note",
    [
        ("CS-2026-00042 1h30 teamviewer", 90, "2026-11-26T16:30", None),
        ("cs-2026-00042 45m database fixed the index", 45, "2026-11-26T17:15", "fixed the index"),
        ("CS-2026-00042 1:30 parameters at 2026-11-25 16:00", 90, "2026-11-25T16:00", None),
        ("CS-2026-00042 1.5h development yesterday 18:00 hotfix", 90, "2026-11-25T18:00", "hotfix"),
        ("CS-2026-00042 2h teamviewer at 09:00 call with Lotte", 120, "2026-11-26T09:00", "call with Lotte"),
        ("CS-2026-00042 1,5h teamviewer hier 18h", 90, "2026-11-25T18:00", None),
        ("CS-2026-00042 1u30 database gisteren 9u15", 90, "2026-11-25T09:15", None),
        ("CS-2026-00042 30m database om 17:00", 30, "2026-11-26T17:00", None),
    ],
)
def test_parse(text, minutes, start, note):
    request = parse(text)
    assert request.ticket_number == "CS-2026-00042"
    assert request.duration == timedelta(minutes=minutes)
    assert request.start == datetime.fromisoformat(start).replace(tzinfo=BXL)
    assert request.note == note


@pytest.mark.parametrize(
    "text,key",
    [
        ("CS-2026-00042 1h30", "logtime.error.usage"),
        ("42 1h teamviewer", "logtime.error.number"),
        ("CS-2026-00042 0m teamviewer", "validation.duration_positive"),
        ("CS-2026-00042 -1h teamviewer", "validation.duration"),
        ("CS-2026-00042 25h teamviewer", "validation.duration_max"),
        ("CS-2026-00042 soon teamviewer", "validation.duration"),
        ("CS-2026-00042 1h coffee", "quote.error.unknown_service"),
        ("CS-2026-00042 1h teamviewer at", "logtime.error.when"),
        ("CS-2026-00042 1h teamviewer at someday", "logtime.error.when"),
    ],
)
def test_refused(text, key):
    with pytest.raises(Invalid) as err:
        parse(text)
    assert err.value.key == key


def test_time_ending_in_the_future_is_parsed_to_be_questioned_not_refused():
    """The command asks the agent to confirm it (bot/app/staff.py): parsing keeps it."""
    request = parse("CS-2026-00042 1h teamviewer at 17:30")
    assert request.end == datetime(2026, 11, 26, 18, 30, tzinfo=BXL)
    assert not worked_already(request.start, request.duration, NOW)
    assert worked_already(request.start, timedelta(minutes=31), NOW)  # a minute of grace
    assert not worked_already(request.start, timedelta(minutes=32), NOW)


def test_month_bounds_are_local():
    start, end = month_bounds("2026-12", BXL)
    assert start == datetime(2026, 12, 1, tzinfo=BXL) and end == datetime(2027, 1, 1, tzinfo=BXL)
    with pytest.raises(ValueError):
        month_bounds("2026-13", BXL)


def _entry(i: int, company: str, ticket: str, amount: str) -> TimeEntry:
    t = datetime(2026, 11, i, 10, tzinfo=timezone.utc)
    line = {"start": t.isoformat(), "end": (t + timedelta(hours=1)).isoformat(), "multiplier": "1.0",
            "hours": "1.00", "rate": amount, "amount": amount}
    return TimeEntry(i, ticket, company, "a@desk.be", "database", t, t + timedelta(hours=1), 1, None, (line,),
                     Decimal(amount), "EUR", t, t)


def test_billing_totals_add_up_exactly():
    entries = [_entry(1, "B", "CS-2026-00002", "0.10"), _entry(2, "A", "CS-2026-00001", "0.20"),
               _entry(3, "B", "CS-2026-00002", "0.20"), _entry(4, "B", "CS-2026-00003", "82.18")]
    report = billing_report(entries, "2026-11", "EUR")
    assert [c["customer"] for c in report["customers"]] == ["A", "B"]
    b = report["customers"][1]
    assert [(t["ticket"], t["total"]) for t in b["tickets"]] == [("CS-2026-00002", "0.30"), ("CS-2026-00003", "82.18")]
    assert b["total"] == "82.48" and report["total"] == "82.68"
    rows = billing_csv_rows(report)
    # Data rows only: a SUM over the amount column is the total, counted once.
    assert rows[0][0] == "customer" and len(rows) == 5
    assert sum(Decimal(r[rows[0].index("amount")]) for r in rows[1:]) == Decimal("82.68")
    totals = billing_totals(report)
    assert [(t["level"], t["amount"]) for t in totals] == [
        ("ticket", "0.20"), ("customer", "0.20"), ("ticket", "0.30"), ("ticket", "82.18"), ("customer", "82.48"),
        ("total", "82.68")]
