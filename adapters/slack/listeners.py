"""Slack's listeners: the ack functions (each writes its request to the inbox, then acks) and
the lazy functions (the work, run by an inbox worker once Bolt hands it the stored request
marked lazy-only).

Where things happen:
* a direct message with the bot is a conversation (the DM channel id is its key);
* a mention in a channel is answered in the thread, the thread being its own conversation;
* slash commands that start a guided dialog (/ticket NUMBER, /escalate) continue in the DM;
  /tickets and /caredesk help answer ephemerally through the command's response_url;
* /ticket, /quote, the message shortcut and the Home tab's buttons open modals (a "loading"
  modal is opened with the trigger at once, then replaced by the form); a modal is its own
  conversation ("modal:<dialog>"), and a successful submission is posted to the user's DM.

A modal submission is the one request whose ack carries an answer: the core checks it first, so
that Slack shows the field errors beside the fields.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from typing import Any, Awaitable, Callable

from slack_bolt.context.ack.async_ack import AsyncAck
from slack_bolt.request.async_request import AsyncBoltRequest
from slack_bolt.response import BoltResponse
from slack_bolt.util.utils import get_name_for_callable

from bot.app.desk import Desk
from bot.app.inbox import InboxWriter
from bot.app.runner import TurnRunner
from bot.dialogs.engine import ACTION_FORM, ACTION_PREFIX_COMMAND
from bot.i18n import normalize_language, translate
from bot.protocol.replies import Choices, Reply, Response, Text, Tone
from bot.protocol.turn import Turn, UserIdentity
from bot.store.port import NewInboxItem, StoreUnavailableError
from cards import slack as cards

from adapters.slack.payloads import clicked, form_values, input_block_ids, slack_to_plain, team_of, thread_of
from adapters.slack.people import SlackPeople, identity_from_metadata, identity_metadata
from adapters.slack.web_api import CHANNEL, SLACK_FAILURES, SlackMessenger, describe

log = logging.getLogger("caredesk.slack")

SHORTCUT_CREATE_TICKET = "create_ticket_from_message"
NEW_TICKET, QUOTE, LOGTIME = "new_ticket", "quote", "logtime"
ACTION_MENU = "menu"
FLOW_CALLBACK = "flow:"  # a modal that goes on with a form's dialog after its submission
LOADING_CALLBACK = "loading"
BRAND = "CareDesk"
HELP_WORDS = {"", "help", "aide", "hulp", "?"}
# Someone waits on these, some with a trigger that expires after three seconds: first in line.
URGENT, NORMAL = 0, 1
# Modal submissions checked at the same time before their ack: a flood of them waits here
# rather than opening a database connection each.
CONCURRENT_CHECKS = 8

LazyWork = Callable[..., Awaitable[None]]
AckFunction = Callable[..., Awaitable[BoltResponse | None]]


# ---- whose request it is, and what makes it the same request twice --------------------------------


def event_person(body: Mapping[str, Any]) -> str:
    event = body["event"]
    return f"{team_of(body) or event.get('team') or ''}:{event['user']}"


def interaction_person(body: Mapping[str, Any]) -> str:
    return f"{team_of(body)}:{body['user']['id']}"


def command_person(body: Mapping[str, Any]) -> str:
    return f"{body['team_id']}:{body['user_id']}"


def request_signature(request: AsyncBoltRequest) -> str | None:
    """The verified signature of an HTTP request (Socket Mode's have none)."""
    return request.headers.get("x-slack-signature", [None])[0] or None


def dedup_key(body: Mapping[str, Any], request: AsyncBoltRequest) -> str | None:
    """Slack's event id; or, for commands and interactivity (no event id, never resent by Slack),
    the request's signature, so that a replay within its five minutes has no second effect."""
    event_id = body.get("event_id")
    if isinstance(event_id, str) and event_id:
        return f"event:{event_id}"
    signature = request_signature(request)
    return f"request:{signature}" if signature else None


def retry_later() -> BoltResponse:
    """The database cannot take the request: Slack retries an event it got no 200 for, and a
    person who clicked or typed a command sees that it failed and may try again."""
    log.warning("database unavailable: asking Slack to retry later")
    return BoltResponse(status=503, body={"error": "unavailable"})


# ---- which events CareDesk answers (Bolt's listener matchers) ---------------------------------------


async def from_a_person_in_dm(event: dict) -> bool:
    """Direct messages from people only: no edits, joins or bot messages."""
    user = event.get("user")
    return (event.get("channel_type") == "im" and not event.get("subtype") and not event.get("bot_id")
            and isinstance(user, str) and bool(user) and isinstance(event.get("channel"), str))


async def from_a_person_in_a_channel(event: dict) -> bool:
    user = event.get("user")
    return isinstance(user, str) and bool(user) and isinstance(event.get("channel"), str)


async def home_tab_opened(event: dict) -> bool:
    user = event.get("user")
    return event.get("tab") == "home" and isinstance(user, str) and bool(user)


async def acknowledge(ack: AsyncAck) -> None:
    """An event CareDesk does not answer (an edit, a bot's own message, …): acknowledged, so
    that Slack does not send it again."""
    await ack()


class SlackListeners:
    def __init__(self, desk: Desk, conversation: TurnRunner, people: SlackPeople, messenger: SlackMessenger,
                 inbox_writer: InboxWriter, spawn: Callable[[Awaitable[Any]], Any]) -> None:
        self.desk = desk
        self.store = desk.store
        self.conversation = conversation
        self.people = people
        self.messenger = messenger
        self.inbox_writer = inbox_writer
        self.spawn = spawn
        self.default_language = desk.settings.default_language
        self._checks = asyncio.Semaphore(CONCURRENT_CHECKS)

    @property
    def client(self) -> Any:
        return self.messenger.client

    # ---- ack functions -------------------------------------------------------------------------------
    async def write(self, body: Mapping[str, Any], work: LazyWork, person: str, dedup: str | None,
                    priority: int) -> None:
        """Write a request to the inbox with the lazy function that does its work (Bolt's name
        for it); StoreUnavailableError when the database cannot take it, so that Slack is asked
        to send it again."""
        # Slack's legacy verification token is a credential: it is not kept.
        payload = {key: value for key, value in body.items() if key != "token"}
        await self.inbox_writer.write(NewInboxItem(CHANNEL, get_name_for_callable(work), f"{CHANNEL}:{person}",
                                                   payload, dedup, priority))

    def written_down(self, work: LazyWork, person: Callable[[Mapping[str, Any]], str],
                     priority: int = NORMAL) -> AckFunction:
        """The ack function of a request whose `work` is done after the ack: written to the
        inbox, then acknowledged (Slack never resends what it got a 200 for)."""

        async def write_then_ack(ack: AsyncAck, body: dict, request: AsyncBoltRequest) -> BoltResponse | None:
            try:
                await self.write(body, work, person(body), dedup_key(body, request), priority)
            except StoreUnavailableError:
                return retry_later()
            await ack()
            return None

        # Bolt names a listener by its ack function in its logs.
        write_then_ack.__name__ = write_then_ack.__qualname__ = f"write_{get_name_for_callable(work)}"
        return write_then_ack

    async def check_submission(self, ack: AsyncAck, body: dict, request: AsyncBoltRequest) -> BoltResponse | None:
        """A modal submission, checked by the core before the ack: the field errors shown inline,
        the next step inside the modal, or a valid final one written to the inbox (the modal
        closes at once; `create_from_submission` creates the ticket and its number goes to the DM)."""
        view = body["view"]
        dialog = view["callback_id"][len(ACTION_FORM):]
        team, user = team_of(body), body["user"]["id"]
        try:
            turn = await self._submission_turn(body, view)
            async with self._checks:
                preview = await self.conversation.preview(turn)
            if preview.field_errors:
                await ack(**cards.field_errors(preview.field_errors, input_block_ids(view)))
                return None
            if preview.effect is not None or (preview.done and preview.state is None):
                await self.write(body, self.create_from_submission, f"{team}:{user}", dedup_key(body, request),
                                 URGENT)
                await ack()
                return None
            signature = request_signature(request)
            if signature and not await self.store.claim_event("slack-request", signature, self.desk.now()):
                log.warning("ignored a replayed Slack request (same signature)")
                await ack()
                return None
            response = await self._handle(turn)
        except StoreUnavailableError:
            return retry_later()
        if response.field_errors:
            await ack(**cards.field_errors(response.field_errors, input_block_ids(view)))
        elif response.done:
            self.spawn(self.messenger.post_to_dm(team, user, response))
            await ack()  # closes the modal; the result goes to the DM
        else:
            # The dialog goes on (an out-of-hours emergency question): inside the modal.
            await ack(response_action="update", view=self._flow_view(dialog, _title(view), response))
        return None

    async def _submission_turn(self, body: Mapping[str, Any], view: Mapping[str, Any]) -> Turn:
        dialog = view["callback_id"][len(ACTION_FORM):]
        team, user = team_of(body), body["user"]["id"]
        # Who filled the form in was known when it opened (the modal carries it): no users.info
        # call before the ack.
        identity = identity_from_metadata(view.get("private_metadata"), user) or await self.people.identity(team, user)
        values = form_values(view)
        values["_confirmed"] = "1"  # submitting the modal is the confirmation
        return self.turn(team, modal_conversation(dialog), identity, action=f"{ACTION_FORM}{dialog}", values=values)

    # ---- lazy functions: the work, after the ack ----------------------------------------------------
    async def answer_dm(self, body: dict) -> None:
        event = body["event"]
        team, user, channel = team_of(body), event["user"], event["channel"]
        identity = await self.people.identity(team, user)
        await self.messenger.seen_in_dm(team, user, channel, identity)
        turn = self.turn(team, channel, identity, text=slack_to_plain(event.get("text")), event_id=body.get("event_id"))
        await self.messenger.post(team, user, channel, await self._handle(turn))

    async def answer_mention(self, body: dict) -> None:
        event = body["event"]
        bot_user_id = await self.people.bot_user_id(body)
        team, user, channel = team_of(body), event["user"], event["channel"]
        thread = thread_of(event)
        identity = await self.people.identity(team, user)
        text = slack_to_plain(event.get("text"), drop_user=bot_user_id) or "help"
        turn = self.turn(team, f"{channel}:{thread}", identity, text=text, event_id=body.get("event_id"))
        await self.messenger.post(team, user, channel, await self._handle(turn), thread_ts=thread)

    async def publish_home_tab(self, body: dict) -> None:
        event = body["event"]
        await self.publish_home(team_of(body) or event.get("team") or "", event["user"], event.get("channel"))

    async def run_command(self, body: dict) -> None:
        team, user = body["team_id"], body["user_id"]
        name = str(body.get("command", "")).lstrip("/").lower()
        text = slack_to_plain(body.get("text"))
        trigger, response_url = body.get("trigger_id"), body.get("response_url")
        origin = body.get("channel_id")
        if name == "ticket" and not self.conversation.number_pattern.search(text):
            prefill = {"description": text} if text else {}
            await self.open_form(team, user, trigger, NEW_TICKET, prefill, response_url=response_url)
            return
        if name == "quote":
            await self.open_form(team, user, trigger, QUOTE, {}, response_url=response_url)
            return
        identity = await self.people.identity(team, user)
        if name in ("ticket", "escalate"):
            await self.in_dm(team, user, identity, text if name == "ticket" else f"escalate {text}".strip(),
                             origin=origin, response_url=response_url)
            return
        if name == "tickets":
            response = await self._handle(self.turn(team, command_conversation(user), identity, action=ACTION_MENU,
                                                    values={"value": "my_tickets"}))
            await self.messenger.respond(response_url, response.replies)
            return
        if name == "logtime":
            if not text:
                await self.open_form(team, user, trigger, LOGTIME, {}, response_url=response_url)
                return
            # `/logtime CS-2026-00042 1h30 teamviewer …`: priced by the core, answered privately.
            response = await self._handle(self.turn(team, command_conversation(user), identity,
                                                    text=f"logtime {text}"))
            await self.messenger.respond(response_url, response.replies)
            return
        if name == "caredesk" and text.lower() not in HELP_WORDS:
            await self.in_dm(team, user, identity, text, origin=origin, response_url=response_url)
            return
        await self.messenger.respond(response_url, await self.help_replies(team, user, identity))

    async def run_action(self, body: dict) -> None:
        actions = body.get("actions") or ()
        click = clicked(actions[0]) if actions else None
        if click is None:
            return  # not a CareDesk button: acknowledged, nothing to do
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
        identity = await self.people.identity(team, user)
        message = body.get("message") or {}
        thread = None if channel.startswith("D") else thread_of(message)
        conversation = channel if thread is None else f"{channel}:{thread}"
        response = await self._handle(self.turn(team, conversation, identity, action=action, values={"value": value}))
        await self.messenger.post(team, user, channel, response, thread_ts=thread)

    async def open_shortcut_form(self, body: dict) -> None:
        message = body.get("message") or {}
        await self.open_form(team_of(body), body["user"]["id"], body.get("trigger_id"), NEW_TICKET,
                             {"description": slack_to_plain(message.get("text"))},
                             response_url=body.get("response_url"))

    async def end_closed_modal(self, body: dict) -> None:
        """A closed modal ends its dialog quietly (nothing was created)."""
        team, user = team_of(body), body["user"]["id"]
        dialog = str(body["view"]["callback_id"]).split(":", 1)[1]
        identity = await self.people.identity(team, user)
        turn = self.turn(team, modal_conversation(dialog), identity, action=f"{ACTION_PREFIX_COMMAND}cancel")
        if await self.store.load_dialog(turn.dialog_key) is not None:
            await self._handle(turn)

    async def create_from_submission(self, body: dict) -> None:
        view = body["view"]
        team, user = team_of(body), body["user"]["id"]
        response = await self._handle(await self._submission_turn(body, view))
        if response.field_errors:
            # Changed between the check and the work (rare): say what is wrong in the DM.
            labels = {b["block_id"]: b.get("label", {}).get("text", b["block_id"])
                      for b in view.get("blocks", ()) if b.get("type") == "input"}
            problems = "\n".join(f"{labels.get(k, k)}: {v}" for k, v in response.field_errors.items())
            response = Response((Text(problems, Tone.ERROR),), response.lang)
        await self.messenger.post_to_dm(team, user, response)

    # ---- conversations -----------------------------------------------------------------------------
    async def help_replies(self, team: str, user: str, identity: UserIdentity) -> tuple[Reply, ...]:
        """The core's help (what CareDesk does and its menu) with Slack's commands before the menu."""
        turn = self.turn(team, command_conversation(user), identity, action=f"{ACTION_PREFIX_COMMAND}help")
        response = await self._handle(turn)
        menu = tuple(r for r in response.replies if isinstance(r, Choices))
        rest = tuple(r for r in response.replies if not isinstance(r, Choices))
        return rest + (Text(translate(response.lang, "slack.help")),) + menu

    async def _run_flow_action(self, team: str, user: str, view: Mapping[str, Any], action: str, value: str) -> None:
        """A button inside a modal that goes on with a form's dialog."""
        dialog = str(view.get("callback_id", "")).split(":", 1)[-1]
        identity = await self.people.identity(team, user)
        turn = self.turn(team, modal_conversation(dialog), identity, action=action, values={"value": value})
        response = await self._handle(turn)
        try:
            await self.client.views_update(view_id=view["id"], hash=view.get("hash"),
                                           view=self._flow_view(dialog, _title(view), response))
        except SLACK_FAILURES as exc:
            log.error("views.update failed: %s", describe(exc))
        if response.done and response.replies:
            await self.messenger.post_to_dm(team, user, response)

    async def outside_conversation(self, team: str, user: str, action: str, value: str, trigger: str | None,
                                   response_url: str | None) -> None:
        """A menu button outside a conversation (the Home tab, an ephemeral help message)."""
        if action == ACTION_MENU and value in (NEW_TICKET, QUOTE) and trigger:
            await self.open_form(team, user, trigger, value, {}, response_url=response_url)
            return
        identity = await self.people.identity(team, user)
        if action == ACTION_MENU and value == "escalate":
            await self.in_dm(team, user, identity, "escalate", origin=None, response_url=response_url)
            return
        response = await self._handle(self.turn(team, command_conversation(user), identity, action=action,
                                                values={"value": value}))
        if response_url:
            await self.messenger.respond(response_url, response.replies)
        else:
            await self.messenger.post_to_dm(team, user, response)

    async def open_form(self, team: str, user: str, trigger: str | None, dialog: str, prefill: Mapping[str, Any],
                        *, response_url: str | None = None) -> None:
        """Open the modal at once (the trigger lives three seconds), then fill the form in."""
        cached = self.people.cached(team, user)
        lang = normalize_language(cached.locale if cached else None, self.default_language)
        loading = cards.loading_modal(BRAND, translate(lang, "slack.loading"), translate(lang, "slack.close"),
                                      callback_id=LOADING_CALLBACK)
        try:
            opened = await self.client.views_open(trigger_id=trigger, view=loading)
        except SLACK_FAILURES as exc:
            log.error("views.open failed: %s", describe(exc))
            await self.messenger.tell_failure(team, user, "slack.form_failed", response_url)
            return
        identity = await self.people.identity(team, user)
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
            log.error("views.update failed: %s", describe(exc))
            await self.messenger.tell_failure(team, user, "slack.form_failed", response_url)

    def _flow_view(self, dialog: str, title: str, response: Response) -> dict[str, Any]:
        return cards.info_modal(title, response.replies, translate(response.lang, "slack.close"),
                                callback_id=f"{FLOW_CALLBACK}{dialog}", notify_on_close=not response.done)

    async def publish_home(self, team: str, user: str, channel: str | None = None) -> None:
        identity = await self.people.identity(team, user)
        if channel:
            await self.messenger.seen_in_dm(team, user, channel, identity)
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
            log.error("views.publish failed: %s", describe(exc))

    async def in_dm(self, team: str, user: str, identity: UserIdentity, text: str, *, origin: str | None,
                    response_url: str | None) -> None:
        """Start a dialog in the user's DM with the bot (a slash command, a Home button). A dialog
        in progress there is cancelled first, and the user sees that it was."""
        try:
            dm = await self.messenger.dm_channel(team, user, identity)
        except SLACK_FAILURES as exc:
            log.error("conversations.open failed: %s", describe(exc))
            await self.messenger.tell_failure(team, user, "slack.action_failed", response_url)
            return
        turn = self.turn(team, dm, identity, text=text)
        if await self.store.load_dialog(turn.dialog_key) is not None:
            cancelled = await self._handle(self.turn(team, dm, identity, action=f"{ACTION_PREFIX_COMMAND}cancel"))
            await self.messenger.post(team, user, dm, cancelled)
        delivered = await self.messenger.post(team, user, dm, await self._handle(turn))
        if delivered and origin != dm and response_url:
            await self.messenger.respond(response_url, (Text(translate(await self.language(turn), "slack.dm_sent")),))

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


def modal_conversation(dialog: str) -> str:
    """A modal is a conversation of its own, one per kind of form and user."""
    return f"modal:{dialog}"


def command_conversation(user: str) -> str:
    """One-shot answers (lists, help) that never hold a dialog."""
    return f"command:{user}"


def _title(view: Mapping[str, Any]) -> str:
    return str((view.get("title") or {}).get("text") or BRAND)
