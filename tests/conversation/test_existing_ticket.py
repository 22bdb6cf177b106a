"""A requester who already has a ticket quotes it (issue 15 §3b), on SQLite and PostgreSQL:
before a new ticket, a person with open tickets is asked whether it is about one of them;
choosing one or typing its number adds what they say as a comment instead of a duplicate, and
agents see it on the ticket."""

from __future__ import annotations

import pytest

from bot.app.runner import TurnRunner
from bot.domain.model import TicketStatus
from tests.conversation.test_conversation import DESCRIPTION, INCIDENT, LOTTE, desk, say  # noqa: F401

SOFIE = "sofie.janssens@caresolutions.be"
JONAS = "jonas.claes@brasseriedeklok.be"
ADDITION = "The error also appears when printing credit notes."


async def _first(conv):
    await say(conv, LOTTE, *INCIDENT, "1")
    [ticket] = await conv.desk.store.list_tickets()
    return ticket


async def _public_comments(desk, number):
    return [c["text"] for c in await desk.store.list_ticket_comments(number, include_internal=False)]


async def test_choosing_an_open_ticket_adds_to_it_instead_of_a_duplicate_and_agents_see_it(desk):
    conv = TurnRunner(desk)
    ticket = await _first(conv)
    out = await say(conv, LOTTE, "ticket")
    assert "Is this about one of them?" in out and ticket.number in out and "Printing an invoice fails" in out
    out = await say(conv, LOTTE, "1")
    assert f"What would you like to add to ticket {ticket.number}?" in out
    out = await say(conv, LOTTE, ADDITION)
    assert f"Added to ticket {ticket.number}" in out and "No new ticket" in out
    assert len(await desk.store.list_tickets()) == 1
    assert await _public_comments(desk, ticket.number) == [ADDITION]
    # The agent's view of the ticket shows the addition, with who wrote it.
    out = await say(conv, SOFIE, ticket.number)
    assert ADDITION in out and LOTTE in out


@pytest.mark.parametrize("typed,asked", [("{n}", True), ("about {n}: " + ADDITION, False)])
async def test_typing_the_number_at_any_question_adds_to_that_ticket(desk, typed, asked):
    conv = TurnRunner(desk)
    ticket = await _first(conv)
    # "A new ticket", then the kind, the contact details, and at the module question: the number.
    await say(conv, LOTTE, "ticket", "No, a new ticket", "1", "1")
    out = await say(conv, LOTTE, typed.replace("{n}", ticket.number.lower()))
    if asked:
        assert f"add to ticket {ticket.number}" in out
        out = await say(conv, LOTTE, ADDITION)
    assert f"Added to ticket {ticket.number}" in out
    assert len(await desk.store.list_tickets()) == 1
    assert len(await _public_comments(desk, ticket.number)) == 1


async def test_a_new_ticket_is_still_opened_and_closed_tickets_are_not_offered(desk):
    conv = TurnRunner(desk)
    ticket = await _first(conv)
    out = await say(conv, LOTTE, "ticket", "2")  # "No, a new ticket" is the last option
    assert "What kind of ticket" in out or "kind" in out.lower()
    await say(conv, LOTTE, "cancel")
    await desk.store.update_ticket(ticket.number, by=SOFIE, now=desk.now(), changes={"status": TicketStatus.CLOSED.value})
    out = await say(conv, LOTTE, "ticket")
    assert "Is this about one of them?" not in out
    # A colleague (not the requester) is not offered Lotte's ticket either.
    assert "Is this about one of them?" not in await say(conv, JONAS, "ticket")


@pytest.mark.parametrize("lang,words", [("fr", "Est-ce au sujet de l'un d'eux"), ("nl", "Gaat het over een ervan")])
async def test_the_question_in_french_and_dutch(desk, lang, words):
    conv = TurnRunner(desk)
    await _first(conv)
    assert words in await say(conv, LOTTE, "ticket", lang=lang)


async def test_a_ticket_closed_while_the_person_writes_is_not_added_to(desk):
    # The runner checks again where it acts that the chosen ticket is still the speaker's own open one.
    conv = TurnRunner(desk)
    ticket = await _first(conv)
    await say(conv, LOTTE, "ticket", "1")
    await desk.store.update_ticket(ticket.number, by=SOFIE, now=desk.now(), changes={"status": TicketStatus.CLOSED.value})
    out = await say(conv, LOTTE, ADDITION)
    assert f"{ticket.number} is not one of your open tickets" in out and "Added to ticket" not in out
    assert await _public_comments(desk, ticket.number) == []
