"""The quote engine against the rules page: office hours, evenings, weekends, Belgian public
holidays, midnight and DST changes, SLA overrides, participants."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from decimal import Decimal
from fractions import Fraction
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings, strategies as st

from bot.domain.calendar import BusinessCalendar
from bot.domain.config import Multipliers, Settings
from bot.domain.quote import QuoteEngine, QuoteError

BXL = ZoneInfo("Europe/Brussels")
ENGINE = QuoteEngine.from_settings(Settings())


def local(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=BXL)


def lines(service: str, start: str, end: str, **kw) -> list[tuple[str, str, str, str, str]]:
    quote = ENGINE.quote(service, local(start), local(end), **kw)
    return [
        (ln.start.strftime("%a %d %H:%M"), ln.end.strftime("%a %d %H:%M"), str(ln.multiplier), str(ln.hours), str(ln.amount))
        for ln in quote.lines
    ]


def test_issue_example_weekday_evening():
    quote = ENGINE.quote("teamviewer", local("2026-11-26T16:00"), local("2026-11-26T18:30"))
    assert quote.as_dict() == {
        "service": "teamviewer",
        "currency": "EUR",
        "lines": [
            {"start": "2026-11-26T16:00:00+01:00", "end": "2026-11-26T17:00:00+01:00", "multiplier": "1.0",
             "hours": "1.00", "rate": "102.21", "amount": "102.21"},
            {"start": "2026-11-26T17:00:00+01:00", "end": "2026-11-26T18:30:00+01:00", "multiplier": "1.5",
             "hours": "1.50", "rate": "102.21", "amount": "229.97"},
        ],
        "total": "332.18",
    }


def test_office_hours_only_one_line():
    assert lines("parameters", "2026-11-24T09:00", "2026-11-24T17:00") == [
        ("Tue 24 09:00", "Tue 24 17:00", "1.0", "8.00", "657.44")
    ]


def test_early_morning_before_nine_is_outside_office_hours():
    assert lines("database", "2026-11-24T08:15", "2026-11-24T09:45") == [
        ("Tue 24 08:15", "Tue 24 09:00", "1.5", "0.75", "92.45"),  # 82.18 * 1.5 * 0.75 = 92.4525
        ("Tue 24 09:00", "Tue 24 09:45", "1.0", "0.75", "61.64"),  # 61.635 rounds half-up
    ]


def test_friday_evening_to_monday_morning():
    assert lines("development", "2026-11-27T16:00", "2026-11-30T10:00") == [
        ("Fri 27 16:00", "Fri 27 17:00", "1.0", "1.00", "111.32"),
        # Friday evening and Saturday are both 150 %: no split at midnight.
        ("Fri 27 17:00", "Sun 29 00:00", "1.5", "31.00", "5176.38"),
        ("Sun 29 00:00", "Mon 30 00:00", "2.0", "24.00", "5343.36"),
        ("Mon 30 00:00", "Mon 30 09:00", "1.5", "9.00", "1502.82"),
        ("Mon 30 09:00", "Mon 30 10:00", "1.0", "1.00", "111.32"),
    ]


def test_saturday_is_150_and_sunday_200():
    assert lines("teamviewer", "2026-11-28T10:00", "2026-11-28T12:00")[0][2:] == ("1.5", "2.00", "306.63")
    assert lines("teamviewer", "2026-11-29T10:00", "2026-11-29T12:00")[0][2:] == ("2.0", "2.00", "408.84")


def test_belgian_public_holiday_during_office_hours_is_200():
    # 11 November 2026 (Armistice) is a Wednesday.
    assert lines("teamviewer", "2026-11-11T10:00", "2026-11-11T11:00") == [
        ("Wed 11 10:00", "Wed 11 11:00", "2.0", "1.00", "204.42")
    ]
    # Christmas Eve evening (150 %) into Christmas Day (200 %), across midnight.
    assert lines("teamviewer", "2026-12-24T16:00", "2026-12-25T01:00") == [
        ("Thu 24 16:00", "Thu 24 17:00", "1.0", "1.00", "102.21"),
        ("Thu 24 17:00", "Fri 25 00:00", "1.5", "7.00", "1073.21"),
        ("Fri 25 00:00", "Fri 25 01:00", "2.0", "1.00", "204.42"),
    ]


def test_easter_monday_and_whit_monday_2027():
    for day in ("2027-03-29", "2027-05-17"):
        assert lines("parameters", f"{day}T10:00", f"{day}T11:00")[0][2] == "2.0"


def test_spring_forward_night_counts_elapsed_time():
    # 29 March 2026, 02:00 -> 03:00: 01:30-03:30 local is one real hour (a Sunday: 200 %).
    quote = ENGINE.quote("teamviewer", local("2026-03-29T01:30"), local("2026-03-29T03:30"))
    assert [str(ln.hours) for ln in quote.lines] == ["1.00"]
    assert quote.total == Decimal("204.42")


def test_fall_back_night_counts_elapsed_time():
    # 25 October 2026, 03:00 -> 02:00: 01:30-03:30 local is three real hours.
    quote = ENGINE.quote("teamviewer", local("2026-10-25T01:30"), local("2026-10-25T03:30"))
    assert [str(ln.hours) for ln in quote.lines] == ["3.00"]
    assert quote.total == Decimal("613.26")


def test_dst_weekday_boundaries_stay_at_local_nine_and_five():
    # Monday 30 March 2026, first working day of summer time.
    quote = ENGINE.quote("parameters", local("2026-03-30T08:00"), local("2026-03-30T18:00"))
    assert [(ln.start.strftime("%H:%M%z"), str(ln.multiplier)) for ln in quote.lines] == [
        ("08:00+0200", "1.5"), ("09:00+0200", "1.0"), ("17:00+0200", "1.5"),
    ]


def test_times_given_in_utc_are_split_in_brussels_time():
    start = datetime(2026, 11, 26, 15, 0, tzinfo=timezone.utc)  # 16:00 in Brussels
    quote = ENGINE.quote("teamviewer", start, start + timedelta(hours=2, minutes=30))
    assert quote.total == Decimal("332.18")


def test_sla_overrides_replace_default_multipliers():
    overrides = {"outside_office_hours": Decimal("1.25"), "saturday": Decimal("1.25"), "sunday": Decimal("1.5")}
    quote = ENGINE.quote("teamviewer", local("2026-11-27T16:00"), local("2026-11-29T02:00"), overrides=overrides)
    assert [(str(ln.multiplier), str(ln.hours), str(ln.amount)) for ln in quote.lines] == [
        ("1.0", "1.00", "102.21"),
        ("1.25", "31.00", "3960.64"),  # 102.21 * 1.25 * 31 = 3960.6375
        ("1.5", "2.00", "306.63"),
    ]


def test_highest_multiplier_wins_on_a_holiday_saturday():
    # 15 August 2026 is a Saturday and a public holiday: 200 % beats 150 %.
    assert lines("parameters", "2026-08-15T10:00", "2026-08-15T11:00")[0][2] == "2.0"


def test_participants_limit_for_teamviewer():
    ENGINE.quote("teamviewer", local("2026-11-24T10:00"), local("2026-11-24T11:00"), participants=3)
    with pytest.raises(QuoteError) as err:
        ENGINE.quote("teamviewer", local("2026-11-24T10:00"), local("2026-11-24T11:00"), participants=4)
    assert err.value.key == "quote.error.too_many_participants" and err.value.params["max"] == 3
    with pytest.raises(QuoteError):
        ENGINE.quote("teamviewer", local("2026-11-24T10:00"), local("2026-11-24T11:00"), participants=0)
    # Other services have no participant limit.
    ENGINE.quote("database", local("2026-11-24T10:00"), local("2026-11-24T11:00"), participants=6)


@pytest.mark.parametrize(
    "service,start,end,key",
    [
        ("nope", "2026-11-24T10:00", "2026-11-24T11:00", "quote.error.unknown_service"),
        ("teamviewer", "2026-11-24T11:00", "2026-11-24T10:00", "quote.error.end_before_start"),
        ("teamviewer", "2026-11-24T11:00", "2026-11-24T11:00", "quote.error.end_before_start"),
        ("teamviewer", "2026-01-01T00:00", "2028-06-01T00:00", "quote.error.span_too_long"),
    ],
)
def test_refusals(service, start, end, key):
    with pytest.raises(QuoteError) as err:
        ENGINE.quote(service, local(start), local(end))
    assert err.value.key == key


def test_naive_datetimes_are_refused():
    with pytest.raises(QuoteError):
        ENGINE.quote("teamviewer", datetime(2026, 11, 24, 10), datetime(2026, 11, 24, 11))


def test_cost_grows_with_days_not_minutes():
    """A year's span walks one calendar day at a time: count the days the calendar visits."""
    calendar = BusinessCalendar(Settings().calendar)
    visited: list = []
    original = calendar.day_periods

    def counting(day):
        visited.append(day)
        return original(day)

    calendar.day_periods = counting  # type: ignore[method-assign]
    engine = QuoteEngine(calendar, Multipliers(), Settings().services)
    engine.quote("teamviewer", local("2026-01-01T00:00"), local("2027-01-01T00:00"))
    assert len(visited) == 365


def test_a_year_is_priced_exactly():
    quote = ENGINE.quote("parameters", local("2026-01-01T00:00"), local("2027-01-01T00:00"))
    assert sum(ln.exact_hours for ln in quote.lines) == 8760
    # 2026 has 261 weekdays; 8 Belgian public holidays fall on one (1 Jan, 6 Apr, 1 May, 14 May,
    # 25 May, 21 Jul, 11 Nov, 25 Dec; 15 Aug is a Saturday and 1 Nov a Sunday).
    office = sum(ln.exact_hours for ln in quote.lines if ln.multiplier == Decimal("1.0"))
    assert office == 8 * (261 - 8)
    assert quote.total == sum(ln.amount for ln in quote.lines)


# ---- properties ----------------------------------------------------------------------------------

instants = st.datetimes(
    min_value=datetime(2025, 1, 1), max_value=datetime(2028, 12, 31), timezones=st.just(timezone.utc)
)
durations = st.timedeltas(min_value=timedelta(minutes=1), max_value=timedelta(days=20))
services = st.sampled_from(["teamviewer", "parameters", "database", "development"])


@settings(max_examples=200, deadline=None)
@given(start=instants, duration=durations, service=services)
def test_hours_of_the_lines_add_up_to_the_span(start, duration, service):
    quote = ENGINE.quote(service, start, start + duration)
    micros = (duration.days * 86400 + duration.seconds) * 10**6 + duration.microseconds
    assert sum(ln.exact_hours for ln in quote.lines) == Fraction(micros, 3_600_000_000)
    # Lines are contiguous and in order, and consecutive lines differ in multiplier.
    # (Compared as timestamps: a wall time in the repeated autumn hour never equals another zone's.)
    for a, b in zip(quote.lines, quote.lines[1:]):
        assert a.end.timestamp() == b.start.timestamp()
        assert a.multiplier != b.multiplier
    assert quote.lines[0].start.timestamp() == start.timestamp()
    assert quote.lines[-1].end.timestamp() == (start + duration).timestamp()


@settings(max_examples=200, deadline=None)
@given(start=instants, duration=durations, cut=st.floats(min_value=0.001, max_value=0.999), service=services)
def test_splitting_a_span_anywhere_keeps_the_unrounded_amount(start, duration, cut, service):
    end = start + duration
    middle = start + timedelta(microseconds=max(1, int((duration / timedelta(microseconds=1)) * cut)))
    if middle >= end:
        middle = start + (end - start) / 2
    whole = ENGINE.quote(service, start, end).exact_total
    parts = ENGINE.quote(service, start, middle).exact_total + ENGINE.quote(service, middle, end).exact_total
    assert whole == parts


@settings(max_examples=100, deadline=None)
@given(start=instants, duration=durations)
def test_each_line_is_rounded_half_up_and_total_is_their_sum(start, duration):
    quote = ENGINE.quote("teamviewer", start, start + duration)
    for ln in quote.lines:
        assert abs(Fraction(ln.amount) - ln.exact_amount) <= Fraction(1, 200)
        assert ln.amount == ln.amount.quantize(Decimal("0.01"))
    assert quote.total == sum(ln.amount for ln in quote.lines)
