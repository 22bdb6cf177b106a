"""The runner with a real store (SQLite and PostgreSQL): tickets are created once, state
survives a new runner (a restart), stale writes are retried, redeliveries are answered once,
and customers never see another company's tickets."""

from __future__ import annotations

import asyncio
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from bot.domain.clock import ManualClock
from bot.domain.config import Settings
from bot.app.runner import TurnRunner
from bot.app.desk import Desk
from bot.domain.directory import read_directory_file
from bot.domain.model import EscalationReason, TicketKind
from bot.protocol.ids import MENU
from bot.protocol.replies import Choices
from bot.protocol.turn import Turn, UserIdentity
from cards.text import render_all

ROOT = Path(__file__).resolve().parents[2]
BXL = ZoneInfo("Europe/Brussels")
LOTTE = "lotte.peeters@brasseriedeklok.be"
CAMILLE = "camille.dubois@atelier-lumiere.be"
DESCRIPTION = "Printing an invoice fails with error 42 since this morning's update"


@pytest.fixture
async def desk(store):
    await store.replace_directory(read_directory_file(ROOT / "examples" / "directory.yaml"))
    clock = ManualClock(datetime(2026, 11, 26, 10, 0, tzinfo=BXL))
    return Desk(Settings(), store, clock)


def turn(email: str, text: str | None = None, *, action: str | None = None, values=None, event_id=None,
         lang: str | None = "en", conversation: str | None = None) -> Turn:
    return Turn("console", "local", conversation or f"c:{email}",
                UserIdentity(id=email, email=email, locale=lang), text=text, action=action,
                values=values or {}, event_id=event_id)


async def say(conv: TurnRunner, email: str, *texts: str, lang: str = "en") -> str:
    out = ""
    for text in texts:
        response = await conv.handle(turn(email, text, lang=lang))
        out = render_all(response.replies)
    return out


INCIDENT = ("ticket", "1", "1", "Invoicing module", DESCRIPTION, "Open an invoice, press Print",
            "Restarted; same on another PC", "2")


async def test_guided_incident_creates_one_ticket(desk):
    conv = TurnRunner(desk)
    out = await say(conv, LOTTE, *INCIDENT)
    assert "Please check your ticket" in out
    response = await conv.handle(turn(LOTTE, "1"))
    assert response.ticket_number == "CS-2026-00001"
    assert "CS-2026-00001" in render_all(response.replies)
    ticket = await desk.store.get_ticket("CS-2026-00001")
    assert ticket.kind is TicketKind.INCIDENT
    assert (ticket.requester_email, ticket.company, ticket.module) == (LOTTE, "Brasserie De Klok", "Invoicing module")
    assert ticket.description == DESCRIPTION and ticket.reproduce == "Open an invoice, press Print"
    assert ticket.requester_phone == "+32 3 555 12 34"
    assert await desk.store.load_dialog(turn(LOTTE).dialog_key) is None


async def test_state_survives_a_new_runner_and_resumes_at_the_same_question(desk):
    await say(TurnRunner(desk), LOTTE, "ticket", "1", "1", "Invoicing module")
    restarted = TurnRunner(desk)  # a new process: nothing in memory
    resumed = render_all(await restarted.resume_prompt(turn(LOTTE)))
    assert "describe it clearly" in resumed
    out = await say(restarted, LOTTE, DESCRIPTION)
    assert "reproduce" in out


async def test_double_click_on_confirm_creates_one_ticket(desk):
    conv = TurnRunner(desk)
    await say(conv, LOTTE, *INCIDENT)
    stored = await desk.store.load_dialog(turn(LOTTE).dialog_key)
    action = f"new_ticket:summary:{stored.state['instance'][:8]}"
    first, second = await asyncio.gather(
        conv.handle(turn(LOTTE, action=action, values={"value": "confirm"})),
        conv.handle(turn(LOTTE, action=action, values={"value": "confirm"})),
    )
    numbers = {r.ticket_number for r in (first, second)} - {None}
    assert numbers == {"CS-2026-00001"}
    assert len(await desk.store.list_tickets()) == 1


async def test_redelivered_event_is_processed_once(desk):
    conv = TurnRunner(desk)
    await say(conv, LOTTE, "ticket")
    first = await conv.handle(turn(LOTTE, "1", event_id="Ev1"))
    again = await conv.handle(turn(LOTTE, "1", event_id="Ev1"))
    assert first.replies and not again.replies and again.duplicate
    stored = await desk.store.load_dialog(turn(LOTTE).dialog_key)
    assert stored.state["state"] == "contact"  # answered once, not twice


async def test_stale_write_is_retried_not_lost(desk, store_factory):
    other = await store_factory()
    conv_a = TurnRunner(desk)
    conv_b = TurnRunner(Desk(desk.settings, other, desk.clock))
    await say(conv_a, LOTTE, "ticket")
    # Both processes answer at once; one wins, the other retries on the new state.
    await asyncio.gather(conv_a.handle(turn(LOTTE, "1")), conv_b.handle(turn(LOTTE, "1")))
    stored = await desk.store.load_dialog(turn(LOTTE).dialog_key)
    assert stored.state["state"] in ("contact", "module")
    assert stored.version >= 3


async def test_cancel_leaves_no_ticket(desk):
    conv = TurnRunner(desk)
    await say(conv, LOTTE, *INCIDENT)
    out = await say(conv, LOTTE, "cancel")
    assert "Nothing was created" in out
    assert await desk.store.list_tickets() == []


async def test_idle_dialog_expires(desk):
    conv = TurnRunner(desk)
    await say(conv, LOTTE, "ticket")
    desk.clock.advance(__import__("datetime").timedelta(hours=3))
    out = await say(conv, LOTTE, "1")
    assert "idle for too long" in out
    assert await desk.store.load_dialog(turn(LOTTE).dialog_key) is None


async def test_quoting_a_ticket_number_shows_it_instead_of_a_duplicate(desk):
    conv = TurnRunner(desk)
    await say(conv, LOTTE, *INCIDENT, "1")
    out = await say(conv, LOTTE, "any news on CS-2026-00001?")
    assert "CS-2026-00001" in out and "Add information" in out
    out = await say(conv, LOTTE, "1", "The error also appears when printing credit notes.")
    assert "added to ticket CS-2026-00001" in out
    comments = await desk.store.list_ticket_comments("CS-2026-00001", include_internal=False)
    assert [c["text"] for c in comments] == ["The error also appears when printing credit notes."]
    assert len(await desk.store.list_tickets()) == 1


async def test_customers_never_see_or_escalate_another_companys_ticket(desk):
    conv = TurnRunner(desk)
    await say(conv, LOTTE, *INCIDENT, "1")
    # Camille works for Atelier Lumière: Brasserie De Klok's ticket does not exist for her.
    out = await say(conv, CAMILLE, "status CS-2026-00001")
    assert "found no ticket CS-2026-00001" in out and DESCRIPTION not in out
    out = await say(conv, CAMILLE, "escalate CS-2026-00001")
    assert "found no ticket CS-2026-00001" in out
    out = await say(conv, CAMILLE, "status")
    assert "no tickets" in out
    out = await say(conv, CAMILLE, "CS-2026-00001")
    assert DESCRIPTION not in out
    assert await desk.store.list_escalations() == []
    # A colleague of the same company sees it only when named in the SLA (the visibility
    # policy, tests/conversation/test_visibility.py): Jonas is not.
    out = await say(conv, "jonas.claes@brasseriedeklok.be", "status")
    assert "CS-2026-00001" not in out


async def test_escalation_is_recorded_with_a_message_for_level_one(desk):
    conv = TurnRunner(desk)
    await say(conv, LOTTE, *INCIDENT, "1")
    out = await say(conv, LOTTE, "escalate", "CS-2026-00001", "1", "Nobody called me back in two days.")
    assert "Naïda Jelacic" in out  # the confirmation names who handles it
    out = await say(conv, LOTTE, "1")
    assert "Naïda Jelacic, Customer Service Manager" in out
    [escalation] = await desk.store.list_escalations()
    assert (escalation.ticket_number, escalation.level, escalation.reason) == ("CS-2026-00001", 1, EscalationReason.FEEDBACK)
    outbox = await desk.store.list_outbox()
    assert [m.recipient.lower() for m in outbox] == ["naida.jelacic@caresolutions.be"]
    assert outbox[0].payload["ticket"] == "CS-2026-00001"


async def test_unknown_input_gets_a_menu_in_the_users_language(desk):
    conv = TurnRunner(desk)
    response = await conv.handle(turn(LOTTE, "blablabla", lang="nl"))
    assert any(isinstance(r, Choices) and r.action == MENU for r in response.replies)
    assert response.lang == "nl"
    menu_click = await conv.handle(turn(LOTTE, action="menu", values={"value": "quote"}, lang="fr"))
    assert menu_click.lang == "fr"
    assert any(isinstance(r, Choices) for r in menu_click.replies)


async def test_language_falls_back_to_directory_then_english(desk):
    conv = TurnRunner(desk)
    assert (await conv.handle(turn(LOTTE, "help", lang=None))).lang == "nl"  # her directory language
    assert (await conv.handle(turn("stranger@example.com", "help", lang="de-DE"))).lang == "en"


async def test_modal_form_submitted_at_once_with_errors_then_success(desk):
    conv = TurnRunner(desk)
    bad = await conv.handle(turn(CAMILLE, action="form:new_ticket", values={
        "kind": "incident", "name": "Camille", "email": "camille", "phone": "+32 2 555 67 89",
        "module": "Stock", "description": "broken", "urgency": "normal", "_confirmed": "1"}))
    assert set(bad.field_errors) == {"email", "description", "reproduce", "diagnostics"}
    assert await desk.store.list_tickets() == []
    good = await conv.handle(turn(CAMILLE, action="form:new_ticket", values={
        "kind": "service_request", "name": "Camille Dubois", "email": CAMILLE, "phone": "02 555 67 89",
        "module": "Stock", "description": "How do I add a new warehouse location to the stock module?",
        "urgency": "low", "_confirmed": "1"}))
    assert not good.field_errors and good.ticket_number == "CS-2026-00001"
    ticket = await desk.store.get_ticket(good.ticket_number)
    assert ticket.company == "Atelier Lumière" and ticket.requester_phone == "+32 2 555 67 89"


async def test_home_lists_open_tickets_and_welcome_gives_contacts(desk):
    conv = TurnRunner(desk)
    empty = await conv.home(turn(LOTTE))
    assert "no open tickets" in render_all(empty.replies)
    await say(conv, LOTTE, *INCIDENT, "1")
    home = render_all((await conv.home(turn(LOTTE))).replies)
    assert "Hello Lotte Peeters" in home and "CS-2026-00001" in home and "Open a ticket" in home
    welcome = await conv.welcome(turn("newcomer@example.com", lang="fr-BE"))
    text = render_all(welcome.replies)
    assert welcome.lang == "fr" and "+32 3 800 5 800" in text and "servicedesk@caresolutions.be" in text


async def test_preview_of_a_form_changes_nothing(desk):
    conv = TurnRunner(desk)
    values = {"kind": "service_request", "name": "Camille Dubois", "email": CAMILLE, "phone": "02 555 67 89",
              "module": "Stock", "description": "How do I add a new warehouse location to the stock module?",
              "urgency": "low", "_confirmed": "1"}
    good = await conv.preview(turn(CAMILLE, action="form:new_ticket", values=values))
    assert good.effect is not None and good.effect.kind == "create_ticket" and not good.field_errors
    bad = await conv.preview(turn(CAMILLE, action="form:new_ticket", values={**values, "email": "x"}))
    assert set(bad.field_errors) == {"email"}
    assert await desk.store.list_tickets() == []
    assert await desk.store.load_dialog(turn(CAMILLE).dialog_key) is None
