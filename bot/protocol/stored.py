"""A `Response` as plain JSON and back: a reply kept in the store until it is delivered (the
outbox's durable replies), rendered by its channel only when it is posted.

Each reply is a dict with its `type` and its fields; actions are kept as their wire strings
(`bot.protocol.ids`), read back with `parse_action`."""

from __future__ import annotations

from typing import Any, Mapping

from bot.protocol.ids import parse_action
from bot.protocol.replies import (Choices, Confirmation, Facts, FieldKind, Form, FormField, Option, Reply, Response,
                                  Text, Tone)


class UnreadableResponse(ValueError):
    """Stored JSON that is not a response this version can read."""


def response_to_json(response: Response) -> dict[str, Any]:
    return {"replies": [_reply(r) for r in response.replies], "lang": response.lang,
            "done": response.done, "ticket_number": response.ticket_number}


def response_from_json(data: Mapping[str, Any]) -> Response:
    try:
        replies = tuple(_read_reply(r) for r in data["replies"])
        return Response(replies, str(data["lang"]), done=bool(data.get("done")),
                        ticket_number=data.get("ticket_number"))
    except (KeyError, TypeError, ValueError) as exc:
        raise UnreadableResponse(f"not a stored response ({type(exc).__name__}: {exc})") from None


def _option(o: Option) -> dict[str, Any]:
    return {"value": o.value, "label": o.label, "primary": o.primary, "danger": o.danger}


def _read_option(d: Mapping[str, Any]) -> Option:
    return Option(str(d["value"]), str(d["label"]), bool(d.get("primary")), bool(d.get("danger")))


def _facts(facts: tuple[tuple[str, str], ...]) -> list[list[str]]:
    return [[label, value] for label, value in facts]


def _read_facts(items: Any) -> tuple[tuple[str, str], ...]:
    return tuple((str(label), str(value)) for label, value in items)


def _read_action(wire: Any) -> Any:
    action = parse_action(wire)
    if action is None:
        raise ValueError(f"unknown action {wire!r}")
    return action


def _reply(reply: Reply) -> dict[str, Any]:
    if isinstance(reply, Text):
        return {"type": "text", "text": reply.text, "tone": reply.tone.value}
    if isinstance(reply, Facts):
        return {"type": "facts", "facts": _facts(reply.facts), "title": reply.title}
    if isinstance(reply, Choices):
        return {"type": "choices", "prompt": reply.prompt, "options": [_option(o) for o in reply.options],
                "action": str(reply.action)}
    if isinstance(reply, Confirmation):
        return {"type": "confirmation", "title": reply.title, "facts": _facts(reply.facts),
                "action": str(reply.action), "confirm": _option(reply.confirm),
                "edit": _option(reply.edit) if reply.edit else None, "cancel": _option(reply.cancel)}
    return {"type": "form", "form_id": reply.form_id, "title": reply.title, "submit_label": reply.submit_label,
            "cancel_label": reply.cancel_label, "intro": reply.intro,
            "fields": [{"name": f.name, "label": f.label, "kind": f.kind.value, "required": f.required,
                        "value": f.value, "options": [_option(o) for o in f.options], "hint": f.hint,
                        "error": f.error, "max_length": f.max_length} for f in reply.fields]}


def _read_reply(d: Mapping[str, Any]) -> Reply:
    kind = d["type"]
    if kind == "text":
        return Text(str(d["text"]), Tone(d["tone"]))
    if kind == "facts":
        return Facts(_read_facts(d["facts"]), d.get("title"))
    if kind == "choices":
        return Choices(str(d["prompt"]), tuple(_read_option(o) for o in d["options"]), _read_action(d["action"]))
    if kind == "confirmation":
        return Confirmation(str(d["title"]), _read_facts(d["facts"]), _read_action(d["action"]),
                            _read_option(d["confirm"]), _read_option(d["edit"]) if d.get("edit") else None,
                            _read_option(d["cancel"]))
    if kind == "form":
        return Form(str(d["form_id"]), str(d["title"]),
                    tuple(FormField(str(f["name"]), str(f["label"]), FieldKind(f["kind"]), bool(f["required"]),
                                    f.get("value"), tuple(_read_option(o) for o in f.get("options") or ()),
                                    f.get("hint"), f.get("error"), f.get("max_length")) for f in d["fields"]),
                    str(d["submit_label"]), str(d["cancel_label"]), d.get("intro"))
    raise ValueError(f"unknown reply type {kind!r}")
