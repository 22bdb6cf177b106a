"""Two servers on one PostgreSQL database (two aiohttp apps, two engines: what two processes
are to the database) handling turns of the same conversations at the same moment: each Slack
event is delivered to both (the second as Slack's retry); distinct turns of one conversation
arrive at both together. Every answer once, no lost turn, one ticket per conversation."""

from __future__ import annotations

import asyncio

import pytest

from bot.domain.model import DialogKey
from bot.store.sql import SqlStore
from tests.faults.conftest import CREATED, add_users, description_of, script_for
from tests.faults.test_database import posts_to
from tests.slack.conftest import TEAM, start_env

pytestmark = pytest.mark.postgres


async def both_get(a, b, text: str, user: str, event_id: str) -> None:
    retry = {"X-Slack-Retry-Num": "1", "X-Slack-Retry-Reason": "http_timeout"}
    responses = await asyncio.gather(a.dm(text, user=user, event_id=event_id, drain=False),
                                     b.dm(text, user=user, event_id=event_id, headers=retry, drain=False))
    assert [r.status for r in responses] == [200, 200]
    await asyncio.gather(a.channel.drain(), b.channel.drain())


async def test_two_servers_on_one_database_answer_each_turn_once(pg_url, fake_slack):
    store_a, store_b = SqlStore(pg_url), SqlStore(pg_url)
    await store_a.initialize()
    await store_b.initialize()
    a = await start_env(store_a, fake_slack)
    b = await start_env(store_b, fake_slack)
    users = add_users(fake_slack, 5)
    try:
        async def converse(user: str) -> None:
            for step, text in enumerate(script_for(user)):
                first, second = (a, b) if step % 2 else (b, a)
                await both_get(first, second, text, user, f"Ev{user}{step:02d}")

        await asyncio.gather(*(converse(u) for u in users))
        tickets = await store_a.list_tickets(limit=100)
        assert sorted(t.description for t in tickets) == sorted(description_of(u) for u in users)
        for user in users:
            answers = posts_to(fake_slack, user)
            assert len(answers) == len(script_for(user)), (user, answers)
            assert len([a for a in answers if CREATED.search(a)]) == 1

        # Distinct turns of one conversation at the same moment, one to each server: both are
        # answered, in some order, and the dialog's version counts both.
        user = users[0]
        await a.dm("ticket", user=user, event_id="EvPAIR0", drain=False)
        # either server's worker may take it: each is woken by the other's write (NOTIFY)
        await asyncio.gather(a.channel.drain(), b.channel.drain())
        # The user has an open ticket now: asked first whether it is about it (issue 15 §3b).
        await a.dm("new", user=user, event_id="EvPAIR0b", drain=False)
        await asyncio.gather(a.channel.drain(), b.channel.drain())
        key = DialogKey("slack", TEAM, f"D{user}", user)
        version = (await store_a.load_dialog(key)).version
        before = len(posts_to(fake_slack, user))
        await asyncio.gather(a.dm("1", user=user, event_id="EvPAIR1", drain=False),
                             b.dm("1", user=user, event_id="EvPAIR2", drain=False))
        await asyncio.gather(a.channel.drain(), b.channel.drain())
        assert len(posts_to(fake_slack, user)) == before + 2
        stored = await store_b.load_dialog(key)
        assert stored.version == version + 2 and stored.state["state"] == "module"
    finally:
        await a.client.close()
        await b.client.close()
        await store_a.close()
        await store_b.close()
