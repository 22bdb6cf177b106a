"""The database going away mid-load and coming back (PostgreSQL: connections refused and every
backend of the test database terminated, while signed Slack DM events keep arriving).

During the outage Slack gets an error status it retries (5xx) or the person gets a clear
apology; nothing is half-written. After recovery the same events are re-sent (Slack's retries
carry the same event_id) and every conversation ends with exactly one ticket, with every answer
given once."""

from __future__ import annotations

import asyncio

import pytest

from bot.store.sql import SqlStore
from tests.faults.conftest import (
    CREATED,
    ERROR_TEXTS,
    add_users,
    description_of,
    outage,
    script_for,
)
from tests.slack.conftest import block_text, start_env

pytestmark = pytest.mark.postgres


def posts_to(fake, user: str) -> list[str]:
    return [block_text(c.json_param("blocks")) for c in fake.messages() if c.params.get("channel") == f"D{user}"]


async def converse(env, user: str, stats: dict[str, int], *, pause: float = 0.0) -> None:
    """One person's whole ticket dialog; a turn that failed is re-sent as Slack would (same
    event id, X-Slack-Retry-Num) until it went through."""
    for step, text in enumerate(script_for(user)):
        event_id = f"Ev{user}{step:02d}"
        for attempt in range(200):
            before = len(posts_to(env.fake, user))
            headers = {"X-Slack-Retry-Num": str(attempt), "X-Slack-Retry-Reason": "http_error"} if attempt else None
            response = await env.dm(text, user=user, event_id=event_id, headers=headers)
            new = posts_to(env.fake, user)[before:]
            failed = response.status >= 500 or any(e in p for p in new for e in ERROR_TEXTS)
            if response.status >= 500:
                stats["5xx"] += 1
                assert response.status in (500, 503)
            elif failed:
                stats["apologies"] += 1
            if not failed:
                stats["answered" if new else "already_processed"] += 1
                break
            await asyncio.sleep(0.1)
        else:
            raise AssertionError(f"{user} step {step} never went through")
        await asyncio.sleep(pause)


async def test_database_outage_mid_load_loses_nothing_and_doubles_nothing(pg_url, fake_slack):
    store = SqlStore(pg_url)
    await store.initialize()
    env = await start_env(store, fake_slack)
    users = add_users(fake_slack, 6)
    stats = {"5xx": 0, "apologies": 0, "answered": 0, "already_processed": 0}
    database = pg_url.rsplit("/", 1)[1]
    try:
        async def cut_when_busy() -> None:
            while len(fake_slack.messages()) < 12:
                await asyncio.sleep(0.02)
            await outage(database, 1.5)

        await asyncio.gather(cut_when_busy(), *(converse(env, u, stats, pause=0.05) for u in users))
        assert stats["5xx"] + stats["apologies"] > 0, f"the outage hit no request: {stats}"
        # What was acknowledged during the outage is in the inbox: answered once the database is back.
        deadline = asyncio.get_running_loop().time() + 60
        while await store.count_unfinished_inbound():
            assert asyncio.get_running_loop().time() < deadline, await store.list_inbound()
            await env.channel.drain()
            await asyncio.sleep(0.1)
        assert [i for i in await store.list_inbound() if i.status != "done"] == []

        tickets = await store.list_tickets(limit=100)
        assert len(tickets) == len(users), [t.description for t in tickets]
        assert sorted(t.description for t in tickets) == sorted(description_of(u) for u in users)
        for ticket in tickets:  # complete, nothing half-written
            assert ticket.module == "Invoicing module" and ticket.reproduce and ticket.diagnostics
        for user in users:
            answers = posts_to(fake_slack, user)
            created = [m.group(1) for a in answers for m in [CREATED.search(a)] if m]
            assert len(created) == 1, (user, created)
            # every question of the dialog was asked once (no doubled answer)
            real = [a for a in answers if not any(e in a for e in ERROR_TEXTS)]
            assert len(real) == len(script_for(user)), (user, real)
        async with store.engine.connect() as conn:
            from sqlalchemy import text

            assert (await conn.execute(text("SELECT count(*) FROM dialog_states"))).scalar_one() == 0
    finally:
        await env.client.close()
        await store.close()
