"""The load generator (aiohttp client): Slack conversations walking a whole ticket dialog,
Teams conversations doing the same, closed-loop ack saturation, and the memory walk.

Every loop is bounded in count and in time: a phase stops starting new conversations at its
deadline, and every wait for the bot's answer has a timeout (a missed answer is a lost turn).
"""

from __future__ import annotations

import asyncio
import itertools
import json
import os
import time
from dataclasses import dataclass, field
from typing import Any, Awaitable, Callable, Sequence

import aiohttp

from bench.common import (
    DIALOG,
    FORM_VALUES,
    TEAMS_DIALOG,
    TENANT,
    APP_ID,
    Recorder,
    cpu_seconds,
    dm_event,
    machine_busy_seconds,
    slack_headers,
    slash_command,
    view_submission,
)
from bench.fakes import FakePlatforms, user_email

TURN_TIMEOUT_S = 30.0  # the bot's answer to one message must arrive within this
REQUEST_TIMEOUT_S = 15.0
SLACK_ACK_LIMIT_S = 3.0
# The concurrent conversations start one after the other over this time, as people do (and as
# load tests ramp up): 200 conversations opening 200 new connections in the same millisecond
# measure the load generator's own connection set-up, not the server.
RAMP_S = 2.0
FORM = "application/x-www-form-urlencoded"
JSON = "application/json"


def session(concurrency: int) -> aiohttp.ClientSession:
    connector = aiohttp.TCPConnector(limit=concurrency + 16, limit_per_host=0, ttl_dns_cache=None)
    return aiohttp.ClientSession(connector=connector, timeout=aiohttp.ClientTimeout(total=REQUEST_TIMEOUT_S))


async def post(http: aiohttp.ClientSession, url: str, body: str, headers: dict[str, str], rec: Recorder,
               kind: str) -> int | None:
    """POST and record the latency of the HTTP answer; the status, or None on a failure."""
    t0 = time.perf_counter()
    try:
        async with http.post(url, data=body.encode(), headers=headers) as response:
            await response.read()
            elapsed = time.perf_counter() - t0
            if response.status in (200, 202):
                rec.ok(kind, elapsed)
                if kind.startswith("slack.") and elapsed > SLACK_ACK_LIMIT_S:
                    rec.error(kind + ".over_3s", f"{elapsed:.2f} s")
                return response.status
            rec.error(kind, f"HTTP {response.status}")
            return response.status
    except (aiohttp.ClientError, asyncio.TimeoutError, OSError) as exc:
        rec.error(kind, repr(exc))
        return None


async def run_bounded(count: int, concurrency: int, deadline: float, work: Callable[[int], Awaitable[None]],
                      ramp: float = 0.0) -> int:
    """Run work(0..count-1) with at most `concurrency` at a time; none starts after the deadline.
    The slots start one after the other over `ramp` seconds. Returns how many were started."""
    counter = itertools.count()
    started = 0
    slots = min(concurrency, count)

    async def worker(slot: int) -> None:
        nonlocal started
        if ramp:
            await asyncio.sleep(ramp * slot / slots)
        while time.monotonic() < deadline:
            i = next(counter)
            if i >= count:
                return
            started += 1
            await work(i)

    await asyncio.gather(*(worker(slot) for slot in range(slots)))
    return started


@dataclass
class Outcome:
    rec: Recorder = field(default_factory=Recorder)
    completed: int = 0
    lost_turns: int = 0
    lost_samples: list[str] = field(default_factory=list)
    users: list[str] = field(default_factory=list)  # conversations that completed

    def lost(self, what: str) -> None:
        self.lost_turns += 1
        if len(self.lost_samples) < 20:
            self.lost_samples.append(what)


# ---- Slack conversations ---------------------------------------------------------------------------


class SlackDialogs:
    """Each conversation is one person (distinct Slack user id) who
    1. walks the whole guided ticket dialog by direct messages (10 `message.im` events, each
       sent when the bot's previous answer has arrived in the DM) -> a ticket;
    2. types /tickets (answered through the response_url);
    3. types /quote (a modal opens: views.open, then views.update with the form);
    4. types /ticket and submits the modal's form (view_submission) -> a second ticket, whose
       number arrives by DM.
    The request of step s of conversation i goes to server (i + s) % N: with several processes,
    consecutive messages of one conversation are taken by different processes."""

    POSTS_PER_CONVERSATION = len(DIALOG) + 1
    TICKETS_PER_CONVERSATION = 2

    def __init__(self, fakes: FakePlatforms, urls: Sequence[str], prefix: str, dialog: Sequence[str] = DIALOG,
                 extras: bool = True, think_s: float = 0.0, turn_timeout: float = TURN_TIMEOUT_S,
                 ramp: float = RAMP_S) -> None:
        self.fakes = fakes
        self.urls = [u + "/slack/events" for u in urls]
        self.prefix = prefix
        self.dialog = dialog
        self.extras = extras
        # A person reads the answer before typing the next message: `think_s` between the
        # answer's arrival and the next message (0: at once, a closed loop).
        self.think_s = think_s
        self.turn_timeout = turn_timeout
        self.ramp = ramp
        # No message is sent after this time (monotonic): a phase bounded in time ends its
        # dialogs half-way rather than running past its end.
        self.stop_at = float("inf")
        self.stopped_early = 0
        # Set to a dict to keep each person's answer times in order (a few people, not thousands).
        self.answers_by_user: dict[str, list[float]] | None = None
        self.out = Outcome()
        self.http: aiohttp.ClientSession | None = None
        self.on_done: Callable[[int], None] | None = None

    def user(self, i: int) -> str:
        return f"U{self.prefix}{i:05d}"

    def url(self, i: int, step: int) -> str:
        return self.urls[(i + step) % len(self.urls)]

    async def run(self, count: int, concurrency: int, seconds: float, start: int = 0) -> Outcome:
        async with session(concurrency) as http:
            self.http = http
            t0 = time.perf_counter()
            await run_bounded(count, concurrency, time.monotonic() + seconds, lambda i: self.conversation(start + i),
                              ramp=self.ramp)
            self.out.rec.wall = time.perf_counter() - t0
        return self.out

    async def _send(self, i: int, step: int, body: str, ctype: str, kind: str) -> bool:
        assert self.http is not None
        status = await post(self.http, self.url(i, step), body, slack_headers(body, ctype), self.out.rec, kind)
        return status == 200

    async def conversation(self, i: int) -> None:
        user, out, fakes = self.user(i), self.out, self.fakes
        channel = f"D{user}"
        posts = 0
        for step, text in enumerate(self.dialog):
            if step and self.think_s:
                await asyncio.sleep(self.think_s)
            if time.monotonic() >= self.stop_at:
                self.stopped_early += 1
                return
            t0 = time.perf_counter()
            body = dm_event(user, text.format(n=i), f"Ev{self.prefix}{i:05d}s{step:02d}")
            if not await self._send(i, step, body, JSON, "slack.dm_event"):
                return
            posts += 1
            if not await fakes.posts.wait(channel, posts, self.turn_timeout):
                out.lost(f"{user} step {step}: no answer in the DM within {self.turn_timeout:.0f} s")
                return
            answered = time.perf_counter() - t0
            out.rec.ok("slack.dm_turn_reply", answered)
            if self.answers_by_user is not None:
                self.answers_by_user.setdefault(user, []).append(round(answered, 3))
        if self.extras:
            step = len(self.dialog)
            t0 = time.perf_counter()
            body = slash_command(user, "/tickets", "", fakes.response_url(user, 1), f"{user}.1.bench")
            if not await self._send(i, step, body, FORM, "slack.slash_tickets"):
                return
            if not await fakes.responses.wait(user, 1, TURN_TIMEOUT_S):
                out.lost(f"{user}: no /tickets answer")
                return
            out.rec.ok("slack.slash_tickets_reply", time.perf_counter() - t0)
            t0 = time.perf_counter()
            body = slash_command(user, "/quote", "", fakes.response_url(user, 2), f"{user}.2.bench")
            if not await self._send(i, step + 1, body, FORM, "slack.slash_quote"):
                return
            if not await fakes.view_updates.wait(user, 1, TURN_TIMEOUT_S):
                out.lost(f"{user}: the /quote modal was not filled in")
                return
            out.rec.ok("slack.slash_quote_modal", time.perf_counter() - t0)
            t0 = time.perf_counter()
            body = slash_command(user, "/ticket", "", fakes.response_url(user, 3), f"{user}.3.bench")
            if not await self._send(i, step + 2, body, FORM, "slack.slash_ticket"):
                return
            if not await fakes.view_updates.wait(user, 2, TURN_TIMEOUT_S) or user not in fakes.forms:
                out.lost(f"{user}: the /ticket modal was not filled in")
                return
            out.rec.ok("slack.slash_ticket_modal", time.perf_counter() - t0)
            form = fakes.forms.pop(user)
            t0 = time.perf_counter()
            values = {**FORM_VALUES, "email": user_email(user), "company": f"Bench Brewery {i}"}
            if not await self._send(i, step + 3, view_submission(user, form, values), FORM, "slack.view_submission"):
                return
            posts += 1
            if not await fakes.posts.wait(channel, posts, TURN_TIMEOUT_S):
                out.lost(f"{user}: no ticket number in the DM after the modal")
                return
            out.rec.ok("slack.view_submission_reply", time.perf_counter() - t0)
        out.completed += 1
        out.users.append(user)
        if self.on_done is not None:
            self.on_done(i)


# ---- Teams conversations ---------------------------------------------------------------------------


class TeamsDialogs:
    """Each conversation is one person in a personal chat with the bot, walking the same dialog
    with authenticated message activities (a Bot Framework RS256 token, checked against the
    fake's JWKS). Teams is answered after the work: the latency includes it."""

    POSTS_PER_CONVERSATION = len(TEAMS_DIALOG)

    def __init__(self, fakes: FakePlatforms, urls: Sequence[str], prefix: str) -> None:
        self.fakes = fakes
        self.urls = [u + "/api/messages" for u in urls]
        self.prefix = prefix
        self.out = Outcome()
        self.token = fakes.teams_token()
        self.http: aiohttp.ClientSession | None = None

    def user(self, i: int) -> str:
        return f"29:bench-{self.prefix}{i:05d}"

    def activity(self, i: int, step: int, text: str) -> dict[str, Any]:
        user = self.user(i)
        return {
            "type": "message", "id": f"act-{self.prefix}-{i}-{step}", "timestamp": "2026-11-26T09:00:00.000Z",
            "serviceUrl": self.fakes.service_url, "channelId": "msteams",
            "from": {"id": user, "name": f"Bench {user}", "aadObjectId": f"aad-{user}"},
            "conversation": {"conversationType": "personal", "id": f"a:bench-{self.prefix}{i:05d}", "tenantId": TENANT},
            "recipient": {"id": "28:" + APP_ID, "name": "CareDesk"},
            "textFormat": "plain", "text": text, "locale": "en-US",
            "entities": [{"type": "clientInfo", "locale": "en-US", "country": "BE", "platform": "Web"}],
            "channelData": {"tenant": {"id": TENANT}},
        }

    async def run(self, count: int, concurrency: int, seconds: float) -> Outcome:
        async with session(concurrency) as http:
            self.http = http
            t0 = time.perf_counter()
            await run_bounded(count, concurrency, time.monotonic() + seconds, self.conversation)
            self.out.rec.wall = time.perf_counter() - t0
        return self.out

    async def conversation(self, i: int) -> None:
        assert self.http is not None
        out = self.out
        cid = f"a:bench-{self.prefix}{i:05d}"
        headers = {"Content-Type": JSON, "Authorization": f"Bearer {self.token}"}
        for step, text in enumerate(TEAMS_DIALOG):
            url = self.urls[(i + step) % len(self.urls)]
            status = await post(self.http, url, json.dumps(self.activity(i, step, text.format(n=i))), headers,
                                out.rec, "teams.message")
            if status not in (200, 202):
                return
            if not await self.fakes.teams_posts.wait(cid, step + 1, TURN_TIMEOUT_S):
                out.lost(f"{cid} step {step}: no answer within {TURN_TIMEOUT_S:.0f} s")
                return
        out.completed += 1
        out.users.append(self.user(i))


# ---- ack saturation ----------------------------------------------------------------------------------


@dataclass
class Saturation:
    rec: Recorder
    sent: int
    acked: int
    seconds: float
    acks_per_s: float
    by_kind: dict[str, int]
    serving_cpu_s: float = 0.0  # CPU the machine spent during the round, but the generator's

    @property
    def cpu_ms_per_ack(self) -> float | None:
        return round(self.serving_cpu_s / self.acked * 1000, 3) if self.acked else None


async def saturate(urls: Sequence[str], total: int, concurrency: int, prefix: str, form_view: dict[str, Any],
                   response_url: Callable[[str, int], str], seconds: float) -> Saturation:
    """Closed loop: `concurrency` senders post the Slack request mix back to back (no waiting for
    the bot's answers): per sender, the 10 dialog DMs, /tickets, /quote, /ticket and a
    view_submission, again and again, until `total` requests are acked or the time is up.
    The same requests go to CareDesk and to the peers."""
    rec = Recorder()
    kinds = ["slack.dm_event"] * len(DIALOG) + ["slack.slash_tickets", "slack.slash_quote", "slack.slash_ticket",
                                                  "slack.view_submission"]
    counter = itertools.count()
    deadline = time.monotonic() + seconds
    by_kind: dict[str, int] = {}
    targets = [u + "/slack/events" for u in urls]

    def request(j: int, n: int) -> tuple[str, str, str]:
        user = f"S{prefix}{j:04d}"
        step = (n + j) % len(kinds)  # senders start at different places: the mix holds at any count
        kind = kinds[step]
        if kind == "slack.dm_event":
            return kind, dm_event(user, DIALOG[step].format(n=j), f"Ev{prefix}{j:04d}n{n:06d}"), JSON
        if kind == "slack.view_submission":
            values = {**FORM_VALUES, "email": user_email(user), "company": f"Bench Brewery {j}"}
            return kind, view_submission(user, form_view, values), FORM
        command = {"slack.slash_tickets": "/tickets", "slack.slash_quote": "/quote", "slack.slash_ticket": "/ticket"}[kind]
        return kind, slash_command(user, command, "", response_url(user, n), f"{user}.{n}.bench"), FORM

    async def sender(j: int, http: aiohttp.ClientSession) -> None:
        n = 0
        while time.monotonic() < deadline and next(counter) < total:
            kind, body, ctype = request(j, n)
            status = await post(http, targets[(j + n) % len(targets)], body, slack_headers(body, ctype), rec, kind)
            if status == 200:
                by_kind[kind] = by_kind.get(kind, 0) + 1
            n += 1

    async with session(concurrency) as http:
        busy0, mine0 = machine_busy_seconds(), cpu_seconds(os.getpid(), with_children=False)
        t0 = time.perf_counter()
        await asyncio.gather(*(sender(j, http) for j in range(concurrency)))
        elapsed = time.perf_counter() - t0
        busy1, mine1 = machine_busy_seconds(), cpu_seconds(os.getpid(), with_children=False)
    acked = sum(by_kind.values())
    # The machine's busy CPU less the generator's own: what the target cost (its processes, its
    # database, the kernel's share of their sockets), comparable between hosts of unlike speed.
    serving = max(0.0, (busy1 - busy0) - (mine1 - mine0))
    return Saturation(rec, min(next(counter), total), acked, elapsed, acked / elapsed if elapsed else 0.0, by_kind,
                      serving)
