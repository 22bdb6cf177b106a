"""Agents log the time they worked on a ticket; it is priced with the rate card at the time it
was worked (with the customer's SLA overrides) and every change is kept.

`logtime CS-2026-00042 1h30 teamviewer [at 2026-11-27 16:00 | yesterday 18:00] [note…]`
`logtime list [NUMBER]` · `logtime edit ID DURATION SERVICE [at …] [note…]` · `logtime delete ID`
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, tzinfo
from decimal import Decimal
from typing import Any, Mapping, Sequence

from bot.domain.calendar import BusinessCalendar, Period
from bot.domain.config import Multipliers
from bot.domain.money import format_multiplier
from bot.domain.parsing import parse_date, parse_duration, parse_time, parse_time_on
from bot.domain.model import NewTimeEntry, StaffMember, StaffRole, Ticket, TimeEntry
from bot.domain.quote import Quote
from bot.domain.validation import Invalid, clean_text

_AT_WORDS = {"at", "à", "a", "om", "op", "le", "on"}
_RELATIVE = {
    "today": 0, "aujourd'hui": 0, "aujourd’hui": 0, "vandaag": 0,
    "yesterday": -1, "hier": -1, "gisteren": -1,
}
MAX_NOTE = 1000


@dataclass(frozen=True)
class TimeRequest:
    """What an agent asked to log, parsed and checked, not yet priced."""

    ticket_number: str
    duration: timedelta
    service: str
    start: datetime
    note: str | None

    @property
    def end(self) -> datetime:
        return self.start + self.duration


def parse_start(words: list[str], now: datetime) -> tuple[datetime | None, list[str]]:
    """Read an optional start ("at 2026-11-27 16:00", "at 16:00", "yesterday 18:00", "hier 18h")
    from the front of `words`; return it (local, aware) and the words left (the note)."""
    tz = now.tzinfo
    assert tz is not None, "now is aware, in the desk's zone"
    if not words:
        return None, words
    first = words[0].lower()
    if first in _RELATIVE:
        if len(words) < 2:
            raise Invalid("logtime.error.when")
        day = now.date() + timedelta(days=_RELATIVE[first])
        return parse_time_on(day, words[1], tz), words[2:]
    if first in _AT_WORDS:
        rest = words[1:]
        if not rest:
            raise Invalid("logtime.error.when")
        if rest[0].lower() in _RELATIVE:
            return parse_start(rest, now)
        try:
            parse_time(rest[0])
        except Invalid:
            pass
        else:
            return parse_time_on(now.date(), rest[0], tz), rest[1:]
        if len(rest) < 2:
            raise Invalid("logtime.error.when")
        day = parse_date(rest[0], now.date())
        return parse_time_on(day, rest[1], tz), rest[2:]
    return None, words


def parse_logtime(args: str, now: datetime, services: Sequence[str], number_pattern: re.Pattern[str]) -> TimeRequest:
    """`NUMBER DURATION SERVICE [when] [note…]` (the words after `logtime`)."""
    words = clean_text(args).split()
    if len(words) < 3:
        raise Invalid("logtime.error.usage")
    number, duration_text, service = words[0], words[1], words[2].lower()
    if not number_pattern.fullmatch(number):
        raise Invalid("logtime.error.number", {"number": number})
    if re.fullmatch(r"\d+(?:[.,]\d+)?", duration_text):
        # "logtime CS-… 2 teamviewer": two hours or two minutes? Said back, never guessed.
        raise Invalid("logtime.error.bare_number", {"value": duration_text, "number": number.upper(),
                                                    "service": service})
    duration = parse_duration(duration_text)
    if service not in services:
        raise Invalid("quote.error.unknown_service", {"service": words[2], "services": ", ".join(services)})
    start, rest = parse_start(words[3:], now)
    if start is None:
        start = now - duration
    note = " ".join(rest)[:MAX_NOTE] or None
    # Time that ends in the future is not refused here: the command questions it before it is
    # saved (bot/app/staff.py `_doubts`), as the agent may know better (a clock set wrong).
    return TimeRequest(number.upper(), duration, service, start, note)


def billed_duration(worked: timedelta, increment_minutes: int = 0, minimum_minutes: int = 0) -> timedelta:
    """The time billed for `worked`: rounded up to the billing increment (0: exact), and at
    least the minimum per call (settings `billing.*`; the rules page sets neither)."""
    minutes = -(-worked // timedelta(minutes=1))  # whole minutes, rounded up
    if increment_minutes:
        minutes = -(-minutes // increment_minutes) * increment_minutes
    return timedelta(minutes=max(minutes, minimum_minutes))


def worked_already(start: datetime, duration: timedelta, now: datetime) -> bool:
    """Whether the time ends by now: no more hours than have passed since its start (a minute
    of grace for clocks that differ)."""
    return start + duration <= now + timedelta(minutes=1)


def ensure_worked(start: datetime, duration: timedelta, now: datetime) -> None:
    """Only time already worked can be logged (the form and the dialog, which cannot ask)."""
    if not worked_already(start, duration, now):
        raise Invalid("logtime.error.future")


def to_entry(request: TimeRequest, ticket: Ticket, agent: StaffMember, quote: Quote) -> NewTimeEntry:
    return NewTimeEntry(
        ticket_number=ticket.number,
        agent_email=agent.email,
        service=request.service,
        started_at=request.start,
        ended_at=request.end,
        participants=1,
        note=request.note,
        lines=tuple(line.as_dict() for line in quote.lines),
        amount=quote.total,
        currency=quote.currency,
    )


def is_agent(staff: StaffMember | None) -> bool:
    return staff is not None and staff.role is StaffRole.AGENT


def month_bounds(month: str, tz: tzinfo) -> tuple[datetime, datetime]:
    """'2026-11' -> [2026-11-01 00:00, 2026-12-01 00:00) in the desk's zone."""
    match = re.fullmatch(r"(\d{4})-(\d{2})", month.strip())
    if not match or not 1 <= int(match.group(2)) <= 12:
        raise ValueError(f"expected a month as YYYY-MM, got {month!r}")
    year, mon = int(match.group(1)), int(match.group(2))
    start = datetime.combine(date(year, mon, 1), time(0), tzinfo=tz)
    end_year, end_month = (year + 1, 1) if mon == 12 else (year, mon + 1)
    return start, datetime.combine(date(end_year, end_month, 1), time(0), tzinfo=tz)


@dataclass(frozen=True)
class AcceptedEmergency:
    """A ticket's accepted out-of-hours emergency (rules page §1), as the page recorded it: the
    multiplier its time outside office hours is billed at, its basis ("sla": the customer's
    agreement, "default": the rate card), who accepted it (a name where the directory has one)
    and when (aware)."""

    multiplier: Decimal
    basis: str
    accepted_by: str
    accepted_at: datetime

    def as_dict(self) -> dict[str, str]:
        return {"multiplier": format_multiplier(self.multiplier), "basis": self.basis,
                "accepted_by": self.accepted_by, "accepted_at": self.accepted_at.isoformat()}


# Why a quote line of logged time has its multiplier: a period of the rate card, or the
# accepted emergency (its time outside office hours is billed at the multiplier accepted).
EMERGENCY_BASIS = "emergency"


def line_basis(start: datetime, calendar: BusinessCalendar, multipliers: Multipliers,
               emergency: AcceptedEmergency | None) -> str:
    """Why a line starting at `start` has its multiplier: "office_hours", "emergency" (out of
    hours on a ticket whose emergency was accepted), else the period whose multiplier applies
    ("outside_office_hours", "saturday", "sunday", "public_holiday"; the highest, as the rate
    card takes it, when several do)."""
    periods = calendar.periods_at(start) - {Period.OFFICE_HOURS}
    if not periods:
        return Period.OFFICE_HOURS.value
    if emergency is not None:
        return EMERGENCY_BASIS
    return max(periods, key=lambda p: (getattr(multipliers, p.value), p.value)).value


def billing_report(entries: Sequence[TimeEntry], month: str, currency: str, tz: tzinfo | None = None, *,
                   calendar: BusinessCalendar | None = None, multipliers: Multipliers | None = None,
                   emergencies: Mapping[str, AcceptedEmergency] | None = None) -> dict[str, Any]:
    """Entries with their lines, per customer and per ticket, with totals that add up exactly:
    every total is the sum of the amounts agents were shown when they logged. Times are in
    `tz` (the desk's zone) with their offset, as a bookkeeper reads them. With the `calendar`,
    each line says why its multiplier applies (`line_basis`), and an entry billed under its
    ticket's accepted emergency (`emergencies`, by ticket number) carries its terms."""
    emergencies = emergencies or {}
    rates = multipliers or Multipliers()

    def local(moment: datetime) -> str:
        return (moment.astimezone(tz) if tz is not None else moment).isoformat()

    def basis(line: Mapping[str, str], ticket: str) -> str:
        if calendar is None:
            return ""
        return line_basis(datetime.fromisoformat(line["start"]), calendar, rates, emergencies.get(ticket))

    customers: dict[str, dict[str, Any]] = {}
    for entry in entries:
        customer = customers.setdefault(entry.company or "-", {"customer": entry.company or "-", "tickets": {}, "total": Decimal("0.00")})
        ticket = customer["tickets"].setdefault(
            entry.ticket_number, {"ticket": entry.ticket_number, "entries": [], "total": Decimal("0.00")}
        )
        lines = [{**line, "start": local(datetime.fromisoformat(line["start"])),
                  "end": local(datetime.fromisoformat(line["end"])), "basis": basis(line, entry.ticket_number)}
                 for line in entry.lines]
        emergency = emergencies.get(entry.ticket_number)
        under_emergency = emergency is not None and any(line["basis"] == EMERGENCY_BASIS for line in lines)
        ticket["entries"].append(
            {
                "id": entry.id,
                "agent": entry.agent_email,
                "service": entry.service,
                "start": local(entry.started_at),
                "end": local(entry.ended_at),
                "note": entry.note,
                "lines": lines,
                "amount": str(entry.amount),
                "emergency": ({**emergency.as_dict(), "accepted_at": local(emergency.accepted_at.replace(microsecond=0))}
                              if emergency is not None and under_emergency else None),
            }
        )
        ticket["total"] += entry.amount
        customer["total"] += entry.amount
    result_customers = []
    grand = Decimal("0.00")
    for customer in sorted(customers.values(), key=lambda c: c["customer"].lower()):
        tickets = [
            {**t, "total": str(t["total"])} for t in sorted(customer["tickets"].values(), key=lambda t: t["ticket"])
        ]
        result_customers.append({"customer": customer["customer"], "tickets": tickets, "total": str(customer["total"])})
        grand += customer["total"]
    return {"month": month, "currency": currency, "customers": result_customers, "total": str(grand)}


# "basis": why the line's multiplier applies (`line_basis`: office_hours, outside_office_hours,
# saturday, sunday, public_holiday, or emergency for an accepted out-of-hours emergency).
BILLING_COLUMNS = ("customer", "ticket", "entry", "agent", "service", "date", "start", "end", "hours", "multiplier",
                   "basis", "rate", "amount", "currency", "note")
# The columns a spreadsheet reads as numbers (written with a decimal comma in the Belgian dialect).
BILLING_NUMBERS = frozenset({"hours", "multiplier", "rate", "amount"})
TOTAL_COLUMNS = ("level", "customer", "ticket", "hours", "amount", "currency")


def billing_rows(report: Mapping[str, Any]) -> list[dict[str, str]]:
    """One row per quote line (a line has one multiplier), data only: no total among them, so
    a SUM over a column of a spreadsheet counts every amount once. Times are those of the
    report (local, with their offset); the date is the local day the line starts."""
    rows = []
    for customer in report["customers"]:
        for ticket in customer["tickets"]:
            for entry in ticket["entries"]:
                for line in entry["lines"]:
                    rows.append({
                        "customer": customer["customer"], "ticket": ticket["ticket"], "entry": str(entry["id"]),
                        "agent": entry["agent"], "service": entry["service"], "date": line["start"][:10],
                        "start": line["start"], "end": line["end"], "hours": line["hours"],
                        "multiplier": line["multiplier"], "basis": line.get("basis", ""), "rate": line["rate"], "amount": line["amount"],
                        "currency": report["currency"], "note": entry["note"] or "",
                    })
    return rows


def billing_totals(report: Mapping[str, Any]) -> list[dict[str, str]]:
    """The totals, apart from the data rows: per ticket, per customer and in all."""
    def hours(entries: Sequence[Mapping[str, Any]]) -> Decimal:
        return sum((Decimal(line["hours"]) for e in entries for line in e["lines"]), Decimal("0"))

    rows = []
    currency = report["currency"]
    everything: list[Mapping[str, Any]] = []
    for customer in report["customers"]:
        own: list[Mapping[str, Any]] = []
        for ticket in customer["tickets"]:
            own += ticket["entries"]
            rows.append({"level": "ticket", "customer": customer["customer"], "ticket": ticket["ticket"],
                         "hours": str(hours(ticket["entries"])), "amount": ticket["total"], "currency": currency})
        everything += own
        rows.append({"level": "customer", "customer": customer["customer"], "ticket": "", "hours": str(hours(own)),
                     "amount": customer["total"], "currency": currency})
    rows.append({"level": "total", "customer": "", "ticket": "", "hours": str(hours(everything)),
                 "amount": report["total"], "currency": currency})
    return rows


def billing_csv_rows(report: Mapping[str, Any]) -> list[list[str]]:
    """The header and one row per quote line (the totals are `billing_totals`, apart)."""
    return [list(BILLING_COLUMNS)] + [[row[c] for c in BILLING_COLUMNS] for row in billing_rows(report)]
