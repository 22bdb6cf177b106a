"""Issue 15 §4 on Slack: a person outside the directory reads and escalates no ticket, not even
their own, by a typed number or a ticket's buttons."""

from __future__ import annotations

from bot.domain.model import NewTicket
from tests.slack.conftest import STRANGER, block_text


async def test_a_stranger_can_neither_read_nor_escalate_their_ticket_on_slack(env):
    ticket = await env.desk.store.create_ticket(
        NewTicket(kind="incident", requester_email="someone@elsewhere.example", requester_name="Some One",
                  company=None, module="POS", description="Our till does not print receipts any more"),
        env.desk.now(), env.desk.settings.tickets.number_format)
    for text in (f"status {ticket.number}", f"escalate {ticket.number}", "tickets"):
        await env.dm(text, user=STRANGER)
        shown = block_text(env.fake.last_message().json_param("blocks"))
        assert "cannot show or escalate" in shown and "receipts" not in shown, text
    await env.block_action("cd.0.escalation", f"view:{ticket.number}", user=STRANGER)
    shown = block_text(env.fake.last_message().json_param("blocks"))
    assert "cannot show or escalate" in shown and "receipts" not in shown
    assert await env.desk.store.list_escalations() == []
