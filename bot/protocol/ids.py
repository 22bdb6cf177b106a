"""The ids the core, `cards/` and the channels pass to each other: typed, built and parsed here only.

Two layers:

* the core's actions: what an interactive reply carries (`Choices.action`, `Confirmation.action`)
  and what a click or a submitted form brings back (`Turn.action`, as its wire string) — a menu
  choice, a global command, a form's submission, an escalation ping's button, an answer to a
  dialog's current question; and the value an escalation ping's buttons carry;
* their Slack encodings: an element's `action_id` (`SlackActionId`) and a modal's `callback_id`
  (`FormModal`, `FlowModal`, `LOADING`). Teams needs no encoding of its own: a card's
  Action.Execute `verb` and its data's "action" are the core action's wire string itself.

Every value is a small frozen type whose `encode()` (and `str()`) is its wire string, exactly as
the bot wrote it before these types existed: dialog states saved in the store, cards already
posted and modals still open carry these strings, so they must keep meaning the same. The
`parse_*` functions give the value back, or None for anything that is not ours; they never raise,
whatever comes in (these strings come back from the platforms and may be forged).
"""

from __future__ import annotations

import abc
import enum
import re
from dataclasses import dataclass
from typing import Union

# Slack's limit for an action_id and a callback_id; nothing longer is ours.
MAX_WIRE_LENGTH = 255

# Dialog and state names: identifiers, and never a colon (the separator of the wire forms).
_NAME_PATTERN = r"[A-Za-z0-9_-]{1,64}"
_NAME = re.compile(_NAME_PATTERN, re.ASCII)
# A step answer: dialog, state and the first hex digits of the dialog instance's uuid (enough to
# tell this instance from the user's earlier ones, short enough for Slack's 255 characters).
INSTANCE_TAG_LENGTH = 8
_INSTANCE_TAG_PATTERN = "[0-9a-f]{%d}" % INSTANCE_TAG_LENGTH
_INSTANCE_TAG = re.compile(_INSTANCE_TAG_PATTERN, re.ASCII)
_STEP_ANSWER = re.compile(f"({_NAME_PATTERN}):({_NAME_PATTERN}):({_INSTANCE_TAG_PATTERN})", re.ASCII)
# A ticket number as an escalation button carries it: printable, no spaces or colons (the
# number format is configurable, so its exact shape is the runner's to check).
_TICKET = re.compile(r"[^\s:\x00-\x1f\x7f]{1,64}")
# A CareDesk element's action_id: the prefix, a number and the core action.
SLACK_ACTION_PREFIX = "cd."
_SLACK_ACTION_ID = re.compile(re.escape(SLACK_ACTION_PREFIX) + r"([0-9]{1,9})\.(.+)", re.ASCII | re.DOTALL)


class _Id(abc.ABC):
    """A value with one wire form: `encode()`, also its `str()`."""

    @abc.abstractmethod
    def encode(self) -> str:
        """The exact string the platforms carry."""

    def __str__(self) -> str:
        return self.encode()


def _check_name(kind: str, name: str) -> None:
    # Built in the core from its own names: a bad one is a bug, caught where it is made rather
    # than as a click that never matches.
    if not isinstance(name, str) or not _NAME.fullmatch(name):
        raise ValueError(f"not a valid {kind} name: {name!r}")


# ---- the core's actions --------------------------------------------------------------------------


class Command(str, enum.Enum):
    """A dialog's global commands, clicked (`cmd:<command>`) or typed in any language."""

    CANCEL = "cancel"
    BACK = "back"
    HELP = "help"


COMMAND_PREFIX = "cmd:"
FORM_PREFIX = "form:"
MENU_WIRE = "menu"
ESCALATION_WIRE = "escalation"


@dataclass(frozen=True)
class MenuChoice(_Id):
    """A button of the main menu; the option's value names the intent (new_ticket, quote, …)."""

    def encode(self) -> str:
        return MENU_WIRE


@dataclass(frozen=True)
class CommandAction(_Id):
    """A button that gives a global command (a form card's cancel, Slack's help)."""

    command: Command

    def __post_init__(self) -> None:
        object.__setattr__(self, "command", Command(self.command))

    def encode(self) -> str:
        return COMMAND_PREFIX + self.command.value


@dataclass(frozen=True)
class FormSubmission(_Id):
    """A form of dialog `dialog` submitted at once (a Slack modal, a Teams form card)."""

    dialog: str

    def __post_init__(self) -> None:
        _check_name("dialog", self.dialog)

    def encode(self) -> str:
        return FORM_PREFIX + self.dialog


@dataclass(frozen=True)
class EscalationAnswer(_Id):
    """A button of an escalation ping; the option's value is an `EscalationChoice`."""

    def encode(self) -> str:
        return ESCALATION_WIRE


@dataclass(frozen=True)
class StepAnswer(_Id):
    """An answer to a dialog's current question. It names the dialog, its state and the dialog
    instance, so a click on an old card is recognised as stale instead of answering the wrong
    question."""

    dialog: str
    state: str
    instance: str  # the first INSTANCE_TAG_LENGTH hex digits of the instance's uuid

    def __post_init__(self) -> None:
        _check_name("dialog", self.dialog)
        _check_name("state", self.state)
        if not isinstance(self.instance, str) or not _INSTANCE_TAG.fullmatch(self.instance):
            raise ValueError(f"not a dialog instance tag: {self.instance!r}")

    @classmethod
    def of(cls, dialog: str, state: str, instance: str) -> StepAnswer:
        """The answer to `state` of one dialog instance (`instance`: its whole uuid hex)."""
        return cls(dialog, state, instance[:INSTANCE_TAG_LENGTH])

    def encode(self) -> str:
        return f"{self.dialog}:{self.state}:{self.instance}"


MENU = MenuChoice()
ESCALATION = EscalationAnswer()

Action = Union[MenuChoice, CommandAction, FormSubmission, EscalationAnswer, StepAnswer]


def parse_action(text: object) -> Action | None:
    """The core action a turn brings back, or None when it is not one of ours."""
    if not isinstance(text, str) or len(text) > MAX_WIRE_LENGTH:
        return None
    if text == MENU_WIRE:
        return MENU
    if text == ESCALATION_WIRE:
        return ESCALATION
    # A step answer has three parts and a form or command two, so the order does not matter
    # (a dialog named "form" would still read back as its step answer).
    step = _STEP_ANSWER.fullmatch(text)
    if step:
        return StepAnswer(*step.groups())
    if text.startswith(COMMAND_PREFIX):
        try:
            return CommandAction(Command(text[len(COMMAND_PREFIX):]))
        except ValueError:
            return None
    if text.startswith(FORM_PREFIX):
        dialog = text[len(FORM_PREFIX):]
        return FormSubmission(dialog) if _NAME.fullmatch(dialog) else None
    return None


# ---- the value of an escalation ping's buttons ----------------------------------------------------


class EscalationVerb(str, enum.Enum):
    ACKNOWLEDGE = "ack"
    VIEW = "view"


@dataclass(frozen=True)
class EscalationChoice(_Id):
    """What an escalation ping's button asks: acknowledge the escalation of `ticket`, or view it."""

    verb: EscalationVerb
    ticket: str

    def __post_init__(self) -> None:
        object.__setattr__(self, "verb", EscalationVerb(self.verb))
        if not isinstance(self.ticket, str) or not _TICKET.fullmatch(self.ticket):
            raise ValueError(f"not a ticket number: {self.ticket!r}")

    def encode(self) -> str:
        return f"{self.verb.value}:{self.ticket}"


def parse_escalation_choice(text: object) -> EscalationChoice | None:
    if not isinstance(text, str):
        return None
    verb, colon, ticket = text.partition(":")
    if not colon or not _TICKET.fullmatch(ticket):
        return None
    try:
        return EscalationChoice(EscalationVerb(verb), ticket)
    except ValueError:
        return None


# ---- Slack: an element's action_id ------------------------------------------------------------------


@dataclass(frozen=True)
class SlackActionId(_Id):
    """A CareDesk element's `action_id`: `cd.<n>.<core action>`. Slack wants action ids unique
    within a message or view, and several buttons carry the same action: `n` tells them apart."""

    n: int
    action: Action

    def __post_init__(self) -> None:
        if not isinstance(self.n, int) or self.n < 0:
            raise ValueError(f"not an element number: {self.n!r}")

    def encode(self) -> str:
        # Slack refuses a longer id; the core's actions are far shorter than this.
        return f"{SLACK_ACTION_PREFIX}{self.n}.{self.action}"[:MAX_WIRE_LENGTH]


def parse_slack_action_id(text: object) -> SlackActionId | None:
    """The CareDesk element an action_id names, or None for an element that is not ours."""
    if not isinstance(text, str) or len(text) > MAX_WIRE_LENGTH:
        return None
    match = _SLACK_ACTION_ID.fullmatch(text)
    if not match:
        return None
    action = parse_action(match.group(2))
    return SlackActionId(int(match.group(1)), action) if action is not None else None


# ---- Slack: a modal's callback_id --------------------------------------------------------------------

FORM_CALLBACK_PREFIX = FORM_PREFIX
FLOW_CALLBACK_PREFIX = "flow:"
LOADING_WIRE = "loading"


@dataclass(frozen=True)
class FormModal(_Id):
    """A modal showing the form of dialog `dialog`. Its callback id is the very action its
    submission brings back (`FormSubmission`): the same string, on purpose."""

    dialog: str

    def __post_init__(self) -> None:
        _check_name("dialog", self.dialog)

    @property
    def submission(self) -> FormSubmission:
        return FormSubmission(self.dialog)

    def encode(self) -> str:
        return FORM_CALLBACK_PREFIX + self.dialog


@dataclass(frozen=True)
class FlowModal(_Id):
    """A modal that goes on with a form's dialog after its submission (a question asked inside)."""

    dialog: str

    def __post_init__(self) -> None:
        _check_name("dialog", self.dialog)

    def encode(self) -> str:
        return FLOW_CALLBACK_PREFIX + self.dialog


@dataclass(frozen=True)
class LoadingModal(_Id):
    """The modal opened at once with a trigger (valid three seconds), then replaced by the form
    or a refusal."""

    def encode(self) -> str:
        return LOADING_WIRE


LOADING = LoadingModal()

ModalCallback = Union[FormModal, FlowModal, LoadingModal]


def parse_callback_id(text: object) -> ModalCallback | None:
    """The CareDesk modal a callback_id names, or None for a view that is not ours."""
    if not isinstance(text, str) or len(text) > MAX_WIRE_LENGTH:
        return None
    if text == LOADING_WIRE:
        return LOADING
    for prefix, kind in ((FORM_CALLBACK_PREFIX, FormModal), (FLOW_CALLBACK_PREFIX, FlowModal)):
        if text.startswith(prefix):
            dialog = text[len(prefix):]
            return kind(dialog) if _NAME.fullmatch(dialog) else None
    return None


def modal_dialog(callback: ModalCallback | None) -> str | None:
    """The dialog a form or flow modal belongs to (None for the loading modal or a foreign view)."""
    return callback.dialog if isinstance(callback, (FormModal, FlowModal)) else None
