"""The Slack channel: a slack-bolt `AsyncApp` that translates Slack payloads into the core's
`Turn`s and the core's `Response`s into Slack Web API calls (Block Kit from `cards.slack`).

Acknowledge first, work after: every listener acks at once and hands the work to a tracked
background task (`SlackChannel.pending`; `drain()` waits for them, `close()` at shutdown waits a
little and cancels the rest). The one exception is a modal submission: Slack wants the field
errors in the acknowledgement itself, so the core validates it before the ack.

Where things happen:
* a direct message with the bot is a conversation (the DM channel id is its key);
* a mention in a channel is answered in the thread, the thread being its own conversation;
* slash commands that start a guided dialog (/ticket NUMBER, /escalate) continue in the DM;
  /tickets and /caredesk help answer ephemerally through the command's response_url;
* /ticket, /quote, the message shortcut and the Home tab's buttons open modals (a "loading"
  modal is opened with the trigger at once, then replaced by the form); a modal is its own
  conversation ("modal:<dialog>"), and a successful submission is posted to the user's DM.

A Web API call that fails is retried by slack_sdk's retry handlers (rate limits honour
Retry-After; 5xx and connection errors back off). When it still fails, the user is told as
soon as a message gets through again; the core's idempotency keeps tickets single.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import time
from collections.abc import Mapping  # not typing's: isinstance() with it is slow, and runs per request
from typing import Any, Awaitable, Sequence

from aiohttp import web
from slack_bolt.adapter.aiohttp import to_aiohttp_response
from slack_bolt.app.async_app import AsyncApp
from slack_bolt.request.async_request import AsyncBoltRequest
from slack_sdk.errors import SlackApiError, SlackClientError
from slack_sdk.http_retry.async_handler import AsyncRetryHandler
from slack_sdk.http_retry.builtin_async_handlers import (
    AsyncConnectionErrorRetryHandler,
    AsyncRateLimitErrorRetryHandler,
    AsyncServerErrorRetryHandler,
)
from slack_sdk.http_retry.builtin_interval_calculators import BackoffRetryIntervalCalculator
from slack_sdk.signature import Clock, SignatureVerifier
from slack_sdk.web.async_client import AsyncWebClient
from slack_sdk.webhook.async_client import AsyncWebhookClient

import aiohttp

from bot.app.runner import TurnRunner
from bot.app.desk import Desk
from bot.dialogs.engine import ACTION_FORM, ACTION_PREFIX_COMMAND
from bot.i18n import normalize_language, translate
from bot.app.inbox import InboxWorker, InboxWriter, finish_or_cancel, wall_clock
from bot.app.outbox import DeliveryFailed
from bot.protocol.replies import Choices, Reply, Response, Text, Tone
from bot.store.ports import InboxItem, NewInboxItem, StoreUnavailableError
from bot.protocol.turn import Turn, UserIdentity
from cards import slack as cards

from adapters.slack.payloads import (ACTION, CLOSED, COMMAND, HOME, IGNORED, MENTION, MESSAGE, SHORTCUT, SUBMISSION,
                                     URGENT, Inbound, classify, clicked, form_values, input_block_ids, parse_body,
                                     replay_guarded, slack_to_plain, team_of, thread_of, well_formed)

log = logging.getLogger("caredesk.slack")

CHANNEL = "slack"
EVENTS_PATH = "/slack/events"
DEFAULT_API_URL = "https://slack.com/api/"
SHORTCUT_CREATE_TICKET = "create_ticket_from_message"
NEW_TICKET, QUOTE, LOGTIME = "new_ticket", "quote", "logtime"
# Slack's answers for a person it cannot reach (as opposed to a failure worth retrying).
UNREACHABLE_ERRORS = frozenset({"users_not_found", "user_not_found", "user_disabled", "account_inactive",
                                "channel_not_found", "cannot_dm_bot", "not_in_channel", "is_archived"})
ACTION_MENU = "menu"
FLOW_CALLBACK = "flow:"  # a modal that goes on with a form's dialog after its submission
LOADING_CALLBACK = "loading"
BRAND = "CareDesk"
PROFILE_TTL_S = 600.0
MAX_PROFILES = 10_000
API_TIMEOUT_S = 10
SHUTDOWN_GRACE_S = 5.0
MAX_NOTICES = 5
HELP_WORDS = {"", "help", "aide", "hulp", "?"}

# Turns worked on at the same time by a server process's own worker; the rest wait in the inbox.
# Few is best there: every extra one delays the next ack (measured on 2 cores: 8 gave an ack p99
# of 142 ms, 2-3 gave 61-77 ms, see docs/performance.md). A `caredesk worker` may take more.
CONCURRENT_TURNS = 3
CONCURRENT_CHECKS = 8
# Errors of a Web API call that survived the retry handlers.
SLACK_FAILURES = (SlackApiError, SlackClientError, aiohttp.ClientError, asyncio.TimeoutError, OSError)


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


def api_base_url(url: str | None) -> str:
    base = url or DEFAULT_API_URL
    return base if base.endswith("/") else base + "/"


class SlackChannel:
    def __init__(
        self,
        desk: Desk,
        *,
        signature_clock: Clock | None = None,
        retry_handlers: Sequence[AsyncRetryHandler] | None = None,
    ) -> None:
        self.desk = desk
        self.store = desk.store
        settings = desk.settings
        secrets = settings.secrets
        self.conversation = TurnRunner(desk)
        self.default_language = settings.default_language
        self.retry_handlers = list(retry_handlers) if retry_handlers is not None else default_retry_handlers()
        self.app_token = secrets.slack_app_token
        signing_secret = secrets.slack_signing_secret
        # Unsigned requests are accepted only in the developer mode (loopback only), and only
        # when no secret is configured at all: a configured secret is always checked.
        self.verifier = SignatureVerifier(signing_secret, clock=signature_clock or Clock()) if signing_secret else None
        self.http_problem: str | None = None
        if not secrets.slack_bot_token:
            self.http_problem = "SLACK_BOT_TOKEN is not set"
        elif self.verifier is None and not settings.server.insecure_dev_mode:
            self.http_problem = "SLACK_SIGNING_SECRET is not set"
        self.pending: set[asyncio.Task[Any]] = set()
        # Requests are written to the inbox before their ack; a worker does the work: in this
        # process (`inbox_worker.run`, started with the server) or in `caredesk worker` processes.
        self.inbox_worker = InboxWorker(self.store, wall_clock, {CHANNEL: self.work}, concurrency=CONCURRENT_TURNS)
        self.inbox_writer = InboxWriter(self.store, wall_clock, on_written=self.inbox_worker.wake)
        self._worker_stop = asyncio.Event()
        # Modal submissions checked at the same time before their ack: a flood of them waits
        # here rather than opening a database connection each.
        self._checks = asyncio.Semaphore(CONCURRENT_CHECKS)
        self._worker_task: asyncio.Task[None] | None = None
        self._bot_user_id: str | None = None
        self._profiles: dict[tuple[str, str], tuple[float, UserIdentity]] = {}
        self._dms: dict[tuple[str, str], str] = {}
        self._refs_saved: set[tuple[str, str]] = set()
        # Answers that could not be delivered, by (team, user): told at the next chance.
        self._undelivered: dict[tuple[str, str], list[str | None]] = {}
        self.client: AsyncWebClient | None = None
        self.app: AsyncApp | None = None
        if secrets.slack_bot_token:
            self.app = AsyncApp(
                token=secrets.slack_bot_token,
                signing_secret=signing_secret or "",
                # Verified in `handle_http` (with an injectable clock); Socket Mode needs none.
                request_verification_enabled=False,
                # Listeners only ack and schedule: the response goes out as soon as they return.
                process_before_response=True,
                logger=log,
            )
            # Bolt's own client (a client passed in beside SLACK_BOT_TOKEN would log a warning),
            # pointed at SLACK_API_URL and retrying what Slack allows.
            self.client = self.app.client
            self.client.base_url = api_base_url(settings.slack_api_url)
            self.client.timeout = API_TIMEOUT_S
            self.client.retry_handlers = list(self.retry_handlers)
            self._register(self.app)

    # ---- HTTP endpoint ---------------------------------------------------------------------------
    async def handle_http(self, request: web.Request) -> web.StreamResponse:
        if self.http_problem is not None or self.app is None:
            return web.json_response(
                {"error": "slack_not_configured",
                 "message": f"Slack is not configured on this server: {self.http_problem}."},
                status=503,
            )
        raw = await request.read()
        if self.verifier is not None and not self._signed(raw, request.headers):
            log.warning("rejected a Slack request with a missing, wrong or stale signature")
            return web.json_response({"error": "invalid_signature"}, status=401)
        try:
            body_text = raw.decode("utf-8")
            body = parse_body(body_text, request.headers.get("Content-Type", ""))
        except (ValueError, TypeError, AttributeError, KeyError, IndexError):  # not UTF-8, not JSON, not an object
            return web.json_response({"error": "bad_request"}, status=400)
        if not well_formed(body):
            log.warning("rejected a malformed Slack request")
            return web.json_response({"error": "bad_request"}, status=400)
        signature = request.headers.get("X-Slack-Signature") if self.verifier is not None else None
        inbound = classify(body, SHORTCUT_CREATE_TICKET, signature)
        if inbound is IGNORED:
            return web.Response(status=200)
        if isinstance(inbound, Inbound):
            # The common case, without Bolt's dispatch: written down, then acknowledged.
            try:
                await self.accept(body, inbound)
            except StoreUnavailableError:
                return _retry_later()
            return web.Response(status=200)
        if body.get("type") == "view_submission" and str(body["view"]["callback_id"]).startswith(ACTION_FORM):
            # The other common case, also without Bolt's dispatch: checked, then acknowledged.
            try:
                answer = await self.submission_ack(body, signature)
            except StoreUnavailableError:
                return _retry_later()
            return web.json_response(answer) if answer else web.Response(status=200)
        if self.verifier is not None and replay_guarded(body):
            # Slash commands and interactivity carry no event id and Slack never resends them: the
            # same signed request seen again (a replay within the five minutes) is acknowledged
            # and ignored, also when another process saw it first.
            try:
                first = await self.store.claim_event("slack-request", signature or "", self.desk.now())
            except StoreUnavailableError:
                return _retry_later()
            if not first:
                log.warning("ignored a replayed Slack request (same signature)")
                return web.Response(status=200)
        bolt_request = AsyncBoltRequest(body=body_text, query=request.query_string, headers=dict(request.headers))
        bolt_response = await self.app.async_dispatch(bolt_request)
        return await to_aiohttp_response(bolt_response)

    async def accept(self, body: Mapping[str, Any], inbound: Inbound) -> None:
        """Write a request to the inbox (a worker does the rest); StoreUnavailableError when the
        database cannot take it, so that Slack is asked to send it again."""
        # Slack's legacy verification token is a credential: it is not kept.
        payload = {key: value for key, value in body.items() if key != "token"}
        await self.inbox_writer.write(NewInboxItem(
            CHANNEL, inbound.kind, f"{CHANNEL}:{inbound.person}", payload, inbound.dedup_key, inbound.priority))

    def _signed(self, raw: bytes, headers: Mapping[str, str]) -> bool:
        assert self.verifier is not None
        try:
            return self.verifier.is_valid_request(raw, {k: v for k, v in headers.items()})
        except (ValueError, TypeError):  # a timestamp that is not a number
            return False

    # ---- background work ---------------------------------------------------------------------------
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
        if self.app is None or self.desk.settings.server.workers > 0:
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

    async def work(self, item: InboxItem) -> None:
        """Do what an inbox item asks (in the server's worker or a `caredesk worker`)."""
        body = item.payload
        kind = item.kind
        if kind == MESSAGE:
            await self._run_dm_message(body)
        elif kind == MENTION:
            await self._run_mention(body)
        elif kind == HOME:
            event = body["event"]
            await self.publish_home(team_of(body) or event.get("team") or "", event["user"], event.get("channel"))
        elif kind == COMMAND:
            await self._run_command(body)
        elif kind == ACTION:
            await self._run_action(body)
        elif kind == SHORTCUT:
            message = body.get("message") or {}
            await self.open_form(team_of(body), body["user"]["id"], body.get("trigger_id"), NEW_TICKET,
                                 {"description": slack_to_plain(message.get("text"))},
                                 response_url=body.get("response_url"))
        elif kind == CLOSED:
            callback = str((body.get("view") or {}).get("callback_id") or "")
            if callback.startswith(ACTION_FORM) or callback.startswith(FLOW_CALLBACK):
                await self._cancel_modal(team_of(body), body["user"]["id"], callback.split(":", 1)[1])
        elif kind == SUBMISSION:
            view = body["view"]
            turn = await self._submission_turn(body, view)
            await self._submit_after_ack(team_of(body), body["user"]["id"], turn, view)
        else:
            log.error("inbox item %s of an unknown kind %r ignored", item.id, kind)

    # ---- listeners -----------------------------------------------------------------------------------
    def _register(self, app: AsyncApp) -> None:
        app.command(re.compile(r"^/"))(self._on_request)
        app.event("message")(self._on_request)
        app.event("app_mention")(self._on_request)
        app.event("app_home_opened")(self._on_request)
        app.action(re.compile("^" + re.escape(cards.ACTION_PREFIX)))(self._on_request)
        app.shortcut(SHORTCUT_CREATE_TICKET)(self._on_request)
        app.view(re.compile("^" + re.escape(ACTION_FORM)))(self._on_submission)
        app.view_closed(re.compile("^(" + re.escape(ACTION_FORM) + "|" + re.escape(FLOW_CALLBACK) + ")"))(self._on_request)

    async def _on_request(self, ack, body: dict) -> None:
        """Socket Mode (and anything the HTTP fast path leaves to Bolt): written down, then acked."""
        inbound = classify(body, SHORTCUT_CREATE_TICKET, None)
        if isinstance(inbound, Inbound):
            await self.accept(body, inbound)
        await ack()

    async def _submission_turn(self, body: Mapping[str, Any], view: Mapping[str, Any]) -> Turn:
        dialog = view["callback_id"][len(ACTION_FORM):]
        team, user = team_of(body), body["user"]["id"]
        # Who filled the form in was known when it opened (the modal carries it): no users.info
        # call before the ack.
        identity = identity_from_metadata(view.get("private_metadata"), user) or await self.identity(team, user)
        values = form_values(view)
        values["_confirmed"] = "1"  # submitting the modal is the confirmation
        return self.turn(team, modal_conversation(dialog), identity, action=f"{ACTION_FORM}{dialog}", values=values)

    async def _on_submission(self, ack, body: dict, view: dict) -> None:
        """Socket Mode: the same answer as over HTTP."""
        await ack(**await self.submission_ack(body, None))

    async def submission_ack(self, body: Mapping[str, Any], signature: str | None) -> dict[str, Any]:
        """A modal submission, validated by the core before the ack: what the ack says (field
        errors shown inline, the next step inside the modal, or nothing: the modal closes).
        `signature` identifies the request: a replay of it has no second effect."""
        view = body["view"]
        dialog = view["callback_id"][len(ACTION_FORM):]
        team, user = team_of(body), body["user"]["id"]
        turn = await self._submission_turn(body, view)
        async with self._checks:
            preview = await self.conversation.preview(turn)
        if preview.field_errors:
            return cards.field_errors(preview.field_errors, input_block_ids(view))
        replay_key = f"request:{signature}" if signature else None
        if preview.effect is not None or (preview.done and preview.state is None):
            # Valid and final: written down, the modal closes at once; a worker creates the
            # ticket and its number goes to the DM.
            await self.accept(body, Inbound(SUBMISSION, f"{team}:{user}", replay_key, URGENT))
            return {}
        if replay_key and not await self.store.claim_event("slack-request", signature or "", self.desk.now()):
            log.warning("ignored a replayed Slack request (same signature)")
            return {}
        response = await self._handle(turn)
        if response.field_errors:
            return cards.field_errors(response.field_errors, input_block_ids(view))
        if response.done:
            self.spawn(self.post_to_dm(team, user, response))
            return {}  # closes the modal; the result goes to the DM
        # The dialog goes on (an out-of-hours emergency question): inside the modal.
        return {"response_action": "update", "view": self._flow_view(dialog, _title(view), response)}

    async def _submit_after_ack(self, team: str, user: str, turn: Turn, view: Mapping[str, Any]) -> None:
        response = await self._handle(turn)
        if response.field_errors:
            # Changed between the check and the work (rare): say what is wrong in the DM.
            labels = {b["block_id"]: b.get("label", {}).get("text", b["block_id"])
                      for b in view.get("blocks", ()) if b.get("type") == "input"}
            problems = "\n".join(f"{labels.get(k, k)}: {v}" for k, v in response.field_errors.items())
            response = Response((Text(problems, Tone.ERROR),), response.lang)
        await self.post_to_dm(team, user, response)

    # ---- what the worker does ----------------------------------------------------------------------
    async def _run_dm_message(self, body: Mapping[str, Any]) -> None:
        event = body["event"]
        team, user, channel = team_of(body), event["user"], event["channel"]
        identity = await self.identity(team, user)
        self._dms[(team, user)] = channel
        await self._save_ref(team, user, channel, identity)
        turn = self.turn(team, channel, identity, text=slack_to_plain(event.get("text")), event_id=body.get("event_id"))
        await self.post(team, user, channel, await self._handle(turn))

    async def _run_mention(self, body: Mapping[str, Any]) -> None:
        event = body["event"]
        bot_user_id = await self.bot_user_id(body)
        team, user, channel = team_of(body), event["user"], event["channel"]
        thread = thread_of(event)
        identity = await self.identity(team, user)
        text = slack_to_plain(event.get("text"), drop_user=bot_user_id) or "help"
        turn = self.turn(team, f"{channel}:{thread}", identity, text=text, event_id=body.get("event_id"))
        await self.post(team, user, channel, await self._handle(turn), thread_ts=thread)

    async def _run_command(self, command: Mapping[str, Any]) -> None:
        team, user = command["team_id"], command["user_id"]
        name = str(command.get("command", "")).lstrip("/").lower()
        text = slack_to_plain(command.get("text"))
        trigger, response_url = command.get("trigger_id"), command.get("response_url")
        origin = command.get("channel_id")
        if name == "ticket" and not self.conversation.number_pattern.search(text):
            prefill = {"description": text} if text else {}
            await self.open_form(team, user, trigger, NEW_TICKET, prefill, response_url=response_url)
            return
        if name == "quote":
            await self.open_form(team, user, trigger, QUOTE, {}, response_url=response_url)
            return
        identity = await self.identity(team, user)
        if name in ("ticket", "escalate"):
            await self.in_dm(team, user, identity, text if name == "ticket" else f"escalate {text}".strip(),
                             origin=origin, response_url=response_url)
            return
        if name == "tickets":
            response = await self._handle(self.turn(team, command_conversation(user), identity, action=ACTION_MENU,
                                                    values={"value": "my_tickets"}))
            await self.respond(response_url, response.replies)
            return
        if name == "logtime":
            if not text:
                await self.open_form(team, user, trigger, LOGTIME, {}, response_url=response_url)
                return
            # `/logtime CS-2026-00042 1h30 teamviewer …`: priced by the core, answered privately.
            response = await self._handle(self.turn(team, command_conversation(user), identity,
                                                    text=f"logtime {text}"))
            await self.respond(response_url, response.replies)
            return
        if name == "caredesk" and text.lower() not in HELP_WORDS:
            await self.in_dm(team, user, identity, text, origin=origin, response_url=response_url)
            return
        await self.respond(response_url, await self.help_replies(team, user, identity))

    async def help_replies(self, team: str, user: str, identity: UserIdentity) -> tuple[Reply, ...]:
        """The core's help (what CareDesk does and its menu) with Slack's commands before the menu."""
        turn = self.turn(team, command_conversation(user), identity, action=f"{ACTION_PREFIX_COMMAND}help")
        response = await self._handle(turn)
        menu = tuple(r for r in response.replies if isinstance(r, Choices))
        rest = tuple(r for r in response.replies if not isinstance(r, Choices))
        return rest + (Text(translate(response.lang, "slack.help")),) + menu

    async def _run_action(self, body: Mapping[str, Any]) -> None:
        actions = body.get("actions") or ()
        click = clicked(actions[0]) if actions else None
        if click is None:
            return
        action, value = click
        team, user = team_of(body), body["user"]["id"]
        container = body.get("container") or {}
        view = body.get("view") or {}
        if container.get("type") == "view" and view.get("type") == "home":
            await self.outside_conversation(team, user, action, value, body.get("trigger_id"), None)
            return
        if container.get("type") == "view":
            await self._run_flow_action(team, user, view, action, value)
            return
        if container.get("is_ephemeral"):
            await self.outside_conversation(team, user, action, value, body.get("trigger_id"), body.get("response_url"))
            return
        channel = container.get("channel_id") or (body.get("channel") or {}).get("id")
        if not channel:
            return
        identity = await self.identity(team, user)
        message = body.get("message") or {}
        thread = None if channel.startswith("D") else thread_of(message)
        conversation = channel if thread is None else f"{channel}:{thread}"
        response = await self._handle(self.turn(team, conversation, identity, action=action, values={"value": value}))
        await self.post(team, user, channel, response, thread_ts=thread)

    async def _run_flow_action(self, team: str, user: str, view: Mapping[str, Any], action: str, value: str) -> None:
        """A button inside a modal that goes on with a form's dialog."""
        dialog = str(view.get("callback_id", "")).split(":", 1)[-1]
        identity = await self.identity(team, user)
        turn = self.turn(team, modal_conversation(dialog), identity, action=action, values={"value": value})
        response = await self._handle(turn)
        try:
            await self.client.views_update(view_id=view["id"], hash=view.get("hash"),
                                           view=self._flow_view(dialog, _title(view), response))
        except SLACK_FAILURES as exc:
            log.error("views.update failed: %s", _describe(exc))
        if response.done and response.replies:
            await self.post_to_dm(team, user, response)

    async def outside_conversation(self, team: str, user: str, action: str, value: str, trigger: str | None,
                                   response_url: str | None) -> None:
        """A menu button outside a conversation (the Home tab, an ephemeral help message)."""
        if action == ACTION_MENU and value in (NEW_TICKET, QUOTE) and trigger:
            await self.open_form(team, user, trigger, value, {}, response_url=response_url)
            return
        identity = await self.identity(team, user)
        if action == ACTION_MENU and value == "escalate":
            await self.in_dm(team, user, identity, "escalate", origin=None, response_url=response_url)
            return
        response = await self._handle(self.turn(team, command_conversation(user), identity, action=action,
                                                values={"value": value}))
        if response_url:
            await self.respond(response_url, response.replies)
        else:
            await self.post_to_dm(team, user, response)

    async def _cancel_modal(self, team: str, user: str, dialog: str) -> None:
        """A closed modal ends its dialog quietly (nothing was created)."""
        identity = await self.identity(team, user)
        turn = self.turn(team, modal_conversation(dialog), identity, action=f"{ACTION_PREFIX_COMMAND}cancel")
        if await self.store.load_dialog(turn.dialog_key) is not None:
            await self._handle(turn)

    # ---- modals and Home -------------------------------------------------------------------------
    async def open_form(self, team: str, user: str, trigger: str | None, dialog: str, prefill: Mapping[str, Any],
                        *, response_url: str | None = None) -> None:
        """Open the modal at once (the trigger lives three seconds), then fill the form in."""
        cached = self._cached_identity(team, user)
        lang = normalize_language(cached.locale if cached else None, self.default_language)
        loading = cards.loading_modal(BRAND, translate(lang, "slack.loading"), translate(lang, "slack.close"),
                                      callback_id=LOADING_CALLBACK)
        try:
            opened = await self.client.views_open(trigger_id=trigger, view=loading)
        except SLACK_FAILURES as exc:
            log.error("views.open failed: %s", _describe(exc))
            await self._tell_failure(team, user, "slack.form_failed", response_url)
            return
        identity = await self.identity(team, user)
        turn = self.turn(team, modal_conversation(dialog), identity)
        try:
            form = await self.conversation.form(turn, dialog, dict(prefill))
        except Exception:
            log.exception("building the %s form failed", dialog)
            form = None
        if form is None:
            # Not this user's form (time logging is for agents): the core says why.
            refusal = await self._handle(self.turn(team, command_conversation(user), identity, text=dialog))
            replies = refusal.replies or (Text(translate(refusal.lang, "slack.error"), Tone.ERROR),)
            view = cards.info_modal(BRAND, replies, translate(refusal.lang, "slack.close"),
                                    callback_id=LOADING_CALLBACK)
        else:
            view = cards.form_modal(form, callback_id=f"{ACTION_FORM}{dialog}",
                                    private_metadata=identity_metadata(identity))
        try:
            await self.client.views_update(view_id=opened["view"]["id"], hash=opened["view"].get("hash"), view=view)
        except SLACK_FAILURES as exc:
            log.error("views.update failed: %s", _describe(exc))
            await self._tell_failure(team, user, "slack.form_failed", response_url)

    def _flow_view(self, dialog: str, title: str, response: Response) -> dict[str, Any]:
        return cards.info_modal(title, response.replies, translate(response.lang, "slack.close"),
                                callback_id=f"{FLOW_CALLBACK}{dialog}", notify_on_close=not response.done)

    async def publish_home(self, team: str, user: str, channel: str | None = None) -> None:
        identity = await self.identity(team, user)
        if channel:
            self._dms[(team, user)] = channel
            await self._save_ref(team, user, channel, identity)
        turn = self.turn(team, channel or f"home:{user}", identity)
        try:
            response = await self.conversation.home(turn)
        except Exception:
            log.exception("building the Home tab failed")
            lang = normalize_language(identity.locale, self.default_language)
            response = Response((Text(translate(lang, "slack.error"), Tone.ERROR),), lang)
        try:
            await self.client.views_publish(user_id=user, view=cards.home_view(response.replies))
        except SLACK_FAILURES as exc:
            log.error("views.publish failed: %s", _describe(exc))

    # ---- conversations in the DM -----------------------------------------------------------------
    async def in_dm(self, team: str, user: str, identity: UserIdentity, text: str, *, origin: str | None,
                    response_url: str | None) -> None:
        """Start a dialog in the user's DM with the bot (a slash command, a Home button). A dialog
        in progress there is cancelled first, and the user sees that it was."""
        try:
            dm = await self.dm_channel(team, user, identity)
        except SLACK_FAILURES as exc:
            log.error("conversations.open failed: %s", _describe(exc))
            await self._tell_failure(team, user, "slack.action_failed", response_url)
            return
        turn = self.turn(team, dm, identity, text=text)
        if await self.store.load_dialog(turn.dialog_key) is not None:
            cancelled = await self._handle(self.turn(team, dm, identity, action=f"{ACTION_PREFIX_COMMAND}cancel"))
            await self.post(team, user, dm, cancelled)
        delivered = await self.post(team, user, dm, await self._handle(turn))
        if delivered and origin != dm and response_url:
            await self.respond(response_url, (Text(translate(await self.language(turn), "slack.dm_sent")),))

    async def dm_channel(self, team: str, user: str, identity: UserIdentity | None = None) -> str:
        known = self._dms.get((team, user))
        if known:
            return known
        opened = await self.client.conversations_open(users=user)
        channel = opened["channel"]["id"]
        self._dms[(team, user)] = channel
        await self._save_ref(team, user, channel, identity or self._cached_identity(team, user))
        return channel

    async def post_to_dm(self, team: str, user: str, response: Response) -> bool:
        if response.duplicate or not response.replies:
            return True
        try:
            dm = await self.dm_channel(team, user)
        except SLACK_FAILURES as exc:
            log.error("conversations.open failed: %s", _describe(exc))
            self._remember_undelivered(team, user, response)
            return False
        return await self.post(team, user, dm, response)

    async def _save_ref(self, team: str, user: str, channel: str, identity: UserIdentity | None) -> None:
        """Where to reach this person later (escalation pings, ticket updates): once per process."""
        if (team, user) in self._refs_saved:
            return
        reference = {"team_id": team, "user_id": user, "channel_id": channel}
        try:
            await self.store.save_conversation_ref(CHANNEL, f"{team}:{user}", reference, self.desk.now(),
                                                   email=identity.email if identity else None)
            self._refs_saved.add((team, user))
        except Exception:
            log.exception("saving the conversation reference of %s failed", user)

    # ---- sending ---------------------------------------------------------------------------------
    async def post(self, team: str, user: str, channel: str, response: Response, *, thread_ts: str | None = None) -> bool:
        """Post a response as one message; on failure, remember to tell the user later."""
        if response.duplicate or not response.replies:
            return True
        replies = self._notices(team, user, response.lang) + tuple(response.replies)
        payload = cards.message(replies)
        try:
            await self.client.chat_postMessage(channel=channel, thread_ts=thread_ts, **payload)
        except SLACK_FAILURES as exc:
            log.error("chat.postMessage to %s failed: %s", channel, _describe(exc))
            self._remember_undelivered(team, user, response)
            return False
        self._undelivered.pop((team, user), None)
        return True

    async def send_to_email(self, email: str, response: Response) -> bool:
        """A message the bot sends on its own initiative (outbox): to the DM where this person was
        last seen, or found by e-mail (users.lookupByEmail). Unlike `post`, a failure is raised
        (`DeliveryFailed`) so the outbox retries it; an unknown person gives False."""
        if self.client is None:
            return False
        refs = [ref for channel, _, ref in await self.store.find_conversation_refs_by_email(email) if channel == CHANNEL]
        try:
            if refs and refs[0].get("channel_id"):
                dm = str(refs[0]["channel_id"])
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
            raise DeliveryFailed(f"Slack: {_describe(exc)}", float(retry_after) if retry_after else None) from exc
        except SLACK_FAILURES as exc:
            raise DeliveryFailed(f"Slack: {_describe(exc)}") from exc
        return True

    async def respond(self, response_url: str | None, replies: Sequence[Reply]) -> bool:
        """An ephemeral answer through a command's or an action's response_url."""
        if not response_url or not replies:
            return False
        webhook = AsyncWebhookClient(response_url, timeout=API_TIMEOUT_S, retry_handlers=list(self.retry_handlers),
                                     logger=log)
        try:
            result = await webhook.send_dict({"response_type": "ephemeral", **cards.message(replies)})
        except SLACK_FAILURES as exc:
            log.error("posting to the response_url failed: %s", _describe(exc))
            return False
        if result.status_code != 200:
            log.error("the response_url answered %s: %s", result.status_code, result.body[:200])
            return False
        return True

    async def _tell_failure(self, team: str, user: str, key: str, response_url: str | None) -> None:
        """Say that an action could not be completed: ephemerally if possible, else by DM."""
        identity = self._cached_identity(team, user)
        lang = normalize_language(identity.locale if identity else None, self.default_language)
        reply = (Text(translate(lang, key), Tone.ERROR),)
        if not await self.respond(response_url, reply):
            await self.post_to_dm(team, user, Response(reply, lang))

    def _remember_undelivered(self, team: str, user: str, response: Response) -> None:
        notes = self._undelivered.setdefault((team, user), [])
        notes.append(response.ticket_number)
        del notes[:-MAX_NOTICES]

    def _notices(self, team: str, user: str, lang: str) -> tuple[Reply, ...]:
        notes = self._undelivered.get((team, user)) or []
        numbers = [n for n in dict.fromkeys(notes) if n]
        if numbers:
            return tuple(Text(translate(lang, "slack.undelivered_ticket", number=n), Tone.WARNING) for n in numbers)
        if notes:
            return (Text(translate(lang, "slack.undelivered"), Tone.WARNING),)
        return ()

    # ---- people --------------------------------------------------------------------------------------
    async def bot_user_id(self, body: Mapping[str, Any]) -> str | None:
        """The bot's own user id (to drop its mention from a message): from the event's
        authorizations, else from auth.test once."""
        for authorization in body.get("authorizations") or ():
            if isinstance(authorization, Mapping) and authorization.get("is_bot") and authorization.get("user_id"):
                return str(authorization["user_id"])
        if self._bot_user_id is None:
            try:
                self._bot_user_id = (await self.client.auth_test()).get("user_id")
            except SLACK_FAILURES as exc:
                log.warning("auth.test failed: %s", _describe(exc))
        return self._bot_user_id

    def _cached_identity(self, team: str, user: str) -> UserIdentity | None:
        cached = self._profiles.get((team, user))
        if cached and cached[0] > time.monotonic():
            return cached[1]
        return None

    async def identity(self, team: str, user: str) -> UserIdentity:
        """Who a Slack user is: e-mail (links them to the directory), name, locale and phone from
        users.info, cached for a while. Without it, the user is still served, as unknown."""
        cached = self._cached_identity(team, user)
        if cached is not None:
            return cached
        try:
            info = await self.client.users_info(user=user, include_locale=True)
        except SLACK_FAILURES as exc:
            log.warning("users.info for %s failed: %s", user, _describe(exc))
            return UserIdentity(id=user)
        data = info.get("user") or {}
        profile = data.get("profile") or {}
        identity = UserIdentity(
            id=user,
            email=profile.get("email") or None,
            display_name=profile.get("real_name") or data.get("real_name") or profile.get("display_name")
            or data.get("name"),
            locale=data.get("locale") or None,
            phone=profile.get("phone") or None,
        )
        now = time.monotonic()
        if len(self._profiles) >= MAX_PROFILES:  # keep the cache bounded: drop what expired
            self._profiles = {k: v for k, v in self._profiles.items() if v[0] > now}
        self._profiles[(team, user)] = (now + PROFILE_TTL_S, identity)
        return identity

    @staticmethod
    def turn(team: str, conversation: str, identity: UserIdentity, *, text: str | None = None,
             action: str | None = None, values: Mapping[str, str] | None = None, event_id: str | None = None) -> Turn:
        return Turn(CHANNEL, team, conversation, identity, text=text, action=action, values=dict(values or {}),
                    event_id=event_id)

    async def language(self, turn: Turn) -> str:
        try:
            return (await self.conversation.context(turn)).lang
        except Exception:
            log.exception("looking up the user's language failed")
            return normalize_language(turn.user.locale, self.default_language)

    async def _handle(self, turn: Turn) -> Response:
        """The core's answer; an unexpected failure becomes a clear apology, never silence."""
        try:
            return await self.conversation.handle(turn)
        except StoreUnavailableError:
            raise  # the inbox worker waits for the database and does the turn again
        except Exception:
            log.exception("the core failed on a Slack turn")
            lang = normalize_language(turn.user.locale, self.default_language)
            return Response((Text(translate(lang, "slack.error"), Tone.ERROR),), lang)


# ---- small helpers ---------------------------------------------------------------------------------


def modal_conversation(dialog: str) -> str:
    """A modal is a conversation of its own, one per kind of form and user."""
    return f"modal:{dialog}"


def command_conversation(user: str) -> str:
    """One-shot answers (lists, help) that never hold a dialog."""
    return f"command:{user}"


def identity_metadata(identity: UserIdentity) -> str:
    """The person a modal is for, kept in its private_metadata (Slack returns it with the
    submission, unseen and unchanged by the user)."""
    return json.dumps({"id": identity.id, "email": identity.email, "name": identity.display_name,
                       "locale": identity.locale, "phone": identity.phone}, ensure_ascii=False)


def identity_from_metadata(metadata: Any, user: str) -> UserIdentity | None:
    """The identity a modal carries, if it is this user's."""
    try:
        data = json.loads(metadata) if isinstance(metadata, str) and metadata else None
    except ValueError:
        return None
    if not isinstance(data, dict) or data.get("id") != user:
        return None

    def text(key: str) -> str | None:
        value = data.get(key)
        return value if isinstance(value, str) and value else None

    return UserIdentity(id=user, email=text("email"), display_name=text("name"), locale=text("locale"),
                        phone=text("phone"))


def _retry_later() -> web.Response:
    """The database cannot take the request: Slack retries an event it got no 200 for, and a
    person who clicked or typed a command sees that it failed and may try again."""
    log.warning("database unavailable: asking Slack to retry later")
    return web.json_response({"error": "unavailable"}, status=503)


def _title(view: Mapping[str, Any]) -> str:
    return str((view.get("title") or {}).get("text") or BRAND)


def _describe(exc: BaseException) -> str:
    if isinstance(exc, SlackApiError):
        response = exc.response
        return f"HTTP {response.status_code}: {response.get('error') if isinstance(response.data, dict) else response.data!r}"
    return f"{type(exc).__name__}: {exc}"

