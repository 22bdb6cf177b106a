"""Tickets the service desk registers for a customer (issue 15 §3), on SQLite and PostgreSQL:
the intake recorded and shown to agents, the chat's checks of every field, `--by` staff only,
the requester told the number in their language on the channel they last used."""

from __future__ import annotations

from datetime import timedelta

import pytest

from bot.app.notifications import TICKET_REGISTERED, render
from bot.app.registration import register_for_customer
from bot.app.runner import TurnRunner
from bot.domain.model import Intake
from bot.domain.validation import Invalid
from tests.conversation.test_conversation import CAMILLE, LOTTE, desk, say  # noqa: F401

SOFIE = "sofie.janssens@caresolutions.be"
INCIDENT = {"kind": "incident", "module": "Invoicing",
            "description": "Printing an invoice fails with error 42 since the update",
            "reproduce": "Open an invoice and press Print", "diagnostics": "Restarted the PC, same error"}


async def test_a_registered_ticket_records_its_intake_and_tells_the_requester_where_they_last_wrote(desk):
    store = desk.store
    await store.save_conversation_ref("teams", "29:lotte", {"conversation": {"id": "a"}}, desk.now(), email=LOTTE)
    await store.save_conversation_ref("slack", "T1:U1", {"channel": "D1"}, desk.now() + timedelta(minutes=5),
                                      email=LOTTE)
    registered = await register_for_customer(desk, intake="in-person", by=SOFIE.upper(), requester=LOTTE,
                                             values=INCIDENT, idempotency_key="k1")
    ticket = await store.get_ticket(registered.ticket.number)
    assert (ticket.intake, ticket.created_by, ticket.company) == (Intake.IN_PERSON, SOFIE, "Brasserie De Klok")
    assert registered.told_on == "slack"  # the channel she used last
    # Registered again with the same key (a retry): one ticket, one message.
    again = await register_for_customer(desk, intake="in_person", by=SOFIE, requester=LOTTE, values=INCIDENT,
                                        idempotency_key="k1")
    assert again.ticket.number == ticket.number and len(await store.list_tickets()) == 1
    [message] = await store.list_outbox()
    assert (message.recipient, message.kind, message.payload["channel"]) == (LOTTE, TICKET_REGISTERED, "slack")
    # Rendered in her language (Dutch in the directory) when it is delivered.
    text = render(message.kind, message.payload, "nl", desk.settings).replies[0].text
    assert f"als ticket {ticket.number}" in text and "uw bezoek" in text


async def test_a_requester_no_channel_can_push_to_sees_the_number_on_their_next_visit_and_the_agent_is_told(desk):
    conv = TurnRunner(desk)
    registered = await register_for_customer(desk, intake="phone", by=SOFIE, requester=CAMILLE,
                                             values={**INCIDENT, "kind": "service_request"})
    assert registered.told_on is None and registered.reach.how.value == "kept"
    [message] = await desk.store.list_outbox()  # kept for her next visit by the dispatcher
    assert (message.recipient, message.kind) == (CAMILLE, TICKET_REGISTERED)
    assert registered.ticket.reproduce is None  # not an incident: dropped, as in the chat
    # The agent's view of the ticket shows how it came and who registered it; a customer's does not.
    out = await say(conv, SOFIE, registered.ticket.number)
    assert "Intake" in out and "Phone (sofie.janssens@caresolutions.be)" in out
    assert "Intake" not in await say(conv, CAMILLE, registered.ticket.number)


@pytest.mark.parametrize("intake,by,values,field", [
    ("fax", SOFIE, INCIDENT, "intake"),
    ("chat", SOFIE, INCIDENT, "intake"),
    ("mail", CAMILLE, INCIDENT, "by"),
    ("mail", "nobody@example.com", INCIDENT, "by"),
    ("mail", SOFIE, {**INCIDENT, "module": "x"}, "module"),
    ("mail", SOFIE, {**INCIDENT, "description": "?"}, "description"),
    ("mail", SOFIE, {**INCIDENT, "description": "sdkfjh qwpoe asdasd lkjhgf"}, "description"),
    ("mail", SOFIE, {**INCIDENT, "reproduce": "."}, "reproduce"),
    ("mail", SOFIE, {**INCIDENT, "diagnostics": ""}, "diagnostics"),
    ("mail", SOFIE, {**INCIDENT, "urgency": "asap"}, "urgency"),
])
async def test_registration_checks_every_field_as_the_chat_does_and_writes_nothing(desk, intake, by, values, field):
    with pytest.raises(Invalid) as refused:
        await register_for_customer(desk, intake=intake, by=by, requester=LOTTE, values=values)
    assert refused.value.params["field"] == field
    assert await desk.store.list_tickets() == [] and await desk.store.list_outbox() == []


async def test_the_chat_refuses_a_one_character_module_with_an_example(desk):
    conv = TurnRunner(desk)
    out = await say(conv, LOTTE, "ticket", "1", "1", "x")
    assert "Please name the module" in out


# ---- the `register` command in the chat ------------------------------------------------------------


async def test_an_agent_registers_a_phoned_in_incident_by_answering_questions(desk):
    conv = TurnRunner(desk)
    await desk.store.save_conversation_ref("teams", "29:lotte", {"conversation": {"id": "a"}}, desk.now(),
                                           email=LOTTE)
    out = await say(conv, SOFIE, "register")
    assert "How did the request reach the desk?" in out
    out = await say(conv, SOFIE, "2")  # Phone
    assert "e-mail address of the customer contact" in out
    assert "No customer contact" in await say(conv, SOFIE, "nobody@example.com")
    assert "No customer contact" in await say(conv, SOFIE, "thomas.leroy@caresolutions.be")  # staff, not a customer
    out = await say(conv, SOFIE, LOTTE, "1", "x")
    assert "Please name the module" in out
    out = await say(conv, SOFIE, "Invoicing", "Printing an invoice fails with error 42 since the update",
                    "Open an invoice and press Print", "Restarted the PC, same error", "3")
    assert "Ticket to register" in out and "Phone" in out and LOTTE in out
    out = await say(conv, SOFIE, "1")
    [ticket] = await desk.store.list_tickets()
    assert f"Ticket {ticket.number} registered for Lotte Peeters (Phone)" in out
    assert "Lotte Peeters has been told in Teams." in out
    assert (ticket.intake, ticket.created_by, ticket.requester_email) == (Intake.PHONE, SOFIE, LOTTE)
    [message] = await desk.store.list_outbox()
    assert (message.kind, message.recipient, message.payload["channel"]) == (TICKET_REGISTERED, LOTTE, "teams")


async def test_a_registration_form_checks_fields_and_says_the_requester_will_see_it_next_time(desk):
    conv = TurnRunner(desk)
    values = {"intake": "mail", "requester": CAMILLE, "kind": "service_request", "module": "?",
              "description": "asdf", "urgency": "normal", "_confirmed": "1"}
    from tests.conversation.test_conversation import turn
    response = await conv.handle(turn(SOFIE, action="form:register", values=values))
    assert set(response.field_errors) == {"module", "description"}
    assert await desk.store.list_tickets() == []
    response = await conv.handle(turn(SOFIE, action="form:register", values={
        **values, "module": "Stock", "description": "How do we add a second warehouse location to the stock module?"}))
    assert not response.field_errors
    [ticket] = await desk.store.list_tickets()
    assert ticket.intake is Intake.MAIL and len(await desk.store.list_outbox()) == 1
    from cards.text import render_all
    assert ("Camille Dubois has not been seen in Slack, Teams or the portal chat: unless CareDesk finds them there, "
            "they will see it the next time they use CareDesk") in render_all(response.replies)


@pytest.mark.parametrize("lang,words", [("en", "Only service desk staff register"),
                                         ("fr", "Seul le personnel du service desk enregistre"),
                                         ("nl", "Alleen servicedeskmedewerkers registreren")])
async def test_a_customer_cannot_register_tickets_by_word_or_forged_form(desk, lang, words):
    conv = TurnRunner(desk)
    assert words in await say(conv, LOTTE, "register", lang=lang)
    from tests.conversation.test_conversation import turn
    await conv.handle(turn(LOTTE, action="form:register", values={
        "intake": "mail", "requester": LOTTE, "kind": "service_request", "module": "Stock",
        "description": "How do we add a second warehouse location to the stock module?", "_confirmed": "1"}))
    assert await desk.store.list_tickets() == []
    assert await conv.form(turn(LOTTE), "register") is None
