"""An out-of-hours emergency opened in Slack pages the person on duty by Slack DM, with the ticket,
the customer, the description and the surcharge accepted; the Acknowledge button in the page
stops it and the requester is told in their DM, in their language (issue 15)."""

from __future__ import annotations

from datetime import datetime, timedelta

from adapters.server.delivery import ChannelDelivery
from bot.app.escalations import Escalations
from bot.app.outbox import Dispatcher, RetryPolicy
from bot.domain.model import EscalationStatus
from tests.slack.conftest import BXL, LOTTE, SOFIE, block_text


def dispatcher(env) -> Dispatcher:
    delivery = ChannelDelivery(env.desk, {"slack": env.channel.send_to_person})
    return Dispatcher(env.desk, delivery, policy=RetryPolicy(max_attempts=6, base_delay=timedelta(seconds=10)))


def dms(env, user: str) -> list:
    return [c for c in env.fake.messages() if c.params["channel"] == f"D{user}"]


async def test_emergency_in_slack_pages_the_agent_on_duty_and_her_button_stops_it(env):
    env.desk.clock.set(datetime(2026, 11, 28, 22, 30, tzinfo=BXL))  # Saturday night: Sofie on duty
    for text in ("ticket", "1", "1", "Kassasysteem", "De kassa start niet meer op sinds de update van vanavond",
                 "Zet de kassa aan", "Herstart, zelfde resultaat op de tweede kassa", "4"):
        await env.dm(text)
    assert "125 %" in block_text(env.fake.last_message().json_param("blocks"))  # her SLA's Saturday
    await env.dm("1")  # accept
    await env.dm("1")  # create
    [ticket] = await env.desk.store.list_tickets()
    assert ticket.out_of_hours_emergency

    outbox = dispatcher(env)
    await outbox.run_once()
    [page] = dms(env, SOFIE)
    text = block_text(page.json_param("blocks"))
    for needed in (ticket.number, "Brasserie De Klok", "Lotte Peeters", "De kassa start niet meer op",
                   "125 %", "SLA"):
        assert needed in text, needed
    # No acknowledgement yet: nothing else happens before the timeout.
    env.desk.clock.advance(timedelta(minutes=10))
    assert await Escalations(env.desk).tick() == 0

    await env.click(f"ack:{ticket.number}", user=SOFIE, call=page)
    [p] = await env.desk.store.list_escalations(open_only=False)
    assert p.status is EscalationStatus.ACKNOWLEDGED and p.acknowledged_by.lower() == "sofie.janssens@caresolutions.be"
    await outbox.run_once()
    told = block_text(dms(env, LOTTE)[-1].json_param("blocks"))
    assert ticket.number in told and "Sofie Janssens" in told
    env.desk.clock.advance(timedelta(hours=1))
    assert await Escalations(env.desk).tick() == 0
