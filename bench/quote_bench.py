"""Micro-benchmark of the quote engine (`bot.domain.quote.QuoteEngine.quote`), in process, with timeit:
spans of an hour, a day, a week, a month and a year starting on a Thursday afternoon.
The engine walks the calendar day by day (a few segments per day), so its time must grow
with the number of days, not with the number of minutes."""

from __future__ import annotations

import sys
import timeit
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bot.domain.config import Settings  # noqa: E402
from bot.domain.quote import QuoteEngine  # noqa: E402

SPANS = (("1 hour", timedelta(hours=1)), ("1 day", timedelta(days=1)), ("1 week", timedelta(weeks=1)),
         ("1 month", timedelta(days=30)), ("1 year", timedelta(days=365)))


def run(min_seconds: float = 0.5) -> dict:
    engine = QuoteEngine.from_settings(Settings())
    start = datetime(2026, 11, 26, 16, 0, tzinfo=ZoneInfo("Europe/Brussels"))
    rows = []
    for label, span in SPANS:
        end = start + span
        quote = engine.quote("teamviewer", start, end)
        timer = timeit.Timer(lambda: engine.quote("teamviewer", start, end))
        number, _ = timer.autorange()  # enough calls for 0.2 s
        number = max(1, int(number * min_seconds / 0.2))
        best = min(timer.repeat(repeat=3, number=number)) / number
        rows.append({"span": label, "days": span / timedelta(days=1), "minutes": span / timedelta(minutes=1),
                     "lines": len(quote.lines), "calls": number, "per_call_ms": round(best * 1000, 4),
                     "total": str(quote.total)})
    hour = rows[0]["per_call_ms"]
    for row in rows:
        row["vs_1_hour"] = round(row["per_call_ms"] / hour, 1)
        row["us_per_day"] = round(row["per_call_ms"] * 1000 / max(row["days"], 1), 2)
    year, week = rows[-1], rows[2]
    return {"rows": rows,
            "year_over_week": round(year["per_call_ms"] / week["per_call_ms"], 1),
            "days_ratio_year_over_week": round(365 / 7, 1),
            "minutes_ratio_year_over_hour": int(365 * 24 * 60 / 60)}


if __name__ == "__main__":
    import json

    print(json.dumps(run(), indent=2))
