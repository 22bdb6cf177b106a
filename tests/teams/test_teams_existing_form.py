"""The Teams ticket form card asks a person with open tickets of their own whether this is about
one of them (issue 15 §3b), on both transports: choosing one adds the description (and the
other filled-in fields) to it as a comment the desk sees and opens no new ticket; a forged
ticket number is refused and changes nothing. Every card sent is checked against the Adaptive
Card 1.5 schema by the `fake_bf` fixture."""

from __future__ import annotations

from bot.domain.model import NewTicket
from tests.teams.conftest import buttons, card_of, card_text

LOTTE = "lotte.peeters@brasseriedeklok.be"
ADDITION = "The error also appears when printing credit notes since the update."


async def _ticket(bot, email: str, company: str | None, description: str):
    return await bot.desk.store.create_ticket(
        NewTicket(kind="incident", requester_email=email, requester_name="Someone", company=company,
                  module="Invoicing", description=description),
        bot.desk.now(), bot.desk.settings.tickets.number_format)


def _inputs(form):
    return {e["id"]: e for e in form["body"] if e["type"].startswith("Input.")}


async def _comments(bot, number):
    return [c["text"] for c in await bot.desk.store.list_ticket_comments(number, include_internal=True)]


async def test_the_form_card_offers_the_open_tickets_and_an_addition_opens_no_ticket(bot):
    ticket = await _ticket(bot, LOTTE, "Brasserie De Klok", "Printing an invoice fails with error 42 since this morning")
    posted = await bot.say("ticket")
    form = card_of(posted)
    inputs = _inputs(form)
    assert list(inputs)[0] == "existing"
    question = inputs["existing"]
    assert question["type"] == "Input.ChoiceSet" and question["label"] == "Is this about one of your open tickets?"
    assert [c["value"] for c in question["choices"]] == [ticket.number, "new"]
    assert question["choices"][0]["title"].startswith(f"{ticket.number} — Printing an invoice fails")
    assert question["value"] == "new" and not question.get("isRequired")
    # Only the text to add is needed for an addition: the card lets the other fields be empty.
    assert inputs["description"]["isRequired"] and not inputs["module"].get("isRequired")
    submit = buttons(form)[0]
    values = {k: str(e.get("value", "")) for k, e in inputs.items()}
    values.update(existing=ticket.number, description="", diagnostics="Restarted, same on another PC")
    await bot.click(posted, submit, inputs=values)
    errors_card = card_of(bot.fake.sent("PUT")[-1])
    assert "what to add to ticket" in card_text(errors_card) and await _comments(bot, ticket.number) == []
    values.update(description=ADDITION)
    posted = await bot.click(posted, submit, inputs=values)
    assert f"Added to ticket {ticket.number}" in card_text(card_of(posted))
    assert [t.number for t in await bot.desk.store.list_tickets()] == [ticket.number]
    [comment] = await _comments(bot, ticket.number)
    assert ADDITION in comment and "Restarted, same on another PC" in comment
    # The agent sees it on the ticket.
    assert ADDITION in card_text(card_of(await bot.say(ticket.number, user="29:sofie")))


async def test_a_forged_ticket_number_on_the_card_is_refused_and_changes_nothing(bot):
    own = await _ticket(bot, LOTTE, "Brasserie De Klok", "Printing an invoice fails with error 42 since this morning")
    colleague = await _ticket(bot, "jonas.claes@brasseriedeklok.be", "Brasserie De Klok",
                              "The cash register drawer does not open any more")
    other = await _ticket(bot, "camille.dubois@atelier-lumiere.be", "Atelier Lumière",
                          "Our lamp catalogue does not load in the shop")
    posted = await bot.say("ticket")
    form = card_of(posted)
    submit = buttons(form)[0]
    values = {k: str(e.get("value", "")) for k, e in _inputs(form).items()}
    for number in (colleague.number, other.number, "CS-2099-99999"):
        await bot.click(posted, submit, inputs={**values, "existing": number, "description": ADDITION})
        refused = card_of(bot.fake.sent("PUT")[-1])
        assert "is not one of your open tickets" in card_text(refused), number
        assert buttons(refused), "the form can be corrected and sent again"
    for ticket in (own, colleague, other):
        assert await _comments(bot, ticket.number) == []
    assert len(await bot.desk.store.list_tickets()) == 3


async def test_a_new_problem_on_the_card_still_opens_a_ticket(bot_on_both):
    bot = bot_on_both
    ticket = await _ticket(bot, LOTTE, "Brasserie De Klok", "Printing an invoice fails with error 42 since this morning")
    posted = await bot.say("ticket")
    form = card_of(posted)
    values = {k: str(e.get("value", "")) for k, e in _inputs(form).items()}
    values.update(kind="service_request", module="Reports", description="Please add the VAT number to the invoice layout")
    posted = await bot.click(posted, buttons(form)[0], inputs=values)
    assert values["existing"] == "new"
    tickets = await bot.desk.store.list_tickets()
    assert len(tickets) == 2 and tickets[0].number in card_text(card_of(posted))
    assert await _comments(bot, ticket.number) == []


async def test_people_without_own_open_tickets_get_the_card_as_before(bot):
    await _ticket(bot, LOTTE, "Brasserie De Klok", "Printing an invoice fails with error 42 since this morning")
    for user in ("29:camille", "29:sofie"):
        assert "existing" not in _inputs(card_of(await bot.say("ticket", user=user))), user
