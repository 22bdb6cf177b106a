"""The Slack channel: one object per server (or worker) process that holds Slack's pieces
together: the Web API client, the people cache, the messenger, the conversations, the listeners
and the Bolt app they are registered on, the HTTP route, the inbox writer the acks use and the
inbox worker that hands the work back to Bolt. The server builds it once and passes it to what
needs it."""

from __future__ import annotations

import asyncio
import logging
from typing import Any, Awaitable, Mapping, Sequence

import aiohttp
from slack_bolt.app.async_app import AsyncApp
from slack_bolt.context.async_context import AsyncBoltContext
from sqlalchemy.ext.asyncio import AsyncEngine
from slack_sdk.http_retry.async_handler import AsyncRetryHandler
from slack_sdk.signature import Clock, SignatureVerifier

from bot.app.desk import Desk
from bot.app.inbox import InboxWorker, InboxWriter, finish_or_cancel, wall_clock
from bot.app.outbox import DeliveryFailed, Undeliverable
from bot.app.runner import TurnRunner
from bot.protocol.replies import Response
from bot.store.ports import InboxItem

from adapters.shared.turns import apology
from adapters.slack.app import build_bolt_app, run_lazy_only
from adapters.slack.errors import SLACK_FAILURES, describe, for_now, retry_after
from adapters.slack.payloads import sender_of
from adapters.slack.config import SlackConfig
from adapters.slack.conversations import SlackConversations
from adapters.slack.http import SlackRoute
from adapters.slack.listeners import SlackListeners
from adapters.slack.oauth import CareDeskOAuthFlow, build_oauth_flow
from adapters.slack.people import SlackPeople
from adapters.slack.web_api import WORKSPACE_TOKEN, CHANNEL, SlackMessenger, default_retry_handlers, web_api_session, web_client

log = logging.getLogger("caredesk.slack")

SHUTDOWN_GRACE_S = 5.0
# Turns worked on at the same time by a server process's own worker; the rest wait in the inbox.
# Few is best there: every extra one delays the next ack (docs/performance.md). A `caredesk
# worker` may take more.
CONCURRENT_TURNS = 3


def _engine_of(desk: Desk) -> AsyncEngine:
    """The store's database engine: slack_sdk's installation and state stores share it."""
    engine = getattr(desk.store, "engine", None)
    if not isinstance(engine, AsyncEngine):
        raise RuntimeError("multi-workspace Slack needs CareDesk's SQL store (its installations are kept there)")
    return engine


class SlackChannel:
    def __init__(self, desk: Desk, *, config: SlackConfig | None = None, signature_clock: Clock | None = None,
                 retry_handlers: Sequence[AsyncRetryHandler] | None = None,
                 concurrency: int = CONCURRENT_TURNS) -> None:
        self.desk = desk
        self.store = desk.store
        # Without a config: the desk's `[slack]` table and this process's environment.
        self.config = config = config if config is not None else SlackConfig.load(desk.settings)
        self.conversation = TurnRunner(desk)
        handlers = list(retry_handlers) if retry_handlers is not None else default_retry_handlers()
        self.client = web_client(config, handlers)
        self.people = SlackPeople(self.client)
        self.messenger = SlackMessenger(desk, self.client, self.people, retry_handlers=handlers)
        self.pending: set[asyncio.Task[Any]] = set()
        # Requests are written to the inbox before their ack; a worker does the work: in this
        # process (`start_worker`) or in `caredesk worker` processes.
        self.inbox_worker = InboxWorker(self.store, wall_clock, {CHANNEL: self.work}, concurrency=concurrency,
                                        unreadable={CHANNEL: self.tell_unreadable})
        # The store wakes the worker when the writer has written (`InboxStore.wait_for_items`).
        self.inbox_writer = InboxWriter(self.store, wall_clock)
        self.conversations = SlackConversations(desk, self.conversation, self.people, self.messenger)
        self.listeners = SlackListeners(self.conversations, self.inbox_writer, self.spawn)
        # Multi-workspace mode: Bolt's OAuth flow, installations in CareDesk's database.
        self.oauth_flow: CareDeskOAuthFlow | None = None
        if config.multi_workspace:
            self.oauth_flow = build_oauth_flow(config, self.client, _engine_of(desk), base_url=config.public_url,
                                               contact_email=desk.settings.contact.email)
        self.app: AsyncApp | None = (build_bolt_app(config, self.client, self.listeners, self.oauth_flow)
                                     if config.serves else None)
        verifier = (SignatureVerifier(config.signing_secret, clock=signature_clock or Clock())
                    if config.signing_secret else None)
        self.route = SlackRoute(self.app, verifier, config.http_problem)
        self._worker_stop = asyncio.Event()
        self._worker_task: asyncio.Task[None] | None = None
        self._session: aiohttp.ClientSession | None = None

    def open_session(self) -> None:
        """Share one HTTP session (its connections kept alive) among this process's Web API
        calls: the messenger's and the people cache's client, and the copy of Bolt's client
        that each piece of work gets (`InboxLazyListenerRunner`). Called in the running loop;
        `close` closes it."""
        if self._session is not None and not self._session.closed:
            return
        self._session = web_api_session()
        self.client.session = self._session
        self.messenger.reply_client.session = self._session

    async def work(self, item: InboxItem) -> None:
        """Do what an inbox item asks (in the server's worker or a `caredesk worker`): Bolt runs
        the lazy function its ack named."""
        if self.app is None:
            raise RuntimeError("Slack is not configured in this process (SLACK_BOT_TOKEN)")
        # This item's workspace token is set by Bolt's middleware once `authorize` found it; none
        # is carried over from the item worked on before in this task.
        before = WORKSPACE_TOKEN.set(None)
        try:
            await run_lazy_only(self.app, item)
        except SLACK_FAILURES as exc:
            if not for_now(exc):
                raise  # Slack refused the request itself: trying again would not help
            # Slack fails for now (5xx, 429, a dropped connection): the inbox tries again later
            # (after Retry-After), without holding a work slot meanwhile.
            raise DeliveryFailed(f"Slack: {describe(exc)}", retry_after(exc)) from exc
        finally:
            WORKSPACE_TOKEN.reset(before)

    async def workspace_token(self, team: str | None) -> str | None:
        """The bot token of `team`'s installation (multi-workspace mode; refreshed first when it
        rotates and expires soon), for work no request brought (the outbox, an unreadable item).
        None: the workspace has no installation; in single-workspace mode, SLACK_BOT_TOKEN."""
        if self.oauth_flow is None:
            return self.config.bot_token
        if not team:
            return None
        authorize = self.oauth_flow.settings.authorize
        context = AsyncBoltContext({"client": self.client, "team_id": team, "is_enterprise_install": False})
        try:
            result = await authorize(context=context, enterprise_id=None, team_id=team, user_id=None)
        except SLACK_FAILURES as exc:
            log.warning("no token for Slack workspace %s: %s", team, describe(exc))
            return None
        return result.bot_token if result is not None else None

    async def tell_unreadable(self, item: InboxItem) -> None:
        """An inbox item was given up at once (it could not be worked on): its person is asked, in
        their language, to send it again, when the request says who they are."""
        person = sender_of(item.payload)
        if person is None:
            return
        team, user = person
        token = await self.workspace_token(team)
        if token is None:
            return  # no installation of that workspace (any more): nobody to tell it with
        with_token = WORKSPACE_TOKEN.set(token)
        try:
            await self._tell_unreadable(team, user)
        finally:
            WORKSPACE_TOKEN.reset(with_token)

    async def _tell_unreadable(self, team: str, user: str) -> None:
        cached = self.people.cached(team, user)
        locale = cached.locale if cached else None
        if locale is None:
            try:
                locale = (await self.people.identity(team, user)).locale
            except SLACK_FAILURES:
                pass
        await self.messenger.post_to_dm(team, user, apology(self.desk, locale, "engine.unreadable"))

    async def send_to_person(self, desk: Desk, email: str, response: Response) -> bool:
        """The outbox's sender (`adapters.server.delivery.Sender`): a person's DM, found by e-mail.
        False when Slack is not configured or knows no such person; `DeliveryFailed` when Slack
        fails for now."""
        if self.app is None:
            return False
        if self.oauth_flow is None:
            return await self.messenger.send_to_email(email, response)
        # Multi-workspace: to the DM where the person was last seen, with that workspace's token.
        reference = await self.messenger.references.find(email)
        team = str(reference.get("team_id") or "") if reference else ""
        token = await self.workspace_token(team)
        if token is None:
            return False  # never seen in an installed workspace: another channel, or nobody
        with_token = WORKSPACE_TOKEN.set(token)
        try:
            return await self.messenger.send_to_email(email, response)
        finally:
            WORKSPACE_TOKEN.reset(with_token)

    async def post_reply(self, desk: Desk, to: Mapping[str, Any], response: Response) -> None:
        """The outbox's replier (`adapters.server.delivery.Replier`): a turn's answer whose first
        post failed, posted where the turn said (`Turn.reply_to`)."""
        if self.app is None:
            raise DeliveryFailed("Slack is not configured in this process")
        if self.oauth_flow is None:
            await self.messenger.post_reply(to, response)
            return
        token = await self.workspace_token(str(to.get("team") or ""))
        if token is None:
            raise Undeliverable("the reply's Slack workspace has no installation (any more)")
        with_token = WORKSPACE_TOKEN.set(token)
        try:
            await self.messenger.post_reply(to, response)
        finally:
            WORKSPACE_TOKEN.reset(with_token)

    # ---- work in this process ------------------------------------------------------------------
    def spawn(self, work: Awaitable[Any]) -> asyncio.Task[Any]:
        task = asyncio.ensure_future(self._guard(work))
        self.pending.add(task)
        task.add_done_callback(self.pending.discard)
        return task

    async def _guard(self, work: Awaitable[Any]) -> None:
        try:
            await work
        except Exception:
            log.exception("Slack background work failed")

    async def drain(self) -> None:
        """Work until nothing is left that this process can do (tests, tools): the inbox items
        it can take, and what they schedule."""
        while True:
            await self.inbox_worker.drain()
            if not self.pending:
                return
            await asyncio.gather(*list(self.pending), return_exceptions=True)

    def start_worker(self) -> None:
        """Work on the inbox in this process (unless worker processes do: `[server] workers`)."""
        if self.app is None or self.config.worker_processes > 0:
            return
        if self._worker_task is None or self._worker_task.done():
            self._worker_stop.clear()
            self._worker_task = asyncio.create_task(self.inbox_worker.run(self._worker_stop, grace=SHUTDOWN_GRACE_S),
                                                    name="caredesk-slack-inbox")

    async def close(self, grace: float = SHUTDOWN_GRACE_S) -> None:
        """At shutdown: let running work finish for a moment, then cancel what is left (inbox
        items are taken again by a worker once their lease runs out)."""
        if self._worker_task is not None:
            self._worker_stop.set()
            await self._worker_task
            self._worker_task = None
            # What this process acknowledged last is answered now if it can be, rather than by
            # the next worker to start.
            try:
                await asyncio.wait_for(self.inbox_worker.drain(), timeout=grace)
            except asyncio.TimeoutError:
                pass
        await self.inbox_worker.stop(grace)
        cancelled = await finish_or_cancel(self.pending, grace)
        if cancelled:
            log.warning("cancelled %d unfinished Slack task(s) at shutdown", cancelled)
        if self._session is not None:
            session, self._session = self._session, None
            self.client.session = None
            self.messenger.reply_client.session = None
            await session.close()
