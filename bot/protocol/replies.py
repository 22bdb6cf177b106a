"""What the core says back, independent of any channel.

`cards/` renders these to Slack Block Kit and Teams Adaptive Cards; `bot.render_text` renders
them as plain text for the console. Text in here is already translated; channels only lay
it out. Every interactive element carries the `action` it submits (a typed id of
`bot.protocol.ids`) and the `value` it stands for, so a click comes back as a `Turn` with that
action (its wire string) and value.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Mapping, Union

from bot.protocol.ids import Action


class Tone(str, enum.Enum):
    PLAIN = "plain"
    SUCCESS = "success"
    WARNING = "warning"
    ERROR = "error"


@dataclass(frozen=True)
class Text:
    text: str
    tone: Tone = Tone.PLAIN


@dataclass(frozen=True)
class Facts:
    """A titled list of label → value pairs (a ticket, a quote line, contacts)."""

    facts: tuple[tuple[str, str], ...]
    title: str | None = None


@dataclass(frozen=True)
class Option:
    value: str
    label: str
    primary: bool = False
    danger: bool = False


@dataclass(frozen=True)
class Choices:
    """A question answered by picking one option (buttons); typing the label or number works too."""

    prompt: str
    options: tuple[Option, ...]
    action: Action


class FieldKind(str, enum.Enum):
    SHORT_TEXT = "short_text"
    LONG_TEXT = "long_text"
    EMAIL = "email"
    PHONE = "phone"
    DATE = "date"
    TIME = "time"
    NUMBER = "number"
    SINGLE_CHOICE = "single_choice"


@dataclass(frozen=True)
class FormField:
    name: str
    label: str
    kind: FieldKind
    required: bool = True
    value: str | None = None  # prefilled
    options: tuple[Option, ...] = ()
    hint: str | None = None
    error: str | None = None  # shown beside the field after a failed submission
    max_length: int | None = None


@dataclass(frozen=True)
class Form:
    """Several fields submitted at once (a Slack modal, a Teams card)."""

    form_id: str
    title: str
    fields: tuple[FormField, ...]
    submit_label: str
    cancel_label: str
    intro: str | None = None


@dataclass(frozen=True)
class Confirmation:
    """A summary to confirm, edit or cancel."""

    title: str
    facts: tuple[tuple[str, str], ...]
    action: Action
    confirm: Option
    edit: Option | None
    cancel: Option


Reply = Union[Text, Facts, Choices, Form, Confirmation]


@dataclass(frozen=True)
class Response:
    """Everything the core answers to one turn."""

    replies: tuple[Reply, ...] = ()
    lang: str = "en"
    # For a form submitted at once: field name → message; the channel shows them inline.
    field_errors: Mapping[str, str] = field(default_factory=dict)
    # The dialog that produced this response is finished (channels may close a modal).
    done: bool = False
    # A ticket created by this turn (channels may e.g. post it to the user's DM).
    ticket_number: str | None = None
    # The platform delivered this turn before: it was answered then, so nothing is sent now.
    duplicate: bool = False
    # This answer is kept in the outbox under this key until it is delivered (the turn's channel
    # asked for a durable reply): the channel posts it and reports it sent, or the outbox does.
    reply_key: str | None = None
    # Whether answers lost earlier are owed to this person (their notices, read with the turn):
    # None when not known, and the channel looks itself.
    notices_owed: bool | None = None
