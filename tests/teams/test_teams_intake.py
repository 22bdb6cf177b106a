"""Issue 15 on Teams: `register` opens the registration card for staff (and is refused to a
customer), a registered ticket records its intake; `ticket` or `quote` typed mid-dialog says how
to leave the dialog instead of opening a second card; a customer outside the SLA's names sees
only their own tickets."""

from __future__ import annotations

from bot.domain.model import Intake
from tests.teams.conftest import buttons, card_of, card_text

LOTTE = "lotte.peeters@brasseriedeklok.be"


async def test_an_agent_registers_a_ticket_from_the_teams_card(bot):
    posted = await bot.say("register", user="29:sofie")
    card = card_of(posted)
    ids = {e.get("id") for e in card["body"]}
    assert {"intake", "requester", "kind", "module", "description", "urgency"} <= ids
    submit = buttons(card)[0]
    values = {"intake": "portal", "requester": LOTTE, "kind": "service_request", "module": "x",
              "description": "How do we add a second warehouse location to the stock module?", "urgency": "low"}
    await bot.click(posted, submit, user="29:sofie", inputs=values)
    assert await bot.desk.store.list_tickets() == []  # the one-letter module is refused
    everything = "\n".join(card_text(card_of(a)) for a in bot.fake.sent("POST") + bot.fake.sent("PUT")
                           if a.get("body", {}).get("attachments"))
    assert "Please name the module" in everything
    await bot.click(posted, submit, user="29:sofie", inputs={**values, "module": "Stock"})
    [ticket] = await bot.desk.store.list_tickets()
    assert (ticket.intake, ticket.created_by, ticket.requester_email) == (
        Intake.PORTAL, "sofie.janssens@caresolutions.be", LOTTE)
    # Lotte wrote to the bot in Teams before? Not in this test: the agent is told nobody was told.
    everything = "\n".join(card_text(card_of(a)) for a in bot.fake.sent("POST") + bot.fake.sent("PUT")
                           if a.get("body", {}).get("attachments"))
    assert f"Ticket {ticket.number} registered for" in everything


async def test_a_customer_typing_register_is_refused_politely(bot):
    text = card_text(card_of(await bot.say("registreren", locale="nl-BE")))
    assert "Alleen servicedeskmedewerkers registreren" in text
    assert await bot.desk.store.list_tickets() == []


async def test_ticket_or_quote_typed_mid_dialog_says_how_to_leave_it(bot):
    await bot.say("new ticket")
    for word in ("ticket", "quote"):
        posted = await bot.say(word)
        card = card_of(posted)
        assert "'cancel'" in card_text(card), word
        assert not any(e.get("id") in ("service", "description") and e.get("type", "").startswith("Input")
                       for e in card["body"]), word
    # Out of the dialog, `quote` opens its card again.
    await bot.say("cancel")
    assert any(e.get("id") == "service" for e in card_of(await bot.say("quote"))["body"])
