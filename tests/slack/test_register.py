"""Issue 15 §3 on Slack: `/caredesk register` opens the registration modal for staff, checked
beside its fields, and registers the ticket with its intake; a customer's modal says why not."""

from __future__ import annotations

from bot.domain.model import Intake
from tests.slack.conftest import SOFIE, block_text
from tests.slack.test_commands import opened_form

LOTTE_EMAIL = "lotte.peeters@brasseriedeklok.be"


async def test_an_agent_registers_a_mailed_request_in_the_modal(env):
    await env.command("/caredesk", "register", user=SOFIE)
    view = opened_form(env)
    assert view["callback_id"] == "form:register"
    values = {"intake": "mail", "requester": LOTTE_EMAIL, "kind": "incident", "module": "Invoicing",
              "description": "Printing an invoice fails with error 42 since the update", "urgency": "high"}
    response = await env.submit(view, {**values, "reproduce": "x"}, user=SOFIE)
    errors = (await response.json())["errors"]
    assert set(errors) == {"reproduce", "diagnostics"}
    response = await env.submit(view, {**values, "reproduce": "Open an invoice and press Print",
                                       "diagnostics": "Restarted the PC, same error"}, user=SOFIE)
    assert response.status == 200
    await env.channel.drain()
    [ticket] = await env.desk.store.list_tickets()
    assert (ticket.intake, ticket.created_by, ticket.requester_email) == (
        Intake.MAIL, "sofie.janssens@caresolutions.be", LOTTE_EMAIL)


async def test_a_customer_gets_no_registration_form(env):
    await env.command("/caredesk", "register")
    refusal = env.fake.of("views.update")[-1].json_param("view")
    assert "Only service desk staff register tickets" in block_text(refusal["blocks"])
