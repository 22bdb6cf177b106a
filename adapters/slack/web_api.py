"""Slack's Web API as CareDesk uses it: the client (retrying what Slack allows), messages and
DMs, response_url answers, and a person's DM found by e-mail for the outbox.

A Web API call that fails is retried by slack_sdk's retry handlers (rate limits honour
Retry-After; 5xx and connection errors back off). When it still fails, the user is told as soon
as a message gets through again (from whichever process sends it: the notice is in the store);
the core's idempotency keeps tickets single."""

from __future__ import annotations

import asyncio
import logging
from contextvars import ContextVar
from datetime import timedelta
from typing import TYPE_CHECKING, Any, Mapping, Sequence

import aiohttp
from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry.async_handler import AsyncRetryHandler
from slack_sdk.http_retry.builtin_async_handlers import (
    AsyncConnectionErrorRetryHandler,
    AsyncRateLimitErrorRetryHandler,
    AsyncServerErrorRetryHandler,
)
from slack_sdk.http_retry.builtin_interval_calculators import BackoffRetryIntervalCalculator
from slack_sdk.web.async_client import AsyncWebClient
from slack_sdk.webhook.async_client import AsyncWebhookClient

from bot.app.desk import Desk
from bot.app.outbox import DeliveryFailed, RetryPolicy, Undeliverable, posted
from bot.protocol.replies import Reply, Response
from bot.protocol.turn import UserIdentity, person_key
from cards import slack as cards

from adapters.shared.cache import ExpiringCache
from adapters.shared.notices import NOTHING_OWED, Owed, OwedNotices
from adapters.shared.references import ReferenceBook
from adapters.shared.turns import apology
from adapters.slack.config import SlackConfig
from adapters.slack.errors import SLACK_FAILURES, describe, for_now, retry_after

if TYPE_CHECKING:
    from adapters.slack.people import SlackPeople

log = logging.getLogger("caredesk.slack")

CHANNEL = "slack"
API_TIMEOUT_S = 10
# A DM's channel id does not change: the expiry only lets the memory of people seen long ago go.
DM_CHANNEL_TTL_S = 24 * 3600.0
MAX_DM_CHANNELS = 10_000
# The first retry of a reply whose post failed without a Retry-After: as the outbox's own.
RETRY = RetryPolicy(max_attempts=None)
# Slack's answers for a person it cannot reach (as opposed to a failure worth retrying).
UNREACHABLE_ERRORS = frozenset({"users_not_found", "user_not_found", "user_disabled", "account_inactive",
                                "channel_not_found", "cannot_dm_bot", "not_in_channel", "is_archived"})


def default_retry_handlers(backoff_factor: float = 0.5, max_retries: int = 2) -> list[AsyncRetryHandler]:
    """Rate limits (429, after Retry-After), server errors (500, 503) and dropped connections
    are retried with back-off; anything else fails at once."""
    interval = BackoffRetryIntervalCalculator(backoff_factor=backoff_factor)
    return [
        AsyncRateLimitErrorRetryHandler(max_retry_count=max_retries),
        AsyncServerErrorRetryHandler(max_retry_count=max_retries, interval_calculator=interval),
        AsyncConnectionErrorRetryHandler(
            max_retry_count=max_retries,
            interval_calculator=interval,
            error_types=[aiohttp.ServerConnectionError, aiohttp.ServerDisconnectedError, aiohttp.ClientOSError,
                         asyncio.TimeoutError],
        ),
    ]


def web_api_session() -> aiohttp.ClientSession:
    """The one HTTP session of a process's Web API calls, opened in the running loop: without
    it slack_sdk opens a session, and a new connection to Slack, for every call. With a session
    given, slack_sdk no longer applies the client's timeout to each call: the session does."""
    return aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=API_TIMEOUT_S))


# The bot token of the workspace the work in hand is for (multi-workspace mode): set by the Bolt
# middleware after `authorize` found the request's installation (`adapters.slack.app`), or by
# the outbox's senders from the installation of the person's workspace (`SlackChannel`).
WORKSPACE_TOKEN: ContextVar[str | None] = ContextVar("caredesk_slack_workspace_token", default=None)


class WorkspaceWebClient(AsyncWebClient):
    """The channel's Web API client, whose token is the workspace's of the work in hand
    (`WORKSPACE_TOKEN`) when there is one, else the client's own (`SLACK_BOT_TOKEN`; none in
    multi-workspace mode, so a call outside a workspace's work fails rather than using another
    workspace's token). One client (and one HTTP session) then serves every workspace."""

    @property
    def token(self) -> str | None:
        return WORKSPACE_TOKEN.get() or self._own_token

    @token.setter
    def token(self, value: str | None) -> None:
        self._own_token = value


def web_client(config: SlackConfig, retry_handlers: Sequence[AsyncRetryHandler]) -> AsyncWebClient:
    """The bot's client, pointed at SLACK_API_URL and retrying what Slack allows (Bolt copies its
    settings into each request's `client`)."""
    return WorkspaceWebClient(token=None if config.multi_workspace else config.bot_token, base_url=config.api_url,
                              timeout=API_TIMEOUT_S, retry_handlers=list(retry_handlers), logger=log)


def without_rate_limit_waits(handlers: Sequence[AsyncRetryHandler]) -> list[AsyncRetryHandler]:
    """The retry handlers, less the one that sleeps out a 429's Retry-After inside the call: a
    durable reply that is rate-limited waits in the store instead, and its worker goes on."""
    return [h for h in handlers if not isinstance(h, AsyncRateLimitErrorRetryHandler)]


class SlackMessenger:
    """What CareDesk says in Slack: posts, the person's DM, response_url answers. An answer that
    could not be delivered is remembered in the store and told with the next message that gets
    through, from any process."""

    def __init__(self, desk: Desk, client: AsyncWebClient, people: "SlackPeople", *,
                 retry_handlers: Sequence[AsyncRetryHandler]) -> None:
        self.desk = desk
        self.client = client
        self.people = people
        self.retry_handlers = list(retry_handlers)
        # Durable replies are posted with this one: the same settings and session (`open_session`
        # sets both), but a 429 fails at once and the reply waits in the outbox for Retry-After.
        self.reply_client = WorkspaceWebClient(token=client.token, base_url=client.base_url, timeout=client.timeout,
                                           retry_handlers=without_rate_limit_waits(self.retry_handlers), logger=log)
        # (team, user) -> their DM with the bot: a speed-up of this process (no conversations.open
        # for a person it has seen); where to reach them is the store's (`references`).
        self._dms: ExpiringCache[tuple[str, str], str] = ExpiringCache(max_entries=MAX_DM_CHANNELS)
        self.references = ReferenceBook(desk, CHANNEL)
        self.notices = OwedNotices(desk, CHANNEL, lost_key="slack.undelivered",
                                   lost_ticket_key="slack.undelivered_ticket")

    async def seen_in_dm(self, team: str, user: str, channel: str, identity: UserIdentity | None) -> None:
        """This person wrote in (or opened) their DM with the bot: remember where it is."""
        self._dms.put((team, user), channel, DM_CHANNEL_TTL_S)
        await self._save_reference(team, user, channel, identity)

    async def dm_channel(self, team: str, user: str, identity: UserIdentity | None = None) -> str:
        known = self._dms.get((team, user))
        if known:
            return known
        opened = await self.client.conversations_open(users=user)
        channel = opened["channel"]["id"]
        self._dms.put((team, user), channel, DM_CHANNEL_TTL_S)
        await self._save_reference(team, user, channel, identity or self.people.cached(team, user))
        return channel

    async def _save_reference(self, team: str, user: str, channel: str, identity: UserIdentity | None) -> None:
        """Where to reach this person later (escalation pings, ticket updates)."""
        await self.references.save(person_key(team, user), {"team_id": team, "user_id": user, "channel_id": channel},
                                   identity.email if identity else None)

    async def post(self, team: str, user: str, channel: str, response: Response, *, thread_ts: str | None = None) -> bool:
        """Post a response as one message, after what is owed to the person (answers lost
        earlier); on failure, the response is owed in turn."""
        if response.duplicate or not response.replies:
            return True
        person = person_key(team, user)
        # The turn's first read said whether anything is owed (`Response.notices_owed`); only
        # an answer that does not know looks.
        owed = NOTHING_OWED if response.notices_owed is False else await self.notices.owed(person, response.lang)
        replies = owed.replies + tuple(response.replies)
        if response.reply_key is not None:
            return await self._post_durable(person, owed, response.reply_key, channel, thread_ts, replies)
        try:
            await self.client.chat_postMessage(channel=channel, thread_ts=thread_ts, **cards.message(replies))
        except SLACK_FAILURES as exc:
            log.error("chat.postMessage to %s failed: %s", channel, describe(exc))
            await self.notices.remember(person, response)
            return False
        await self.notices.told(person, owed)
        return True

    async def _post_durable(self, person: str, owed: Owed, key: str, channel: str, thread_ts: str | None,
                            replies: Sequence[Reply]) -> bool:
        """A reply kept in the outbox (`Response.reply_key`): posted now; if Slack fails or is
        rate-limited, released to the outbox's dispatcher (after Retry-After), never awaited here."""
        try:
            await self.reply_client.chat_postMessage(channel=channel, thread_ts=thread_ts, **cards.message(replies))
        except SLACK_FAILURES as exc:
            wait = retry_after(exc)
            delay = timedelta(seconds=wait) if wait is not None else RETRY.delay(1)
            log.warning("chat.postMessage to %s failed (%s): the reply waits in the outbox, tried again in %ds",
                        channel, describe(exc), int(delay.total_seconds()))
            await self.desk.store.release_reply(key, self.desk.now() + delay, f"Slack: {describe(exc)}")
            return False
        if not posted(key):
            await self.desk.store.mark_replies_sent([key], self.desk.now())
        await self.notices.told(person, owed)
        return True

    async def post_reply(self, to: Mapping[str, Any], response: Response) -> None:
        """A durable reply, posted by the outbox's dispatcher (its first post failed, or its
        worker died): `DeliveryFailed` for now, `Undeliverable` when Slack refuses it."""
        channel = to.get("channel")
        if not isinstance(channel, str) or not channel:
            raise Undeliverable("no Slack channel to post the reply in")
        thread = to.get("thread_ts")
        try:
            await self.reply_client.chat_postMessage(channel=channel, thread_ts=thread if isinstance(thread, str) else None,
                                                     **cards.message(response.replies))
        except SLACK_FAILURES as exc:
            if for_now(exc):
                raise DeliveryFailed(f"Slack: {describe(exc)}", retry_after(exc)) from exc
            raise Undeliverable(f"Slack: {describe(exc)}") from exc

    async def post_to_dm(self, team: str, user: str, response: Response) -> bool:
        if response.duplicate or not response.replies:
            return True
        try:
            dm = await self.dm_channel(team, user)
        except SLACK_FAILURES as exc:
            log.error("conversations.open failed: %s", describe(exc))
            await self.notices.remember(person_key(team, user), response)
            return False
        return await self.post(team, user, dm, response)

    async def send_to_email(self, email: str, response: Response) -> bool:
        """A message the bot sends on its own initiative (outbox): to the DM where this person was
        last seen, or found by e-mail (users.lookupByEmail). Unlike `post`, a failure is raised
        (`DeliveryFailed`) so the outbox retries it; an unknown person gives False."""
        reference = await self.references.find(email)
        try:
            if reference and reference.get("channel_id"):
                dm = str(reference["channel_id"])
            else:
                found = await self.client.users_lookupByEmail(email=email)
                opened = await self.client.conversations_open(users=found["user"]["id"])
                dm = opened["channel"]["id"]
            await self.client.chat_postMessage(channel=dm, **cards.message(response.replies))
        except SlackApiError as exc:
            error = str((exc.response or {}).get("error", ""))
            if error in UNREACHABLE_ERRORS:
                log.warning("Slack cannot reach %s: %s", email, error)
                return False
            retry_after = (exc.response.headers or {}).get("Retry-After") if exc.response is not None else None
            raise DeliveryFailed(f"Slack: {describe(exc)}", float(retry_after) if retry_after else None) from exc
        except SLACK_FAILURES as exc:
            raise DeliveryFailed(f"Slack: {describe(exc)}") from exc
        return True

    async def respond(self, response_url: str | None, replies: Sequence[Reply]) -> bool:
        """An ephemeral answer through a command's or an action's response_url."""
        if not response_url or not replies:
            return False
        # The process's Web API session when it has one (`SlackChannel.open_session`): a
        # response_url answer then reuses its connections too.
        webhook = AsyncWebhookClient(response_url, timeout=API_TIMEOUT_S, session=self.client.session,
                                     retry_handlers=list(self.retry_handlers), logger=log)
        try:
            result = await webhook.send_dict({"response_type": "ephemeral", **cards.message(replies)})
        except SLACK_FAILURES as exc:
            log.error("posting to the response_url failed: %s", describe(exc))
            return False
        if result.status_code != 200:
            log.error("the response_url answered %s: %s", result.status_code, result.body[:200])
            return False
        return True

    async def tell_failure(self, team: str, user: str, key: str, response_url: str | None) -> None:
        """Say that an action could not be completed: ephemerally if possible, else by DM."""
        identity = self.people.cached(team, user)
        failure = apology(self.desk, identity.locale if identity else None, key)
        if not await self.respond(response_url, failure.replies):
            await self.post_to_dm(team, user, failure)
