"""Several Teams messages of one conversation at the same moment (issue 14).

Teams sends a person's quick messages on separate requests, at once, and never resends one it got
a 200 for. Each must be answered, once, in the order they arrived: none may get "Please send it
again". Through the running aiohttp app with signed Bot Framework tokens (the fake Bot Framework of
tests/teams), on SQLite and PostgreSQL, in one process and in two.
"""

from __future__ import annotations

import asyncio
from typing import Any

from bot.domain.model import DialogKey
from tests.teams.conftest import (  # noqa: F401
    Bot,
    card_of,
    card_text,
    fake_bf,
    rsa_key,
    start_bot,
)

LOTTES_CHAT = DialogKey("msteams", "tenant-1", "a:personal-29:lotte", "29:lotte")
BURST = 20
BUSY = "Please send it again"
FIRST_ID = 1732960800000  # Teams activity ids are millisecond timestamps


def burst(bot: Bot, user: str = "29:lotte") -> list[dict[str, Any]]:
    # Wrong answers to the dialog's first question: each is a turn that saves the dialog state.
    return [bot.activity(user, f"no idea {i:02d}", activity_id=str(FIRST_ID + i)) for i in range(BURST)]


def record_arrivals(bot: Bot) -> list[str]:
    """The activity ids in the order the server took them in: each request takes a ticket when it
    arrives and joins its conversation's line in that order, just before its token is checked
    against the activity (`vouch`, which checks the token alone first, has no activity)."""
    arrived: list[str] = []
    authenticate = bot.teams.transport.authenticate

    async def recording(header: str | None, activity: dict[str, Any]) -> Any:
        if "id" in activity:
            arrived.append(str(activity["id"]))
        return await authenticate(header, activity)

    bot.teams.transport.authenticate = recording  # type: ignore[method-assign]
    return arrived


def answers_to(bot: Bot, ids: set[str]) -> list[dict[str, Any]]:
    return [r for r in bot.fake.sent("POST") if r["activity_id"] in ids]


async def test_twenty_messages_at_once_are_each_answered_in_arrival_order(store, fake_bf):
    bot = await start_bot(store, fake_bf)
    try:
        await bot.say("new ticket")
        before = await bot.desk.store.load_dialog(LOTTES_CHAT)
        activities = burst(bot)
        ids = {a["id"] for a in activities}
        arrived = record_arrivals(bot)
        statuses = await asyncio.gather(*(bot.post(a) for a in activities))
        await bot.teams.drain()
        assert [s for s, _ in statuses] == [200] * BURST
        answers = answers_to(bot, ids)
        texts = [card_text(card_of(a)) for a in answers]
        assert not [t for t in texts if BUSY in t]
        # Once each, and in the order the server received them.
        assert [a["activity_id"] for a in answers] == arrived
        assert sorted(arrived) == sorted(ids)
        assert all("What kind of ticket is it?" in t for t in texts)
        after = await bot.desk.store.load_dialog(LOTTES_CHAT)
        assert after.version == before.version + BURST  # every turn saved on the one before it
    finally:
        await bot.client.close()


async def test_twenty_messages_at_once_on_two_servers_are_each_answered_once(store, store_factory, fake_bf):
    # Two processes (two engines on one database) get the messages of one conversation at once:
    # no lock in memory is shared, and the dialog state's version settles who goes first.
    one = await start_bot(store, fake_bf)
    two = await start_bot(await store_factory(), fake_bf)
    try:
        await one.say("new ticket")
        activities = burst(one)
        ids = {a["id"] for a in activities}
        statuses = await asyncio.gather(*((one if i % 2 else two).post(a) for i, a in enumerate(activities)))
        await one.teams.drain()
        await two.teams.drain()
        assert [s for s, _ in statuses] == [200] * BURST
        answers = answers_to(one, ids)  # both servers post to the same fake connector
        assert sorted(a["activity_id"] for a in answers) == sorted(ids)
        assert not [a for a in answers if BUSY in card_text(card_of(a))]
        assert (await one.desk.store.load_dialog(LOTTES_CHAT)).version == 1 + BURST
        # The same again (Teams' retry, to either server): answered already, nothing new.
        await asyncio.gather(*((two if i % 2 else one).post(a) for i, a in enumerate(activities)))
        assert len(answers_to(one, ids)) == BURST
    finally:
        await one.client.close()
        await two.client.close()


async def test_a_refused_request_gives_up_its_place_and_nothing_is_left_behind(store, fake_bf):
    bot = await start_bot(store, fake_bf)
    try:
        forged = [bot.post(bot.activity("29:lotte", "help", activity_id=str(FIRST_ID + i)), token="forged")
                  for i in range(5)]
        real = bot.post(bot.activity("29:lotte", "help", activity_id=str(FIRST_ID + 99)))
        statuses = await asyncio.wait_for(asyncio.gather(*forged, real), timeout=30)
        assert [s for s, _ in statuses] == [401] * 5 + [200]
        assert [r["activity_id"] for r in bot.fake.sent("POST")] == [str(FIRST_ID + 99)]
        assert bot.teams.arrivals._last == {}  # no line kept for a conversation with nothing waiting
    finally:
        await bot.client.close()


async def test_the_order_of_arrival_holds_when_token_checks_end_in_another_order(store, fake_bf):
    # The token alone is checked first, in a thread, and those checks may end in any order: each
    # request joins its conversation's line in the order it arrived all the same.
    bot = await start_bot(store, fake_bf)
    try:
        await bot.say("new ticket")
        activities = burst(bot)[:8]
        vouch = bot.teams.transport.vouch
        arrived: list[int] = []

        async def slow_for_the_first(header: str | None) -> None:
            index = len(arrived)
            arrived.append(index)
            await asyncio.sleep(0.02 * (len(activities) - index))  # the first to arrive ends last
            await vouch(header)

        bot.teams.transport.vouch = slow_for_the_first  # type: ignore[method-assign]
        posts = []
        for activity in activities:  # one after the other reaches the server, each before the next
            posts.append(asyncio.ensure_future(bot.post(activity)))
            while len(arrived) < len(posts):
                await asyncio.sleep(0.001)
        statuses = await asyncio.gather(*posts)
        await bot.teams.drain()
        assert [s for s, _ in statuses] == [200] * len(activities)
        answers = answers_to(bot, {a["id"] for a in activities})
        assert [a["activity_id"] for a in answers] == [a["id"] for a in activities]
    finally:
        await bot.client.close()
