"""The outbox through Slack: escalation pings reach managers by DM (found by e-mail), survive a
Slack outage, and the Acknowledge button in the ping stops the climb and tells the customer."""

from __future__ import annotations

from datetime import timedelta

from adapters.server.delivery import ChannelDelivery
from bot.app.escalations import Escalations
from bot.app.outbox import Dispatcher, RetryPolicy
from tests.slack.conftest import LOTTE, NAIDA, PIETER, block_text


async def escalate_in_slack(env) -> str:
    ticket = await env.desk.register_ticket(kind="incident", requester_email="lotte.peeters@brasseriedeklok.be",
                                            module="ERP", description="The invoice print job fails with error 42")
    for text in (f"escalate {ticket.number}", "1", "Nobody called me back.", "1"):
        await env.dm(text)
    assert "has been recorded" in block_text(env.fake.last_message().json_param("blocks"))
    return ticket.number


async def not_replies(env):
    """The outbox's messages but the turns' own answers (kept there until posted)."""
    return [m for m in await env.desk.store.list_outbox() if m.kind != "reply"]


def dispatcher(env) -> Dispatcher:
    delivery = ChannelDelivery(env.desk, {"slack": env.channel.send_to_person})
    return Dispatcher(env.desk, delivery, policy=RetryPolicy(max_attempts=6, base_delay=timedelta(seconds=10)))


async def test_ping_is_delivered_once_slack_recovers_and_ack_informs_everyone(env):
    number = await escalate_in_slack(env)
    outbox = dispatcher(env)
    env.fake.fail("chat.postMessage", 503)  # Slack is down for a while
    assert await outbox.run_once() == 0
    [message] = await not_replies(env)
    assert message.status == "pending" and "503" in (message.last_error or "")
    env.fake.heal()
    env.desk.clock.advance(timedelta(seconds=10))
    assert await outbox.run_once() == 1
    pings = [c for c in env.fake.messages() if c.params["channel"] == f"D{NAIDA}"]
    assert len(pings) == 1  # delivered once, despite the failed attempts before
    text = block_text(pings[0].json_param("blocks"))
    assert number in text and "Nobody called me back." in text
    assert "Acknowledge" in text  # the directory gives her no language: the desk's default

    # Nobody acknowledges for an office hour: level 2 is pinged, in his Slack DM.
    env.desk.clock.advance(timedelta(minutes=60))
    assert await Escalations(env.desk).tick() == 1
    await outbox.run_once()
    [pieter_ping] = [c for c in env.fake.messages() if c.params["channel"] == f"D{PIETER}"]
    # Pieter clicks Acknowledge in his ping.
    await env.click(f"ack:{number}", user=PIETER, call=pieter_ping)
    # He uses Slack in Dutch.
    assert "in behandeling genomen" in block_text(env.fake.last_message().json_param("blocks"))
    await outbox.run_once()
    to_lotte = [c for c in env.fake.messages() if c.params["channel"] == f"D{LOTTE}"]
    assert "Pieter Van den Broeck" in block_text(to_lotte[-1].json_param("blocks"))
    to_naida = [c for c in env.fake.messages() if c.params["channel"] == f"D{NAIDA}"]
    assert "Pieter Van den Broeck" in block_text(to_naida[-1].json_param("blocks"))
    assert {m.status for m in await env.desk.store.list_outbox()} == {"sent"}


async def test_rate_limited_slack_is_retried_after_its_retry_after(env):
    await escalate_in_slack(env)
    delivery = ChannelDelivery(env.desk, {"slack": env.channel.send_to_person})
    outbox = Dispatcher(env.desk, delivery, policy=RetryPolicy(base_delay=timedelta(milliseconds=100)))
    # More 429s than the Web API client's own retries (which wait Retry-After, really): the
    # outbox keeps the message and waits at least Retry-After before the next attempt.
    env.fake.fail("chat.postMessage", 429, headers={"Retry-After": "2"})
    assert await outbox.run_once() == 0
    [message] = await not_replies(env)
    assert message.next_attempt_at >= env.desk.now() + timedelta(seconds=2)
    env.fake.heal()
    env.desk.clock.advance(timedelta(seconds=1))
    assert await outbox.run_once() == 0
    env.desk.clock.advance(timedelta(seconds=1))
    assert await outbox.run_once() == 1


async def test_person_unknown_to_slack_is_dead_lettered(env):
    from bot.store.ports import NewOutboxMessage

    await env.desk.store.enqueue([NewOutboxMessage("x", "nobody@elsewhere.example", "ticket_update",
                                                   {"ticket": "CS-2026-00001", "event": "status", "status": "closed"})],
                                 env.desk.now())
    await dispatcher(env).run_once()
    [message] = await not_replies(env)
    assert message.status == "failed" and "never seen" in message.last_error
