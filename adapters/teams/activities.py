"""Reading a Bot Framework activity's shape before anything acts on it: the channel, botbuilder's
deserializer and the cards read activities as the Bot Framework shapes them, so an activity
that is not shaped so (a hostile one, from a client that holds a valid token, or a platform
bug) is refused with a 400 here, never a crash there. No I/O here."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

CARD_ACTION_INVOKE = "adaptiveCard/action"


class MalformedActivity(ValueError):
    """The body is not a Bot Framework activity CareDesk can read: answer 400."""


def parse(raw: bytes) -> dict[str, Any]:
    """The activity in a request body; `MalformedActivity` for anything that is not a JSON object."""
    try:
        activity = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:  # JSONDecodeError is a ValueError
        raise MalformedActivity("the body is not JSON") from exc
    except RecursionError as exc:
        # Nested deeper than the parser's recursion limit: json.loads raises RecursionError,
        # which is no ValueError (and a 500 with a long traceback if nobody catches it).
        raise MalformedActivity("the body is nested too deeply") from exc
    if not isinstance(activity, dict) or not activity.get("type"):
        raise MalformedActivity("the body is not a Bot Framework activity")
    return activity


def _optional(value: Any, kind: type | tuple[type, ...]) -> bool:
    return value is None or isinstance(value, kind)


def _account(value: Any) -> bool:
    return value is None or (isinstance(value, Mapping) and _optional(value.get("id"), str))


# Top-level fields the channel reads, and the type each must have when present.
_FIELDS: dict[str, type | tuple[type, ...]] = {
    "type": str, "id": str, "name": str, "text": str, "locale": str, "replyToId": str, "action": str,
    "serviceUrl": str, "channelId": str, "channelData": Mapping, "entities": list, "membersAdded": list,
    "membersRemoved": list,
}


def problem(activity: Mapping[str, Any]) -> str | None:
    """Why the channel cannot read this activity (None: it can)."""
    if not isinstance(activity.get("serviceUrl"), str):
        # botbuilder checks the token's service URL only when the activity names one.
        return "serviceUrl is missing"
    for name, kind in _FIELDS.items():
        if not _optional(activity.get(name), kind):
            return f"{name} is not a {getattr(kind, '__name__', 'value')}"
    conversation = activity.get("conversation")
    if not _optional(conversation, Mapping) or not all(
            _optional((conversation or {}).get(k), str) for k in ("id", "tenantId", "conversationType")):
        return "conversation is not an object with string ids"
    for name in ("from", "recipient"):
        if not _account(activity.get(name)):
            return f"{name} is not an account"
    for name in ("entities", "membersAdded", "membersRemoved"):
        if not all(isinstance(item, Mapping) for item in activity.get(name) or ()):
            return f"{name} holds something that is not an object"
    tenant = (activity.get("channelData") or {}).get("tenant")
    if not _optional(tenant, Mapping):
        return "channelData.tenant is not an object"
    if activity.get("type") == "invoke" and activity.get("name") == CARD_ACTION_INVOKE:
        return _card_action_problem(activity.get("value"))
    return None


def _card_action_problem(value: Any) -> str | None:
    """An Action.Execute: value {"action": {"type", "verb", "data": {…}}}."""
    if not _optional(value, Mapping):
        return "the card action's value is not an object"
    action = (value or {}).get("action")
    if not _optional(action, Mapping):
        return "the card action is not an object"
    action = action or {}
    if not _optional(action.get("verb"), str) or not _optional(action.get("type"), str):
        return "the card action's verb or type is not a string"
    if not _optional(action.get("data"), Mapping):
        return "the card action's data is not an object"
    return None
