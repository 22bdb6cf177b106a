"""Nobody acts as someone else (issue 14).

The company of a ticket is the company of the person talking, as the platform proves their
e-mail; another requester is allowed only within that company; a ticket from outside the
directory belongs to no company until staff put it in one. Acknowledgements, escalations and
staff commands are checked where they act, whatever form value, button value or dialog state
arrives. Each case through the core (`TurnRunner`, SQLite and PostgreSQL) and the forged card
through the Teams endpoint.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from bot.app.desk import Desk
from bot.app.runner import TurnRunner
from bot.domain.clock import ManualClock
from bot.domain.config import Settings
from bot.domain.directory import read_directory_file
from bot.domain.model import EscalationReason
from bot.protocol.turn import Turn, UserIdentity
from cards.text import render_all
from tests.hostile.conftest import BUSINESS_TABLES, snapshot
from tests.teams.conftest import card_of, card_text

# A refused form keeps its dialog (to show the form again with the errors); nothing else moves.
BUT_DIALOGS = tuple(t for t in BUSINESS_TABLES if t != "dialog_states")

ROOT = Path(__file__).resolve().parents[2]
BXL = ZoneInfo("Europe/Brussels")
LOTTE = "lotte.peeters@brasseriedeklok.be"  # Brasserie De Klok
CAMILLE = "camille.dubois@atelier-lumiere.be"  # Atelier Lumière
HUGO = "hugo.lambert@atelier-lumiere.be"  # Atelier Lumière
JAN = "jan@example.be"  # in no directory list
SOFIE = "sofie.janssens@caresolutions.be"  # agent
NAIDA = "Naida.jelacic@caresolutions.be"  # manager, level 1
PIETER = "pieter.vandenbroeck@caresolutions.be"  # manager, level 2
ATELIER = "Atelier Lumière"
DESCRIPTION = "How do I add a new warehouse location to the stock module for the new shop?"


@pytest.fixture
async def desk(store):
    await store.replace_directory(read_directory_file(ROOT / "examples" / "directory.yaml"))
    return Desk(Settings(), store, ManualClock(datetime(2026, 11, 30, 10, 0, tzinfo=BXL)))  # Monday


def turn(email: str | None, text: str | None = None, *, action: str | None = None, values=None,
         lang: str = "en", user: str | None = None) -> Turn:
    who = user or email or "anonymous"
    return Turn("console", "local", f"c:{who}", UserIdentity(id=who, email=email, locale=lang),
                text=text, action=action, values=values or {})


def form(email: str, name: str, **extra: str) -> dict[str, str]:
    return {"kind": "service_request", "name": name, "email": email, "phone": "02 555 67 89",
            "module": "Stock", "description": DESCRIPTION, "urgency": "low", "_confirmed": "1", **extra}



async def say(conv: TurnRunner, email: str | None, text: str | None, **kw) -> str:
    return render_all((await conv.handle(turn(email, text, **kw))).replies)


# ---- the company of a ticket ---------------------------------------------------------------------


async def test_a_stranger_choosing_a_company_files_a_ticket_of_no_company(desk):
    conv = TurnRunner(desk)
    response = await conv.handle(turn(JAN, action="form:new_ticket", values=form(JAN, "Jan", company=ATELIER)))
    assert not response.field_errors and response.ticket_number
    ticket = await desk.store.get_ticket(response.ticket_number)
    assert ticket.company is None and ticket.requester_email == JAN
    # Not in the company's lists, not visible to its contacts, not in its bill.
    assert await desk.store.list_tickets(company=ATELIER) == []
    assert "I found no ticket" in await say(conv, CAMILLE, f"status {ticket.number}")
    await say(conv, SOFIE, f"logtime {ticket.number} 1h teamviewer confirm")  # starts before it was opened
    assert len(await desk.store.list_time_entries(ticket_number=ticket.number)) == 1
    assert await desk.store.list_time_entries(company=ATELIER) == []
    # Outside the directory, the stranger sees no ticket, not even their own (issue 15 §4).
    out = await say(conv, JAN, f"status {ticket.number}")
    assert "cannot show or escalate" in out and DESCRIPTION not in out


async def test_a_stranger_is_never_asked_for_a_company_in_the_chat(desk):
    conv = TurnRunner(desk)
    form_card = await conv.form(turn(JAN), "new_ticket")
    assert "company" not in [f.name for f in form_card.fields]
    out = await say(conv, JAN, "new ticket")
    asked = [out]
    for answer in ("2", "Jan Jansen", "1", "0470 12 34 56", "Stock", DESCRIPTION, "1"):
        out = await say(conv, JAN, answer)
        asked.append(out)
    assert not [q for q in asked if "Which company" in q]
    assert "Please check your ticket" in out
    out = await say(conv, JAN, "1")
    [ticket] = await desk.store.list_tickets()
    assert ticket.company is None and ticket.number in out


async def test_a_contact_forging_the_company_field_files_for_their_own_company(desk):
    conv = TurnRunner(desk)
    response = await conv.handle(turn(LOTTE, action="form:new_ticket",
                                      values=form(LOTTE, "Lotte Peeters", company=ATELIER)))
    ticket = await desk.store.get_ticket(response.ticket_number)
    assert ticket.company == "Brasserie De Klok"
    assert await desk.store.list_tickets(company=ATELIER) == []


async def test_a_contact_may_file_for_a_colleague_of_the_same_company(desk):
    conv = TurnRunner(desk)
    response = await conv.handle(turn(CAMILLE, action="form:new_ticket", values=form(HUGO, "Hugo Lambert")))
    ticket = await desk.store.get_ticket(response.ticket_number)
    assert (ticket.requester_email, ticket.company) == (HUGO, ATELIER)


async def test_staff_registering_a_ticket_for_a_customer_name_a_directory_company(desk):
    conv = TurnRunner(desk)
    assert "company" in [f.name for f in (await conv.form(turn(SOFIE), "new_ticket")).fields]
    made = await conv.handle(turn(SOFIE, action="form:new_ticket", values=form(HUGO, "Hugo", company="atelier lumière")))
    assert (await desk.store.get_ticket(made.ticket_number)).company == ATELIER
    before = await snapshot(desk.store, BUT_DIALOGS)
    refused = await conv.handle(turn(SOFIE, action="form:new_ticket", values=form(HUGO, "Hugo", company="Nowhere")))
    assert "There is no company 'Nowhere'" in render_all(refused.replies) and refused.ticket_number is None
    assert await snapshot(desk.store, BUT_DIALOGS) == before


# ---- the requester -------------------------------------------------------------------------------


@pytest.mark.parametrize("speaker,requester,lang,says", [
    # a contact of one company naming a contact of another
    (LOTTE, CAMILLE, "nl", "geen contact van Brasserie De Klok"),
    (LOTTE, CAMILLE, "en", "not one of Brasserie De Klok's contacts"),
    # a contact naming staff, or an address in no list
    (CAMILLE, SOFIE, "fr", "pas celle d'un contact de Atelier Lumière"),
    (CAMILLE, "someone@elsewhere.be", "en", "not one of Atelier Lumière's contacts"),
    # someone outside the directory naming a contact, or any other address than their own
    (JAN, CAMILLE, "fr", "votre propre adresse e-mail (jan@example.be)"),
    (JAN, "other@example.be", "en", "your own e-mail address (jan@example.be)"),
])
async def test_filing_as_someone_else_is_refused_politely_and_changes_nothing(desk, speaker, requester, lang, says):
    conv = TurnRunner(desk)
    before = await snapshot(desk.store, BUT_DIALOGS)
    response = await conv.handle(turn(speaker, action="form:new_ticket", values=form(requester, "X Y"), lang=lang))
    assert set(response.field_errors) == {"email"} and says in response.field_errors["email"]
    assert response.lang == lang
    assert await snapshot(desk.store, BUT_DIALOGS) == before


async def test_someone_without_a_proven_address_may_not_use_a_directory_address(desk):
    conv = TurnRunner(desk)
    anonymous = dict(email=None, user="29:unknown")
    refused = await conv.handle(turn(**anonymous, action="form:new_ticket", values=form(CAMILLE, "Camille")))
    assert "belongs to someone in our directory" in refused.field_errors["email"]
    accepted = await conv.handle(turn(**anonymous, action="form:new_ticket", values=form(JAN, "Jan", company=ATELIER)))
    ticket = await desk.store.get_ticket(accepted.ticket_number)
    assert (ticket.requester_email, ticket.company) == (JAN, None)


async def test_in_the_chat_a_colleague_of_another_company_is_refused_at_the_question(desk):
    conv = TurnRunner(desk)
    await say(conv, LOTTE, "new ticket")
    await say(conv, LOTTE, "2")  # a service request
    await say(conv, LOTTE, "2")  # change the contact details
    await say(conv, LOTTE, "Camille Dubois")
    out = await say(conv, LOTTE, CAMILLE)
    assert "not one of Brasserie De Klok's contacts" in out
    stored = await desk.store.load_dialog(turn(LOTTE).dialog_key)
    assert stored.state["state"] == "email"
    await say(conv, LOTTE, "jonas.claes@brasseriedeklok.be")  # her colleague: accepted
    stored = await desk.store.load_dialog(turn(LOTTE).dialog_key)
    assert stored.state["state"] == "phone" and stored.state["data"]["email"] == "jonas.claes@brasseriedeklok.be"


async def test_a_forged_dialog_state_is_refused_where_the_ticket_is_created(desk):
    conv = TurnRunner(desk)
    for text in ("new ticket", "2", "1", "Stock", DESCRIPTION, "1"):
        out = await say(conv, LOTTE, text)
    assert "Please check your ticket" in out
    key = turn(LOTTE).dialog_key
    stored = await desk.store.load_dialog(key)
    # Someone with write access to nothing but their own dialog state (an old state, a bug):
    # the creation checks again.
    forged = {**stored.state, "data": {**stored.state["data"], "email": CAMILLE, "company": ATELIER}}
    await desk.store.save_dialog(key, forged, stored.version, desk.now())
    before = await snapshot(desk.store, ("tickets", "ticket_events", "outbox"))
    out = await say(conv, LOTTE, "1")
    assert "not one of Brasserie De Klok's contacts" in out
    assert await snapshot(desk.store, ("tickets", "ticket_events", "outbox")) == before
    # Only the company forged: the ticket is the speaker's company's.
    for text in ("new ticket", "2", "1", "Stock", DESCRIPTION, "1"):
        await say(conv, LOTTE, text)
    stored = await desk.store.load_dialog(key)
    await desk.store.save_dialog(key, {**stored.state, "data": {**stored.state["data"], "company": ATELIER}},
                                 stored.version, desk.now())
    await say(conv, LOTTE, "1")
    [ticket] = await desk.store.list_tickets()
    assert ticket.company == "Brasserie De Klok"


# ---- staff put a stranger's ticket in a company ----------------------------------------------------


async def test_staff_set_the_company_of_a_strangers_ticket_and_nobody_else_can(desk):
    conv = TurnRunner(desk)
    response = await conv.handle(turn(JAN, action="form:new_ticket", values=form(JAN, "Jan")))
    number = response.ticket_number
    before = await snapshot(desk.store, BUSINESS_TABLES)
    for who in (JAN, CAMILLE, LOTTE):
        assert "Only service desk staff" in await say(conv, who, f"company {number} {ATELIER}")
    assert "no company 'Nowhere Inc'" in await say(conv, SOFIE, f"company {number} Nowhere Inc")
    assert "Usage: company NUMBER COMPANY-NAME" in await say(conv, SOFIE, f"company {number}")
    assert await snapshot(desk.store, BUSINESS_TABLES) == before
    assert f"{number} now belongs to {ATELIER}" in await say(conv, SOFIE, f"company {number} atelier lumière")
    assert (await desk.store.get_ticket(number)).company == ATELIER
    assert number in await say(conv, CAMILLE, f"status {number}")  # now in her company's list
    assert "appartient maintenant" in await say(conv, SOFIE, f"société {number} {ATELIER}", lang="fr")


# ---- acknowledgements and escalations ---------------------------------------------------------------


async def _escalated(desk: Desk, number: str, level: int = 1) -> None:
    await desk.store.create_escalation(number, 1, EscalationReason.FEEDBACK, "too slow", LOTTE, desk.now(),
                                       outbox=(), idempotency_key=f"seed:{number}")
    if level > 1:
        [e] = await desk.store.list_escalations(ticket_number=number)
        await desk.store.escalation_pinged(e.id, level, desk.now() + timedelta(hours=1), ())


@pytest.mark.parametrize("value", ["ack:{n}", "ack:{n} extra", "ack:{n}:x", "ack:", "ack", "view:{n}x", "{n}"])
async def test_a_manager_whose_level_was_not_reached_cannot_acknowledge_whatever_the_button(desk, value):
    conv = TurnRunner(desk)
    ticket = await desk.register_ticket(kind="incident", requester_email=LOTTE, module="ERP",
                                        description="The invoice print job fails with error 42")
    await _escalated(desk, ticket.number)
    before = await snapshot(desk.store, BUSINESS_TABLES)
    out = await say(conv, PIETER, None, action="escalation", values={"value": value.replace("{n}", ticket.number)})
    assert "You took the escalation" not in out
    assert await snapshot(desk.store, BUSINESS_TABLES) == before
    assert "has not reached your level yet" in await say(conv, PIETER, f"ack {ticket.number}")
    assert await snapshot(desk.store, BUSINESS_TABLES) == before


async def test_pinged_managers_acknowledge_level_one_and_level_two_once_it_climbed(desk):
    conv = TurnRunner(desk)
    first = await desk.register_ticket(kind="incident", requester_email=LOTTE, module="ERP",
                                       description="The invoice print job fails with error 42")
    second = await desk.register_ticket(kind="incident", requester_email=LOTTE, module="POS",
                                        description="The till does not open the cash drawer any more")
    await _escalated(desk, first.number)
    await _escalated(desk, second.number, level=2)
    out = await say(conv, NAIDA, None, action="escalation", values={"value": f"ack:{first.number}"})
    assert "You took the escalation" in out
    assert "You took the escalation" in await say(conv, PIETER, f"ack {second.number}")


async def test_escalating_a_ticket_one_may_not_see_is_refused_even_from_a_forged_state(desk):
    conv = TurnRunner(desk)
    mine = await desk.register_ticket(kind="incident", requester_email=LOTTE, module="ERP",
                                      description="The invoice print job fails with error 42")
    theirs = await desk.register_ticket(kind="incident", requester_email=CAMILLE, module="Caisse",
                                        description="La caisse plante au démarrage depuis hier")
    assert "I found no ticket" in await say(conv, LOTTE, f"escalate {theirs.number}")
    for text in ("escalate", mine.number, "1", "Nobody called me back."):
        out = await say(conv, LOTTE, text)
    key = turn(LOTTE).dialog_key
    stored = await desk.store.load_dialog(key)
    forged = {**stored.state, "data": {**stored.state["data"], "ticket": theirs.number}}
    await desk.store.save_dialog(key, forged, stored.version, desk.now())
    before = await snapshot(desk.store, BUSINESS_TABLES)
    out = await say(conv, LOTTE, "1")
    assert f"I found no ticket {theirs.number}" in out
    assert await desk.store.list_escalations() == []
    after = await snapshot(desk.store, BUSINESS_TABLES)
    assert {t: rows for t, rows in after.items() if t != "dialog_states"} == \
        {t: rows for t, rows in before.items() if t != "dialog_states"}


@pytest.mark.parametrize("who,text,refusal", [
    (LOTTE, "company {n} Atelier Lumière", "Only service desk staff"),
    (CAMILLE, "assign {n} me", "Only service desk staff"),
    (SOFIE, "ack {n}", "Only service desk managers"),
    (NAIDA, "logtime {n} 1h teamviewer", "Only service desk agents"),
])
async def test_staff_commands_check_role_whatever_arrives(desk, who, text, refusal):
    conv = TurnRunner(desk)
    ticket = await desk.register_ticket(kind="incident", requester_email=LOTTE, module="ERP",
                                        description="The invoice print job fails with error 42")
    before = await snapshot(desk.store, BUSINESS_TABLES)
    assert refusal in await say(conv, who, text.replace("{n}", ticket.number))
    # A forged click carrying the words, and (but for the agent) a forged time form, do nothing.
    await conv.handle(turn(who, action="menu", values={"value": text.replace("{n}", ticket.number)}))
    if who != SOFIE:
        out = await conv.handle(turn(who, action="form:logtime", values={
            "ticket": ticket.number, "duration": "1h", "service": "teamviewer"}))
        assert "Only service desk agents" in render_all(out.replies)
    assert await snapshot(desk.store, BUSINESS_TABLES) == before


# ---- through the Teams endpoint: forged card values ---------------------------------------------------


async def test_forged_teams_cards_cannot_choose_a_company_or_take_an_escalation(both):
    teams = both.teams
    teams.fake.members["29:jan"] = {"id": "29:jan", "name": "Jan", "email": JAN, "userPrincipalName": JAN}
    teams.fake.members["29:pieter"] = {"id": "29:pieter", "name": "Pieter", "email": PIETER,
                                       "userPrincipalName": PIETER}
    card = {"action": "form:new_ticket", **form(JAN, "Jan", company=ATELIER)}
    status, _ = await teams.post(teams.activity("29:jan", None, value=card))
    assert status == 200
    [ticket] = await both.store.list_tickets()
    assert (ticket.requester_email, ticket.company) == (JAN, None)
    # Camille's address in the same forged card: refused, in the card's answer, nothing created.
    status, _ = await teams.post(teams.activity("29:jan", None, value={**card, "email": CAMILLE}))
    assert status == 200 and len(await both.store.list_tickets()) == 1
    # A level-2 manager's forged acknowledgement of a level-1 escalation changes nothing.
    await _escalated(both.desk, ticket.number)
    before = await snapshot(both.store, BUSINESS_TABLES)
    status, _ = await teams.post(teams.activity("29:pieter", None, value={"action": "escalation",
                                                                          "value": f"ack:{ticket.number}"}))
    assert status == 200
    assert "has not reached your level yet" in card_text(card_of(teams.fake.sent("POST")[-1]))
    assert await snapshot(both.store, BUSINESS_TABLES) == before
