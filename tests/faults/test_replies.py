"""Nothing acknowledged is lost, and one person's trouble does not hold up the others: a poison
request is given up at once (the person is asked to send it again), a reply whose post failed is
in the outbox and delivered later, a rate-limited reply waits in the store, not in a work slot."""

from __future__ import annotations

import asyncio
from datetime import timedelta

from adapters.server.delivery import ChannelDelivery
from bot.app.outbox import REPLY_HOLD, Dispatcher
from tests.faults.conftest import add_users
from tests.slack.conftest import LOTTE, block_text, env, fake_slack, sqlite_store  # noqa: F401


def text_of(call) -> str:
    return block_text(call.json_param("blocks"))


async def test_a_signed_event_whose_text_is_not_text_is_given_up_at_once_and_the_person_told(env, caplog):
    with caplog.at_level("WARNING", logger="caredesk.inbox"):
        response = await env.dm({"type": "rich_text", "elements": ["not", "text"]})
    assert response.status == 200
    (item,) = await env.desk.store.list_inbound("failed")
    assert item.attempts == 1  # not retried five times while the person waits
    assert item.last_error and item.last_error.startswith("unreadable: TypeError")
    told = env.fake.last_message()
    assert told.params["channel"] == f"D{LOTTE}"
    assert "could not read your last message" in text_of(told)
    (line,) = [r for r in caplog.records if "dead-lettered at once" in r.getMessage()]
    assert line.levelname == "WARNING" and f"inbox item {item.id} " in line.getMessage()
    assert "rich_text" not in line.getMessage()
    # The person's next message is answered at once.
    await env.dm("contacts")
    assert "Service desk contacts" in text_of(env.fake.last_message())
    assert await env.desk.store.count_unfinished_inbound() == 0


def answers_to(env, user: str = LOTTE) -> list[str]:
    return [text_of(c) for c in env.fake.messages() if c.params.get("channel") == f"D{user}"]


def die_before_posting(env) -> list[int]:
    """The worker's process dies right after the turn's commit, before its answer is posted
    (once): the work is cancelled there, as a SIGKILL or a stop would end it."""
    deaths: list[int] = []
    real = env.channel.messenger.post

    async def post(*args, **kwargs):
        if not deaths:
            deaths.append(1)
            raise asyncio.CancelledError
        return await real(*args, **kwargs)

    env.channel.messenger.post = post
    return deaths


async def test_an_answer_whose_worker_died_before_posting_it_is_posted_by_the_next_try(env):
    env.channel.inbox_worker.lease = timedelta(seconds=0.3)  # the dead worker's lease runs out soon
    deaths = die_before_posting(env)
    await env.dm("contacts")
    assert deaths and answers_to(env) == []
    (item,) = await env.desk.store.list_inbound()
    assert item.status == "working"  # acknowledged, and its turn saved: nothing was posted
    await asyncio.sleep(0.4)
    await env.channel.drain()  # the next worker takes the item: the delivery was processed ...
    answers = answers_to(env)
    assert len(answers) == 1 and "Service desk contacts" in answers[0]  # ... and its answer still owed
    assert [(m.kind, m.status) for m in await env.desk.store.list_outbox()] == [("reply", "sent")]
    assert [i.status for i in await env.desk.store.list_inbound()] == ["done"]


async def test_an_answer_whose_worker_died_is_posted_by_the_outbox_and_never_twice(env):
    env.channel.inbox_worker.lease = timedelta(seconds=0.3)
    die_before_posting(env)
    await env.dm("ticket")
    assert answers_to(env) == []
    dispatcher = Dispatcher(env.desk, ChannelDelivery(env.desk, {}, {"slack": env.channel.post_reply}))
    assert await dispatcher.run_once() == 0  # held by the turn's own worker for a while
    env.desk.clock.advance(REPLY_HOLD + timedelta(seconds=1))
    assert await dispatcher.run_once() == 1
    # The inbox item is taken again too: the answer was posted, so nothing more is sent.
    await asyncio.sleep(0.4)
    await env.channel.drain()
    answers = answers_to(env)
    assert len(answers) == 1 and "what kind of ticket is it?" in answers[0].lower(), answers
    await env.dm("1")  # and the conversation goes on where it was
    assert len(answers_to(env)) == 2


async def test_rate_limited_answers_wait_in_the_store_and_others_are_answered_meanwhile(env):
    people = add_users(env.fake, 4)
    env.fake.fail("chat.postMessage", 429, times=3, headers={"Retry-After": "20"})
    for person in people[:3]:
        await env.dm("contacts", user=person, drain=False)
    await env.channel.drain()
    await env.dm("contacts", user=people[3])
    # No retry inside the worker (it would hold a slot for 20 s): one try each, the fourth answered.
    assert [c.status for c in env.fake.of("chat.postMessage", ok_only=False)] == [429, 429, 429, 200]
    assert len(answers_to(env, people[3])) == 1
    waiting = [m for m in await env.desk.store.list_outbox() if m.status == "pending"]
    assert len(waiting) == 3
    assert all(m.next_attempt_at >= env.desk.now() + timedelta(seconds=20) for m in waiting)
    dispatcher = Dispatcher(env.desk, ChannelDelivery(env.desk, {}, {"slack": env.channel.post_reply}))
    assert await dispatcher.run_once() == 0
    env.desk.clock.advance(timedelta(seconds=21))
    assert await dispatcher.run_once() == 3
    for person in people:
        answers = answers_to(env, person)
        assert len(answers) == 1 and "Service desk contacts" in answers[0], (person, answers)


async def test_a_slack_retry_of_an_answered_event_is_not_answered_twice(env):
    await env.dm("contacts", event_id="EvTwice1")
    await env.dm("contacts", event_id="EvTwice1", headers={"X-Slack-Retry-Num": "1",
                                                          "X-Slack-Retry-Reason": "http_timeout"})
    assert len(answers_to(env)) == 1
