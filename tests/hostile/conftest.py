"""Fixtures of the hostile-input suite: ONE CareDesk aiohttp server with both channels mounted
(POST /slack/events and POST /api/messages, authentication on), the fake Slack Web API and the
fake Bot Framework of tests/slack and tests/teams, and a snapshot of the store's tables.

Both fakes validate what the bot sent (Block Kit, Adaptive Card 1.5 schema) when a test ends.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest_asyncio
from aiohttp.test_utils import TestClient, TestServer
from sqlalchemy import select, text

from adapters.slack import SLACK_KEY
from adapters.slack import mount as slack_mount
from adapters.teams import configure
from adapters.teams import mount as teams_mount
from adapters.server.web import build_app
from bot.domain.clock import ManualClock
from bot.domain.config import Settings
from bot.app.desk import Desk
from bot.domain.directory import read_directory_file
from tests.slack.conftest import (  # noqa: F401
    BOT_TOKEN,
    NOW,
    ROOT,
    SIGNING_SECRET,
    SlackEnv,
    fake_slack,
    fast_retries,
    slack_config,
)
from tests.teams.conftest import (  # noqa: F401
    APP_ID,
    APP_PASSWORD,
    Bot,
    fake_bf,
    other_rsa_key,
    rsa_key,
    teams_config,
    teams_env,
)

# The tables a refused request must leave exactly as they were.
BUSINESS_TABLES = ("tickets", "ticket_events", "ticket_comments", "dialog_states", "time_entries",
                   "time_entry_changes", "escalations", "outbox")
ALL_TABLES = BUSINESS_TABLES + ("processed_events", "conversation_refs", "inbox")


async def snapshot(store: Any, tables: tuple[str, ...] = ALL_TABLES) -> dict[str, list[tuple]]:
    """Every row of these tables, in a stable order (compare before/after)."""
    from bot.store import models as m

    result: dict[str, list[tuple]] = {}
    async with store.engine.connect() as conn:
        for name in tables:
            table = m.metadata.tables[name]
            query = select(table)
            if name == "outbox":
                # A turn's answer (the refusal itself) is kept there until it is posted: it is the
                # answer, not a change the request made.
                query = query.where(table.c.kind != "reply")
            rows = (await conn.execute(query)).all()
            result[name] = sorted(tuple(map(repr, r)) for r in rows)
    return result


async def count(store: Any, table: str) -> int:
    async with store.engine.connect() as conn:
        return int((await conn.execute(text(f"SELECT count(*) FROM {table}"))).scalar_one())


@dataclass
class Both:
    """The server under test, spoken to as Slack (`slack`) and as Teams (`teams`)."""

    client: TestClient
    desk: Desk
    slack: SlackEnv
    teams: Bot

    @property
    def store(self) -> Any:
        return self.desk.store

    async def drain(self) -> None:
        await self.slack.channel.drain()
        await self.teams.teams.drain()


async def seed_tickets(desk: Desk) -> dict[str, str]:
    """One ticket of Atelier Lumière (Camille) and one of Brasserie De Klok (Lotte)."""
    camille = await desk.register_ticket(kind="incident", requester_email="camille.dubois@atelier-lumiere.be",
                                         module="Caisse", description="La caisse plante au démarrage depuis hier")
    lotte = await desk.register_ticket(kind="incident", requester_email="lotte.peeters@brasseriedeklok.be",
                                       module="Invoicing", description="Invoices do not print since the update")
    return {"camille": camille.number, "lotte": lotte.number}


@pytest_asyncio.fixture
async def hostile_store(tmp_path):
    from bot.store.sql import SqlStore

    store = SqlStore(f"sqlite+aiosqlite:///{tmp_path / 'hostile.db'}")
    await store.initialize()
    try:
        yield store
    finally:
        await store.close()


async def start_both(store: Any, fake_slack: Any, fake_bf: Any) -> Both:
    await store.replace_directory(read_directory_file(ROOT / "examples" / "directory.yaml"))
    desk = Desk(Settings(), store, ManualClock(NOW))
    teams = configure(desk, config=teams_config(fake_bf))
    slack = slack_config(fake_slack)
    app = build_app(desk, channels=(lambda a: slack_mount(a, desk, config=slack, retry_handlers=fast_retries()),
                                    lambda a: teams_mount(a, teams)))
    client = TestClient(TestServer(app, host="127.0.0.1"))
    await client.start_server()
    return Both(client, desk, SlackEnv(client, fake_slack, desk, app[SLACK_KEY]), Bot(client, desk, fake_bf, teams))


@pytest_asyncio.fixture
async def both(hostile_store, fake_slack, fake_bf):
    server = await start_both(hostile_store, fake_slack, fake_bf)
    try:
        yield server
    finally:
        await server.client.close()
