"""Time logged on an accepted out-of-hours emergency is marked as such wherever agents see time
entries (issue 15 §1): `logtime list`, the agent's ticket view, and the billing report, whose
rows say why each line's surcharge applies; in French, Dutch and English. On SQLite and
PostgreSQL, through the console channel."""

from __future__ import annotations

import csv
import io
from datetime import timedelta

from adapters.server.billing_export import write_report_csv
from bot.app.escalations import Escalations
from bot.app.runner import TurnRunner
from bot.domain.time_entries import billing_report, month_bounds
from tests.conversation.test_conversation import say as say_in
from tests.conversation.test_oncall import CAMILLE, desk, emergency  # noqa: F401 (desk: the fixture)
from tests.conversation.test_staff import SOFIE, say

MARK = "×1.5 — accepted emergency (rate card)"


async def _logged(desk):
    """Camille's emergency accepted on Saturday 28 November at 22:30 (150 %, the rate card's),
    an hour on it on Sunday night and one on Monday morning, and an hour on another ticket of
    hers on Sunday night."""
    conv = TurnRunner(desk)
    number, _ = await emergency(conv)
    other = await desk.register_ticket(kind="incident", requester_email=CAMILLE, module="Caisse",
                                       description="La caisse plante au démarrage depuis la mise à jour")
    desk.clock.advance(timedelta(days=3))
    for ticket, when in ((number, "2026-11-29 01:00"), (number, "2026-11-30 10:00"), (other.number, "2026-11-29 01:00")):
        assert "Time logged" in await say(conv, SOFIE, f"logtime {ticket} 1h teamviewer at {when}")
    return conv, number, other.number


def _row(out: str, number: str, when: str) -> str:
    [line] = [line for line in out.splitlines() if number in line and when in line]
    return line


async def test_logtime_list_and_the_agent_view_mark_time_billed_under_the_emergency(desk):
    conv, number, other = await _logged(desk)
    for out in (await say(conv, SOFIE, f"logtime list {number}"), await say(conv, SOFIE, number),
                await say(conv, SOFIE, "logtime list")):
        sunday = _row(out, number, "29 Nov 2026 01:00")
        assert MARK in sunday and "28 Nov 2026 22:30 by Camille Dubois" in sunday, out
        assert MARK not in _row(out, number, "30 Nov 2026 10:00"), out  # office hours: the office rate
        if f"{other} " in out:
            assert "accepted emergency" not in _row(out, other, "29 Nov 2026 01:00")
    out = await say(conv, SOFIE, f"logtime list {other}")
    assert "accepted emergency" not in out and "29 Nov 2026 01:00" in out


async def test_the_mark_in_french_and_dutch(desk):
    conv, number, _ = await _logged(desk)
    fr = await say_in(conv, SOFIE, f"logtime liste {number}", lang="fr")
    assert "×1,5 — urgence acceptée (tarif standard), 28 nov. 2026 22:30 par Camille Dubois" in fr, fr
    nl = await say_in(conv, SOFIE, f"logtime lijst {number}", lang="nl")
    assert "×1,5 — aanvaarde noodinterventie (standaardtarief)" in nl and "door Camille Dubois" in nl, nl


async def test_the_billing_export_says_why_each_surcharge_applies(desk):
    conv, number, other = await _logged(desk)
    start, end = month_bounds("2026-11", desk.calendar.tz)
    entries = await desk.store.list_time_entries(started_from=start, started_before=end + timedelta(days=1))
    emergencies = await Escalations(desk).accepted_emergencies(e.ticket_number for e in entries)
    assert set(emergencies) == {number}
    report = billing_report(entries, "2026-11", "EUR", desk.calendar.tz, calendar=desk.calendar,
                            multipliers=desk.settings.multipliers, emergencies=emergencies)
    [customer] = report["customers"]
    by_ticket = {t["ticket"]: t["entries"] for t in customer["tickets"]}
    sunday, monday = by_ticket[number]
    assert sunday["emergency"]["multiplier"] == "1.5" and sunday["emergency"]["basis"] == "default"
    assert sunday["emergency"]["accepted_by"] == "Camille Dubois"
    assert sunday["emergency"]["accepted_at"].startswith("2026-11-28T")
    assert monday["emergency"] is None and by_ticket[other][0]["emergency"] is None
    stream = io.StringIO()
    write_report_csv(stream, report, "plain")
    rows = list(csv.DictReader(io.StringIO(stream.getvalue())))
    assert all(len(r) == len(rows[0]) and None not in r for r in rows)  # one field per column
    assert {(r["ticket"], r["date"], r["multiplier"], r["basis"]) for r in rows} == {
        (number, "2026-11-29", "1.5", "emergency"), (number, "2026-11-30", "1.0", "office_hours"),
        (other, "2026-11-29", "2.0", "sunday")}
