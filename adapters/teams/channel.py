"""The Teams channel: Bot Framework activities (plain JSON) in, Adaptive Cards out.

Translation only: an activity becomes a `Turn` for the core (`TurnRunner`), the core's
`Response` becomes one Adaptive Card (`cards.teams`). No SDK type appears here: the platform
is reached through `TurnIO` (see transport.py).

* message            -> Turn(text) with the bot's @mention removed; the manifest's commands
                        (`ticket`, `quote` open a form card; `logtime` is not available yet;
                        `tickets`, `escalate N`, `help` become the core's words);
* message with value -> a card's Action.Submit: Turn(action, values); the used card is
                        replaced (PUT) by one without buttons showing what was chosen;
* invoke adaptiveCard/action -> the same for Action.Execute, answered with the refreshed card;
* conversationUpdate (bot added) / installationUpdate add -> the welcome card, once.

Every activity stores the conversation reference (for proactive messages) and the user's
e-mail comes from the Teams member lookup, cached; a failed lookup is logged, never fatal.
"""

from __future__ import annotations

import hashlib
import html
import logging
import re
from collections.abc import Mapping
from dataclasses import dataclass, replace
from functools import lru_cache
from typing import Any

from adapters.shared.cache import ExpiringCache
from adapters.shared.references import ReferenceBook
from adapters.shared.turns import apology, first_delivery
from adapters.teams import refresh
from adapters.teams.activities import CARD_ACTION_INVOKE
from adapters.teams.config import TeamsConfig
from adapters.teams.transport import DeliveryError, InvokeReply, TurnIO
from bot.app.runner import TurnRunner
from bot.app.desk import Desk
from bot.i18n import LANGUAGES, normalize_language, translate
from bot.protocol.ids import FormSubmission, parse_action
from bot.protocol.replies import Reply, Response
from bot.protocol.turn import Turn, UserIdentity
from cards.teams import (
    CARD_CONTENT_TYPE,
    META_KEY,
    CardLabels,
    attachment,
    render_card,
    render_chosen,
    render_form,
    render_submitted,
    summary,
)

log = logging.getLogger("caredesk.teams")

CHANNEL = "msteams"
COMMANDS = ("ticket", "tickets", "quote", "escalate", "logtime", "register", "help")
FORM_COMMANDS = {"ticket": "new_ticket", "quote": "quote", "logtime": "logtime", "register": "register"}
CORE_WORDS = {"tickets": "status", "escalate": "escalate", "help": "help"}
MESSAGE_TYPE = "application/vnd.microsoft.activity.message"
MEMBER_FAILURE_RETRY_SECONDS = 60.0
_AT = re.compile(r"<at\b[^>]*>(.*?)</at>", re.IGNORECASE | re.DOTALL)
_THREAD = re.compile(r";messageid=\d+$")


# ---- reading activities ---------------------------------------------------------------------------

# The longest delivery id we hand the core: it is stored as `processed_events.event_id` (255) and
# inside idempotency keys (`msteams:<id>`), so it must stay well below that.
MAX_DELIVERY_ID = 200


@dataclass(frozen=True)
class ActivityKey:
    """One Teams delivery: an activity id is a millisecond timestamp, unique only within its
    conversation, so two people writing in the same millisecond bring the same id. The
    conversation is part of the key; a Teams retry (same conversation, same id) is the same key."""

    conversation: str
    activity: str

    def encode(self) -> str:
        # Conversation ids run past a hundred characters: a digest keeps the key bounded and
        # still tells conversations apart; the activity id stays readable in the logs.
        conversation = hashlib.sha256(self.conversation.encode("utf-8")).hexdigest()[:32]
        key = f"{conversation}/{self.activity}"
        if len(key) > MAX_DELIVERY_ID:
            key = f"{conversation}/sha256:{hashlib.sha256(self.activity.encode('utf-8')).hexdigest()}"
        return key

    def __str__(self) -> str:
        return self.encode()



def activity_locale(activity: Mapping[str, Any]) -> str | None:
    if activity.get("locale"):
        return str(activity["locale"])
    for entity in activity.get("entities") or ():
        if isinstance(entity, dict) and entity.get("type") == "clientInfo" and entity.get("locale"):
            return str(entity["locale"])
    return None


def tenant_of(activity: Mapping[str, Any]) -> str:
    channel_data = activity.get("channelData") or {}
    tenant = (channel_data.get("tenant") or {}).get("id") if isinstance(channel_data, dict) else None
    return str(tenant or (activity.get("conversation") or {}).get("tenantId") or "")


def conversation_id(activity: Mapping[str, Any]) -> str:
    return str((activity.get("conversation") or {}).get("id") or "")


def is_personal(activity: Mapping[str, Any]) -> bool:
    conversation = activity.get("conversation") or {}
    kind = conversation.get("conversationType")
    return kind == "personal" or (kind is None and not conversation.get("isGroup"))


def clean_text(activity: Mapping[str, Any]) -> str:
    """The message text without the bot's @mention (other mentions keep the person's name)."""
    text = str(activity.get("text") or "")
    bot = activity.get("recipient") or {}
    for entity in activity.get("entities") or ():
        if (isinstance(entity, dict) and entity.get("type") == "mention"
                and (entity.get("mentioned") or {}).get("id") == bot.get("id") and entity.get("text")):
            text = text.replace(entity["text"], " ")
    bot_name = (bot.get("name") or "").strip().lower()
    text = _AT.sub(lambda m: " " if bot_name and m.group(1).strip().lower() == bot_name else m.group(1), text)
    return " ".join(html.unescape(text).split())


@lru_cache(maxsize=1)
def command_titles() -> Mapping[str, str]:
    """Every language's command title (as in the manifest's localization files) -> the command."""
    titles: dict[str, str] = {}
    for lang in LANGUAGES:
        for command in COMMANDS:
            titles.setdefault(translate(lang, f"teams.command.{command}.title").lower(), command)
    return titles


def parse_command(text: str) -> tuple[str, str] | None:
    """A manifest command: the bare title (`ticket`, `devis`, …), or `escalate NUMBER`."""
    parts = text.strip().split(maxsplit=1)
    if not parts:
        return None
    command = command_titles().get(parts[0].lower().lstrip("/"))
    argument = parts[1].strip() if len(parts) > 1 else ""
    if command is None or (argument and command != "escalate"):
        return None  # "ticket printing is broken" is free text for the core
    return command, argument


def conversation_reference(activity: Mapping[str, Any], *, root: bool = False) -> dict[str, Any]:
    """The Bot Framework ConversationReference (JSON) of an activity's conversation."""
    conversation = dict(activity.get("conversation") or {})
    if root and "id" in conversation:
        conversation["id"] = _THREAD.sub("", str(conversation["id"]))
    # A customer's tenant is not the bot's: a proactive message must name it (issue 17).
    if not conversation.get("tenantId") and tenant_of(activity):
        conversation["tenantId"] = tenant_of(activity)
    reference = {
        "user": dict(activity.get("from") or {}),
        "bot": dict(activity.get("recipient") or {}),
        "conversation": conversation,
        "channelId": activity.get("channelId") or CHANNEL,
        "serviceUrl": activity.get("serviceUrl"),
    }
    if activity_locale(activity):
        reference["locale"] = activity_locale(activity)
    return reference


def message_activity(card: Mapping[str, Any], preview: str = "") -> dict[str, Any]:
    activity: dict[str, Any] = {"type": "message", "attachments": [attachment(card)]}
    if preview:
        activity["summary"] = preview
    return activity


def card_labels(lang: str) -> CardLabels:
    return CardLabels(
        send=translate(lang, "teams.card_send"),
        required=translate(lang, "teams.card_required"),
        chosen=translate(lang, "teams.card_chosen"),
        submitted=translate(lang, "teams.card_submitted"),
    )


def response_message(replies: tuple[Reply, ...], lang: str, field_errors: Mapping[str, str] | None = None
                     ) -> dict[str, Any]:
    card = render_card(replies, lang=lang, labels=card_labels(lang), field_errors=field_errors)
    return message_activity(card, summary(replies))


def _submitted_values(data: Mapping[str, Any]) -> dict[str, str]:
    values: dict[str, str] = {}
    for key, value in data.items():
        if key in ("action", META_KEY, "msteams") or (key.startswith("_") and key != "_confirmed"):
            continue
        if isinstance(value, (dict, list)):
            continue
        values[str(key)] = "" if value is None else str(value)
    return values


# ---- the channel ----------------------------------------------------------------------------------


class TeamsChannel:
    def __init__(self, desk: Desk, config: TeamsConfig):
        self.desk = desk
        self.config = config
        self.conversation = TurnRunner(desk)
        # (tenant, user id) -> the e-mail the member lookup gave (None: it failed or had none)
        self._emails: ExpiringCache[tuple[str, str], tuple[str | None]] = ExpiringCache()
        self.references = ReferenceBook(desk, CHANNEL)

    # ---- entry point --------------------------------------------------------------------------
    async def on_turn(self, io: TurnIO) -> InvokeReply | None:
        activity = io.activity
        kind = activity.get("type")
        if kind == "message":
            await self._guarded(io, self._on_message)
            return None
        if kind == "invoke":
            return await self._on_invoke(io)
        if kind == "conversationUpdate":
            bot_id = (activity.get("recipient") or {}).get("id")
            if any((m or {}).get("id") == bot_id for m in activity.get("membersAdded") or ()):
                await self._guarded(io, self._welcome)
            return None
        if kind == "installationUpdate" and activity.get("action") == "add":
            await self._guarded(io, self._welcome)
        return None

    def still_working(self, activity: Mapping[str, Any]) -> InvokeReply:
        """The answer to an invoke whose work outlives Teams' time limit."""
        lang = normalize_language(activity_locale(activity), self.desk.settings.default_language)
        return InvokeReply(200, {"statusCode": 200, "type": MESSAGE_TYPE,
                                 "value": translate(lang, "teams.still_working")})

    async def _guarded(self, io: TurnIO, handler) -> None:
        try:
            await handler(io)
        except Exception:
            log.exception("Teams activity %s could not be handled", io.activity.get("id"))
            sorry = apology(self.desk, activity_locale(io.activity), "teams.action_failed")
            await self._send(io, response_message(sorry.replies, sorry.lang))

    # ---- who is talking ---------------------------------------------------------------------------
    async def _identity(self, io: TurnIO) -> UserIdentity:
        activity = io.activity
        sender = activity.get("from") or {}
        return UserIdentity(
            id=str(sender.get("id") or ""),
            email=await self._email(io, sender),
            display_name=sender.get("name"),
            locale=activity_locale(activity),
        )

    async def _email(self, io: TurnIO, sender: Mapping[str, Any]) -> str | None:
        user_id = str(sender.get("id") or "")
        if not user_id:
            return None
        key = (tenant_of(io.activity), user_id)
        cached = self._emails.get(key)
        if cached is not None:
            return cached[0]
        try:
            member = await io.member(user_id)
        except Exception as exc:
            log.warning("Teams member lookup for %s failed, carrying on without an e-mail: %s", user_id, exc)
            self._emails.put(key, (None,), MEMBER_FAILURE_RETRY_SECONDS)
            return None
        email = None
        for field in ("email", "userPrincipalName"):
            candidate = str(member.get(field) or "").strip()
            if "@" in candidate:
                email = candidate
                break
        self._emails.put(key, (email,), self.config.member_cache_seconds)
        return email

    async def _remember(self, activity: Mapping[str, Any], identity: UserIdentity) -> None:
        """Store where this user / conversation can be reached later (proactive messages)."""
        sender = activity.get("from") or {}
        if is_personal(activity):
            user_key = str(sender.get("aadObjectId") or sender.get("id") or "")
            reference = conversation_reference(activity)
            email = identity.email
        else:
            reference = conversation_reference(activity, root=True)
            user_key = "conversation:" + str(reference["conversation"].get("id", ""))
            email = None
        if not user_key or not reference.get("serviceUrl"):
            return
        await self.references.save(user_key, reference, email)

    def _turn(self, activity: Mapping[str, Any], identity: UserIdentity, **fields: Any) -> Turn:
        # Every transport's activities pass here: the activity's tenant vouches for the person's
        # e-mail only as far as it is bound to their company (`bot.app.identity`).
        return Turn(
            channel=CHANNEL,
            tenant=tenant_of(activity),
            home_tenant=tenant_of(activity),
            conversation=conversation_id(activity),
            user=identity,
            event_id=ActivityKey(conversation_id(activity), str(activity["id"])).encode() if activity.get("id") else None,
            **fields,
        )

    async def _first_time(self, event_id: str | None) -> bool:
        """Claim a delivery the core does not see (commands, welcome): False if seen already."""
        return await first_delivery(self.desk, CHANNEL, event_id)

    # ---- messages -----------------------------------------------------------------------------------
    async def _on_message(self, io: TurnIO) -> None:
        activity = io.activity
        value = activity.get("value")
        if isinstance(value, dict) and value.get("action"):
            await self._on_submit(io, value, invoke=False)
            return
        identity = await self._identity(io)
        await self._remember(activity, identity)
        text = clean_text(activity)
        turn = self._turn(activity, identity, text=text or "help")
        command = parse_command(text)
        if command is not None:
            name, argument = command
            if name == "logtime" and argument:
                # `logtime CS-2026-00042 1h30 teamviewer …`: the core parses and prices it.
                turn = self._turn(activity, identity, text=f"logtime {argument}")
            elif name in CORE_WORDS:
                turn = self._turn(activity, identity, text=f"{CORE_WORDS[name]} {argument}".strip())
            elif name != "logtime" and await self.conversation.in_dialog(turn):
                # `ticket`, `quote` or `register` typed in the middle of a dialog: the core says
                # how to leave it or go on (as in every channel), rather than a second form.
                pass
            else:
                await self._command(io, turn, name)
                return
        response = await self.conversation.handle(turn)
        await self._send_response(io, response)

    async def _command(self, io: TurnIO, turn: Turn, name: str) -> None:
        if not await self._first_time(turn.event_id):
            return
        lang = (await self.conversation.context(turn)).lang
        form = await self.conversation.form(turn, FORM_COMMANDS[name])
        if form is None:
            # Not this user's form (time logging is for agents): the core says why, politely.
            refusal = await self.conversation.handle(replace(turn, text=name, event_id=None))
            await self._send_response(io, refusal)
            return
        await self._send(io, message_activity(render_form(form, lang=lang, labels=card_labels(lang)), form.title))

    # ---- card actions (Action.Submit messages, Action.Execute invokes) -------------------------------
    async def _on_invoke(self, io: TurnIO) -> InvokeReply | None:
        activity = io.activity
        if activity.get("name") != CARD_ACTION_INVOKE:
            return None  # botbuilder answers 501 Not Implemented
        value = activity.get("value") or {}
        card_action = value.get("action") or {} if isinstance(value, dict) else {}
        data = dict(card_action.get("data") or {}) if isinstance(card_action.get("data"), dict) else {}
        if not data.get("action") and card_action.get("verb"):
            data["action"] = card_action["verb"]
        if data.get("action") == refresh.REFRESH_VERB:  # Universal Actions: a paging card looked at
            return await self._refresh(io, data)
        if not data.get("action"):
            return InvokeReply(400, {"statusCode": 400, "type": "application/vnd.microsoft.error",
                                     "value": {"code": "BadRequest", "message": "the card action has no action"}})
        lang = normalize_language(activity_locale(activity), self.desk.settings.default_language)
        try:
            refreshed = await self._on_submit(io, data, invoke=True)
        except Exception:
            log.exception("Teams card action %s could not be handled", activity.get("id"))
            return InvokeReply(200, {"statusCode": 200, "type": MESSAGE_TYPE,
                                     "value": translate(lang, "teams.action_failed")})
        if refreshed is None:
            return InvokeReply(200, {"statusCode": 200, "type": MESSAGE_TYPE,
                                     "value": translate(lang, "teams.card_submitted")})
        return InvokeReply(200, {"statusCode": 200, "type": CARD_CONTENT_TYPE, "value": refreshed})

    async def _refresh(self, io: TurnIO, data: Mapping[str, Any]) -> InvokeReply:
        activity = io.activity
        sender = activity.get("from") if isinstance(activity.get("from"), dict) else {}
        lang = normalize_language(activity_locale(activity), self.desk.settings.default_language)
        email = await self._email(io, sender or {})
        return await refresh.answer(self.desk, data, str((sender or {}).get("id") or ""), email, lang)

    async def _on_submit(self, io: TurnIO, data: Mapping[str, Any], *, invoke: bool) -> dict[str, Any] | None:
        activity = io.activity
        identity = await self._identity(io)
        await self._remember(activity, identity)
        action = str(data.get("action"))
        meta = found if isinstance(found := data.get(META_KEY), dict) else {}
        values = _submitted_values(data)
        turn = self._turn(activity, identity, action=action, values=values)
        response = await self.conversation.handle(turn)
        lang = response.lang if not response.duplicate else (await self.conversation.context(turn)).lang
        refreshed = await self._used_card(turn, action, meta, values, response, lang)
        if response.duplicate and not invoke:
            return None
        if not invoke and refreshed is not None and activity.get("replyToId"):
            try:
                await io.update(str(activity["replyToId"]), message_activity(refreshed))
            except DeliveryError as exc:
                log.error("could not replace the used card %s: %s", activity.get("replyToId"), exc)
        if not response.duplicate and not response.field_errors:
            await self._send_response(io, response)
        return refreshed

    async def _used_card(self, turn: Turn, action: str, meta: Mapping[str, Any], values: Mapping[str, str],
                         response: Response, lang: str) -> dict[str, Any] | None:
        """The card to show in place of the one that was used."""
        labels = card_labels(lang)
        submitted = parse_action(action)
        if isinstance(submitted, FormSubmission):
            dialog = submitted.dialog
            if response.field_errors:
                form = await self.conversation.form(turn, dialog, values)
                if form is not None:
                    return render_form(form, lang=lang, labels=labels, errors=response.field_errors,
                                       intro=response.replies)
            form = await self.conversation.form(turn, dialog)
            if form is not None:
                return render_submitted(form, values, lang=lang, labels=labels)
            return None
        prompt = str(meta.get("prompt") or "")
        label = meta.get("label")
        if label is None and isinstance(meta.get("labels"), dict):
            label = meta["labels"].get(values.get("value", ""))
        if prompt and label:
            return render_chosen(prompt, str(label), lang=lang, labels=labels)
        return None

    # ---- welcome --------------------------------------------------------------------------------------
    async def _welcome(self, io: TurnIO) -> None:
        activity = io.activity
        identity = await self._identity(io)
        await self._remember(activity, identity)
        turn = self._turn(activity, identity, text="")
        if not await self._first_time(turn.event_id):
            return
        # conversationUpdate and installationUpdate both announce one install: welcome once a day.
        root = _THREAD.sub("", turn.conversation)
        if not await self._first_time(f"welcome:{root}:{self.desk.now().date().isoformat()}"):
            return
        response = await self.conversation.welcome(turn)
        await self._send_response(io, response)

    # ---- sending ----------------------------------------------------------------------------------------
    async def _send_response(self, io: TurnIO, response: Response) -> None:
        if response.duplicate or not response.replies:
            return
        await self._send(io, response_message(response.replies, response.lang, response.field_errors))

    async def _send(self, io: TurnIO, message: Mapping[str, Any]) -> None:
        try:
            await io.send([message])
        except DeliveryError as exc:
            log.error("could not deliver a message to Teams conversation %s: %s",
                      (io.activity.get("conversation") or {}).get("id"), exc)
