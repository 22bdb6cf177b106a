"""Adaptive Card rendering of the core's replies, for Microsoft Teams.

One `Response` becomes one Adaptive Card (version 1.5, the highest Teams renders):

* `Text`          -> a wrapping TextBlock, coloured by tone;
* `Facts`         -> an optional bold title and a FactSet;
* `Choices`       -> the prompt and one button per option (Action.Execute, falling back to
                     Action.Submit on hosts without Universal Actions); more options than fit
                     as buttons become a compact Input.ChoiceSet named "value" and one button;
* `Confirmation`  -> title, FactSet, confirm / edit / cancel buttons;
* `Form`          -> title, intro and one Input.* per field (id = the field's name), with
                     `isRequired`, `errorMessage`, and a red TextBlock under a field the core
                     rejected; submit (with "_confirmed": "1") and cancel buttons.

Every button's `data` is {"action": ..., "value": ...} (the core's action as its wire string,
which is also the Action.Execute `verb`, see `bot.protocol.ids`) plus a
"_card" object the Teams adapter uses to redraw the card without buttons once it has been
used ("what was chosen"); the adapter strips it before building the `Turn`.

Teams renders a markdown subset in TextBlocks and FactSets: text is escaped so that user
input can neither create links nor mentions (`[`, `]`, `<`, `>` and a backslash before
punctuation are escaped; nothing else is touched).

Only the standard library and `bot.protocol` are used: the result is plain JSON-able dicts,
validated against the official Adaptive Card schema in the tests.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

from bot.protocol.ids import Action, Command, CommandAction, FormSubmission
from bot.protocol.replies import (
    Choices,
    Confirmation,
    Facts,
    FieldKind,
    Form,
    FormField,
    Option,
    Reply,
    Text,
    Tone,
)

CARD_CONTENT_TYPE = "application/vnd.microsoft.card.adaptive"
CARD_VERSION = "1.5"
CARD_SCHEMA = "http://adaptivecards.io/schemas/adaptive-card.json"
# Teams shows at most six buttons in a row of actions; more options become a drop-down.
MAX_BUTTONS = 6
META_KEY = "_card"
CONFIRMED_KEY = "_confirmed"
CANCEL_ACTION = CommandAction(Command.CANCEL)

_TONE_COLOR = {Tone.SUCCESS: "good", Tone.WARNING: "warning", Tone.ERROR: "attention"}
_ESCAPE = re.compile(r"\\(?=[!-/:-@\[-`{-~])|[\[\]<>]")
_ISO_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
_HH_MM = re.compile(r"\d{2}:\d{2}")


@dataclass(frozen=True)
class CardLabels:
    """The few words a card needs that are not in the replies (translated by the adapter)."""

    send: str = "Send"
    required: str = "This field is required."
    chosen: str = "Your answer: {label}"
    submitted: str = "Sent"


def escape(text: str) -> str:
    """Escape what would turn user text into a link, an image or a mention in Teams markdown."""
    return _ESCAPE.sub(lambda m: "\\" + m.group(0), text)


def _paragraphs(text: str) -> str:
    # A single newline is a soft break in markdown: keep the core's line breaks visible.
    return "\n\n".join(line for line in escape(text).splitlines() if line.strip()) or " "


def text_block(text: str, **props: Any) -> dict[str, Any]:
    return {"type": "TextBlock", "text": _paragraphs(text), "wrap": True, **props}


def _title(text: str) -> dict[str, Any]:
    return text_block(text, weight="bolder", size="medium")


def _fact_set(facts: Iterable[tuple[str, str]]) -> dict[str, Any]:
    return {
        "type": "FactSet",
        "facts": [{"title": escape(str(label)), "value": _paragraphs(str(value))} for label, value in facts],
    }


def action(title: str, data: Mapping[str, Any], *, style: str | None = None, verb: str | None = None,
           associated_inputs: str | None = None) -> dict[str, Any]:
    """An Action.Execute (Universal Actions: answered with a refreshed card) whose fallback is
    the same Action.Submit, for hosts that do not know Action.Execute."""
    common: dict[str, Any] = {"title": title, "data": dict(data)}
    if style:
        common["style"] = style
    if associated_inputs:
        common["associatedInputs"] = associated_inputs
    submit = {"type": "Action.Submit", **common}
    return {"type": "Action.Execute", "verb": verb or str(data.get("action", "")), **common, "fallback": submit}


def _style(option: Option) -> str | None:
    if option.danger:
        return "destructive"
    if option.primary:
        return "positive"
    return None


def _option_action(prompt: str, option: Option, core_action: Action) -> dict[str, Any]:
    data = {"action": str(core_action), "value": option.value, META_KEY: {"prompt": prompt, "label": option.label}}
    return action(option.label, data, style=_style(option))


def _choices(reply: Choices, labels: CardLabels) -> list[dict[str, Any]]:
    body: list[dict[str, Any]] = [text_block(reply.prompt)]
    if len(reply.options) <= MAX_BUTTONS:
        body.append({"type": "ActionSet",
                     "actions": [_option_action(reply.prompt, o, reply.action) for o in reply.options]})
        return body
    body.append({
        "type": "Input.ChoiceSet",
        "id": "value",
        "style": "compact",
        "isRequired": True,
        "errorMessage": labels.required,
        "choices": [{"title": o.label, "value": o.value} for o in reply.options],
    })
    meta = {"prompt": reply.prompt, "labels": {o.value: o.label for o in reply.options}}
    body.append({"type": "ActionSet",
                 "actions": [action(labels.send, {"action": str(reply.action), META_KEY: meta}, style="positive")]})
    return body


def _confirmation(reply: Confirmation) -> list[dict[str, Any]]:
    options = [reply.confirm] + ([reply.edit] if reply.edit else []) + [reply.cancel]
    return [
        _title(reply.title),
        _fact_set(reply.facts),
        {"type": "ActionSet", "actions": [_option_action(reply.title, o, reply.action) for o in options]},
    ]


def _input(field: FormField, labels: CardLabels) -> dict[str, Any]:
    element: dict[str, Any] = {"id": field.name, "label": field.label}
    value = field.value or ""
    kind = field.kind
    if kind is FieldKind.SINGLE_CHOICE:
        element.update(type="Input.ChoiceSet", style="compact" if len(field.options) > 3 else "expanded",
                       choices=[{"title": o.label, "value": o.value} for o in field.options])
        if value and any(o.value == value for o in field.options):
            element["value"] = value
    elif kind is FieldKind.DATE:
        element["type"] = "Input.Date"
        if _ISO_DATE.fullmatch(value):
            element["value"] = value
    elif kind is FieldKind.TIME:
        element["type"] = "Input.Time"
        if _HH_MM.fullmatch(value):
            element["value"] = value
    elif kind is FieldKind.NUMBER:
        element.update(type="Input.Number", min=0)
        try:
            element["value"] = int(value) if value.strip().isdigit() else float(value)
        except ValueError:
            pass
    else:
        element["type"] = "Input.Text"
        if kind is FieldKind.LONG_TEXT:
            element["isMultiline"] = True
        elif kind is FieldKind.EMAIL:
            element["style"] = "email"
        elif kind is FieldKind.PHONE:
            element["style"] = "tel"
        if field.max_length:
            element["maxLength"] = field.max_length
        if value:
            element["value"] = value
    if field.hint and element["type"] != "Input.ChoiceSet":
        element["placeholder"] = field.hint
    if field.required:
        element["isRequired"] = True
    element["errorMessage"] = field.error or labels.required
    return element


def form_body(form: Form, labels: CardLabels, errors: Mapping[str, str] | None = None) -> list[dict[str, Any]]:
    errors = errors or {}
    body: list[dict[str, Any]] = [_title(form.title)]
    if form.intro:
        body.append(text_block(form.intro, isSubtle=True))
    for field in form.fields:
        error = errors.get(field.name) or field.error
        body.append(_input(field if not error else _with_error(field, error), labels))
        if error:
            body.append(text_block(error, color="attention", size="small", spacing="none"))
    submit = {"action": str(FormSubmission(form.form_id)), CONFIRMED_KEY: "1", META_KEY: {"form": form.form_id}}
    cancel = {"action": str(CANCEL_ACTION), META_KEY: {"prompt": form.title, "label": form.cancel_label}}
    body.append({"type": "ActionSet", "actions": [
        action(form.submit_label, submit, style="positive"),
        action(form.cancel_label, cancel, associated_inputs="none"),
    ]})
    return body


def _with_error(field: FormField, error: str) -> FormField:
    return replace(field, error=error)


def render_reply(reply: Reply, labels: CardLabels = CardLabels()) -> list[dict[str, Any]]:
    """The card elements of one reply."""
    if isinstance(reply, Text):
        color = _TONE_COLOR.get(reply.tone)
        return [text_block(reply.text, **({"color": color} if color else {}))]
    if isinstance(reply, Facts):
        return ([_title(reply.title)] if reply.title else []) + [_fact_set(reply.facts)]
    if isinstance(reply, Choices):
        return _choices(reply, labels)
    if isinstance(reply, Confirmation):
        return _confirmation(reply)
    if isinstance(reply, Form):
        return form_body(reply, labels)
    raise TypeError(f"not a reply: {reply!r}")


def card(body: Sequence[dict[str, Any]], lang: str | None = None) -> dict[str, Any]:
    result: dict[str, Any] = {"type": "AdaptiveCard", "$schema": CARD_SCHEMA, "version": CARD_VERSION,
                              "body": list(body) or [text_block(" ")]}
    if lang:
        result["lang"] = lang
    return result


def render_card(replies: Sequence[Reply], *, lang: str | None = None, labels: CardLabels = CardLabels(),
                field_errors: Mapping[str, str] | None = None) -> dict[str, Any]:
    """One card for everything a Response says."""
    body: list[dict[str, Any]] = []
    for index, reply in enumerate(replies):
        elements = (form_body(reply, labels, field_errors) if isinstance(reply, Form)
                    else render_reply(reply, labels))
        if index and elements:
            elements[0] = {**elements[0], "separator": True, "spacing": "medium"}
        body.extend(elements)
    return card(body, lang)


def render_form(form: Form, *, lang: str | None = None, labels: CardLabels = CardLabels(),
                errors: Mapping[str, str] | None = None, intro: Sequence[Reply] = ()) -> dict[str, Any]:
    """A form card (a Teams command such as `ticket`), with the core's field errors beside the fields."""
    body = [element for reply in intro for element in render_reply(reply, labels)]
    return card(body + form_body(form, labels, errors), lang)


def render_chosen(prompt: str, label: str, *, lang: str | None = None,
                  labels: CardLabels = CardLabels()) -> dict[str, Any]:
    """A used question, redrawn without buttons: the prompt and what was chosen."""
    return card([text_block(prompt), text_block(labels.chosen.replace("{label}", label), weight="bolder",
                                                 color="accent")], lang)


def render_submitted(form: Form, values: Mapping[str, str], *, lang: str | None = None,
                     labels: CardLabels = CardLabels()) -> dict[str, Any]:
    """A submitted form, redrawn without inputs or buttons: what was sent."""
    facts = []
    for field in form.fields:
        value = str(values.get(field.name, "") or "").strip()
        if not value:
            continue
        option = next((o for o in field.options if o.value == value), None)
        facts.append((field.label, option.label if option else value))
    body = [_title(form.title), text_block(labels.submitted, color="good", weight="bolder")]
    if facts:
        body.append(_fact_set(facts))
    return card(body, lang)


def summary(replies: Sequence[Reply], limit: int = 120) -> str:
    """A one-line plain text of the replies (notification preview, fallback text)."""
    for reply in replies:
        text = (reply.text if isinstance(reply, Text) else reply.prompt if isinstance(reply, Choices)
                else reply.title if isinstance(reply, (Confirmation, Form)) else reply.title if isinstance(reply, Facts)
                else None)
        if text:
            line = " ".join(text.split())
            return line if len(line) <= limit else line[: limit - 1] + "…"
    return ""


def attachment(card_content: Mapping[str, Any]) -> dict[str, Any]:
    return {"contentType": CARD_CONTENT_TYPE, "content": dict(card_content)}
