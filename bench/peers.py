"""The comparison servers, each run as its own process (like CareDesk), on 127.0.0.1:

* `bare`: a bare aiohttp handler on POST /slack/events that reads the body and answers 200
  (the limit of the HTTP stack on this machine);
* `bolt`: a minimal slack-bolt `AsyncApp` served by its aiohttp adapter (`app.web_app()`),
  signature verification on, that only acks slash commands, events and view submissions
  (the peer: what any Bolt app pays before doing anything);
* `durable`: the least a durable Slack bot must do per direct message with CareDesk's libraries
  (slack-bolt, SQLAlchemy 2 async, asyncpg, PostgreSQL): the `message` listener writes the event
  to the database (one insert, the event id as a unique key) and only then acks; a worker in the
  same process then, per message, asks `users.info` (cached per user), runs one transaction that
  reads and writes the person's dialog state (a JSON row keyed by team and user, with a version)
  and marks the event done, and answers with one `chat.postMessage`. Slash commands and view
  submissions are only acked, so that the saturation mix can be sent to it unchanged.

    .venv/bin/python bench/peers.py bolt --port 4001 --api-url http://127.0.0.1:PORT/api/
    .venv/bin/python bench/peers.py durable --port 4002 --api-url http://127.0.0.1:PORT/api/ \
        --database-url postgresql+asyncpg://postgres@127.0.0.1:5432/DB
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import re
import signal
import sys
import zlib
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from aiohttp import web  # noqa: E402

from bench.common import BOT_TOKEN, LOOPBACK, SIGNING_SECRET  # noqa: E402

# The durable peer's in-process workers. Each person's messages go to one worker (by a hash of
# team and user), so a person's turns run in order and two turns never race for one dialog
# row; as many workers as connections the pool keeps.
DURABLE_WORKERS = 10
DURABLE_POOL_SIZE = 10
DURABLE_POOL_OVERFLOW = 10
# users.info is asked once per person and kept: people do not change names between turns.
USER_CACHE_LIMIT = 50_000
SHUTDOWN_DRAIN_S = 10.0


def bare_app() -> web.Application:
    async def handler(request: web.Request) -> web.Response:
        await request.read()
        return web.Response(status=200)

    app = web.Application(client_max_size=1024 * 1024)
    app.router.add_post("/slack/events", handler)
    app.router.add_get("/healthz", lambda r: web.json_response({"status": "ok"}))
    return app


def bolt_app(api_url: str) -> web.Application:
    from slack_bolt.async_app import AsyncApp

    app = AsyncApp(token=BOT_TOKEN, signing_secret=SIGNING_SECRET, logger=logging.getLogger("peer.bolt"))
    app.client.base_url = api_url  # its one auth.test is answered by the benchmark's fake Slack

    @app.command(re.compile(r"^/"))
    async def command(ack):
        await ack()

    @app.event("message")
    async def message(ack):
        await ack()

    @app.view(re.compile(".*"))
    async def submission(ack):
        await ack()

    web_app = app.web_app(path="/slack/events")
    web_app.router.add_get("/healthz", lambda r: web.json_response({"status": "ok"}))
    return web_app


# ---- the durable peer --------------------------------------------------------------------------------


def durable_tables() -> tuple[Any, Any, Any]:
    from sqlalchemy import Column, DateTime, Integer, MetaData, String, Table, Text
    from sqlalchemy.dialects.postgresql import JSONB

    metadata = MetaData()
    inbox = Table(
        "inbox_events", metadata,
        Column("event_id", String(64), primary_key=True),  # Slack's retries of one event insert nothing
        Column("team_id", String(32), nullable=False),
        Column("user_id", String(32), nullable=False),
        Column("channel", String(32), nullable=False),
        Column("text", Text, nullable=False),
        Column("received_at", DateTime(timezone=True), nullable=False),
        Column("done_at", DateTime(timezone=True)),
    )
    dialogs = Table(
        "dialog_states", metadata,
        Column("team_id", String(32), primary_key=True),
        Column("user_id", String(32), primary_key=True),
        Column("state", JSONB, nullable=False),
        Column("version", Integer, nullable=False),
        Column("updated_at", DateTime(timezone=True), nullable=False),
    )
    return metadata, inbox, dialogs


def next_state(state: dict[str, Any], text: str, profile: dict[str, Any]) -> tuple[dict[str, Any], str]:
    """A dialog that just collects what the person types: "ticket" starts over, every other
    message is kept as the next field. The answer names the step, short as a bot's prompt."""
    if text.strip().lower() == "ticket" or not state:
        state = {"step": 0, "fields": [], "name": profile.get("real_name") or ""}
        return state, f"Hello {state['name']}, what is it about? (step 1)"
    fields = [*state.get("fields", []), text[:500]]
    step = int(state.get("step", 0)) + 1
    return {**state, "step": step, "fields": fields}, f"Noted. (step {step + 1})"


class DurablePeer:
    def __init__(self, api_url: str, database_url: str) -> None:
        self.api_url = api_url
        self.database_url = database_url
        self.queues: list[asyncio.Queue[tuple[str, str, str, str, str]]] = [
            asyncio.Queue() for _ in range(DURABLE_WORKERS)]
        self.profiles: dict[str, dict[str, Any]] = {}
        self.metadata, self.inbox, self.dialogs = durable_tables()
        self.tasks: list[asyncio.Task[None]] = []
        self.log = logging.getLogger("peer.durable")

    async def start(self) -> web.Application:
        import aiohttp
        from slack_bolt.async_app import AsyncApp
        from slack_sdk.web.async_client import AsyncWebClient
        from sqlalchemy.ext.asyncio import create_async_engine

        # One HTTP session for every Web API call, as a bot in production keeps (slack_sdk
        # opens a session per call without one).
        self.session = aiohttp.ClientSession()
        self.client = AsyncWebClient(token=BOT_TOKEN, base_url=self.api_url, session=self.session)
        self.engine = create_async_engine(self.database_url, pool_size=DURABLE_POOL_SIZE,
                                          max_overflow=DURABLE_POOL_OVERFLOW)
        async with self.engine.begin() as conn:
            await conn.run_sync(self.metadata.create_all)
        # process_before_response: the HTTP answer leaves after the listener returned, so the
        # ack really comes after the insert (Bolt otherwise acks events before the listener).
        app = AsyncApp(client=self.client, signing_secret=SIGNING_SECRET, process_before_response=True,
                       logger=logging.getLogger("peer.durable.bolt"))

        @app.event("message")
        async def message(ack, body, event):
            await self.accept(body, event)
            await ack()

        @app.command(re.compile(r"^/"))
        async def command(ack):
            await ack()

        @app.view(re.compile(".*"))
        async def submission(ack):
            await ack()

        self.tasks = [asyncio.create_task(self.work(q)) for q in self.queues]
        await self.recover()
        web_app = app.web_app(path="/slack/events")
        web_app.router.add_get("/healthz", lambda r: web.json_response({"status": "ok"}))
        return web_app

    def queue_for(self, team: str, user: str) -> asyncio.Queue[tuple[str, str, str, str, str]]:
        return self.queues[zlib.crc32(f"{team}:{user}".encode()) % len(self.queues)]

    async def accept(self, body: dict[str, Any], event: dict[str, Any]) -> None:
        """The event in the database before the ack; a repeated event id is acked, not queued."""
        from sqlalchemy import func
        from sqlalchemy.dialects.postgresql import insert

        if event.get("subtype") or event.get("bot_id") or not event.get("user"):
            return  # edits, joins and bots' own messages are not a person's turn
        item = (str(body["event_id"]), str(body.get("team_id") or ""), str(event["user"]),
                str(event["channel"]), str(event.get("text") or ""))
        async with self.engine.begin() as conn:
            inserted = await conn.execute(
                insert(self.inbox).values(event_id=item[0], team_id=item[1], user_id=item[2], channel=item[3],
                                          text=item[4], received_at=func.now())
                .on_conflict_do_nothing(index_elements=["event_id"]))
        if inserted.rowcount:
            self.queue_for(item[1], item[2]).put_nowait(item)

    async def recover(self) -> None:
        """Events stored but not done when the process stopped are worked again at start."""
        from sqlalchemy import select

        i = self.inbox
        async with self.engine.connect() as conn:
            rows = (await conn.execute(select(i.c.event_id, i.c.team_id, i.c.user_id, i.c.channel, i.c.text)
                                       .where(i.c.done_at.is_(None)).order_by(i.c.received_at))).all()
        for row in rows:
            self.queue_for(row.team_id, row.user_id).put_nowait(tuple(row))

    async def profile(self, user: str) -> dict[str, Any]:
        cached = self.profiles.get(user)
        if cached is None:
            answer = await self.client.users_info(user=user)
            cached = answer["user"]
            if len(self.profiles) >= USER_CACHE_LIMIT:
                self.profiles.pop(next(iter(self.profiles)))
            self.profiles[user] = cached
        return cached

    async def turn(self, item: tuple[str, str, str, str, str]) -> None:
        from sqlalchemy import func, insert, select, update

        event_id, team, user, channel, text = item
        profile = await self.profile(user)
        d, i = self.dialogs, self.inbox
        async with self.engine.begin() as conn:
            row = (await conn.execute(select(d.c.state, d.c.version)
                                      .where(d.c.team_id == team, d.c.user_id == user).with_for_update())).first()
            state, answer = next_state(row.state if row else {}, text, profile)
            if row is None:
                await conn.execute(insert(d).values(team_id=team, user_id=user, state=state, version=1,
                                                    updated_at=func.now()))
            else:
                await conn.execute(update(d).where(d.c.team_id == team, d.c.user_id == user,
                                                   d.c.version == row.version)
                                   .values(state=state, version=row.version + 1, updated_at=func.now()))
            await conn.execute(update(i).where(i.c.event_id == event_id).values(done_at=func.now()))
        await self.client.chat_postMessage(channel=channel, text=answer)

    async def work(self, queue: asyncio.Queue[tuple[str, str, str, str, str]]) -> None:
        while True:
            item = await queue.get()
            try:
                await self.turn(item)
            except Exception:  # one failed turn is logged (the benchmark counts it), the worker goes on
                self.log.exception("turn of event %s failed", item[0])
            finally:
                queue.task_done()

    async def stop(self) -> None:
        """The queued turns finish (bounded), then the workers, the pool and the session close."""
        try:
            await asyncio.wait_for(asyncio.gather(*(q.join() for q in self.queues)), SHUTDOWN_DRAIN_S)
        except TimeoutError:
            self.log.warning("stopped with turns still queued (they are in the database, not done)")
        for task in self.tasks:
            task.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)
        await self.engine.dispose()
        await self.session.close()


async def serve_durable(port: int, api_url: str, database_url: str) -> None:
    peer = DurablePeer(api_url, database_url)
    web_app = await peer.start()
    runner = web.AppRunner(web_app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, LOOPBACK, port, backlog=2048)
    await site.start()
    stopping = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stopping.set)
    await stopping.wait()
    await site.stop()
    await peer.stop()
    await runner.cleanup()


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("kind", choices=("bare", "bolt", "durable"))
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--api-url", default="")
    p.add_argument("--database-url", default="", help="durable: postgresql+asyncpg://... (a fresh database)")
    args = p.parse_args()
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if args.kind == "durable":
        if not args.database_url:
            p.error("durable: --database-url is required")
        asyncio.run(serve_durable(args.port, args.api_url, args.database_url))
        return
    app = bare_app() if args.kind == "bare" else bolt_app(args.api_url)
    web.run_app(app, host=LOOPBACK, port=args.port, access_log=None, print=None, backlog=2048)


if __name__ == "__main__":
    main()
