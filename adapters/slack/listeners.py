"""Slack's listeners: the ack functions (each writes its request to the inbox, then acks), the
matchers that say which events CareDesk answers, and the lazy functions (the work, run by an
inbox worker once Bolt hands it the stored request marked lazy-only).

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

from bot.app.inbox import InboxWriter
from bot.protocol.ids import MENU, Command, CommandAction
from bot.protocol.replies import Response, Text, Tone
from bot.store.ports import NewInboxItem, StoreUnavailableError
from cards import slack as cards

from adapters.shared.turns import first_delivery
from adapters.slack.conversations import (LOGTIME, NEW_TICKET, QUOTE, REGISTER, REGISTER_WORDS, SlackConversations,
                                          command_conversation,
                                          modal_conversation, view_dialog, view_title)
from adapters.slack.payloads import clicked, input_block_ids, slack_to_plain, team_of, thread_of
from bot.protocol.turn import person_key

from adapters.slack.web_api import CHANNEL

log = logging.getLogger("caredesk.slack")

SHORTCUT_CREATE_TICKET = "create_ticket_from_message"
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
    return person_key(team_of(body) or event.get("team") or "", event["user"])


def interaction_person(body: Mapping[str, Any]) -> str:
    return person_key(team_of(body), body["user"]["id"])


def command_person(body: Mapping[str, Any]) -> str:
    return person_key(body["team_id"], body["user_id"])


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


# What an ack function names as the request's lazy function: none of its listener's. Bolt, having
# run the ack function, then starts no lazy function in this process and makes no copy of the
# request for one: the work is in the inbox (or, for a checked submission, done or refused), and a
# worker re-dispatches it naming the real function. (Bolt's own lazy-only dispatch reads the same
# field: `x-slack-bolt-lazy-function-name`.)
HANDED_TO_INBOX = "caredesk.inbox"


def hand_to_inbox(request: AsyncBoltRequest) -> None:
    request.lazy_function_name = HANDED_TO_INBOX


class SlackListeners:
    def __init__(self, conversations: SlackConversations, inbox_writer: InboxWriter,
                 spawn: Callable[[Awaitable[Any]], Any]) -> None:
        self.conversations = conversations
        self.desk = conversations.desk
        self.store = conversations.store
        self.people = conversations.people
        self.messenger = conversations.messenger
        self.inbox_writer = inbox_writer
        self.spawn = spawn  # work this process finishes after an ack (the DM after a modal's last step)
        self._checks = asyncio.Semaphore(CONCURRENT_CHECKS)

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
            hand_to_inbox(request)
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
        hand_to_inbox(request)
        view = body["view"]
        dialog = view_dialog(view)
        team, user = team_of(body), body["user"]["id"]
        try:
            turn = await self.conversations.submission_turn(body, view)
            async with self._checks:
                preview = await self.conversations.runner.preview(turn)
            if preview.field_errors:
                await ack(**cards.field_errors(preview.field_errors, input_block_ids(view)))
                return None
            if preview.effect is not None or (preview.done and preview.state is None):
                await self.write(body, self.create_from_submission, person_key(team, user), dedup_key(body, request),
                                 URGENT)
                await ack()
                return None
            signature = request_signature(request)
            if signature and not await first_delivery(self.desk, "slack-request", signature):
                log.warning("ignored a replayed Slack request (same signature)")
                await ack()
                return None
            response = await self.conversations.handle(turn)
        except StoreUnavailableError:
            return retry_later()
        if response.field_errors:
            await ack(**cards.field_errors(response.field_errors, input_block_ids(view)))
        elif response.done:
            self.spawn(self.messenger.post_to_dm(team, user, response))
            await ack()  # closes the modal; the result goes to the DM
        else:
            # The dialog goes on (an out-of-hours emergency question): inside the modal.
            await ack(response_action="update", view=self.conversations.flow_view(dialog, view_title(view), response))
        return None

    # ---- lazy functions: the work, after the ack ----------------------------------------------------
    async def answer_dm(self, body: dict) -> None:
        event = body["event"]
        team, user, channel = team_of(body), event["user"], event["channel"]
        identity = await self.people.identity(team, user)
        await self.messenger.seen_in_dm(team, user, channel, identity)
        # The answer is saved with the turn (`reply_to`): posted below, or by the outbox if not.
        turn = self.conversations.turn(team, channel, identity, text=slack_to_plain(event.get("text")),
                                       event_id=body.get("event_id"), reply_to={"channel": channel, "team": team})
        await self.messenger.post(team, user, channel, await self.conversations.handle(turn))

    async def answer_mention(self, body: dict) -> None:
        event = body["event"]
        bot_user_id = await self.people.bot_user_id(body)
        team, user, channel = team_of(body), event["user"], event["channel"]
        thread = thread_of(event)
        identity = await self.people.identity(team, user)
        text = slack_to_plain(event.get("text"), drop_user=bot_user_id) or "help"
        turn = self.conversations.turn(team, f"{channel}:{thread}", identity, text=text, event_id=body.get("event_id"),
                                       reply_to={"channel": channel, "team": team,
                                                 **({"thread_ts": thread} if thread else {})})
        await self.messenger.post(team, user, channel, await self.conversations.handle(turn), thread_ts=thread)

    async def publish_home_tab(self, body: dict) -> None:
        event = body["event"]
        await self.conversations.publish_home(team_of(body) or event.get("team") or "", event["user"], event.get("channel"))

    async def run_command(self, body: dict) -> None:
        team, user = body["team_id"], body["user_id"]
        name = str(body.get("command", "")).lstrip("/").lower()
        text = slack_to_plain(body.get("text"))
        trigger, response_url = body.get("trigger_id"), body.get("response_url")
        origin = body.get("channel_id")
        if name == "ticket" and not self.conversations.runner.number_pattern.search(text):
            prefill = {"description": text} if text else {}
            await self.conversations.open_form(team, user, trigger, NEW_TICKET, prefill, response_url=response_url)
            return
        if name == "quote":
            await self.conversations.open_form(team, user, trigger, QUOTE, {}, response_url=response_url)
            return
        identity = await self.people.identity(team, user)
        if name in ("ticket", "escalate"):
            await self.conversations.in_dm(team, user, identity, text if name == "ticket" else f"escalate {text}".strip(),
                             origin=origin, response_url=response_url)
            return
        if name == "tickets":
            response = await self.conversations.handle(self.conversations.turn(team, command_conversation(user), identity, action=str(MENU),
                                                    values={"value": "my_tickets"}))
            await self.messenger.respond(response_url, response.replies)
            return
        if name == "logtime":
            if not text:
                await self.conversations.open_form(team, user, trigger, LOGTIME, {}, response_url=response_url)
                return
            # `/logtime CS-2026-00042 1h30 teamviewer …`: priced by the core, answered privately.
            response = await self.conversations.handle(self.conversations.turn(team, command_conversation(user), identity,
                                                    text=f"logtime {text}"))
            await self.messenger.respond(response_url, response.replies)
            return
        if name == "caredesk" and text.lower() in REGISTER_WORDS:
            # `/caredesk register`: staff register a ticket for a customer, in a modal (the core
            # refuses the form to anyone else, and says why).
            await self.conversations.open_form(team, user, trigger, REGISTER, {}, response_url=response_url)
            return
        if name == "caredesk" and text.lower() not in HELP_WORDS:
            await self.conversations.in_dm(team, user, identity, text, origin=origin, response_url=response_url)
            return
        await self.messenger.respond(response_url, await self.conversations.help_replies(team, user, identity))

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
            await self.conversations.outside_conversation(team, user, action, value, body.get("trigger_id"), None)
            return
        if container.get("type") == "view":
            await self.conversations.flow_action(team, user, view, action, value)
            return
        if container.get("is_ephemeral"):
            await self.conversations.outside_conversation(team, user, action, value, body.get("trigger_id"), body.get("response_url"))
            return
        channel = container.get("channel_id") or (body.get("channel") or {}).get("id")
        if not channel:
            return
        identity = await self.people.identity(team, user)
        message = body.get("message") or {}
        thread = None if channel.startswith("D") else thread_of(message)
        conversation = channel if thread is None else f"{channel}:{thread}"
        response = await self.conversations.handle(self.conversations.turn(team, conversation, identity, action=action, values={"value": value}))
        await self.messenger.post(team, user, channel, response, thread_ts=thread)

    async def open_shortcut_form(self, body: dict) -> None:
        message = body.get("message") or {}
        await self.conversations.open_form(team_of(body), body["user"]["id"], body.get("trigger_id"), NEW_TICKET,
                             {"description": slack_to_plain(message.get("text"))},
                             response_url=body.get("response_url"))

    async def end_closed_modal(self, body: dict) -> None:
        """A closed modal ends its dialog quietly (nothing was created)."""
        team, user = team_of(body), body["user"]["id"]
        dialog = view_dialog(body["view"])
        identity = await self.people.identity(team, user)
        turn = self.conversations.turn(team, modal_conversation(dialog), identity, action=str(CommandAction(Command.CANCEL)))
        if await self.store.load_dialog(turn.dialog_key) is not None:
            await self.conversations.handle(turn)

    async def create_from_submission(self, body: dict) -> None:
        view = body["view"]
        team, user = team_of(body), body["user"]["id"]
        response = await self.conversations.handle(await self.conversations.submission_turn(body, view))
        if response.field_errors:
            # Changed between the check and the work (rare): say what is wrong in the DM.
            labels = {b["block_id"]: b.get("label", {}).get("text", b["block_id"])
                      for b in view.get("blocks", ()) if b.get("type") == "input"}
            problems = "\n".join(f"{labels.get(k, k)}: {v}" for k, v in response.field_errors.items())
            response = Response((Text(problems, Tone.ERROR),), response.lang)
        await self.messenger.post_to_dm(team, user, response)
