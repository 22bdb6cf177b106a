"""The portal channel: Direct Line activities (plain JSON, as Web Chat posts them) in, Adaptive
Cards out, and the conversation's transcript in the store.

Translation only: a posted activity becomes a `Turn` for the core (`TurnRunner`), the core's
`Response` becomes one message activity with one Adaptive Card 1.5 (`cards.teams`: the same
cards as Teams, with each Action.Execute replaced by its Action.Submit fallback, which Web Chat
posts back as a message whose `value` is the button's data).

* a message with text       -> Turn(text);
* a message with a `value`  -> a card's button or form: Turn(action, values); the person's
                               message in the transcript reads what they chose;
* the first conversation    -> the core's welcome, once.

A delivery is the page's `channelData.clientActivityID` within the conversation: a message
sent again (a retry after a dropped connection) is kept once and answered once (the runner's
processed deliveries). The answer is a durable reply (`Turn.reply_to`): written to the outbox
with the turn, then into the transcript under its reply key, so a process that dies in between
loses nothing and shows nothing twice (the outbox's dispatcher finishes it).
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import re
import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import timezone
from typing import Any

from adapters.portal.tokens import PortalUser
from adapters.shared.turns import answer, apology, first_delivery
from bot.app.desk import Desk
from bot.app.outbox import DeliveryFailed, Undeliverable
from bot.app.runner import TurnRunner
from bot.i18n import normalize_language, translate
from bot.protocol.replies import Reply, Response
from bot.protocol.turn import Turn, UserIdentity
from bot.store.ports import StoreUnavailableError
from cards.teams import META_KEY, CardLabels, attachment, render_card, summary

log = logging.getLogger("caredesk.portal")

CHANNEL = "portal"
TENANT = "portal"  # every portal user is proven by the same portal: one "workspace"
BOT = {"id": "caredesk", "name": "CareDesk", "role": "bot"}
MAX_CLIENT_ID = 100
MAX_TEXT = 4000
MAX_VALUES = 50


def new_conversation_id() -> str:
    return secrets.token_urlsafe(18)


def activity_id(conversation: str, seq: int) -> str:
    return f"{conversation}|{seq:07d}"


def as_submit(node: Any) -> Any:
    """The card with each Action.Execute replaced by its Action.Submit fallback: Web Chat posts
    an Action.Submit's data back as a message (Universal Actions need an invoke it does not send
    over Direct Line)."""
    if isinstance(node, list):
        return [as_submit(item) for item in node]
    if not isinstance(node, dict):
        return node
    if node.get("type") == "Action.Execute" and isinstance(node.get("fallback"), dict):
        return as_submit(node["fallback"])
    return {key: as_submit(value) for key, value in node.items()}


def card_labels(lang: str) -> CardLabels:
    return CardLabels(send=translate(lang, "teams.card_send"), required=translate(lang, "teams.card_required"),
                      chosen=translate(lang, "teams.card_chosen"), submitted=translate(lang, "teams.card_submitted"))


_MARKDOWN_ESCAPE = re.compile(r"\\([\\`*_{}\[\]()#+\-.!<>|~])")


def spoken(card: Mapping[str, Any]) -> str:
    """The card's words in reading order, as plain text: what a screen reader announces when the
    message arrives (Web Chat reads a card's `speak`; without it, only its buttons)."""
    words: list[str] = []

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            if node.get("type") == "TextBlock" and isinstance(node.get("text"), str):
                words.append(node["text"])
            elif node.get("type") == "FactSet":
                words.extend(f"{f.get('title', '')}: {f.get('value', '')}" for f in node.get("facts") or ())
            for key, value in node.items():
                if key not in ("actions", "fallback", "data"):
                    walk(value)
        elif isinstance(node, list):
            for item in node:
                walk(item)

    walk(card.get("body"))
    return _MARKDOWN_ESCAPE.sub(r"\1", " ".join(" ".join(w.split()) for w in words if w.strip()))


def bot_message(replies: Sequence[Reply], lang: str, field_errors: Mapping[str, str] | None = None) -> dict[str, Any]:
    """The message activity that shows a Response: one Adaptive Card, with its words to speak."""
    card = as_submit(render_card(replies, lang=lang, labels=card_labels(lang), field_errors=field_errors))
    card["speak"] = spoken(card)
    return {"type": "message", "from": dict(BOT), "locale": lang, "attachments": [attachment(card)],
            "summary": summary(replies), "speak": card["speak"]}


def submitted_values(data: Mapping[str, Any]) -> dict[str, str]:
    values: dict[str, str] = {}
    for key, value in list(data.items())[:MAX_VALUES]:
        if key in ("action", META_KEY) or (key.startswith("_") and key != "_confirmed"):
            continue
        if isinstance(value, (dict, list)):
            continue
        values[str(key)] = "" if value is None else str(value)[:MAX_TEXT]
    return values


def chosen_label(data: Mapping[str, Any], values: Mapping[str, str], lang: str) -> str:
    """What the person's message reads in the transcript when they used a button or a form."""
    meta = found if isinstance(found := data.get(META_KEY), dict) else {}
    label = meta.get("label")
    if label is None and isinstance(meta.get("labels"), dict):
        label = meta["labels"].get(values.get("value", ""))
    if isinstance(label, str) and label.strip():
        return label.strip()
    return translate(lang, "teams.card_submitted")


class BadActivity(ValueError):
    """A posted activity CareDesk cannot read (the reason is for the log, not the person)."""


@dataclass(frozen=True)
class Posted:
    """What a posted activity asks: text or a card's data, and its delivery id."""

    text: str | None
    data: Mapping[str, Any] | None
    client_id: str | None
    locale: str | None

    @classmethod
    def read(cls, activity: Any) -> Posted | None:
        """None for an activity that asks nothing (typing, an event); BadActivity for garbage."""
        if not isinstance(activity, dict):
            raise BadActivity("the activity is not a JSON object")
        if activity.get("type") != "message":
            return None
        channel_data = activity.get("channelData")
        client_id = channel_data.get("clientActivityID") if isinstance(channel_data, dict) else None
        if client_id is not None and (not isinstance(client_id, str) or not 0 < len(client_id) <= MAX_CLIENT_ID):
            raise BadActivity("clientActivityID is not a short text")
        text = activity.get("text")
        if text is not None and not isinstance(text, str):
            raise BadActivity("text is not a text")
        value = activity.get("value")
        data = value if isinstance(value, dict) and isinstance(value.get("action"), str) else None
        if data is None and not (text or "").strip():
            raise BadActivity("a message with neither text nor a card's data")
        locale = activity.get("locale") if isinstance(activity.get("locale"), str) else None
        return cls((text or "")[:MAX_TEXT] if data is None else None, data, client_id, locale)


@dataclass(eq=False)  # each stream is its own listener (hashed by identity)
class Listener:
    """One open stream (a page's WebSocket): woken when its conversation has news."""

    conversation: str
    wake: asyncio.Event = field(default_factory=asyncio.Event)
    ephemeral: list[dict[str, Any]] = field(default_factory=list)


class Hub:
    """The open streams of this process, by conversation. Only a speed-up: a stream also reads
    the store every `POLL_SECONDS`, so what another process wrote (an outbox worker's message)
    reaches it too."""

    def __init__(self) -> None:
        self.listeners: dict[str, set[Listener]] = {}

    def listen(self, conversation: str) -> Listener:
        listener = Listener(conversation)
        self.listeners.setdefault(conversation, set()).add(listener)
        return listener

    def forget(self, listener: Listener) -> None:
        group = self.listeners.get(listener.conversation)
        if group is not None:
            group.discard(listener)
            if not group:
                del self.listeners[listener.conversation]

    def notify(self, conversation: str, ephemeral: Mapping[str, Any] | None = None) -> None:
        for listener in self.listeners.get(conversation, ()):
            if ephemeral is not None:
                listener.ephemeral.append(dict(ephemeral))
            listener.wake.set()


class PortalChannel:
    def __init__(self, desk: Desk) -> None:
        self.desk = desk
        self.conversation = TurnRunner(desk)
        self.hub = Hub()

    # ---- conversations ------------------------------------------------------------------------------
    async def open(self, user: PortalUser) -> str:
        """The person's conversation (created, with the core's welcome, the first time)."""
        conversation = await self.desk.store.open_portal_conversation(user.email, new_conversation_id(),
                                                                      self.desk.now())
        if await first_delivery(self.desk, CHANNEL, f"welcome:{conversation}"):
            try:
                response = await self.conversation.welcome(self._turn(conversation, user, text=""))
                if response.replies:
                    await self._append(conversation, [bot_message(response.replies, response.lang)])
            except StoreUnavailableError:
                raise
            except Exception:
                log.exception("could not welcome portal conversation %s", conversation)
        return conversation

    async def owner(self, conversation: str) -> str | None:
        return await self.desk.store.portal_person(conversation)

    async def activities(self, conversation: str, after: int = 0) -> tuple[list[dict[str, Any]], int]:
        """The transcript after the watermark `after`, as Direct Line activities, and the new watermark."""
        rows = await self.desk.store.portal_activities(conversation, after)
        shown = [{**row.activity, "id": activity_id(conversation, row.seq), "channelId": "directline",
                  "conversation": {"id": conversation},
                  "timestamp": row.created_at.astimezone(timezone.utc).isoformat().replace("+00:00", "Z")}
                 for row in rows]
        return shown, (rows[-1].seq if rows else after)

    async def _append(self, conversation: str, activities: Sequence[Mapping[str, Any]], *,
                      client_id: str | None = None) -> list[int]:
        numbers = await self.desk.store.add_portal_activities(conversation, activities, self.desk.now(),
                                                              client_id=client_id)
        self.hub.notify(conversation)
        return numbers

    # ---- a posted activity ----------------------------------------------------------------------------
    def _turn(self, conversation: str, user: PortalUser, *, locale: str | None = None, **fields: Any) -> Turn:
        identity = UserIdentity(id=user.email.lower(), email=user.email, display_name=user.name,
                                locale=user.lang or locale)
        return Turn(channel=CHANNEL, tenant=TENANT, conversation=conversation, user=identity, **fields)

    async def post(self, conversation: str, user: PortalUser, activity: Any) -> str:
        """Take a posted activity: keep the person's message, answer it once; its activity id.
        `BadActivity` for one CareDesk cannot read (nothing is kept)."""
        posted = Posted.read(activity)
        if posted is None:
            return activity_id(conversation, 0)
        lang = normalize_language(user.lang or posted.locale, self.desk.settings.default_language)
        delivery = None
        if posted.client_id:
            digest = hashlib.sha256(conversation.encode()).hexdigest()[:24]
            delivery = f"{digest}/{posted.client_id}"
        if posted.data is not None:
            values = submitted_values(posted.data)
            shown_text = chosen_label(posted.data, values, lang)
            turn = self._turn(conversation, user, locale=posted.locale, action=str(posted.data["action"]),
                              values=values, event_id=delivery)
        else:
            shown_text = posted.text or ""
            turn = self._turn(conversation, user, locale=posted.locale, text=posted.text, event_id=delivery)
        # What the person typed is shown as they typed it: plain text, never markdown or HTML.
        echo: dict[str, Any] = {"type": "message", "from": {"id": user.email.lower(), "name": user.name, "role": "user"},
                                "text": shown_text, "textFormat": "plain"}
        if posted.locale:
            echo["locale"] = posted.locale
        if posted.client_id:
            echo["channelData"] = {"clientActivityID": posted.client_id}
        [seq] = await self._append(conversation, [echo], client_id=f"user:{posted.client_id}" if posted.client_id
                                   else None)
        echo_id = activity_id(conversation, seq)
        self.hub.notify(conversation, {"type": "typing", "from": dict(BOT)})
        if delivery is not None:
            turn = _with_reply_to(turn, conversation, echo_id)
        response = await answer(self.conversation, turn, apology_key="portal.action_failed")
        if not response.duplicate and response.replies:
            await self._show(conversation, response, echo_id)
        return echo_id

    async def _show(self, conversation: str, response: Response, reply_to_id: str | None) -> None:
        message = bot_message(response.replies, response.lang, response.field_errors)
        if reply_to_id:
            message["replyToId"] = reply_to_id
        await self._append(conversation, [message], client_id=response.reply_key)
        if response.reply_key:
            await self.desk.store.mark_replies_sent([response.reply_key], self.desk.now())

    # ---- the outbox ------------------------------------------------------------------------------------
    async def post_reply(self, desk: Desk, to: Mapping[str, Any], response: Response) -> None:
        """The outbox's replier: a turn's answer its process did not get to show."""
        conversation = str(to.get("conversation") or "")
        if not conversation or await desk.store.portal_person(conversation) is None:
            raise Undeliverable(f"no portal conversation {conversation!r}")
        try:
            await self._show(conversation, response, str(to.get("reply_to_id") or "") or None)
        except StoreUnavailableError as exc:
            raise DeliveryFailed(f"portal: {exc}") from exc

    async def send_to_person(self, desk: Desk, email: str, response: Response) -> bool:
        """The outbox's sender: the person's portal conversation (shown at once on an open page,
        or on the next visit). False when they never opened the portal chat."""
        conversation = await desk.store.portal_conversation_of(email)
        if conversation is None:
            return False
        try:
            await self._append(conversation, [bot_message(response.replies, response.lang)])
        except StoreUnavailableError as exc:
            raise DeliveryFailed(f"portal: {exc}") from exc
        return True

    def apology(self, locale: str | None) -> Response:
        return apology(self.desk, locale, "portal.action_failed")


def _with_reply_to(turn: Turn, conversation: str, echo_id: str) -> Turn:
    return replace(turn, reply_to={"conversation": conversation, "reply_to_id": echo_id})
