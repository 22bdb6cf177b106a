"""Reading Slack payloads: message text back to plain text, a modal's state to form values,
a clicked element to the core's action and value. No I/O here."""

from __future__ import annotations

import re
from collections.abc import Mapping  # not typing's: isinstance() with it is slow, and this runs per request
from typing import Any

from bot.protocol.ids import parse_slack_action_id

# <@U123>, <@U123|name>, <#C123|general>, <!here>, <!subteam^S1|@team>, <mailto:a@b.be|a@b.be>, <https://x|label>
_SLACK_MARKUP = re.compile(r"<([^<>]*)>")


def slack_to_plain(text: str | None, drop_user: str | None = None) -> str:
    """What a person typed, as plain text: links and mentions as they read, entities decoded.

    Slack sends `&`, `<`, `>` as entities and wraps e-mail addresses, phone numbers and links in
    `<…|…>`; the core must see "a@b.be", not "<mailto:a@b.be|a@b.be>". A mention of
    `drop_user` (the bot itself) is removed."""
    if not text:
        return ""

    def replace(match: re.Match[str]) -> str:
        inner = match.group(1)
        target, _, label = inner.partition("|")
        if target.startswith("@"):
            if drop_user and target[1:] == drop_user:
                return ""
            return "@" + (label or target[1:])
        if target.startswith("#"):
            return "#" + (label or target[1:])
        if target.startswith("!"):
            if label:
                return label
            word = target[1:].split("^")[0]
            return "@" + word
        if label:
            return label
        for scheme in ("mailto:", "tel:"):
            if target.startswith(scheme):
                return target[len(scheme):]
        return target

    plain = _SLACK_MARKUP.sub(replace, text)
    plain = plain.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")
    return plain.strip()


def element_value(state: Mapping[str, Any]) -> str:
    """The submitted value of one input element of a view's state."""
    kind = state.get("type")
    if kind in ("static_select", "external_select", "radio_buttons"):
        option = state.get("selected_option") or {}
        return str(option.get("value") or "")
    if kind == "datepicker":
        return str(state.get("selected_date") or "")
    if kind == "timepicker":
        return str(state.get("selected_time") or "")
    value = state.get("value")
    return "" if value is None else str(value)


def form_values(view: Mapping[str, Any]) -> dict[str, str]:
    """A submitted modal's values by field name (block_id = the field's name)."""
    values: dict[str, str] = {}
    for block_id, elements in ((view.get("state") or {}).get("values") or {}).items():
        for state in elements.values():
            values[block_id] = element_value(state)
    return values


def input_block_ids(view: Mapping[str, Any]) -> list[str]:
    return [b["block_id"] for b in view.get("blocks") or () if b.get("type") == "input" and b.get("block_id")]


def clicked(action: Mapping[str, Any]) -> tuple[str, str] | None:
    """(core action, value) of a clicked CareDesk button or chosen select option: the action as
    the wire string a `Turn` carries, None for an element that is not ours."""
    element = parse_slack_action_id(action.get("action_id"))
    if element is None:
        return None
    core_action = element.action.encode()
    if action.get("type") == "static_select":
        return core_action, str((action.get("selected_option") or {}).get("value") or "")
    return core_action, str(action.get("value") or "")


def thread_of(message: Mapping[str, Any]) -> str | None:
    """The thread a channel message belongs to (its own ts when it starts one)."""
    return message.get("thread_ts") or message.get("ts")


# Interactivity payloads CareDesk acts on (anything else is answered 404 by Bolt, doing nothing).
INTERACTIVE_TYPES = frozenset({"block_actions", "view_submission", "view_closed", "shortcut", "message_action",
                               "block_suggestion"})


def _is_str(value: Any) -> bool:
    return isinstance(value, str) and bool(value)


def well_formed(body: Any) -> bool:
    """Whether a parsed request body has the shape Slack sends (so that Bolt's matchers and
    CareDesk's listeners can read it): a malformed or hostile body is a 400, never a crash."""
    if not isinstance(body, Mapping):
        return False
    if "command" in body or "ssl_check" in body:
        if "ssl_check" in body:
            return True
        return all(_is_str(body.get(k)) for k in ("command", "user_id", "team_id"))
    kind = body.get("type")
    if not _is_str(kind):
        return False
    if kind == "event_callback":
        event = body.get("event")
        return isinstance(event, Mapping) and _is_str(event.get("type"))
    if kind in INTERACTIVE_TYPES:
        user = body.get("user")
        if not isinstance(user, Mapping) or not _is_str(user.get("id")):
            return False
        if kind == "block_actions":
            actions = body.get("actions")
            return (isinstance(actions, list) and bool(actions)
                    and all(isinstance(a, Mapping) and _is_str(a.get("action_id")) for a in actions))
        if kind in ("view_submission", "view_closed"):
            view = body.get("view")
            return isinstance(view, Mapping) and _is_str(view.get("callback_id")) and _view_readable(view)
        if kind in ("shortcut", "message_action"):
            return _is_str(body.get("callback_id"))
    return True


# What each kind of input element brings back in a view's state, and the type it must have.
_STATE_FIELDS = {"value": str, "selected_date": str, "selected_time": str, "selected_option": Mapping}


def _optional(value: Any, kind: type) -> bool:
    return value is None or isinstance(value, kind)


def _view_readable(view: Mapping[str, Any]) -> bool:
    """Whether `form_values`, `input_block_ids` and the modal's metadata can read this view: its
    state is {block_id: {action_id: {element state}}}, its blocks a list of objects."""
    if not _optional(view.get("private_metadata"), str):
        return False
    blocks = view.get("blocks")
    if not _optional(blocks, list) or not all(isinstance(b, Mapping) for b in blocks or ()):
        return False
    state = view.get("state")
    if not _optional(state, Mapping):
        return False
    values = (state or {}).get("values")
    if not _optional(values, Mapping):
        return False
    for elements in (values or {}).values():
        if not isinstance(elements, Mapping):
            return False
        for element in elements.values():
            if not isinstance(element, Mapping):
                return False
            if not all(_optional(element.get(name), kind) for name, kind in _STATE_FIELDS.items()):
                return False
            option = element.get("selected_option")
            if option is not None and not _optional(option.get("value"), str):
                return False
    return True


def team_of(body: Mapping[str, Any]) -> str:
    team = body.get("team")
    if isinstance(team, Mapping):
        return str(team.get("id") or "")
    user = body.get("user")
    return str(body.get("team_id") or (user.get("team_id") if isinstance(user, Mapping) else "") or "")


def sender_of(body: Mapping[str, Any]) -> tuple[str, str] | None:
    """(team, user) of whoever sent a request (an event, a command, an interaction), read
    defensively: it is used for requests that could not be worked on. None when it does not say."""
    event = body.get("event")
    user: Any = event.get("user") if isinstance(event, Mapping) else None
    if user is None:
        who = body.get("user")
        user = who.get("id") if isinstance(who, Mapping) else body.get("user_id")
    team = team_of(body) or (str(event.get("team") or "") if isinstance(event, Mapping) else "")
    if not isinstance(user, str) or not user or not team:
        return None
    return team, user
