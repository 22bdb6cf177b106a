"""Out-of-hours emergencies reach a person (rules page §1, issue 15), on a real store (SQLite and
PostgreSQL), through the console channel: the rota says who is on duty, an accepted emergency
pages them through the outbox, the page goes to the backup, then the level-1 manager, then round
again after `oncall.ack_timeout_minutes` of real time, and `ack` (typed or the button) stops it
and tells the requester in their language."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from bot.app.desk import Desk
from bot.app.escalations import Escalations
from bot.app.outbox import Dispatcher
from bot.app.runner import TurnRunner
from bot.domain.clock import ManualClock
from bot.domain.config import OnCallSettings, Settings
from bot.domain.directory import read_directory_file
from bot.domain.model import EscalationReason, EscalationStatus
from cards.text import render_all
from tests.conversation.test_staff import NAIDA, PIETER, SOFIE, THOMAS, RecordingDelivery, say, turn

ROOT = Path(__file__).resolve().parents[2]
BXL = ZoneInfo("Europe/Brussels")
CAMILLE = "camille.dubois@atelier-lumiere.be"  # named in the SLA, French, no support module
LOTTE = "lotte.peeters@brasseriedeklok.be"     # named in the SLA, Dutch, SLA multipliers
HUGO = "hugo.lambert@atelier-lumiere.be"       # not named in the SLA
SATURDAY_NIGHT = datetime(2026, 11, 28, 22, 30, tzinfo=BXL)  # the rota: Sofie on duty, Thomas backup
INCIDENT = ("ticket", "1", "1", "Invoicing module", "Printing an invoice fails with error 42 since the update",
            "Open an invoice and press Print", "Restarted, same on another PC", "4")


@pytest.fixture
async def desk(store):
    await store.replace_directory(read_directory_file(ROOT / "examples" / "directory.yaml"))
    return Desk(Settings(), store, ManualClock(SATURDAY_NIGHT))


async def emergency(conv: TurnRunner, who: str = CAMILLE) -> tuple[str, str]:
    for text in INCIDENT:
        out = await say(conv, who, text)
    assert "of the hourly rate" in out  # asked to accept the surcharge first
    await say(conv, who, "1")       # accept
    out = await say(conv, who, "1")  # create
    [ticket] = await conv.desk.store.list_tickets(requester_email=who)
    return ticket.number, out


async def sent(dispatcher: Dispatcher, delivery: RecordingDelivery) -> list[tuple[str, str]]:
    await dispatcher.run_once()
    return [(r, k) for r, k, _ in delivery.sent]


async def test_accepted_emergency_pages_the_person_on_duty_with_what_they_need(desk):
    conv = TurnRunner(desk)
    delivery = RecordingDelivery()
    dispatcher = Dispatcher(desk, delivery)
    number, out = await emergency(conv)
    assert "the engineer on call has been paged now" in out  # (her console speaks English)
    assert await sent(dispatcher, delivery) == [(SOFIE, "oncall_page")]
    page = render_all(delivery.sent[0][2].replies)
    # in Sofie's language (Dutch, from the directory)
    for needed in (number, "u hebt wachtdienst", "Atelier Lumière", "Camille Dubois", "+32 2 555 67 89",
                   "Printing an invoice fails with error 42", "150 % van het uurtarief (de standaardtarieven)",
                   "extra kosten kunnen worden aangerekend (geen supportmodule)", "In behandeling nemen"):
        assert needed in page, needed
    [p] = await desk.store.list_escalations()
    assert p.reason is EscalationReason.EMERGENCY and p.level == 1 and p.requested_by == CAMILLE


async def test_the_ticket_records_what_was_accepted_for_agents_only(desk):
    conv = TurnRunner(desk)
    number, _ = await emergency(conv, LOTTE)  # Brasserie De Klok: their SLA says 125 % on Saturday
    [ticket] = await desk.store.list_tickets(requester_email=LOTTE)
    assert ticket.out_of_hours_emergency
    [note] = await desk.store.list_ticket_comments(number, include_internal=True)
    assert note["internal"] and note["author"] == LOTTE
    assert "accepted by lotte.peeters@brasseriedeklok.be at Saturday 28 November 2026 at 22:30" in note["text"]
    assert "125 % (the customer's SLA agreement)" in note["text"] and "support module" not in note["text"]
    assert await desk.store.list_ticket_comments(number, include_internal=False) == []
    # an agent sees the flag in the ticket, the note in `caredesk tickets show` (tests/test_cli.py)
    assert "Out-of-hours emergency" in await say(conv, SOFIE, f"ticket {number}")


async def test_no_ack_pages_the_backup_then_the_manager_then_round_again_in_real_minutes(desk):
    conv = TurnRunner(desk)
    delivery = RecordingDelivery()
    dispatcher = Dispatcher(desk, delivery)
    await emergency(conv)
    await dispatcher.run_once()
    pages = Escalations(desk)
    desk.clock.advance(timedelta(minutes=14))
    assert await pages.tick() == 0
    desk.clock.advance(timedelta(minutes=1))  # 15 real minutes, on a Saturday night
    assert await pages.tick() == 1
    assert await pages.tick() == 0  # not twice for the same step
    assert (await sent(dispatcher, delivery))[-1] == (THOMAS, "oncall_page")
    assert "vous êtes sa réserve" in render_all(delivery.sent[-1][2].replies)
    desk.clock.advance(timedelta(minutes=15))
    assert await pages.tick() == 1
    assert (await sent(dispatcher, delivery))[-1] == (NAIDA.lower(), "oncall_page")
    assert "nobody on call has acknowledged it" in render_all(delivery.sent[-1][2].replies)
    desk.clock.advance(timedelta(minutes=15))
    assert await pages.tick() == 1
    assert (await sent(dispatcher, delivery))[-1] == (SOFIE, "oncall_page")
    assert "Nog steeds niet opgenomen" in render_all(delivery.sent[-1][2].replies)
    assert PIETER not in {r for r, _ in await sent(dispatcher, delivery)}  # level 2 is not the page's


async def test_ack_timeout_is_a_setting(store):
    await store.replace_directory(read_directory_file(ROOT / "examples" / "directory.yaml"))
    desk = Desk(replace(Settings(), oncall=OnCallSettings(ack_timeout_minutes=5)), store, ManualClock(SATURDAY_NIGHT))
    await emergency(TurnRunner(desk))
    desk.clock.advance(timedelta(minutes=5))
    assert await Escalations(desk).tick() == 1


async def test_ack_by_the_person_on_duty_stops_the_page_and_tells_the_requester_in_french(desk):
    conv = TurnRunner(desk)
    delivery = RecordingDelivery()
    dispatcher = Dispatcher(desk, delivery)
    number, _ = await emergency(conv)
    desk.clock.advance(timedelta(minutes=15))
    await Escalations(desk).tick()  # Thomas is paged too
    await dispatcher.run_once()
    # Sofie, an agent, takes it with the button of her page.
    out = await say(conv, SOFIE, None, action="escalation", values={"value": f"ack:{number}"})
    assert f"You took the out-of-hours emergency {number}" in out
    kinds = await sent(dispatcher, delivery)
    assert (CAMILLE, "oncall_handled") in kinds and (THOMAS, "oncall_taken") in kinds
    handled = next(resp for r, k, resp in delivery.sent if k == "oncall_handled")
    assert "prise en charge par Sofie Janssens" in render_all(handled.replies)
    assert "+32 3 800 5 811" in render_all(handled.replies)  # her phone, to expect the call
    [p] = await desk.store.list_escalations(open_only=False)
    assert p.status is EscalationStatus.ACKNOWLEDGED and p.acknowledged_by == SOFIE
    desk.clock.advance(timedelta(hours=2))
    assert await Escalations(desk).tick() == 0
    assert "already acknowledged by" in await say(conv, THOMAS, f"ack {number}")


async def test_ack_command_by_the_manager_works_too_and_customers_cannot(desk):
    conv = TurnRunner(desk)
    number, _ = await emergency(conv)
    out = await say(conv, CAMILLE, None, action="escalation", values={"value": f"ack:{number}"})
    # A customer: told politely that only the service desk acknowledges, nothing changed.
    assert "only the service desk can acknowledge this" in out and "managers" not in out
    assert (await desk.store.list_escalations())[0].status is EscalationStatus.OPEN
    assert "You took the out-of-hours emergency" in await say(conv, NAIDA, f"ack {number}")


async def test_override_wins_and_nobody_on_duty_pages_the_manager(desk, store):
    desk.clock.set(datetime(2026, 12, 24, 20, 0, tzinfo=BXL))  # Thursday: Thomas's night, but Christmas
    delivery = RecordingDelivery()
    dispatcher = Dispatcher(desk, delivery)
    await emergency(TurnRunner(desk))
    assert await sent(dispatcher, delivery) == [(SOFIE, "oncall_page")]
    # No rota at all: the page still reaches a person, the level-1 manager.
    directory = read_directory_file(ROOT / "examples" / "directory.yaml")
    await store.replace_directory(replace(directory, rota=()))
    await emergency(TurnRunner(desk), LOTTE)
    assert (await sent(dispatcher, delivery))[-1] == (NAIDA.lower(), "oncall_page")


async def test_not_named_and_requests_are_not_paged(desk):
    conv = TurnRunner(desk)
    for text in INCIDENT:
        out = await say(conv, HUGO, text)
    assert "a colleague who is named in your company's SLA may call" in out and "Monday 30 November" in out
    assert "+32 3 800 5 800" not in out
    out = await say(conv, HUGO, "1")
    assert "+32 3 800 5 800" not in out
    assert await desk.store.list_escalations() == []


async def test_redelivered_turn_pages_once(desk):
    conv = TurnRunner(desk)
    for text in INCIDENT + ("1",):
        await say(conv, CAMILLE, text)
    final = turn(CAMILLE, "1", event_id="evt-create")
    await conv.handle(final)
    await conv.handle(final)
    assert len(await desk.store.list_escalations()) == 1
    assert len([m for m in await desk.store.list_outbox() if m.kind == "oncall_page"]) == 1


async def test_time_on_an_accepted_emergency_is_billed_at_the_accepted_multiplier(desk):
    conv = TurnRunner(desk)
    number, _ = await emergency(conv)  # Saturday 22:30: 150 % accepted, the rate card's
    other = await desk.register_ticket(kind="incident", requester_email=CAMILLE, module="Caisse",
                                       description="La caisse plante au démarrage depuis la mise à jour")
    # Sunday 01:00 is a 200 % period on the rate card: the emergency's hour is billed at the 150 %
    # Camille accepted, another ticket's hour at the same time at 200 %.
    desk.clock.advance(timedelta(days=3))  # Tuesday: all of it is in the past
    out = await say(conv, SOFIE, f"logtime {number} 1h teamviewer at 2026-11-29 01:00")
    assert "150 %" in out and "€153.32" in out, out
    out = await say(conv, SOFIE, f"logtime {other.number} 1h teamviewer at 2026-11-29 01:00")
    assert "200 %" in out and "€204.42" in out, out
    # Office hours on Monday stay at the office rate, emergency or not.
    out = await say(conv, SOFIE, f"logtime {number} 1h teamviewer at 2026-11-30 10:00")
    assert "100 %" in out and "€102.21" in out, out
