"""Issue 15 §5, §6 through the runner and a real store: the menu answered by number and label,
escape sequences never stored, and a change of kind that leaves no hidden incident answers."""

from __future__ import annotations

from bot.app.runner import TurnRunner
from bot.domain.model import TicketKind
from tests.conversation.test_conversation import DESCRIPTION, LOTTE, desk, say, turn  # noqa: F401


async def test_the_menu_is_answered_by_its_number_and_its_label(desk):
    conv = TurnRunner(desk)
    for answer in ("1", "Open a ticket", "open a ticket."):
        out = await say(conv, LOTTE, answer)
        assert "What kind of ticket is it?" in out, answer
        await say(conv, LOTTE, "cancel")
    out = await say(conv, LOTTE, "5")
    assert "Sorry, I did not understand" not in out and "+32" in out  # contacts and rates
    out = await say(conv, LOTTE, "9")
    assert "Sorry, I did not understand" in out


async def test_a_change_request_is_proposed_and_kept_once_confirmed(desk):
    conv = TurnRunner(desk)
    out = await say(conv, LOTTE, "aanvraag tot wijziging: een extra kolom in het maandrapport", lang="nl")
    assert "Wijzigingsaanvraag" in out and "juiste soort" in out
    await say(conv, LOTTE, "3", "1", "Rapportering",
              "Graag een extra kolom met het btw-nummer van de klant in het maandrapport", "2", lang="nl")
    response = await conv.handle(turn(LOTTE, "1", lang="nl"))
    ticket = await desk.store.get_ticket(response.ticket_number)
    assert ticket.kind is TicketKind.CHANGE_REQUEST


async def test_escape_sequences_never_reach_the_store(desk):
    conv = TurnRunner(desk)
    await say(conv, LOTTE, "ticket", "2", "1", "Invoicing\x1b[2J\x1b[H module\x07",
              "How can I \x1b]0;pwned\x07export the monthly invoices to PDF for our accountant?\x1b[0m", "1")
    response = await conv.handle(turn(LOTTE, "1"))
    ticket = await desk.store.get_ticket(response.ticket_number)
    assert ticket.module == "Invoicing module"
    assert ticket.description == "How can I export the monthly invoices to PDF for our accountant?"
    assert ticket.reproduce is None and ticket.kind is TicketKind.SERVICE_REQUEST


async def test_back_to_a_service_request_stores_no_incident_fields(desk):
    conv = TurnRunner(desk)
    await say(conv, LOTTE, "ticket", "1", "1", "Invoicing module", DESCRIPTION, "Open an invoice, press Print",
              "Restarted; same on another PC")
    for _ in range(6):
        out = await say(conv, LOTTE, "back")
        if "What kind of ticket" in out:
            break
    out = await say(conv, LOTTE, "2")
    while "Please check your ticket" not in out:
        out = await say(conv, LOTTE, "1")
    assert "How to reproduce" not in out
    response = await conv.handle(turn(LOTTE, "1"))
    ticket = await desk.store.get_ticket(response.ticket_number)
    assert ticket.kind is TicketKind.SERVICE_REQUEST
    assert ticket.reproduce is None and ticket.diagnostics is None
