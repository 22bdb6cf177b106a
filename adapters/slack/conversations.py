"""Conversations in Slack: a Turn for the core from who wrote where, the core's answer posted
where the person is (their DM, a thread, a modal, an ephemeral answer), and the modals that
carry a form (opened at once with the trigger, which lives three seconds, then filled in).

* a direct message with the bot is a conversation (the DM channel id is its key);
* a mention in a channel is answered in the thread, the thread being its own conversation;
* slash commands that start a guided dialog (/ticket NUMBER, /escalate) continue in the DM;
* a modal is its own conversation ("modal:<dialog>"), and a successful submission is posted to
  the user's DM.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from bot.app.desk import Desk
from bot.app.runner import TurnRunner
from bot.protocol.ids import (LOADING, MENU, Command, CommandAction, FlowModal, FormModal, FormSubmission, modal_dialog,
                              parse_action, parse_callback_id)
from bot.i18n import normalize_language, translate
from bot.protocol.replies import Choices, Reply, Response, Text, Tone
from bot.protocol.turn import Turn, UserIdentity
from cards import slack as cards

from adapters.shared.turns import answer, apology
from adapters.slack.payloads import form_values, team_of
from adapters.slack.people import SlackPeople, identity_from_metadata, identity_metadata
from adapters.slack.errors import SLACK_FAILURES, describe
from adapters.slack.web_api import CHANNEL, SlackMessenger

log = logging.getLogger("caredesk.slack")

NEW_TICKET, QUOTE, LOGTIME, REGISTER = "new_ticket", "quote", "logtime", "register"
REGISTER_WORDS = frozenset({"register", "enregistrer", "registreren"})
BRAND = "CareDesk"


class SlackConversations:
    def __init__(self, desk: Desk, runner: TurnRunner, people: SlackPeople, messenger: SlackMessenger) -> None:
        self.desk = desk
        self.store = desk.store
        self.runner = runner
        self.people = people
        self.messenger = messenger
        self.default_language = desk.settings.default_language

    @property
    def client(self) -> Any:
        return self.messenger.client

    async def submission_turn(self, body: Mapping[str, Any], view: Mapping[str, Any]) -> Turn:
        dialog = view_dialog(view)
        team, user = team_of(body), body["user"]["id"]
        # Who filled the form in was known when it opened (the modal carries it): no users.info
        # call before the ack.
        identity = identity_from_metadata(view.get("private_metadata"), user) or await self.people.identity(team, user)
        values = form_values(view)
        values["_confirmed"] = "1"  # submitting the modal is the confirmation
        return self.turn(team, modal_conversation(dialog), identity, action=str(FormSubmission(dialog)), values=values)

    async def help_replies(self, team: str, user: str, identity: UserIdentity) -> tuple[Reply, ...]:
        """The core's help (what CareDesk does and its menu) with Slack's commands before the menu."""
        turn = self.turn(team, command_conversation(user), identity, action=str(CommandAction(Command.HELP)))
        response = await self.handle(turn)
        menu = tuple(r for r in response.replies if isinstance(r, Choices))
        rest = tuple(r for r in response.replies if not isinstance(r, Choices))
        return rest + (Text(translate(response.lang, "slack.help")),) + menu

    async def flow_action(self, team: str, user: str, view: Mapping[str, Any], action: str, value: str) -> None:
        """A button inside a modal that goes on with a form's dialog."""
        dialog = view_dialog(view)
        identity = await self.people.identity(team, user)
        turn = self.turn(team, modal_conversation(dialog), identity, action=action, values={"value": value})
        response = await self.handle(turn)
        try:
            await self.client.views_update(view_id=view["id"], hash=view.get("hash"),
                                           view=self.flow_view(dialog, view_title(view), response))
        except SLACK_FAILURES as exc:
            log.error("views.update failed: %s", describe(exc))
        if response.done and response.replies:
            await self.messenger.post_to_dm(team, user, response)

    async def outside_conversation(self, team: str, user: str, action: str, value: str, trigger: str | None,
                                   response_url: str | None) -> None:
        """A menu button outside a conversation (the Home tab, an ephemeral help message)."""
        menu = parse_action(action) == MENU
        if menu and value in (NEW_TICKET, QUOTE) and trigger:
            await self.open_form(team, user, trigger, value, {}, response_url=response_url)
            return
        identity = await self.people.identity(team, user)
        if menu and value == "escalate":
            await self.in_dm(team, user, identity, "escalate", origin=None, response_url=response_url)
            return
        response = await self.handle(self.turn(team, command_conversation(user), identity, action=action,
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
                                      callback_id=LOADING)
        try:
            opened = await self.client.views_open(trigger_id=trigger, view=loading)
        except SLACK_FAILURES as exc:
            log.error("views.open failed: %s", describe(exc))
            await self.messenger.tell_failure(team, user, "slack.form_failed", response_url)
            return
        identity = await self.people.identity(team, user)
        turn = self.turn(team, modal_conversation(dialog), identity)
        try:
            form = await self.runner.form(turn, dialog, dict(prefill))
        except Exception:
            log.exception("building the %s form failed", dialog)
            form = None
        if form is None:
            # Not this user's form (time logging is for agents): the core says why.
            refusal = await self.handle(self.turn(team, command_conversation(user), identity, text=dialog))
            replies = refusal.replies or (Text(translate(refusal.lang, "slack.error"), Tone.ERROR),)
            view = cards.info_modal(BRAND, replies, translate(refusal.lang, "slack.close"),
                                    callback_id=LOADING)
        else:
            view = cards.form_modal(form, callback_id=FormModal(dialog),
                                    private_metadata=identity_metadata(identity))
        try:
            await self.client.views_update(view_id=opened["view"]["id"], hash=opened["view"].get("hash"), view=view)
        except SLACK_FAILURES as exc:
            log.error("views.update failed: %s", describe(exc))
            await self.messenger.tell_failure(team, user, "slack.form_failed", response_url)

    def flow_view(self, dialog: str, title: str, response: Response) -> dict[str, Any]:
        return cards.info_modal(title, response.replies, translate(response.lang, "slack.close"),
                                callback_id=FlowModal(dialog), notify_on_close=not response.done)

    async def publish_home(self, team: str, user: str, channel: str | None = None) -> None:
        identity = await self.people.identity(team, user)
        if channel:
            await self.messenger.seen_in_dm(team, user, channel, identity)
        turn = self.turn(team, channel or f"home:{user}", identity)
        try:
            response = await self.runner.home(turn)
        except Exception:
            log.exception("building the Home tab failed")
            response = apology(self.desk, identity.locale, "slack.error")
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
            cancelled = await self.handle(self.turn(team, dm, identity, action=str(CommandAction(Command.CANCEL))))
            await self.messenger.post(team, user, dm, cancelled)
        delivered = await self.messenger.post(team, user, dm, await self.handle(turn))
        if delivered and origin != dm and response_url:
            await self.messenger.respond(response_url, (Text(translate(await self.language(turn), "slack.dm_sent")),))

    def turn(self, team: str, conversation: str, identity: UserIdentity, *, text: str | None = None,
             action: str | None = None, values: Mapping[str, str] | None = None, event_id: str | None = None,
             reply_to: Mapping[str, str] | None = None) -> Turn:
        # The person's own workspace vouches for their e-mail: in a channel shared by Slack
        # Connect, a customer's person is recognised by their own team id, not the host's.
        return Turn(CHANNEL, team, conversation, identity, text=text, action=action, values=dict(values or {}),
                    event_id=event_id, reply_to=reply_to, home_tenant=self.people.home_team(team, identity.id))

    async def language(self, turn: Turn) -> str:
        try:
            return (await self.runner.context(turn)).lang
        except Exception:
            log.exception("looking up the user's language failed")
            return normalize_language(turn.user.locale, self.default_language)

    async def handle(self, turn: Turn) -> Response:
        """The core's answer; an unexpected failure becomes a clear apology, never silence. A
        database outage is raised: the inbox worker waits for the database and does the turn again."""
        return await answer(self.runner, turn, apology_key="slack.error")


def view_dialog(view: Mapping[str, Any]) -> str:
    """The dialog a CareDesk modal (a form or its flow) belongs to; "" for any other view."""
    return modal_dialog(parse_callback_id(view.get("callback_id"))) or ""


def modal_conversation(dialog: str) -> str:
    """A modal is a conversation of its own, one per kind of form and user."""
    return f"modal:{dialog}"


def command_conversation(user: str) -> str:
    """One-shot answers (lists, help) that never hold a dialog."""
    return f"command:{user}"


def view_title(view: Mapping[str, Any]) -> str:
    return str((view.get("title") or {}).get("text") or BRAND)
