"""Fault scenarios against REAL CareDesk processes (`caredesk serve`, `caredesk worker`) on
127.0.0.1, with a local fake Slack Web API (tests/slack/conftest.py's FakeSlack, made slow where
a kill must land mid-call). Used by bench/faults/run.py and by tests/faults/test_processes.py.

Each scenario returns a dict summary and raises AssertionError when something was lost or doubled.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web
from aiohttp.test_utils import TestServer

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))


from tests.faults.conftest import (
    CREATED,
    ERROR_TEXTS,
    add_users,
    description_of,
    outage,
    script_for,
)
from tests.slack.conftest import (
    BOT_TOKEN,
    LOTTE,
    SIGNING_SECRET,
    TEAM,
    FakeSlack,
    block_text,
    load_json,
    sign,
)

CAREDESK = str(ROOT / ".venv" / "bin" / "caredesk")
FIXED_NOW = "2026-11-26T10:00"  # a Thursday in office hours
LOTTE_EMAIL = "lotte.peeters@brasseriedeklok.be"


class SlowFakeSlack(FakeSlack):
    """The fake Slack Web API with per-method delays. A call whose client died before the delay
    ran out is not performed (aiohttp cancels the handler): what a platform does with a request
    that never fully reached it."""

    def __init__(self) -> None:
        super().__init__()
        self.delays: dict[str, float] = {}
        self.started: list[str] = []

    async def start(self) -> None:
        app = web.Application()
        app.router.add_route("*", "/api/{method}", self._slow_api)
        self.server = TestServer(app, host="127.0.0.1", handler_cancellation=True)
        await self.server.start_server()

    async def _slow_api(self, request: web.Request) -> web.Response:
        method = request.match_info["method"]
        self.started.append(method)
        if self.delays.get(method):
            await asyncio.sleep(self.delays[method])
        return await self._api(request)

    def posts_to(self, user: str) -> list[str]:
        return [block_text(c.json_param("blocks")) for c in self.messages() if c.params.get("channel") == f"D{user}"]


# The inbox's lease (bot/app/inbox.py): how long a killed process's turn waits before another takes it.
LEASE_S = 15.0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def process_env(database_url: str, fake: FakeSlack) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SLACK_", "MICROSOFT_", "CAREDESK_"))}
    env.update(DATABASE_URL=database_url, SLACK_BOT_TOKEN=BOT_TOKEN, SLACK_SIGNING_SECRET=SIGNING_SECRET,
               SLACK_API_URL=fake.url, CAREDESK_FIXED_NOW=FIXED_NOW, CAREDESK_LOG_LEVEL="WARNING")
    return env


class Server:
    """One `caredesk serve` process."""

    def __init__(self, database_url: str, fake: FakeSlack, log_dir: Path, name: str) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = open(log_dir / f"{name}.log", "wb")
        self.proc = subprocess.Popen([CAREDESK, "serve", "--host", "127.0.0.1", "--port", str(self.port)],
                                     env=process_env(database_url, fake), stdout=self.log, stderr=subprocess.STDOUT,
                                     cwd=ROOT)

    async def ready(self, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        async with aiohttp.ClientSession() as session:
            while time.monotonic() < deadline:
                assert self.proc.poll() is None, f"the server exited with {self.proc.returncode}"
                try:
                    async with session.get(self.url + "/healthz") as r:
                        if r.status == 200:
                            return
                except aiohttp.ClientError:
                    pass
                await asyncio.sleep(0.1)
        raise AssertionError("the server did not start")

    def kill9(self) -> None:
        os.kill(self.proc.pid, signal.SIGKILL)
        self.proc.wait()

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.kill9()
        self.log.close()


def worker(database_url: str, fake: FakeSlack, log_dir: Path, name: str, lease: float) -> subprocess.Popen:
    log = open(log_dir / f"{name}.log", "wb")
    return subprocess.Popen([CAREDESK, "worker", "--interval", "0.3", "--lease-seconds", str(lease)],
                            env=process_env(database_url, fake), stdout=log, stderr=subprocess.STDOUT, cwd=ROOT)


def dm_body(text: str, user: str, event_id: str) -> str:
    body = load_json("payloads/event_callback.app_mention.bolt.json")
    sample = load_json("payloads/event_callback.message_im.docs.json")["event"]
    body.update(team_id=TEAM, api_app_id="A111", event_id=event_id, event_time=int(time.time()),
                event={**sample, "user": user, "channel": f"D{user}", "text": text,
                       "ts": f"{time.time():.6f}", "event_ts": f"{time.time():.6f}"})
    body.pop("enterprise_id", None)
    return json.dumps(body)


async def send_dm(session: aiohttp.ClientSession, server: Server, text: str, user: str, event_id: str,
                  retry: int = 0) -> int:
    body = dm_body(text, user, event_id)
    headers = {"Content-Type": "application/json", **sign(body)}
    if retry:
        headers.update({"X-Slack-Retry-Num": str(retry), "X-Slack-Retry-Reason": "http_error"})
    try:
        async with session.post(server.url + "/slack/events", data=body.encode(), headers=headers) as r:
            return r.status
    except aiohttp.ClientError:
        return 599  # the process is gone: Slack would retry


async def wait_posts(fake: SlowFakeSlack, user: str, count: int, timeout: float = 15.0) -> list[str]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        posts = fake.posts_to(user)
        if len(posts) >= count:
            return posts
        await asyncio.sleep(0.05)
    raise AssertionError(f"{user}: expected {count} answers, got {fake.posts_to(user)}")


async def prepare(database_url: str) -> None:
    from datetime import datetime, timezone

    from bot.domain.directory import read_directory_file
    from bot.domain.model import Binding
    from bot.store.sql import SqlStore

    store = SqlStore(database_url)
    try:
        await store.initialize()
        await store.replace_directory(read_directory_file(ROOT / "examples" / "directory.yaml"))
        # The bench's workspace vouches for its people's e-mails (issue 17: only a bound one does).
        await store.bind_tenant(Binding("slack", TEAM, None), datetime.now(timezone.utc))
    finally:
        await store.close()


async def open_store(database_url: str):
    from bot.store.sql import SqlStore

    store = SqlStore(database_url)
    await store.initialize()
    return store


# ---- scenarios -------------------------------------------------------------------------------------------


async def sigkill_mid_dialog(database_url: str, log_dir: Path) -> dict[str, Any]:
    """kill -9 a server between two turns and during a turn; another process continues the
    conversation at the same question, answering the killed turn itself; one ticket."""
    await prepare(database_url)
    fake = SlowFakeSlack()
    await fake.start()
    user, script = LOTTE, script_for(LOTTE)
    servers: list[Server] = []
    try:
        async with aiohttp.ClientSession() as session:
            a = Server(database_url, fake, log_dir, "serve-a")
            servers.append(a)
            await a.ready()
            for i, text in enumerate(script[:3]):
                assert await send_dm(session, a, text, user, f"EvK{i}") == 200
                await wait_posts(fake, user, i + 1)
            asked = fake.posts_to(user)[-1]
            a.kill9()  # between turns: the state was saved after the last answer

            b = Server(database_url, fake, log_dir, "serve-b")
            servers.append(b)
            await b.ready()
            # during a turn: acknowledged, then killed while it looks the person up (slow users.info)
            fake.delays["users.info"] = 3.0
            assert await send_dm(session, b, script[3], user, "EvK3") == 200
            await asyncio.sleep(0.5)
            b.kill9()
            fake.delays.clear()
            assert len(fake.posts_to(user)) == 3, "the killed turn was not supposed to be answered"

            c = Server(database_url, fake, log_dir, "serve-c")
            servers.append(c)
            await c.ready()
            # Slack had its 200 and never resends: the acknowledged answer was written down before
            # the ack, and once the dead process's lease runs out, the new one answers it without
            # the person typing it again.
            posts = await wait_posts(fake, user, 4, timeout=LEASE_S + 15)
            assert "describe" in posts[-1].lower(), posts[-1]
            for i, text in enumerate(script[4:], start=4):
                assert await send_dm(session, c, text, user, f"EvK{i}") == 200
                await wait_posts(fake, user, i + 1)
        posts = fake.posts_to(user)
        created = [m.group(1) for p in posts for m in [CREATED.search(p)] if m]
        store = await open_store(database_url)
        try:
            tickets = await store.list_tickets()
        finally:
            await store.close()
        assert len(created) == 1 and len(tickets) == 1 and tickets[0].number == created[0], (created, tickets)
        assert "module" in asked.lower()
        return {"scenario": "SIGKILL mid-dialog", "processes": 3, "answers": len(posts), "tickets": len(tickets),
                "ticket": created[0],
                "resumed_at": "module question, then the killed turn answered by the next process"}
    finally:
        for s in servers:
            s.stop()
        await fake.close()


async def sigkill_mid_delivery(database_url: str, log_dir: Path, messages: int = 6,
                               lease: float = 3.0) -> dict[str, Any]:
    """kill -9 a worker while Slack is slowly accepting an outbox message; another worker
    delivers everything after the lease; nothing lost, nothing twice."""
    from zoneinfo import ZoneInfo

    from bot.domain.clock import parse_local
    from bot.app.notifications import ESCALATION_TAKEN
    from bot.store.ports import NewOutboxMessage

    await prepare(database_url)
    fake = SlowFakeSlack()
    await fake.start()
    store = await open_store(database_url)
    # The processes' clock (CAREDESK_FIXED_NOW, running from their start): messages written at
    # real time would not be due for them once the real time of day is past FIXED_NOW's.
    now = parse_local(FIXED_NOW, ZoneInfo("Europe/Brussels"))
    numbers = [f"CS-2026-{i:05d}" for i in range(1, messages + 1)]
    await store.save_conversation_ref("slack", f"{TEAM}:{LOTTE}", {"team_id": TEAM, "user_id": LOTTE,
                                      "channel_id": f"D{LOTTE}"}, now, email=LOTTE_EMAIL)
    await store.enqueue([NewOutboxMessage(f"kill:{n}", LOTTE_EMAIL, ESCALATION_TAKEN,
                                          {"ticket": n, "by_name": "Naïda Jelacic", "channel": "slack"})
                         for n in numbers], now)
    fake.delays["chat.postMessage"] = 1.0
    procs: list[subprocess.Popen] = []
    try:
        a = worker(database_url, fake, log_dir, "worker-a", lease)
        procs.append(a)
        deadline = time.monotonic() + 30
        while not (len(fake.messages()) >= 2 and fake.started.count("chat.postMessage") > len(fake.messages())):
            assert time.monotonic() < deadline, "worker A delivered nothing"
            await asyncio.sleep(0.05)
        await asyncio.sleep(0.3)  # well inside the next chat.postMessage
        os.kill(a.pid, signal.SIGKILL)
        a.wait()
        killed_after = len(fake.messages())
        in_flight = [m for m in await store.list_outbox() if m.status == "sending"]
        b = worker(database_url, fake, log_dir, "worker-b", lease)
        procs.append(b)
        deadline = time.monotonic() + 60
        while [m for m in await store.list_outbox() if m.status != "sent"]:
            assert time.monotonic() < deadline, f"not caught up: {await store.list_outbox()}"
            await asyncio.sleep(0.2)
        import re

        delivered = [re.search(r"CS-2026-\d{5}", block_text(c.json_param("blocks"))).group(0) for c in fake.messages()]
        assert sorted(delivered) == numbers, delivered
        return {"scenario": "SIGKILL mid-delivery", "messages": messages, "sent_before_kill": killed_after,
                "reserved_by_the_dead_worker": len(in_flight), "delivered": len(delivered),
                "duplicates": len(delivered) - len(set(delivered)), "lease_s": lease}
    finally:
        for p in procs:
            if p.poll() is None:
                p.terminate()
                p.wait(10)
        await store.close()
        await fake.close()


async def two_servers_one_conversation(database_url: str, log_dir: Path, users: int = 4) -> dict[str, Any]:
    """Two `caredesk serve` processes on one PostgreSQL database; every event of every
    conversation delivered to both at once (Slack's retry landing on the other process)."""
    await prepare(database_url)
    fake = SlowFakeSlack()
    await fake.start()
    people = add_users(fake, users)
    a = Server(database_url, fake, log_dir, "serve-1")
    b = Server(database_url, fake, log_dir, "serve-2")
    try:
        await asyncio.gather(a.ready(), b.ready())
        async with aiohttp.ClientSession() as session:
            async def converse(user: str) -> None:
                for step, text in enumerate(script_for(user)):
                    first, second = (a, b) if step % 2 else (b, a)
                    statuses = await asyncio.gather(send_dm(session, first, text, user, f"Ev{user}{step}"),
                                                    send_dm(session, second, text, user, f"Ev{user}{step}", retry=1))
                    assert statuses == [200, 200], statuses
                    await wait_posts(fake, user, step + 1)

            await asyncio.gather(*(converse(u) for u in people))
        await asyncio.sleep(1.0)  # let a doubled answer show up, if there were one
        store = await open_store(database_url)
        try:
            tickets = await store.list_tickets(limit=100)
        finally:
            await store.close()
        assert sorted(t.description for t in tickets) == sorted(description_of(u) for u in people)
        for user in people:
            posts = fake.posts_to(user)
            assert len(posts) == len(script_for(user)), (user, posts)
            assert len([p for p in posts if CREATED.search(p)]) == 1
        return {"scenario": "two servers, one database", "conversations": users,
                "events_sent": 2 * users * len(script_for(people[0])),
                "answers": len(fake.messages()), "tickets": len(tickets)}
    finally:
        a.stop()
        b.stop()
        await fake.close()


async def database_outage(database_url: str, log_dir: Path, users: int = 4, seconds: float = 2.0) -> dict[str, Any]:
    """The database goes away under a `caredesk serve` process mid-load and comes back."""
    await prepare(database_url)
    fake = SlowFakeSlack()
    await fake.start()
    people = add_users(fake, users)
    server = Server(database_url, fake, log_dir, "serve-outage")
    stats = {"5xx": 0, "apologies": 0}
    try:
        await server.ready()
        async with aiohttp.ClientSession() as session:
            async def converse(user: str) -> None:
                for step, text in enumerate(script_for(user)):
                    for attempt in range(300):
                        before = len(fake.posts_to(user))
                        status = await send_dm(session, server, text, user, f"Ev{user}{step}", retry=attempt)
                        if status >= 500:
                            stats["5xx"] += 1
                            await asyncio.sleep(0.2)
                            continue
                        deadline = time.monotonic() + 10
                        while len(fake.posts_to(user)) == before and time.monotonic() < deadline:
                            await asyncio.sleep(0.05)
                        new = fake.posts_to(user)[before:]
                        if any(e in p for p in new for e in ERROR_TEXTS):
                            stats["apologies"] += 1
                            await asyncio.sleep(0.2)
                            continue
                        break
                    await asyncio.sleep(0.1)

            async def cut() -> None:
                while len(fake.messages()) < 2 * users:
                    await asyncio.sleep(0.02)
                await outage(database_url.rsplit("/", 1)[1], seconds)

            await asyncio.gather(cut(), *(converse(u) for u in people))
        store = await open_store(database_url)
        try:
            tickets = await store.list_tickets(limit=100)
        finally:
            await store.close()
        assert stats["5xx"] + stats["apologies"] > 0, "the outage hit nothing"
        assert sorted(t.description for t in tickets) == sorted(description_of(u) for u in people)
        for user in people:
            real = [p for p in fake.posts_to(user) if not any(e in p for e in ERROR_TEXTS)]
            assert len(real) == len(script_for(user)), (user, real)
        return {"scenario": "database outage", "outage_s": seconds, "conversations": users, **stats,
                "tickets": len(tickets)}
    finally:
        server.stop()
        await fake.close()
