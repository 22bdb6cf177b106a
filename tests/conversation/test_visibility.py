"""Who may see and do what (issue 15 §4), through the runner as every channel reaches it, on
SQLite and PostgreSQL: the policy of bot/domain/visibility.py applied to the list, a typed
number, a ticket's view and its buttons, escalation and information added."""

from __future__ import annotations

import pytest

from bot.app.runner import TurnRunner
from bot.domain.model import NewTicket, TicketKind, TicketStatus
from tests.conversation.test_conversation import CAMILLE, LOTTE, desk, say, turn  # noqa: F401
from cards.text import render_all

STRANGER = "someone@unknown-firm.example"
JONAS = "jonas.claes@brasseriedeklok.be"  # Brasserie De Klok, not named in the SLA
HUGO = "hugo.lambert@atelier-lumiere.be"  # Atelier Lumière, not named in the SLA
BREWERY = "Brasserie De Klok"


async def _ticket(desk, email: str, company: str | None, kind: TicketKind = TicketKind.INCIDENT,
                  description: str = "The till does not open the cash drawer any more"):
    return await desk.store.create_ticket(
        NewTicket(kind=kind, requester_email=email, requester_name=email.split("@")[0], company=company,
                  module="POS", description=description),
        desk.now(), desk.settings.tickets.number_format)


async def _business(desk):
    return ([(e.ticket_number, e.reason.value) for e in await desk.store.list_escalations()],
            {t.number: await desk.store.list_ticket_comments(t.number, include_internal=True)
             for t in await desk.store.list_tickets()})


@pytest.mark.parametrize("lang,words", [("en", "cannot show or escalate"), ("fr", "ni escalader"),
                                         ("nl", "geen tickets tonen of escaleren")])
async def test_a_person_outside_the_directory_can_neither_read_nor_escalate_even_their_own_ticket(desk, lang, words):
    conv = TurnRunner(desk)
    mine = await _ticket(desk, STRANGER, None, description="Our invoices do not print since this morning")
    before = await _business(desk)
    for text in ("status", mine.number, f"status {mine.number}", f"escalate {mine.number}", "escalate",
                 f"any news on {mine.number}?"):
        out = await say(conv, STRANGER, text, lang=lang)
        assert words in out, text
        assert "do not print" not in out
    # The ticket's own view buttons: view, and an escalation's view.
    for action, value in (("escalation", f"view:{mine.number}"), ("menu", "escalate"), ("menu", "my_tickets")):
        out = render_all((await conv.handle(turn(STRANGER, action=action, values={"value": value},
                                                  lang=lang))).replies)
        assert words in out and "do not print" not in out
    assert await desk.store.load_dialog(turn(STRANGER).dialog_key) is None
    assert await _business(desk) == before
    # A first contact is still open to them.
    out = await say(conv, STRANGER, "ticket", lang=lang)
    assert words not in out


async def test_a_forged_ticket_view_state_escalates_or_comments_nothing_for_a_stranger(desk):
    conv = TurnRunner(desk)
    mine = await _ticket(desk, STRANGER, None)
    key = turn(STRANGER).dialog_key
    for data, state in (
        ({"ticket": mine.number, "action": "escalate", "reason": "feedback", "comment": "Nobody called back"},
         "confirm"),
        ({"ticket": mine.number, "action": "info"}, "info"),
    ):
        forged = {"dialog": "ticket_info", "state": state, "data": data, "history": [],
                  "instance": ("a1" if state == "info" else "b2") * 16, "started_at": desk.now().isoformat()}
        stored = await desk.store.load_dialog(key)
        await desk.store.save_dialog(key, forged, stored.version if stored else None, desk.now())
        out = await say(conv, STRANGER, "1" if state == "confirm" else "It also fails on credit notes")
        assert f"I found no ticket {mine.number}" in out
    assert await _business(desk) == ([], {mine.number: []})


async def test_named_contacts_see_their_companys_tickets_and_others_their_own(desk):
    conv = TurnRunner(desk)
    lottes = await _ticket(desk, LOTTE, BREWERY, description="Lotte's printer queue is stuck every morning")
    jonass = await _ticket(desk, JONAS, BREWERY, description="Jonas cannot log in to the stock module")
    camilles = await _ticket(desk, CAMILLE, "Atelier Lumière", description="La caisse plante au démarrage")
    # Lotte is named in the SLA: her company's tickets, not another company's.
    out = await say(conv, LOTTE, "status")
    assert lottes.number in out and jonass.number in out and camilles.number not in out
    assert "stock module" in await say(conv, LOTTE, jonass.number)
    # Jonas is not: his own only, by list, number, escalation and a forged escalation state.
    out = await say(conv, JONAS, "status")
    assert jonass.number in out and lottes.number not in out
    assert f"I found no ticket {lottes.number}" in await say(conv, JONAS, lottes.number)
    assert f"I found no ticket {lottes.number}" in await say(conv, JONAS, f"escalate {lottes.number}")
    for text in ("escalate", jonass.number, "1", "Nobody called me back."):
        await say(conv, JONAS, text)
    key = turn(JONAS).dialog_key
    stored = await desk.store.load_dialog(key)
    await desk.store.save_dialog(key, {**stored.state, "data": {**stored.state["data"], "ticket": lottes.number}},
                                 stored.version, desk.now())
    assert f"I found no ticket {lottes.number}" in await say(conv, JONAS, "1")
    assert await desk.store.list_escalations() == []
    # Hugo (not named) of the other company sees none of these.
    assert "no tickets" in await say(conv, HUGO, "status")


async def test_escalation_reasons_fit_the_ticket_and_a_forged_reason_is_refused(desk):
    conv = TurnRunner(desk)
    ticket = await _ticket(desk, LOTTE, BREWERY)
    out = await say(conv, LOTTE, f"escalate {ticket.number}")
    assert "can be chosen once ticket" in out and "The solution to the incident is inadequate" not in out
    assert "Please pick one of the options" in await say(conv, LOTTE, "solution")
    # The ticket is resolved meanwhile: the reason is offered and taken.
    await desk.store.update_ticket(ticket.number, by="sofie.janssens@caresolutions.be", now=desk.now(),
                                   changes={"status": TicketStatus.RESOLVED.value})
    out = await say(conv, LOTTE, "cancel", f"escalate {ticket.number}")
    assert "The solution to the incident is inadequate" in out
    # A state forged to escalate the solution of a change request waiting for its release.
    change = await _ticket(desk, LOTTE, BREWERY, kind=TicketKind.CHANGE_REQUEST)
    out = await say(conv, LOTTE, "cancel", f"escalate {change.number}")
    assert "has not been released yet" in out
    await say(conv, LOTTE, "1", "Nobody called me back.")
    key = turn(LOTTE).dialog_key
    stored = await desk.store.load_dialog(key)
    await desk.store.save_dialog(key, {**stored.state, "data": {**stored.state["data"], "reason": "solution"}},
                                 stored.version, desk.now())
    assert "does not fit ticket" in await say(conv, LOTTE, "1")
    assert await desk.store.list_escalations() == []
