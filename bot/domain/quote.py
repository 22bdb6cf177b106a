"""The quote engine: the price of a service over a span of time, per the rules page §1 and §3.

The span is split wherever the multiplier changes (office hours, evenings, weekends, public
holidays, in the desk's local time); each line is rate × multiplier × elapsed hours, rounded
half-up to the cent; the total is the sum of the rounded lines.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from fractions import Fraction
from itertools import groupby
from typing import Any, Mapping, Sequence

from bot.domain.calendar import BusinessCalendar, Period
from bot.domain.config import Multipliers, Service, Settings
from bot.domain.money import format_multiplier, round_half_up

MAX_SPAN = timedelta(days=366 * 2)
_MICROS_PER_HOUR = 3_600_000_000


class QuoteError(ValueError):
    """A request the engine refuses; `key` and `params` name a catalog message for the user."""

    def __init__(self, key: str, **params: Any):
        super().__init__(key)
        self.key = key
        self.params = params


@dataclass(frozen=True)
class QuoteLine:
    start: datetime
    end: datetime
    periods: frozenset[Period]
    multiplier: Decimal
    rate: Decimal
    exact_hours: Fraction
    exact_amount: Fraction

    @property
    def hours(self) -> Decimal:
        return round_half_up(self.exact_hours)

    @property
    def amount(self) -> Decimal:
        return round_half_up(self.exact_amount)

    def as_dict(self) -> dict[str, str]:
        return {
            "start": self.start.isoformat(),
            "end": self.end.isoformat(),
            "multiplier": format_multiplier(self.multiplier),
            "hours": str(self.hours),
            "rate": str(self.rate),
            "amount": str(self.amount),
        }


@dataclass(frozen=True)
class Quote:
    service: Service
    participants: int
    currency: str
    lines: tuple[QuoteLine, ...]

    @property
    def total(self) -> Decimal:
        return sum((line.amount for line in self.lines), Decimal("0.00"))

    @property
    def exact_total(self) -> Fraction:
        return sum((line.exact_amount for line in self.lines), Fraction(0))

    @property
    def start(self) -> datetime:
        return self.lines[0].start

    @property
    def end(self) -> datetime:
        return self.lines[-1].end

    def as_dict(self) -> dict[str, Any]:
        return {
            "service": self.service.key,
            "currency": self.currency,
            "lines": [line.as_dict() for line in self.lines],
            "total": str(self.total),
        }


class QuoteEngine:
    def __init__(
        self,
        calendar: BusinessCalendar,
        multipliers: Multipliers,
        services: Sequence[Service],
        currency: str = "EUR",
    ):
        self.calendar = calendar
        self.multipliers = multipliers
        self.services = {s.key: s for s in services}
        self.currency = currency

    @classmethod
    def from_settings(cls, settings: Settings) -> "QuoteEngine":
        return cls(BusinessCalendar(settings.calendar), settings.multipliers, settings.services, settings.currency)

    def multipliers_for(self, overrides: Mapping[str, Decimal] | None) -> Multipliers:
        return self.multipliers.with_overrides(overrides)

    def quote(
        self,
        service_key: str,
        start: datetime,
        end: datetime,
        participants: int = 1,
        overrides: Mapping[str, Decimal] | None = None,
    ) -> Quote:
        service = self.services.get(service_key) or next(
            (s for k, s in self.services.items() if k.lower() == service_key.strip().lower()), None)
        if service is None:
            raise QuoteError("quote.error.unknown_service", service=service_key, services=", ".join(self.services))
        if start.tzinfo is None or end.tzinfo is None:
            raise QuoteError("quote.error.naive_time")
        if participants < 1:
            raise QuoteError("quote.error.participants_min")
        if service.max_participants is not None and participants > service.max_participants:
            raise QuoteError("quote.error.too_many_participants", max=service.max_participants, service=service.key)
        start_utc, end_utc = start.astimezone(timezone.utc), end.astimezone(timezone.utc)
        if end_utc <= start_utc:
            raise QuoteError("quote.error.end_before_start")
        if end_utc - start_utc > MAX_SPAN:
            raise QuoteError("quote.error.span_too_long", days=MAX_SPAN.days)

        multipliers = self.multipliers_for(overrides)
        rate = Fraction(service.rate)
        priced = ((seg, seg.multiplier(multipliers)) for seg in self.calendar.segments(start_utc, end_utc))
        lines = []
        # Adjacent segments billed at the same multiplier form one line: a boundary where the
        # multiplier does not change (Friday 17:00 -> Saturday) is not a split.
        for multiplier, group in groupby(priced, key=lambda priced_seg: priced_seg[1]):
            segments = [seg for seg, _ in group]
            hours = Fraction(sum(_micros(seg.elapsed) for seg in segments), _MICROS_PER_HOUR)
            lines.append(
                QuoteLine(
                    start=segments[0].start,
                    end=segments[-1].end,
                    periods=frozenset().union(*(seg.periods for seg in segments)),
                    multiplier=multiplier,
                    rate=service.rate,
                    exact_hours=hours,
                    exact_amount=rate * Fraction(multiplier) * hours,
                )
            )
        return Quote(service, participants, self.currency, tuple(lines))


def _micros(delta: timedelta) -> int:
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds
