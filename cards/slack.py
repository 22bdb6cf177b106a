"""Block Kit rendering of the core's replies, for Slack.

Plain dicts only (this package imports nothing but the core's protocol); the tests validate every
payload with `slack_sdk.models`. Block Kit limits are respected by truncating safely: text
lengths, fields per section, buttons per actions block, options per select, blocks per surface.

Text the core produces is plain text that may quote what people typed, so everything that goes
into a `mrkdwn` object is escaped (`&`, `<`, `>`): no `<!channel>` injection, no broken links.
`plain_text` objects are not parsed by Slack and are left as they are.

Interactive elements carry the core's action and value: a button's `action_id` is a
`bot.protocol.ids.SlackActionId` (`cd.<n>.<action>`, n keeps ids unique within one message or
view) and its `value` is the option's value; `parse_slack_action_id` gives the action back. A
modal's `callback_id` is a `ModalCallback` of the same module. A form becomes a modal whose input
blocks use the field name as both `block_id` and `action_id`, so the core's field errors map
one to one onto Slack's `response_action: errors`.
"""

from __future__ import annotations

from typing import Any, Iterable, Mapping, Sequence

from bot.protocol.ids import Action, ModalCallback, SlackActionId
from bot.protocol.replies import Choices, Confirmation, Facts, FieldKind, Form, FormField, Option, Reply, Response, Text, Tone

# Block Kit limits (https://docs.slack.dev/reference/block-kit/).
MAX_MESSAGE_BLOCKS = 50
MAX_VIEW_BLOCKS = 100
MAX_SECTION_TEXT = 3000
MAX_FIELD_TEXT = 2000
MAX_FIELDS = 10
MAX_BUTTONS = 25
MAX_BUTTON_TEXT = 75
MAX_BUTTON_VALUE = 2000
MAX_ACTION_ID = 255
MAX_OPTIONS = 100
MAX_OPTION_TEXT = 75
MAX_OPTION_VALUE = 150
MAX_MODAL_TITLE = 24
MAX_LABEL = 2000
MAX_HINT = 2000
MAX_INPUT_LENGTH = 3000
MAX_PRIVATE_METADATA = 3000
MAX_ERROR_TEXT = 2000
MAX_FALLBACK_TEXT = 4000
ELLIPSIS = "…"

_TONE_EMOJI = {Tone.PLAIN: "", Tone.SUCCESS: ":white_check_mark: ", Tone.WARNING: ":warning: ", Tone.ERROR: ":x: "}


# ---- text ------------------------------------------------------------------------------------


def escape(text: str) -> str:
    """Escape text for Slack mrkdwn: the three characters Slack gives a meaning to."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def truncate(text: str, limit: int) -> str:
    """At most `limit` characters, ending with an ellipsis when cut."""
    if len(text) <= limit:
        return text
    return text[: max(limit - 1, 0)].rstrip() + ELLIPSIS


def truncate_mrkdwn(text: str, limit: int) -> str:
    """Escape, then cut without splitting an entity such as `&amp;` in two."""
    escaped = escape(text)
    if len(escaped) <= limit:
        return escaped
    cut = escaped[: limit - 1]
    amp = cut.rfind("&")
    if amp != -1 and ";" not in cut[amp:]:
        cut = cut[:amp]
    return cut.rstrip() + ELLIPSIS


def plain(text: str, limit: int, emoji: bool = True) -> dict[str, Any]:
    obj: dict[str, Any] = {"type": "plain_text", "text": truncate(text, limit) or " "}
    if emoji:
        obj["emoji"] = True
    return obj


def mrkdwn(text: str, limit: int = MAX_SECTION_TEXT) -> dict[str, Any]:
    return {"type": "mrkdwn", "text": truncate_mrkdwn(text, limit) or " "}


def _chunks(text: str, limit: int) -> list[str]:
    """Split a long text at line breaks (or hard, for one huge line) into pieces that stay within
    `limit` once escaped."""
    pieces: list[str] = []
    current = ""
    for line in text.split("\n"):
        candidate = line if not current else current + "\n" + line
        if len(escape(candidate)) <= limit:
            current = candidate
            continue
        if current:
            pieces.append(current)
        current = line
        while len(escape(current)) > limit:
            size = limit // 5  # an escaped character is at most 5 long
            pieces.append(current[:size])
            current = current[size:]
    if current or not pieces:
        pieces.append(current)
    return pieces


# ---- replies -> blocks ------------------------------------------------------------------------


class _Ids:
    """Hands out action ids that are unique within one message or view."""

    def __init__(self) -> None:
        self.n = 0

    def next(self, action: Action) -> str:
        self.n += 1
        return SlackActionId(self.n, action).encode()


def _section(text: str) -> dict[str, Any]:
    return {"type": "section", "text": mrkdwn(text)}


def _text_blocks(reply: Text) -> list[dict[str, Any]]:
    body = _TONE_EMOJI[reply.tone] + reply.text if reply.tone is not Tone.PLAIN else reply.text
    return [_section(piece) for piece in _chunks(body, MAX_SECTION_TEXT)]


def _field(label: str, value: str) -> dict[str, Any]:
    label_part = f"*{escape(label)}*\n" if label else ""
    room = MAX_FIELD_TEXT - len(label_part)
    return {"type": "mrkdwn", "text": label_part + (truncate_mrkdwn(value, room) if value else " ")}


def _facts_blocks(title: str | None, facts: Sequence[tuple[str, str]]) -> list[dict[str, Any]]:
    blocks: list[dict[str, Any]] = []
    fields = [_field(label, str(value)) for label, value in facts]
    first = True
    for start in range(0, max(len(fields), 1), MAX_FIELDS):
        block: dict[str, Any] = {"type": "section"}
        if first and title:
            block["text"] = {"type": "mrkdwn", "text": f"*{truncate_mrkdwn(title, MAX_SECTION_TEXT - 2)}*"}
        part = fields[start:start + MAX_FIELDS]
        if part:
            block["fields"] = part
        if "text" in block or "fields" in block:
            blocks.append(block)
        first = False
    return blocks


def _button(option: Option, action_id: str) -> dict[str, Any]:
    button: dict[str, Any] = {
        "type": "button",
        "action_id": action_id,
        "text": plain(option.label, MAX_BUTTON_TEXT),
        "value": option.value[:MAX_BUTTON_VALUE],
    }
    if option.primary:
        button["style"] = "primary"
    elif option.danger:
        button["style"] = "danger"
    return button


def _select_option(option: Option) -> dict[str, Any]:
    return {"text": plain(option.label, MAX_OPTION_TEXT), "value": option.value[:MAX_OPTION_VALUE]}


def _choice_elements(action: Action, options: Sequence[Option], ids: _Ids) -> list[dict[str, Any]]:
    """Buttons, or one select menu when there are more options than an actions block holds."""
    if len(options) <= MAX_BUTTONS:
        return [_button(option, ids.next(action)) for option in options]
    return [{
        "type": "static_select",
        "action_id": ids.next(action),
        "options": [_select_option(o) for o in options[:MAX_OPTIONS]],
    }]


def _choices_blocks(reply: Choices, ids: _Ids) -> list[dict[str, Any]]:
    blocks = [_section(piece) for piece in _chunks(reply.prompt, MAX_SECTION_TEXT)] if reply.prompt else []
    if reply.options:
        blocks.append({"type": "actions", "elements": _choice_elements(reply.action, reply.options, ids)})
    return blocks


def _confirmation_blocks(reply: Confirmation, ids: _Ids) -> list[dict[str, Any]]:
    blocks = _facts_blocks(reply.title, reply.facts)
    options = [reply.confirm] + ([reply.edit] if reply.edit else []) + [reply.cancel]
    blocks.append({"type": "actions", "elements": [_button(o, ids.next(reply.action)) for o in options]})
    return blocks


def reply_blocks(reply: Reply, ids: _Ids | None = None) -> list[dict[str, Any]]:
    ids = ids or _Ids()
    if isinstance(reply, Text):
        return _text_blocks(reply)
    if isinstance(reply, Facts):
        return _facts_blocks(reply.title, reply.facts)
    if isinstance(reply, Choices):
        return _choices_blocks(reply, ids)
    if isinstance(reply, Confirmation):
        return _confirmation_blocks(reply, ids)
    if isinstance(reply, Form):
        # A form inside a message cannot be filled in: say what it asks; channels open a modal.
        return _facts_blocks(reply.title, [(f.label, f.value or "") for f in reply.fields])
    raise TypeError(f"not a reply: {reply!r}")


def blocks_for(replies: Iterable[Reply], max_blocks: int = MAX_MESSAGE_BLOCKS) -> list[dict[str, Any]]:
    """All replies as one list of blocks, within the surface's block limit (when cut, the last
    block says so, and the interactive blocks of the end are kept: they are what the user
    answers)."""
    ids = _Ids()
    groups = [reply_blocks(reply, ids) for reply in replies]
    blocks = [b for group in groups for b in group]
    if len(blocks) <= max_blocks:
        return blocks
    tail: list[dict[str, Any]] = []
    for group in reversed(groups):
        if any(b["type"] == "actions" for b in group) and len(tail) + len(group) < max_blocks // 2:
            tail = group + tail
        else:
            break
    head = [b for b in blocks if all(b is not t for t in tail)][: max_blocks - len(tail) - 1]
    return head + [{"type": "context", "elements": [{"type": "mrkdwn", "text": ELLIPSIS}]}] + tail


def fallback_text(replies: Iterable[Reply]) -> str:
    """The notification text of a message (shown where blocks are not), escaped."""
    parts: list[str] = []
    for reply in replies:
        if isinstance(reply, Text):
            parts.append(reply.text)
        elif isinstance(reply, (Facts, Confirmation)) and reply.title:
            parts.append(reply.title)
        elif isinstance(reply, Choices):
            parts.append(reply.prompt)
        elif isinstance(reply, Form):
            parts.append(reply.title)
    return truncate_mrkdwn("\n".join(p for p in parts if p) or "CareDesk", MAX_FALLBACK_TEXT)


def message(replies: Iterable[Reply]) -> dict[str, Any]:
    """`text` + `blocks` for chat.postMessage, chat.postEphemeral or a response_url."""
    replies = tuple(replies)
    return {"text": fallback_text(replies), "blocks": blocks_for(replies)}


def response_message(response: Response) -> dict[str, Any]:
    return message(response.replies)


# ---- views ------------------------------------------------------------------------------------


def home_view(replies: Iterable[Reply]) -> dict[str, Any]:
    return {"type": "home", "blocks": blocks_for(replies, MAX_VIEW_BLOCKS)}


def info_modal(
    title: str,
    replies: Iterable[Reply],
    close_label: str,
    *,
    callback_id: ModalCallback,
    private_metadata: str = "",
    notify_on_close: bool = False,
) -> dict[str, Any]:
    """A modal that only shows replies (a result, a question answered with buttons)."""
    view: dict[str, Any] = {
        "type": "modal",
        "callback_id": _callback_id(callback_id),
        "title": plain(title, MAX_MODAL_TITLE),
        "close": plain(close_label, MAX_MODAL_TITLE),
        "blocks": blocks_for(replies, MAX_VIEW_BLOCKS),
    }
    if private_metadata:
        view["private_metadata"] = private_metadata[:MAX_PRIVATE_METADATA]
    if notify_on_close:
        view["notify_on_close"] = True
    return view


def _callback_id(callback: ModalCallback) -> str:
    return callback.encode()[:MAX_ACTION_ID]


def _input_element(field: FormField) -> dict[str, Any]:
    name = field.name[:MAX_ACTION_ID]
    value = field.value or ""
    kind = field.kind
    if kind is FieldKind.SINGLE_CHOICE:
        options = [_select_option(o) for o in field.options[:MAX_OPTIONS]]
        element: dict[str, Any] = {"type": "static_select", "action_id": name, "options": options}
        chosen = next((o for o in options if o["value"] == value), None)
        if chosen is not None:
            element["initial_option"] = chosen
        return element
    if kind is FieldKind.EMAIL:
        element = {"type": "email_text_input", "action_id": name}
        if value:
            element["initial_value"] = value
        return element
    if kind is FieldKind.NUMBER:
        element = {"type": "number_input", "action_id": name, "is_decimal_allowed": False}
        if value.strip().isdigit():
            element["initial_value"] = value.strip()
        return element
    if kind is FieldKind.DATE:
        element = {"type": "datepicker", "action_id": name}
        if _is_iso_date(value):
            element["initial_date"] = value
        return element
    if kind is FieldKind.TIME:
        element = {"type": "timepicker", "action_id": name}
        if _is_hh_mm(value):
            element["initial_time"] = value
        return element
    limit = min(field.max_length or MAX_INPUT_LENGTH, MAX_INPUT_LENGTH)
    element = {"type": "plain_text_input", "action_id": name, "max_length": limit}
    if kind is FieldKind.LONG_TEXT:
        element["multiline"] = True
    if value:
        element["initial_value"] = value[:limit]
    return element


def _is_iso_date(value: str) -> bool:
    parts = value.split("-")
    return len(value) == 10 and len(parts) == 3 and all(p.isdigit() for p in parts)


def _is_hh_mm(value: str) -> bool:
    return len(value) == 5 and value[2] == ":" and value[:2].isdigit() and value[3:].isdigit()


def form_blocks(form: Form) -> list[dict[str, Any]]:
    blocks: list[dict[str, Any]] = []
    if form.intro:
        blocks.append(_section(form.intro))
    for field in form.fields:
        block: dict[str, Any] = {
            "type": "input",
            "block_id": field.name[:MAX_ACTION_ID],
            "label": plain(field.label, MAX_LABEL),
            "optional": not field.required,
            "element": _input_element(field),
        }
        if field.hint:
            block["hint"] = plain(field.hint, MAX_HINT)
        blocks.append(block)
        if field.error:
            blocks.append({"type": "context", "elements": [mrkdwn(f":x: {field.error}", MAX_ERROR_TEXT)]})
    return blocks[:MAX_VIEW_BLOCKS]


def form_modal(form: Form, *, callback_id: ModalCallback, private_metadata: str = "",
               notify_on_close: bool = True) -> dict[str, Any]:
    """A modal with one input block per field (block_id = action_id = the field's name)."""
    view: dict[str, Any] = {
        "type": "modal",
        "callback_id": _callback_id(callback_id),
        "title": plain(form.title, MAX_MODAL_TITLE),
        "submit": plain(form.submit_label, MAX_MODAL_TITLE),
        "close": plain(form.cancel_label, MAX_MODAL_TITLE),
        "blocks": form_blocks(form),
    }
    if private_metadata:
        view["private_metadata"] = private_metadata[:MAX_PRIVATE_METADATA]
    if notify_on_close:
        view["notify_on_close"] = True
    return view


def loading_modal(title: str, text: str, close_label: str, *, callback_id: ModalCallback) -> dict[str, Any]:
    """Opened at once with the trigger (valid three seconds), then replaced by the form."""
    return {
        "type": "modal",
        "callback_id": _callback_id(callback_id),
        "title": plain(title, MAX_MODAL_TITLE),
        "close": plain(close_label, MAX_MODAL_TITLE),
        "blocks": [_section(text)],
    }


def field_errors(errors: Mapping[str, str], block_ids: Iterable[str]) -> dict[str, Any]:
    """The `response_action: errors` answer to a view submission. An error for a field the
    modal does not show goes to its first input, so it is never lost."""
    known = list(block_ids)
    mapped: dict[str, str] = {}
    for name, text in errors.items():
        target = name if name in known else (known[0] if known else name)
        mapped[target] = truncate(f"{mapped[target]} {text}" if target in mapped else text, MAX_ERROR_TEXT)
    return {"response_action": "errors", "errors": mapped}
