"""The guided conversation in a DM with the bot (buttons and text), mentions answered in a
thread, redelivered events processed once, and Slack Web API failures."""

from __future__ import annotations

import json

from datetime import timedelta

from adapters.server.delivery import ChannelDelivery
from bot.app.desk import Desk
from bot.app.outbox import Dispatcher
from bot.domain.clock import ManualClock
from tests.slack.conftest import BOT_USER, CAMILLE, LOTTE, NOW, TEAM, block_text, fast_retries, slack_config, start_env

DESCRIPTION = "Printing an invoice fails with error 42 since this morning's update"


def text_of(call) -> str:
    return block_text(call.json_param("blocks"))


async def guided_incident_until_summary(env, description: str = DESCRIPTION):
    await env.dm("ticket")
    assert "What kind of ticket is it?" in text_of(env.fake.last_message())
    await env.click("incident")
    assert "Are these details correct?" in text_of(env.fake.last_message())
    await env.click("yes")
    await env.dm("Invoicing module")
    await env.dm(description)
    await env.dm("Open an invoice and press Print")
    await env.dm("Restarted, same on another PC")
    assert "How urgent is it?" in text_of(env.fake.last_message())
    await env.click("normal")
    summary = env.fake.last_message()
    assert "Please check your ticket" in text_of(summary)
    return summary


async def test_a_ticket_opened_through_dm_buttons_and_text(env_all):
    env = env_all
    summary = await guided_incident_until_summary(env)
    # The summary is a confirmation with styled buttons.
    buttons = [e for b in summary.json_param("blocks") if b["type"] == "actions" for e in b["elements"]]
    assert [(b["value"], b.get("style")) for b in buttons] == [("confirm", "primary"), ("edit", None), ("cancel", "danger")]
    await env.click("confirm")
    done = env.fake.last_message()
    assert "CS-2026-00001" in text_of(done) and done.params["channel"] == f"D{LOTTE}"
    ticket = await env.desk.store.get_ticket("CS-2026-00001")
    assert (ticket.channel, ticket.requester_email, ticket.company) == ("slack", "lotte.peeters@brasseriedeklok.be",
                                                                        "Brasserie De Klok")
    assert ticket.description == DESCRIPTION and ticket.reproduce == "Open an invoice and press Print"
    # Every answer went to the same DM, and users.info was asked once (cached).
    assert {c.params["channel"] for c in env.fake.messages()} == {f"D{LOTTE}"}
    assert len(env.fake.of("users.info")) == 1
    assert env.fake.of("users.info")[0].params["include_locale"] in ("1", True, "true")
    # A second click on the same button does not create a second ticket.
    await env.click("confirm", call=summary)
    assert "already finished" in text_of(env.fake.last_message())
    assert len(await env.desk.store.list_tickets()) == 1


async def test_the_users_slack_locale_picks_the_language(env):
    await env.dm("bonjour", user=CAMILLE)
    assert "Que puis-je faire pour vous" in text_of(env.fake.last_message()) or "Ouvrir un ticket" in text_of(env.fake.last_message())


async def test_user_text_is_escaped_in_mrkdwn(env):
    # Slack sends what people type with &, <, > as entities and mentions as <!channel>.
    typed = "Printing fails &amp; crashes &lt;b&gt;bold&lt;/b&gt; <!channel> <mailto:x@y.be|x@y.be> since the update"
    summary = await guided_incident_until_summary(env, typed)
    raw = json.dumps(summary.json_param("blocks"))
    assert "<!channel>" not in raw and "<mailto" not in raw
    assert "Printing fails &amp; crashes &lt;b&gt;bold&lt;/b&gt; @channel x@y.be since the update" in text_of(summary)
    for call in env.fake.messages():
        assert "<!" not in call.params["text"]
    await env.click("confirm")
    ticket = (await env.desk.store.list_tickets())[0]
    assert ticket.description == "Printing fails & crashes <b>bold</b> @channel x@y.be since the update"


async def test_back_and_cancel_work_in_a_dm(env):
    await env.dm("ticket")
    await env.dm("cancel")
    assert "Cancelled" in text_of(env.fake.last_message())
    assert await env.desk.store.list_tickets() == []


async def test_bot_messages_and_edits_are_ignored(env):
    await env.event({"type": "message", "channel": f"D{LOTTE}", "user": BOT_USER, "bot_id": "B111", "text": "hi",
                     "ts": "1.1", "channel_type": "im"})
    await env.event({"type": "message", "subtype": "message_changed", "channel": f"D{LOTTE}", "ts": "1.2",
                     "channel_type": "im", "message": {"text": "hi"}})
    assert env.fake.messages() == []


async def test_a_mention_is_answered_in_a_thread(env):
    from tests.slack.conftest import load_json

    event = {**load_json("payloads/event_callback.app_mention.bolt.json")["event"],
             "text": f"<@{BOT_USER}> contacts", "user": LOTTE, "channel": "C111", "ts": "1595926230.009600"}
    response = await env.event(event)
    assert response.status == 200
    answer = env.fake.last_message()
    assert answer.params["channel"] == "C111" and answer.params["thread_ts"] == "1595926230.009600"
    assert "Service desk contacts" in text_of(answer)
    # A mention inside the thread goes on there; its buttons answer in the thread too.
    await env.event({**event, "text": f"<@{BOT_USER}> ticket", "ts": "1595926300.000100",
                     "thread_ts": "1595926230.009600"})
    asked = env.fake.last_message()
    assert asked.params["thread_ts"] == "1595926230.009600" and "What kind of ticket" in text_of(asked)
    await env.click("service_request")
    assert env.fake.last_message().params["thread_ts"] == "1595926230.009600"
    assert "Are these details correct?" in text_of(env.fake.last_message())


async def test_the_same_event_delivered_twice_is_processed_once(env_all):
    env = env_all
    await env.dm("contacts", event_id="EvSAME1")
    await env.dm("contacts", event_id="EvSAME1", headers={"X-Slack-Retry-Num": "1", "X-Slack-Retry-Reason": "http_timeout"})
    await env.dm("contacts", event_id="EvSAME1")
    assert len(env.fake.messages()) == 1
    assert await env.desk.store.is_event_processed("slack", "EvSAME1")


async def test_a_retry_arriving_while_the_first_delivery_is_processed_is_ignored(env):
    first = await env.dm("contacts", event_id="EvSAME2", drain=False)
    retry = await env.dm("contacts", event_id="EvSAME2", headers={"X-Slack-Retry-Num": "1"}, drain=False)
    assert (first.status, retry.status) == (200, 200)
    await env.channel.drain()
    assert len(env.fake.messages()) == 1


async def test_a_retried_answer_in_a_dialog_is_processed_once(env):
    await env.dm("ticket")
    await env.click("incident")
    await env.click("yes")
    await env.dm("Invoicing module", event_id="EvMOD")
    await env.dm("Invoicing module", event_id="EvMOD", headers={"X-Slack-Retry-Num": "2"})
    # The module was not taken as the description: the next question is still the description's.
    assert "describe it clearly" in text_of(env.fake.last_message())
    assert sum("describe it clearly" in text_of(c) for c in env.fake.messages()) == 1


async def test_a_rate_limited_answer_waits_in_the_outbox_then_is_posted_after_retry_after(env):
    env.fake.fail("chat.postMessage", 429, times=1, headers={"Retry-After": "20"})
    await env.dm("contacts")
    # Not waited out by the worker (its slot is free): the answer waits in the store.
    assert [c.status for c in env.fake.of("chat.postMessage", ok_only=False)] == [429]
    (reply,) = await env.desk.store.list_outbox()
    assert (reply.kind, reply.status) == ("reply", "pending")
    dispatcher = Dispatcher(env.desk, ChannelDelivery(env.desk, {}, {"slack": env.channel.post_reply}))
    assert await dispatcher.run_once() == 0  # not before Retry-After
    env.desk.clock.advance(timedelta(seconds=21))
    assert await dispatcher.run_once() == 1
    assert [c.status for c in env.fake.of("chat.postMessage", ok_only=False)] == [429, 200]
    assert "Service desk contacts" in text_of(env.fake.last_message())
    assert [m.status for m in await env.desk.store.list_outbox()] == ["sent"]


async def test_slack_failing_for_good_tells_the_user_later_and_creates_no_second_ticket(env_all):
    env = env_all
    summary = await guided_incident_until_summary(env)
    env.fake.fail("chat.postMessage", 500)  # forever
    await env.click("confirm", call=summary)
    failed = env.fake.of("chat.postMessage", ok_only=False)[-3:]
    assert [c.status for c in failed] == [500, 500, 500]  # one try and two retries, then given up
    # The user saw nothing and clicks again: still one ticket.
    await env.click("confirm", call=summary)
    assert len(await env.desk.store.list_tickets()) == 1
    env.fake.heal()
    await env.dm("hello")
    told = text_of(env.fake.last_message())
    assert "could not be delivered" in told and "CS-2026-00001" in told
    assert "What can I do for you?" in told
    # Told once: the next answer has no apology.
    await env.dm("contacts")
    assert "could not be delivered" not in text_of(env.fake.last_message())
    assert len(await env.desk.store.list_tickets()) == 1


async def lose_the_ticket_answer(env) -> None:
    """Lotte confirms a ticket while Slack fails for good: the answer with its number is lost."""
    summary = await guided_incident_until_summary(env)
    env.fake.fail("chat.postMessage", 500)
    await env.click("confirm", call=summary)
    assert len(await env.desk.store.list_tickets()) == 1
    env.fake.heal()


def told_the_lost_ticket(call) -> bool:
    told = text_of(call)
    return "could not be delivered" in told and "CS-2026-00001" in told


async def test_an_answer_lost_in_one_process_is_told_by_another(store, store_factory, fake_slack):
    from adapters.slack import SlackChannel

    server = await start_env(store, fake_slack)
    # A `caredesk worker` beside it: its own channel, its own engine on the same database.
    worker = SlackChannel(Desk(server.desk.settings, await store_factory(), ManualClock(NOW)),
                          config=slack_config(fake_slack), retry_handlers=fast_retries())
    try:
        await lose_the_ticket_answer(server)
        # From now on the server only acknowledges; the worker does the work.
        await server.channel.close()
        await server.dm("hello", drain=False)
        await worker.drain()
        told = server.fake.last_message()
        assert told_the_lost_ticket(told) and "What can I do for you?" in text_of(told)
        # Told once, whichever process answers next.
        await server.dm("contacts")
        assert "could not be delivered" not in text_of(server.fake.last_message())
    finally:
        await worker.close()
        await server.client.close()


async def test_an_answer_lost_before_a_restart_is_told_after_it(store, fake_slack):
    before = await start_env(store, fake_slack)
    try:
        await lose_the_ticket_answer(before)
    finally:
        await before.client.close()
    after = await start_env(store, fake_slack)  # a new process: nothing of the first one's memory
    try:
        await after.dm("hello", event_id="EvAFTER")  # the new helper counts event ids from 1 again
        assert told_the_lost_ticket(after.fake.last_message())
    finally:
        await after.client.close()


async def test_users_info_failing_still_answers_as_an_unknown_user(env):
    env.fake.fail("users.info", 500)
    await env.dm("hello")
    assert "What can I do for you?" in text_of(env.fake.last_message())


async def test_the_dm_is_remembered_for_messages_sent_later(env):
    await env.dm("hello")
    await env.dm("contacts")
    refs = await env.desk.store.find_conversation_refs_by_email("Lotte.Peeters@brasseriedeklok.be")
    assert [(channel, key, dict(ref)) for channel, key, ref in refs] == [
        ("slack", f"{TEAM}:{LOTTE}", {"team_id": TEAM, "user_id": LOTTE, "channel_id": f"D{LOTTE}"})]
