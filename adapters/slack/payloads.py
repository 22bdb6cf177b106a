"""Reading Slack payloads: message text back to plain text, a modal's state to form values,
a clicked element to the core's action and value. No I/O here."""

from __future__ import annotations

import re
from typing import Any, Mapping

from cards.slack import parse_action_id

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
    """(core action, value) of a clicked CareDesk button or chosen select option."""
    core_action = parse_action_id(str(action.get("action_id") or ""))
    if core_action is None:
        return None
    if action.get("type") == "static_select":
        return core_action, str((action.get("selected_option") or {}).get("value") or "")
    return core_action, str(action.get("value") or "")


def thread_of(message: Mapping[str, Any]) -> str | None:
    """The thread a channel message belongs to (its own ts when it starts one)."""
    return message.get("thread_ts") or message.get("ts")
