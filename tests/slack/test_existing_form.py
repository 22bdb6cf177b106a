"""The /ticket modal asks a person with open tickets of their own whether this is about one of
them (issue 15 §3b): choosing one adds the description (and the other filled-in fields) to it as
a comment the desk sees, and opens no new ticket; a forged ticket number is refused."""

from __future__ import annotations

import copy

from bot.domain.model import NewTicket, TicketStatus
from tests.slack.conftest import CAMILLE, LOTTE, SOFIE, STRANGER, block_text, validate_view
from tests.slack.test_commands import TICKET_VALUES, opened_form

ADDITION = "The error also appears when printing credit notes since the update."


async def _ticket(env, email: str, company: str | None, description: str):
    return await env.desk.store.create_ticket(
        NewTicket(kind="incident", requester_email=email, requester_name="Someone", company=company,
                  module="Invoicing", description=description),
        env.desk.now(), env.desk.settings.tickets.number_format)


async def _lottes_ticket(env):
    return await _ticket(env, "lotte.peeters@brasseriedeklok.be", "Brasserie De Klok",
                         "Printing an invoice fails with error 42 since this morning")


def _inputs(view):
    return {b["block_id"]: b for b in view["blocks"] if b["type"] == "input"}


def _with_option(view, value: str):
    """The view as a forger would submit it: with an option the modal never offered."""
    forged = copy.deepcopy(view)
    element = _inputs(forged)["existing"]["element"]
    element["options"].append({"text": {"type": "plain_text", "text": value}, "value": value})
    return forged


async def _comments(env, number):
    return [c["text"] for c in await env.desk.store.list_ticket_comments(number, include_internal=True)]


async def test_the_modal_offers_the_person_s_open_tickets_first(env):
    ticket = await _lottes_ticket(env)
    await env.command("/ticket")
    view = opened_form(env)
    validate_view(view)
    inputs = _inputs(view)
    assert list(inputs)[0] == "existing"
    question = inputs["existing"]
    assert question["optional"] is True and question["label"]["text"] == "Is this about one of your open tickets?"
    element = question["element"]
    assert element["type"] == "static_select"
    assert [o["value"] for o in element["options"]] == [ticket.number, "new"]
    assert element["options"][0]["text"]["text"].startswith(f"{ticket.number} — Printing an invoice fails")
    assert element["initial_option"]["value"] == "new"
    # Only the text to add is needed for an addition: the platform lets the other fields be empty.
    assert inputs["description"]["optional"] is False
    assert all(inputs[name]["optional"] for name in ("kind", "name", "email", "phone", "module", "urgency"))


async def test_choosing_a_ticket_adds_to_it_and_opens_no_new_ticket(env):
    ticket = await _lottes_ticket(env)
    await env.command("/ticket")
    view = opened_form(env)
    values = {"existing": ticket.number, "description": ADDITION, "module": "Invoicing module",
              "reproduce": "Open a credit note and press Print"}
    response = await env.submit(view, values)
    assert response.status == 200 and (await response.text()) == ""  # the modal closes
    assert [t.number for t in await env.desk.store.list_tickets()] == [ticket.number]
    [comment] = await _comments(env, ticket.number)
    assert ADDITION in comment and "Open a credit note and press Print" in comment and "Invoicing module" in comment
    dm = block_text(env.fake.last_message().json_param("blocks"))
    assert f"Added to ticket {ticket.number}" in dm and "No new ticket" in dm
    # The agent sees it on the ticket.
    await env.dm(ticket.number, user=SOFIE)
    assert ADDITION in block_text(env.fake.last_message().json_param("blocks"))


async def test_an_addition_needs_only_its_text_and_says_so_politely(env):
    ticket = await _lottes_ticket(env)
    await env.command("/ticket")
    view = opened_form(env)
    for description in ("", "x"):
        response = await env.submit(view, {"existing": ticket.number, "description": description})
        answer = await response.json()
        assert answer["response_action"] == "errors" and set(answer["errors"]) == {"description"}
    assert "what to add to ticket" in answer["errors"]["description"] or "what to add" in answer["errors"]["description"]
    assert await _comments(env, ticket.number) == []


async def test_a_new_problem_still_opens_a_ticket_with_the_same_checks(env):
    ticket = await _lottes_ticket(env)
    await env.command("/ticket")
    view = opened_form(env)
    response = await env.submit(view, {"existing": "new", "description": ADDITION})
    answer = await response.json()
    assert answer["response_action"] == "errors" and {"kind", "module"} <= set(answer["errors"])
    response = await env.submit(view, {**TICKET_VALUES, "existing": "new"})
    assert (await response.text()) == ""
    assert len(await env.desk.store.list_tickets()) == 2
    assert await _comments(env, ticket.number) == []


async def test_a_forged_ticket_number_is_refused_and_changes_nothing(env):
    own = await _lottes_ticket(env)
    # A colleague's ticket (Lotte, named in the SLA, may see it, but it is not hers), another
    # company's, and her own once closed.
    colleague = await _ticket(env, "jonas.claes@brasseriedeklok.be", "Brasserie De Klok",
                              "The cash register drawer does not open any more")
    other = await _ticket(env, "camille.dubois@atelier-lumiere.be", "Atelier Lumière",
                          "Our lamp catalogue does not load in the shop")
    closed = await _lottes_ticket(env)
    await env.desk.store.update_ticket(closed.number, by="sofie.janssens@caresolutions.be", now=env.desk.now(),
                                       changes={"status": TicketStatus.CLOSED.value})
    await env.command("/ticket")
    view = opened_form(env)
    assert [o["value"] for o in _inputs(view)["existing"]["element"]["options"]] == [own.number, "new"]
    for number in (colleague.number, other.number, closed.number, "CS-2099-99999"):
        response = await env.submit(_with_option(view, number), {"existing": number, "description": ADDITION})
        answer = await response.json()
        assert answer["response_action"] == "errors", number
        assert "not one of your open tickets" in answer["errors"]["existing"]
    for ticket in (own, colleague, other, closed):
        assert await _comments(env, ticket.number) == []
    assert len(await env.desk.store.list_tickets()) == 4
    assert env.fake.messages() == []


async def test_people_without_own_open_tickets_get_the_form_as_before(env):
    await _lottes_ticket(env)
    for user in (CAMILLE, STRANGER, SOFIE):
        await env.command("/ticket", user=user)
        assert "existing" not in _inputs(opened_form(env)), user
    await env.command("/ticket", user=LOTTE)
    assert "existing" in _inputs(opened_form(env))
