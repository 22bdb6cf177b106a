"""Agents and managers with a real store (SQLite and PostgreSQL): time logging priced to the
cent, the billing report equal to what agents were shown, change management with the
requester told once, escalations that climb on time and stop when acknowledged, and the
outbox delivering everything once, through failures and crashes."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from bot.domain.clock import ManualClock
from bot.domain.config import Settings
from bot.app.runner import TurnRunner
from bot.app.desk import Desk
from bot.domain.directory import read_directory_file
from bot.domain.model import OutboxMessage, TicketStatus
from bot.app.escalations import Escalations
from bot.app.outbox import DeliveryFailed, Delivery, Dispatcher, RetryPolicy, Undeliverable
from bot.protocol.replies import Response
from bot.domain.time_entries import billing_report, month_bounds
from bot.protocol.turn import Turn, UserIdentity
from cards.text import render_all

ROOT = Path(__file__).resolve().parents[2]
BXL = ZoneInfo("Europe/Brussels")
LOTTE = "lotte.peeters@brasseriedeklok.be"
CAMILLE = "camille.dubois@atelier-lumiere.be"
SOFIE = "sofie.janssens@caresolutions.be"  # agent
THOMAS = "thomas.leroy@caresolutions.be"  # agent
NAIDA = "Naida.jelacic@caresolutions.be"  # manager, level 1
PIETER = "pieter.vandenbroeck@caresolutions.be"  # manager, level 2


@pytest.fixture
async def desk(store):
    await store.replace_directory(read_directory_file(ROOT / "examples" / "directory.yaml"))
    clock = ManualClock(datetime(2026, 11, 30, 10, 0, tzinfo=BXL))  # a Monday morning
    return Desk(Settings(), store, clock)


def turn(email: str, text: str | None = None, *, action=None, values=None, event_id=None) -> Turn:
    return Turn("console", "local", f"c:{email}", UserIdentity(id=email.lower(), email=email, locale="en"),
                text=text, action=action, values=values or {}, event_id=event_id)


async def say(conv: TurnRunner, email: str, text: str, **kw) -> str:
    return render_all((await conv.handle(turn(email, text, **kw))).replies)


async def new_ticket(desk: Desk, email: str, kind: str = "incident", opened: datetime | None = None) -> str:
    """A ticket registered now or, with `opened`, at that moment (time logged on it must not
    start before it was opened, or the agent is asked to confirm); the clock is put back after."""
    now = desk.now()
    if opened is not None:
        desk.clock.set(opened)  # the tests' ManualClock
    try:
        ticket = await desk.register_ticket(kind=kind, requester_email=email, module="ERP",
                                            description="The invoice print job fails with error 42")
    finally:
        desk.clock.set(now)
    return ticket.number


# Before every time these tests log (the earliest is 10 November 2026).
EARLIER = datetime(2026, 11, 2, 9, 0, tzinfo=BXL)


# ---- time logging ----------------------------------------------------------------------------


async def test_agent_logs_time_priced_with_the_customers_sla(desk):
    number = await new_ticket(desk, LOTTE, opened=EARLIER)  # Brasserie De Klok: outside office hours at 125 %
    conv = TurnRunner(desk)
    out = await say(conv, SOFIE, f"logtime {number} 1h30 teamviewer at 2026-11-27 16:30 remote session")
    # Friday 16:30-17:00 at 100 %, 17:00-18:00 at their SLA's 125 %.
    assert "0 h 30 × €102.21/h × 100 % = €51.11" in out and "1 h × €102.21/h × 125 % = €127.76" in out and "€178.87" in out
    [entry] = await desk.store.list_time_entries(ticket_number=number)
    assert entry.amount == Decimal("178.87") and entry.note == "remote session"
    assert entry.agent_email == SOFIE


async def test_only_agents_log_time_and_nothing_is_written_otherwise(desk):
    number = await new_ticket(desk, LOTTE)
    conv = TurnRunner(desk)
    for who in (LOTTE, NAIDA):
        out = await say(conv, who, f"logtime {number} 1h teamviewer")
        assert "Only service desk agents can log time" in out
    assert await desk.store.list_time_entries() == []


@pytest.mark.parametrize("args,fragment", [
    ("CS-2026-09999 1h teamviewer", "There is no ticket CS-2026-09999"),
    ("{n} 0m teamviewer", "longer than zero"),
    ("{n} 30h teamviewer", "at most 24 hours"),
    ("{n} 1h coffee", "Unknown service"),
])
async def test_bad_logtime_gets_a_usage_message_and_writes_nothing(desk, args, fragment):
    number = await new_ticket(desk, LOTTE)
    out = await say(TurnRunner(desk), SOFIE, "logtime " + args.format(n=number))
    assert fragment in out
    assert await desk.store.list_time_entries() == []


async def test_redelivered_logtime_is_recorded_once(desk):
    number = await new_ticket(desk, LOTTE, opened=EARLIER)
    conv = TurnRunner(desk)
    await conv.handle(turn(SOFIE, f"logtime {number} 1h database", event_id="Ev42"))
    again = await conv.handle(turn(SOFIE, f"logtime {number} 1h database", event_id="Ev42"))
    assert again.duplicate
    assert len(await desk.store.list_time_entries()) == 1


async def test_edit_and_delete_own_entries_with_history(desk):
    number = await new_ticket(desk, LOTTE, opened=EARLIER)
    conv = TurnRunner(desk)
    await say(conv, SOFIE, f"logtime {number} 1h database at 2026-11-27 10:00")
    [entry] = await desk.store.list_time_entries()
    out = await say(conv, THOMAS, f"logtime delete {entry.id}")
    assert "not yours" in out
    out = await say(conv, SOFIE, f"logtime edit {entry.id} 2h database")
    assert "€164.36" in out  # 2 h at 82.18, still starting at 10:00
    out = await say(conv, SOFIE, f"logtime list {number}")
    assert f"#{entry.id}" in out and "€164.36" in out
    await say(conv, SOFIE, f"logtime delete {entry.id}")
    assert await desk.store.list_time_entries() == []
    changes = await desk.store.list_time_entry_changes(entry.id)
    assert [c["action"] for c in changes] == ["create", "update", "delete"]
    assert all(c["changed_by"].lower() == SOFIE for c in changes)


async def test_logtime_form_and_dialog(desk):
    number = await new_ticket(desk, LOTTE, opened=EARLIER)  # before the time the form and the questions log
    conv = TurnRunner(desk)
    form = await conv.form(turn(SOFIE), "logtime")
    assert form is not None and [f.name for f in form.fields][:3] == ["ticket", "duration", "service"]
    assert await conv.form(turn(LOTTE), "logtime") is None  # customers get no time form
    bad = await conv.handle(turn(SOFIE, action="form:logtime", values={"ticket": "nope", "duration": "0m", "service": "x"}))
    assert set(bad.field_errors) == {"ticket", "duration", "service"}
    good = await conv.handle(turn(SOFIE, action="form:logtime", values={
        "ticket": number, "duration": "45m", "service": "parameters", "date": "2026-11-27", "time": "16:30"}))
    assert not good.field_errors and "€" in render_all(good.replies)
    # typed without arguments in a chat: asked question by question
    out = await say(conv, THOMAS, "logtime")
    assert "On which ticket" in out
    for answer in (number, "30m", "database", "yesterday 9:00", "-"):
        out = await say(conv, THOMAS, answer)
    assert "Time logged" in out
    assert len(await desk.store.list_time_entries()) == 2


async def test_billing_report_equals_the_sum_of_what_agents_were_shown(desk):
    """Spans over an evening, a weekend and a Belgian holiday (11 November)."""
    klok = await new_ticket(desk, LOTTE, opened=EARLIER)
    atelier = await new_ticket(desk, CAMILLE, opened=EARLIER)
    conv = TurnRunner(desk)
    shown = []
    for agent, text in [
        (SOFIE, f"logtime {klok} 3h teamviewer at 2026-11-27 15:30"),        # Friday office -> evening
        (SOFIE, f"logtime {klok} 5h development at 2026-11-28 22:00"),       # Saturday night -> Sunday
        (THOMAS, f"logtime {atelier} 2h database at 2026-11-11 10:00"),      # Armistice Day
        (THOMAS, f"logtime {atelier} 1:45 parameters at 2026-11-10 16:00"),  # evening before the holiday
        (SOFIE, f"logtime {atelier} 20m teamviewer at 2026-11-29 23:50"),    # Sunday into Monday
    ]:
        response = await conv.handle(turn(agent, text))
        facts = [r for r in response.replies if hasattr(r, "facts")][0]
        shown.append(Decimal(facts.facts[-1][1].replace("€", "").replace(",", "")))
    start, end = month_bounds("2026-11", BXL)
    entries = await desk.store.list_time_entries(started_from=start, started_before=end)
    report = billing_report(entries, "2026-11", "EUR")
    assert Decimal(report["total"]) == sum(shown)
    for customer in report["customers"]:
        assert Decimal(customer["total"]) == sum(Decimal(t["total"]) for t in customer["tickets"])
        for t in customer["tickets"]:
            assert Decimal(t["total"]) == sum(Decimal(e["amount"]) for e in t["entries"])
            for e in t["entries"]:
                assert Decimal(e["amount"]) == sum(Decimal(ln["amount"]) for ln in e["lines"])
    holiday = [e for e in entries if e.started_at.astimezone(BXL).day == 11][0]
    assert [ln["multiplier"] for ln in holiday.lines] == ["2.0"]


# ---- workflow ---------------------------------------------------------------------------------


async def test_change_request_through_change_management_tells_the_release_date_once(desk):
    number = await new_ticket(desk, LOTTE, kind="change_request")
    conv = TurnRunner(desk)
    out = await say(conv, SOFIE, f"status {number} released")
    assert "cannot go from 'submitted' to 'released'" in out
    await say(conv, SOFIE, f"status {number} assessed")
    out = await say(conv, SOFIE, f"release {number} 2026-12-15")
    assert "must be approved" in out
    await say(conv, SOFIE, f"status {number} approved")
    out = await say(conv, SOFIE, f"release {number} 2026-12-15")
    assert "Release date" in out
    await say(conv, THOMAS, f"release {number} 2026-12-15")  # said again: not told twice
    ticket = await desk.store.get_ticket(number)
    assert ticket.status is TicketStatus.SCHEDULED and str(ticket.release_date) == "2026-12-15"
    out = await say(conv, SOFIE, f"status {number} scheduled")  # scheduled again: nothing new told
    assert "already scheduled for Tuesday 15 December 2026" in out
    # Released before the release date (today is 30 November): asked to confirm, nothing changed.
    out = await say(conv, SOFIE, f"status {number} released")
    assert f"status {number} released confirm" in out
    assert (await desk.store.get_ticket(number)).status is TicketStatus.SCHEDULED
    out = await say(conv, SOFIE, f"status {number} released confirm")
    assert "is now: Released" in out
    messages = [m for m in await desk.store.list_outbox() if m.recipient.lower() == LOTTE]
    release_notes = [m for m in messages if m.payload["event"] == "release_date"]
    assert len(release_notes) == 1 and release_notes[0].payload["date"] == "2026-12-15"
    assert [m.payload.get("status") for m in messages if m.payload["event"] == "status"] == ["assessed", "approved", "released"]
    events = await desk.store.list_ticket_events(number)
    assert [e.after for e in events if e.field == "status"] == ["assessed", "approved", "scheduled", "released"]


async def test_workflow_commands_and_refusals(desk):
    number = await new_ticket(desk, CAMILLE, kind="service_request")
    conv = TurnRunner(desk)
    assert "assigned to Thomas Leroy" in await say(conv, SOFIE, f"assign {number} thomas.leroy@caresolutions.be")
    assert "assigned to Sofie" in await say(conv, SOFIE, f"assign {number} me")
    assert "not an agent" in await say(conv, SOFIE, f"assign {number} {LOTTE}")
    assert "Internal note added" in await say(conv, SOFIE, f"note {number} Customer runs version 7.2")
    assert "Solution date" in await say(conv, SOFIE, f"solution {number} 2026-12-03")
    assert "in the past" in await say(conv, SOFIE, f"solution {number} 2026-01-01")
    # customers cannot run agent commands, and never see internal notes
    assert "Only service desk staff" in await say(conv, CAMILLE, f"note {number} let me in")
    assert "Only service desk staff" in await say(conv, CAMILLE, f"status {number} closed")
    public = await desk.store.list_ticket_comments(number, include_internal=False)
    assert public == []
    ticket = await desk.store.get_ticket(number)
    assert ticket.assignee_email.lower() == SOFIE and ticket.status is TicketStatus.NEW
    [update] = [m for m in await desk.store.list_outbox() if m.kind == "ticket_update"]
    assert update.payload == {"ticket": number, "event": "solution_date", "channel": "console", "date": "2026-12-03"}


# ---- escalations and the outbox ------------------------------------------------------------------


class RecordingDelivery(Delivery):
    """The channels' side, as a recorder that can be told to fail (the platform API is down)."""

    def __init__(self):
        self.sent: list[tuple[str, str, Response]] = []
        self.failing = False

    async def deliver(self, message: OutboxMessage, response: Response) -> None:
        if message.recipient.endswith("@nowhere.example"):
            raise Undeliverable("never seen on any channel")
        if self.failing:
            raise DeliveryFailed("HTTP 503 from the platform", retry_after=1)
        self.sent.append((message.recipient.lower(), message.kind, response))


async def escalate(desk: Desk, conv: TurnRunner) -> str:
    number = await new_ticket(desk, LOTTE)
    for text in ("escalate", number, "1", "Nobody called me back.", "1"):
        out = await say(conv, LOTTE, text)
    assert "recorded" in out
    return number


async def test_escalation_climbs_to_level_two_on_time_and_ack_stops_it(desk):
    conv = TurnRunner(desk)
    delivery = RecordingDelivery()
    dispatcher = Dispatcher(desk, delivery)
    number = await escalate(desk, conv)
    await dispatcher.run_once()
    assert [(r, k) for r, k, _ in delivery.sent] == [(NAIDA.lower(), "escalation_ping")]
    ping = delivery.sent[0][2]
    assert "Acknowledge" in render_all(ping.replies) and number in render_all(ping.replies)

    escalations = Escalations(desk)
    desk.clock.advance(timedelta(minutes=59))
    assert await escalations.tick() == 0
    desk.clock.advance(timedelta(minutes=1))
    assert await escalations.tick() == 1
    [open_one] = await desk.store.list_escalations()
    assert open_one.level == 2
    await dispatcher.run_once()
    assert (PIETER, "escalation_ping") in [(r, k) for r, k, _ in delivery.sent]

    # "Open the ticket" in the ping shows it to him.
    out = await say(conv, PIETER, None, action="escalation", values={"value": f"view:{number}"})
    assert number in out and "The invoice print job fails with error 42" in out
    await say(conv, PIETER, "cancel")
    # Pieter acknowledges with the button of his ping; the climb stops.
    out = await say(conv, PIETER, None, action="escalation", values={"value": f"ack:{number}"})
    assert "You took the escalation" in out
    await dispatcher.run_once()
    kinds = {(r, k) for r, k, _ in delivery.sent}
    assert (NAIDA.lower(), "escalation_taken") in kinds and (LOTTE, "escalation_handled") in kinds
    handled = next(resp for r, k, resp in delivery.sent if k == "escalation_handled")
    assert "Pieter Van den Broeck" in render_all(handled.replies)
    desk.clock.advance(timedelta(hours=5))
    assert await escalations.tick() == 0
    # A second acknowledgement changes nothing.
    assert "already acknowledged by" in await say(conv, NAIDA, f"ack {number}")


async def test_climb_counts_office_hours_only(desk):
    conv = TurnRunner(desk)
    desk.clock.set(datetime(2026, 11, 27, 16, 30, tzinfo=BXL))  # Friday 16:30
    await escalate(desk, conv)
    escalations = Escalations(desk)
    desk.clock.set(datetime(2026, 11, 30, 9, 29, tzinfo=BXL))  # Monday 09:29: 59 office minutes
    assert await escalations.tick() == 0
    desk.clock.set(datetime(2026, 11, 30, 9, 30, tzinfo=BXL))
    assert await escalations.tick() == 1


async def test_top_level_is_pinged_again_on_the_interval(desk):
    conv = TurnRunner(desk)
    await escalate(desk, conv)
    escalations = Escalations(desk)
    desk.clock.advance(timedelta(minutes=60))
    await escalations.tick()  # level 2, the top
    desk.clock.advance(timedelta(minutes=60))
    assert await escalations.tick() == 1
    assert await escalations.tick() == 0  # not twice in the same interval
    repeats = [m for m in await desk.store.list_outbox() if m.payload.get("repeat")]
    assert {m.recipient.lower() for m in repeats} == {PIETER}


async def test_non_managers_cannot_acknowledge(desk):
    conv = TurnRunner(desk)
    number = await escalate(desk, conv)
    for who, refusal in ((LOTTE, "only the service desk can acknowledge this"), (SOFIE, "Only service desk managers")):
        out = await say(conv, who, None, action="escalation", values={"value": f"ack:{number}"})
        assert refusal in out
    [e] = await desk.store.list_escalations()
    assert e.acknowledged_by is None


async def test_outbox_retries_with_backoff_then_delivers_once(desk):
    conv = TurnRunner(desk)
    delivery = RecordingDelivery()
    dispatcher = Dispatcher(desk, delivery, policy=RetryPolicy(max_attempts=5, base_delay=timedelta(seconds=10)))
    await escalate(desk, conv)
    delivery.failing = True
    assert await dispatcher.run_once() == 0
    [msg] = await desk.store.list_outbox()
    assert msg.status == "pending" and msg.attempts == 1 and "503" in msg.last_error
    assert await dispatcher.run_once() == 0  # not due yet: nothing tried
    desk.clock.advance(timedelta(seconds=10))
    assert await dispatcher.run_once() == 0
    delivery.failing = False
    desk.clock.advance(timedelta(seconds=19))
    assert await dispatcher.run_once() == 0  # back-off doubled: 20 s
    desk.clock.advance(timedelta(seconds=1))
    assert await dispatcher.run_once() == 1
    assert len(delivery.sent) == 1
    desk.clock.advance(timedelta(hours=1))
    assert await dispatcher.run_once() == 0


async def test_dead_letter_and_requeue(desk):
    conv = TurnRunner(desk)
    delivery = RecordingDelivery()
    dispatcher = Dispatcher(desk, delivery, policy=RetryPolicy(max_attempts=2, base_delay=timedelta(seconds=1)))
    await escalate(desk, conv)
    delivery.failing = True
    await dispatcher.run_once()
    desk.clock.advance(timedelta(seconds=5))
    await dispatcher.run_once()
    assert [m.status for m in await desk.store.list_outbox()] == ["failed"]
    assert await desk.store.requeue_failed(desk.now()) == 1
    delivery.failing = False
    assert await dispatcher.run_once() == 1


async def test_unknown_recipient_is_dead_lettered_with_a_clear_reason(desk):
    from bot.store.ports import NewOutboxMessage

    await desk.store.enqueue([NewOutboxMessage("k1", "ghost@nowhere.example", "ticket_update",
                                               {"ticket": "CS-2026-00001", "event": "status", "status": "closed"})],
                             desk.now())
    await Dispatcher(desk, RecordingDelivery()).run_once()
    [msg] = await desk.store.list_outbox()
    assert msg.status == "failed" and "never seen" in msg.last_error


async def test_dispatcher_killed_mid_delivery_loses_nothing(desk):
    conv = TurnRunner(desk)
    await escalate(desk, conv)
    # A dispatcher takes the message and dies before it could mark it sent.
    [taken] = await desk.store.claim_outbox(desk.now(), timedelta(minutes=5), 10)
    delivery = RecordingDelivery()
    survivor = Dispatcher(desk, delivery)
    assert await survivor.run_once() == 0  # still leased to the dead one
    desk.clock.advance(timedelta(minutes=5, seconds=1))
    assert await survivor.run_once() == 1
    assert [k for _, k, _ in delivery.sent] == ["escalation_ping"]


async def test_two_dispatchers_never_send_a_message_twice(desk, store_factory):
    from bot.store.ports import NewOutboxMessage

    await desk.store.enqueue([NewOutboxMessage(f"bulk:{i}", NAIDA, "ticket_update",
                                               {"ticket": "CS-2026-00001", "event": "status", "status": "closed"})
                              for i in range(60)], desk.now())
    other = Desk(desk.settings, await store_factory(), desk.clock)
    first, second = RecordingDelivery(), RecordingDelivery()
    a = Dispatcher(desk, first, batch=7)
    b = Dispatcher(other, second, batch=7)
    for _ in range(12):
        await asyncio.gather(a.run_once(), b.run_once())
    assert len(first.sent) + len(second.sent) == 60
    assert [m.status for m in await desk.store.list_outbox()] == ["sent"] * 60
