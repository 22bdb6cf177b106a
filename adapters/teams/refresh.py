"""Universal Actions refresh for the cards that page people: an escalation ping or an on-call page
acknowledged by one person changes, for everyone it reached, into who took it.

Teams sends a card's `refresh` action (an `Action.Execute` with our `REFRESH_VERB`) as an
`adaptiveCard/action` invoke whenever one of the card's `userIds` looks at it; the answer is the
card to show. Each page goes to each person in their own chat, so each card names its own
recipient. The card carries what it needs to be answered without a store of sent cards: the
ticket, and itself (shown again, unchanged, while nobody has taken the ticket yet). A refresh is
answered with who took the ticket only for a member of the service desk; anyone else gets back
the card their invoke carried (nothing they did not send).

Transport-neutral (plain JSON through `TurnIO`): the same on botbuilder and the Agents SDK.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

from adapters.teams.transport import InvokeReply
from bot.app.desk import Desk
from bot.domain.model import EscalationReason, EscalationStatus
from bot.i18n import translate
from bot.protocol import ids
from cards.teams import card, text_block

REFRESH_VERB = "caredesk.refresh"
CARD_CONTENT_TYPE = "application/vnd.microsoft.card.adaptive"


def _acknowledge_ticket(node: Any) -> str | None:
    """The ticket of the card's escalation acknowledge button, if it has one."""
    if isinstance(node, dict):
        data = node.get("data")
        if node.get("type") in ("Action.Execute", "Action.Submit") and isinstance(data, dict):
            if data.get("action") == str(ids.ESCALATION):
                choice = ids.parse_escalation_choice(data.get("value"))
                if choice is not None and choice.verb is ids.EscalationVerb.ACKNOWLEDGE and choice.ticket:
                    return choice.ticket
        for value in node.values():
            found = _acknowledge_ticket(value)
            if found:
                return found
    elif isinstance(node, list):
        for value in node:
            found = _acknowledge_ticket(value)
            if found:
                return found
    return None


def with_refresh(content: Mapping[str, Any], user_id: str | None) -> dict[str, Any]:
    """The card with a `refresh` for its recipient when it pages someone (an acknowledge button);
    any other card unchanged."""
    plain = {k: v for k, v in content.items() if k != "refresh"}
    ticket = _acknowledge_ticket(plain.get("body")) or _acknowledge_ticket(plain.get("actions"))
    if not ticket or not user_id:
        return dict(content)
    return {**plain, "refresh": {
        "action": {"type": "Action.Execute", "verb": REFRESH_VERB,
                   "data": {"action": REFRESH_VERB, "ticket": ticket, "card": copy.deepcopy(plain)}},
        "userIds": [user_id],
    }}


def with_refreshes(activity: Mapping[str, Any], user_id: str | None) -> dict[str, Any]:
    """A message activity whose paging cards carry a refresh for `user_id`."""
    attachments = activity.get("attachments")
    if not isinstance(attachments, list):
        return dict(activity)
    return {**activity, "attachments": [
        {**a, "content": with_refresh(a["content"], user_id)}
        if isinstance(a, dict) and a.get("contentType") == CARD_CONTENT_TYPE and isinstance(a.get("content"), dict)
        else a
        for a in attachments
    ]}


def _card_reply(content: Mapping[str, Any]) -> InvokeReply:
    return InvokeReply(200, {"statusCode": 200, "type": CARD_CONTENT_TYPE, "value": dict(content)})


async def answer(desk: Desk, data: Mapping[str, Any], viewer_id: str, viewer_email: str | None,
                 lang: str) -> InvokeReply:
    """The card a refresh shows: who took the ticket once someone has, else the card as sent."""
    ticket, sent = data.get("ticket"), data.get("card")
    if not isinstance(ticket, str) or not isinstance(sent, dict) or sent.get("type") != "AdaptiveCard":
        return InvokeReply(400, {"statusCode": 400, "type": "application/vnd.microsoft.error",
                                 "value": {"code": "BadRequest", "message": "not a CareDesk refresh"}})
    unchanged = _card_reply(with_refresh(sent, viewer_id))
    viewer = await desk.store.find_staff(viewer_email) if viewer_email else None
    if viewer is None:
        return unchanged
    escalations = await desk.store.list_escalations(open_only=False, ticket_number=ticket)
    if any(e.status is EscalationStatus.OPEN for e in escalations):
        return unchanged
    taken = [e for e in escalations if e.acknowledged_by]
    if not taken:
        return unchanged
    latest = max(taken, key=lambda e: e.acknowledged_at or e.created_at)
    by = await desk.store.find_staff(latest.acknowledged_by or "")
    by_name = by.name if by is not None else latest.acknowledged_by
    at = (latest.acknowledged_at or desk.now()).astimezone(desk.settings.calendar.tz).strftime("%H:%M")
    emergency = latest.reason is EscalationReason.EMERGENCY
    if by is not None and by.email.lower() == viewer.email.lower():
        text = translate(lang, "teams_refresh.taken_by_you", ticket=ticket, time=at)
    else:
        key = "teams_refresh.page_taken" if emergency else "teams_refresh.taken"
        text = translate(lang, key, ticket=ticket, by_name=by_name, time=at)
    return _card_reply(card([text_block(text, weight="bolder")], lang))
