"""Issue 15 §2, §5, §6 on Teams: a change request proposed as such, the menu answered by its
number, menu words inside a dialog, and escape sequences that never reach the store."""

from __future__ import annotations

from bot.domain.model import TicketKind
from tests.teams.conftest import buttons, card_of, card_text

DESCRIPTION = "Graag een extra kolom met het btw-nummer van de klant in het maandrapport"


def by_title(card, title):
    matches = [b for b in buttons(card) if b["title"] == title]
    assert matches, (title, [b["title"] for b in buttons(card)])
    return matches[0]


async def test_a_change_request_is_proposed_then_confirmed(bot):
    posted = await bot.say("I would like to request a change to the monthly report")
    text = card_text(card_of(posted))
    assert "looks like: Change request" in text
    posted = await bot.click(posted, by_title(card_of(posted), "Change request"))
    posted = await bot.click(posted, buttons(card_of(posted))[0])  # keep the directory's contact details
    for answer in ("Reporting\x1b[1m", "Please add a column with the \x1b[31mcustomer's VAT number\x1b[0m "
                                       "to the monthly report"):
        posted = await bot.say(answer)
    posted = await bot.click(posted, by_title(card_of(posted), "Normal"))
    posted = await bot.click(posted, by_title(card_of(posted), "Create the ticket"))
    [ticket] = await bot.desk.store.list_tickets()
    assert ticket.kind is TicketKind.CHANGE_REQUEST and ticket.module == "Reporting"
    assert ticket.description == "Please add a column with the customer's VAT number to the monthly report"


async def test_the_menu_is_answered_by_number_and_menu_words_inside_say_how_to_leave(bot):
    posted = await bot.say("hello")
    assert "Open a ticket" in card_text(card_of(posted))
    posted = await bot.say("3")  # Get a rate quote
    assert "did not understand" not in card_text(card_of(posted))
    # ("ticket" or "quote" typed mid-dialog: tests/teams/test_teams_intake.py.)
    posted = await bot.say("contacts")
    text = card_text(card_of(posted))
    assert "'cancel'" in text and "Please pick one of the options" not in text


async def test_keyboard_mash_is_asked_again_with_an_example(bot):
    posted = await bot.say("new ticket")
    posted = await bot.click(posted, by_title(card_of(posted), "Incident (a disruption)"))
    posted = await bot.click(posted, buttons(card_of(posted))[0])
    await bot.say("Invoicing")
    posted = await bot.say("asdf qwer zxcv sdfgh jklö")
    assert "random keys" in card_text(card_of(posted))
    await bot.say("Printing an invoice fails with error 42 since this morning's update")
    posted = await bot.say("x")
    assert "for example" in card_text(card_of(posted))


async def test_the_quote_form_explains_the_participant_limit_and_the_spring_gap(bot):
    posted = await bot.say("quote")
    submit = buttons(card_of(posted))[0]
    values = {"service": "teamviewer", "date": "2026-03-29", "time": "02:30", "duration": "1h", "participants": "4"}
    await bot.click(posted, submit, inputs=values)
    text = card_text(card_of(bot.fake.sent("PUT")[-1]))
    assert "rate card" in text and "at most 3" in text
    assert "02:30 does not exist" in text and "03:30" in text
