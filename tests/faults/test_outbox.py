"""The Slack or Teams API failing or rate-limiting for a while: the outbox keeps every message,
retries with back-off (honouring Retry-After), and catches up once the platform is back, each
message delivered once."""

from __future__ import annotations

import re
from datetime import timedelta

from adapters.server.delivery import ChannelDelivery
from bot.app.notifications import ESCALATION_TAKEN
from bot.app.outbox import Dispatcher, RetryPolicy
from bot.store.ports import NewOutboxMessage
from tests.slack.conftest import LOTTE, TEAM, block_text, sqlite_store, start_env  # noqa: F401
from tests.teams.conftest import fake_bf, rsa_key, start_bot  # noqa: F401

LOTTE_EMAIL = "lotte.peeters@brasseriedeklok.be"
NUMBER = re.compile(r"CS-2026-\d{5}")
POLICY = RetryPolicy(max_attempts=30, base_delay=timedelta(seconds=10), max_delay=timedelta(minutes=2))


async def enqueue(desk, count: int) -> list[str]:
    numbers = [f"CS-2026-{i:05d}" for i in range(1, count + 1)]
    await desk.store.enqueue([NewOutboxMessage(f"fault:{n}", LOTTE_EMAIL, ESCALATION_TAKEN,
                                               {"ticket": n, "by_name": "Naïda Jelacic", "channel": "slack"})
                              for n in numbers], desk.now())
    return numbers


async def run_until_empty(desk, dispatcher, rounds: int = 60, step: timedelta = timedelta(minutes=1)) -> int:
    for i in range(rounds):
        await dispatcher.run_once()
        if not [m for m in await desk.store.list_outbox() if m.status != "sent"]:
            return i
        desk.clock.advance(step)
    raise AssertionError(f"the outbox did not catch up: {await desk.store.list_outbox()}")


async def test_slack_failing_then_rate_limiting_outbox_catches_up_once(sqlite_store, fake_slack):
    env = await start_env(sqlite_store, fake_slack)
    try:
        desk = env.desk
        await desk.store.save_conversation_ref("slack", f"{TEAM}:{LOTTE}", {"team_id": TEAM, "user_id": LOTTE,
                                               "channel_id": f"D{LOTTE}"}, desk.now(), email=LOTTE_EMAIL)
        numbers = await enqueue(desk, 8)
        # The outbox's own retries are under test: no slack_sdk retries inside a delivery (they
        # sleep for Retry-After plus jitter; the outbox honours Retry-After without sleeping).
        env.channel.client.retry_handlers = []
        # Slack down (500) for a while, then rate limiting (429 with Retry-After) for a while.
        fake_slack.fail("chat.postMessage", 500)
        dispatcher = Dispatcher(desk, ChannelDelivery(desk, {"slack": env.channel.send_to_person}), policy=POLICY,
                                lease=timedelta(seconds=30))
        await dispatcher.run_once()
        pending = await desk.store.list_outbox()
        assert all(m.status == "pending" and m.attempts == 1 and m.last_error for m in pending)
        assert not fake_slack.messages()
        for _ in range(3):  # down for a while
            desk.clock.advance(timedelta(minutes=1))
            await dispatcher.run_once()
        assert not fake_slack.messages() and all(m.attempts >= 3 for m in await desk.store.list_outbox())
        fake_slack.heal()
        await run_until_empty(desk, dispatcher)
        assert fake_slack.of("chat.postMessage", ok_only=False) != fake_slack.messages()  # failures did happen
        fake_slack.fail("chat.postMessage", 429, times=12, headers={"Retry-After": "0"})
        more = [f"CS-2026-{i:05d}" for i in range(100, 104)]
        await desk.store.enqueue([NewOutboxMessage(f"fault:{n}", LOTTE_EMAIL, ESCALATION_TAKEN,
                                                   {"ticket": n, "by_name": "Naïda Jelacic"}) for n in more],
                                 desk.now())
        await run_until_empty(desk, dispatcher)
        delivered = [NUMBER.search(block_text(c.json_param("blocks"))).group(0) for c in fake_slack.messages()]
        assert sorted(delivered) == sorted(numbers + more), delivered  # each exactly once
        assert all(m.status == "sent" for m in await desk.store.list_outbox())
    finally:
        await env.client.close()


async def test_slack_rate_limit_retry_after_is_honoured(sqlite_store, fake_slack):
    env = await start_env(sqlite_store, fake_slack)
    try:
        desk = env.desk
        await desk.store.save_conversation_ref("slack", f"{TEAM}:{LOTTE}", {"channel_id": f"D{LOTTE}"},
                                               desk.now(), email=LOTTE_EMAIL)
        await enqueue(desk, 1)
        from adapters.slack import SlackChannel

        # No client-side retries: the outbox sees the 429 and its Retry-After itself.
        channel: SlackChannel = env.channel
        channel.client.retry_handlers = []
        fake_slack.fail("chat.postMessage", 429, times=1, headers={"Retry-After": "600"})
        dispatcher = Dispatcher(desk, ChannelDelivery(desk, {"slack": env.channel.send_to_person}), policy=POLICY)
        start = desk.now()
        await dispatcher.run_once()
        (message,) = await desk.store.list_outbox()
        assert message.status == "pending" and message.next_attempt_at - start >= timedelta(seconds=600)
        desk.clock.advance(timedelta(seconds=300))
        assert await dispatcher.run_once() == 0  # not before Retry-After
        desk.clock.advance(timedelta(seconds=301))
        assert await dispatcher.run_once() == 1
        assert len(fake_slack.messages()) == 1
    finally:
        await env.client.close()


async def test_teams_connector_failing_for_a_while_outbox_catches_up_once(sqlite_store, fake_bf):
    bot = await start_bot(sqlite_store, fake_bf)
    try:
        desk = bot.desk
        await bot.say("hello")  # Teams stores where Lotte can be reached
        sent_before = len(fake_bf.sent("POST"))
        numbers = [f"CS-2026-{i:05d}" for i in range(1, 6)]
        await desk.store.enqueue([NewOutboxMessage(f"teams:{n}", LOTTE_EMAIL, ESCALATION_TAKEN,
                                                   {"ticket": n, "by_name": "Naïda Jelacic", "channel": "msteams"})
                                  for n in numbers], desk.now())
        dispatcher = Dispatcher(desk, ChannelDelivery(desk, {"msteams": bot.teams.send_to_person}), policy=POLICY)
        fake_bf.fail_sends = True
        for _ in range(3):
            await dispatcher.run_once()
            desk.clock.advance(timedelta(minutes=5))
        assert all(m.status == "pending" and m.attempts >= 2 for m in await desk.store.list_outbox())
        fake_bf.fail_sends = False
        await run_until_empty(desk, dispatcher)
        posted = fake_bf.sent("POST")[sent_before:]
        from tests.teams.conftest import card_text

        delivered = [NUMBER.search(card_text(a["content"])).group(0) for r in posted
                     for a in r["body"].get("attachments") or ()]
        assert sorted(delivered) == numbers
    finally:
        await bot.client.close()


async def _slack_down_for(desk, fake_slack, channel, outage: timedelta, step: timedelta = timedelta(minutes=1)):
    """Slack answers 500 to every post for `outage` of the desk's clock (no real waiting), with
    the outbox's default policy; returns the dispatcher and the times of its tries."""
    channel.client.retry_handlers = []
    fake_slack.fail("chat.postMessage", 500)
    dispatcher = Dispatcher(desk, ChannelDelivery(desk, {"slack": channel.send_to_person}))
    start, tries = desk.now(), []
    while desk.now() - start < outage:
        before = len(fake_slack.of("chat.postMessage", ok_only=False))
        await dispatcher.run_once()
        if len(fake_slack.of("chat.postMessage", ok_only=False)) > before:
            tries.append(desk.now())
        desk.clock.advance(step)
    return dispatcher, tries


async def test_an_escalation_ping_survives_a_slack_outage_of_23_hours(sqlite_store, fake_slack):
    env = await start_env(sqlite_store, fake_slack)
    try:
        desk = env.desk
        await desk.store.save_conversation_ref("slack", f"{TEAM}:{LOTTE}", {"channel_id": f"D{LOTTE}"},
                                               desk.now(), email=LOTTE_EMAIL)
        (number,) = await enqueue(desk, 1)
        dispatcher, tries = await _slack_down_for(desk, fake_slack, env.channel, timedelta(hours=23))
        (message,) = await desk.store.list_outbox()
        assert message.status == "pending", message  # still being tried after 23 hours down
        gaps = [b - a for a, b in zip(tries, tries[1:])]
        # Back-off capped at 15 minutes (plus the one-minute step of the fake clock).
        assert max(gaps) <= timedelta(minutes=16), max(gaps)
        assert len(tries) > 23 * 60 / 16
        fake_slack.heal()
        desk.clock.advance(timedelta(minutes=15))
        assert await dispatcher.run_once() == 1
        assert number in block_text(fake_slack.messages()[-1].json_param("blocks"))
    finally:
        await env.client.close()


async def test_after_24_hours_of_outage_a_message_is_dead_lettered_with_a_warning(sqlite_store, fake_slack, caplog):
    env = await start_env(sqlite_store, fake_slack)
    try:
        desk = env.desk
        await desk.store.save_conversation_ref("slack", f"{TEAM}:{LOTTE}", {"channel_id": f"D{LOTTE}"},
                                               desk.now(), email=LOTTE_EMAIL)
        await enqueue(desk, 1)
        with caplog.at_level("WARNING", logger="caredesk.outbox"):
            await _slack_down_for(desk, fake_slack, env.channel, timedelta(hours=24, minutes=20))
        (message,) = await desk.store.list_outbox("failed")
        assert message.last_error and "500" in message.last_error
        dead = [r for r in caplog.records if "dead-lettered" in r.getMessage()]
        assert len(dead) == 1 and dead[0].levelname == "WARNING", [r.getMessage() for r in caplog.records]
        assert f"#{message.id}" in dead[0].getMessage() or str(message.id) in dead[0].getMessage()
    finally:
        await env.client.close()
