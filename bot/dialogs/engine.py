"""The dialog engine: dialogs as tables of named states, with no I/O.

Each dialog is a `Dialog` whose `steps` map a state name to a `Step`. A step asks its question
(`prompt`) and judges an answer (`accept`), returning what happens next: `Goto` another state,
`Retry` the same one with a message, or `Finish` (optionally with an `Effect` the runner
performs, such as creating a ticket). The engine applies the global commands (cancel, back,
help), keeps the history for `back`, and turns the outcome into replies and a new state.

State is a plain JSON-able dict, saved by the runner in the store after every turn; the
engine never keeps anything in memory, so any process can take the next turn.
"""

from __future__ import annotations

import abc
import enum
import re
import uuid
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Callable, Mapping, Sequence, Union

from bot.domain.calendar import BusinessCalendar
from bot.domain.config import Settings
from bot.domain.model import Company, CustomerContact, StaffMember, Ticket
from bot.i18n import translate
from bot.dialogs.intents import detect, is_menu_word
from bot.domain.quote import QuoteEngine
from bot.protocol.ids import (Action, Command, CommandAction, FormSubmission, StepAnswer,
                              parse_action)
from bot.protocol.replies import Choices, Form, Option, Reply, Text, Tone
from bot.protocol.turn import UserIdentity
from bot.domain.validation import Invalid

# ---------------------------------------------------------------------------------------------
# What a step sees


@dataclass(frozen=True)
class DirectoryEntry:
    """Who an e-mail address a turn names is in the directory (looked up by the runner, since
    the engine does no I/O): the company of a customer contact, whether it is staff. An address
    in no directory list has neither."""

    email: str
    company: str | None = None
    staff: bool = False


@dataclass(frozen=True)
class Context:
    """Everything a step may consult, loaded by the runner before the engine runs."""

    settings: Settings
    lang: str
    now: datetime  # aware, in the desk's time zone
    calendar: BusinessCalendar
    quotes: QuoteEngine
    user: UserIdentity
    contact: CustomerContact | None = None
    company: Company | None = None
    staff: StaffMember | None = None
    # Tickets this user may see (a customer: their company's; staff: recent ones), newest first.
    tickets: tuple[Ticket, ...] = ()
    # A ticket the message quotes by number, when this user may see it.
    mentioned: Ticket | None = None
    # A ticket number the message quotes that this user may not see (or that does not exist).
    mentioned_unknown: str | None = None
    # Staff only: the comments on the mentioned ticket (a customer's additions, internal notes),
    # oldest first, as the store gives them.
    mentioned_comments: tuple[Mapping[str, Any], ...] = ()
    # The other people's e-mail addresses this turn names (lower case -> who they are).
    named: Mapping[str, DirectoryEntry] = field(default_factory=dict)

    def t(self, key: str, **params: Any) -> str:
        return translate(self.lang, key, **params)


@dataclass(frozen=True)
class Answer:
    """A typed text, a clicked option's value, or a form's values."""

    text: str = ""
    values: Mapping[str, str] = field(default_factory=dict)
    is_form: bool = False
    # A form whose submission is the confirmation itself (a Slack modal): no summary step.
    confirmed: bool = False


# ---------------------------------------------------------------------------------------------
# What a step decides


class EffectKind(str, enum.Enum):
    """What a finishing effect does (the runner performs each kind its own way)."""

    CREATE_TICKET = "create_ticket"
    CREATE_ESCALATION = "create_escalation"
    LOG_TIME = "log_time"
    ADD_COMMENT = "add_comment"
    REGISTER_TICKET = "register_ticket"  # staff register a ticket for a customer (issue 15 §3)


@dataclass(frozen=True)
class Effect:
    """Work with side effects the runner performs when a dialog finishes (idempotently)."""

    kind: EffectKind
    payload: Mapping[str, Any]

    def __post_init__(self) -> None:
        # Also from its word ("create_ticket"), as tests and older callers write it.
        object.__setattr__(self, "kind", EffectKind(self.kind))


@dataclass(frozen=True)
class Goto:
    state: str
    updates: Mapping[str, Any] = field(default_factory=dict)
    say: tuple[Reply, ...] = ()
    remember: bool = True  # push the current state on the history (for `back`)


@dataclass(frozen=True)
class Retry:
    message: str


@dataclass(frozen=True)
class Finish:
    say: tuple[Reply, ...] = ()
    effect: Effect | None = None
    updates: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class FormErrors:
    errors: Mapping[str, str]


Outcome = Union[Goto, Retry, Finish, FormErrors]


class Step(abc.ABC):
    help_key: str = "help.generic_step"

    @abc.abstractmethod
    def prompt(self, ctx: Context, data: Mapping[str, Any], action: Action) -> tuple[Reply, ...]:
        """The question, as replies; buttons carry `action`."""

    @abc.abstractmethod
    def accept(self, ctx: Context, data: Mapping[str, Any], answer: Answer) -> Outcome:
        """Judge an answer and say what happens next."""

    def skip(self, ctx: Context, data: Mapping[str, Any]) -> "Outcome | None":
        """A step that already has its answer (from the directory, say) may pass straight on."""
        return None


class Dialog(abc.ABC):
    name: str
    steps: Mapping[str, Step]

    @abc.abstractmethod
    def start(self, ctx: Context, args: Mapping[str, Any]) -> Outcome:
        """The first move: usually a Goto to the first question."""

    def form(self, ctx: Context, data: Mapping[str, Any]) -> Form | None:
        return None

    def submit_form(self, ctx: Context, data: Mapping[str, Any], answer: Answer) -> Outcome:
        return Retry(ctx.t("engine.no_form"))

    def completed(self, ctx: Context, data: Mapping[str, Any], result: Any) -> tuple[Reply, ...]:
        """Replies after the runner performed the finishing effect (`result` is what it returned)."""
        return ()

    def intercept(self, ctx: Context, state: str, data: Mapping[str, Any], answer: Answer) -> "Outcome | None":
        """An answer that means something whatever the question (a quoted ticket number in the
        new-ticket dialog): its outcome, else None and the step judges it."""
        return None


# ---------------------------------------------------------------------------------------------
# The engine


@dataclass(frozen=True)
class DialogResult:
    state: dict[str, Any] | None  # None: no dialog in progress any more
    replies: tuple[Reply, ...] = ()
    effect: Effect | None = None
    field_errors: Mapping[str, str] = field(default_factory=dict)
    done: bool = False


# Global commands, in the three languages.
COMMAND_WORDS = {
    Command.CANCEL: {"cancel", "stop", "quit", "annuler", "annule", "arrêter", "arreter", "annuleren", "stoppen"},
    Command.BACK: {"back", "previous", "retour", "précédent", "precedent", "terug", "vorige"},
    Command.HELP: {"help", "?", "aide", "hulp"},
}
MAX_HISTORY = 50


def command_of(text: str | None, action: str | None) -> Command | None:
    """The global command a turn gives: a command button, else (with no action) a typed word."""
    clicked = parse_action(action)
    if isinstance(clicked, CommandAction):
        return clicked.command
    if text:
        # "/help", "/cancel": a slash command typed where the channel has none (a console, a DM).
        word = text.strip().lower().strip("!.").lstrip("/")
        for command, words in COMMAND_WORDS.items():
            if word in words:
                return command
    return None


_NO_NUMBER = re.compile(r"(?!)")


def _asks_elsewhere(text: str) -> bool:
    """Whether a refused answer is rather a request for something else (a menu word, a slash
    command)."""
    return text.strip().startswith("/") or detect(text, _NO_NUMBER) is not None


def step_answer(state: Mapping[str, Any]) -> StepAnswer:
    """The action the buttons of the current question carry."""
    return StepAnswer.of(state["dialog"], state["state"], state["instance"])


class DialogEngine:
    def __init__(self, dialogs: Sequence[Dialog]):
        self.dialogs = {d.name: d for d in dialogs}

    # ---- starting ----------------------------------------------------------------------------
    def start(self, ctx: Context, dialog_name: str, args: Mapping[str, Any] | None = None,
              say: tuple[Reply, ...] = ()) -> DialogResult:
        dialog = self.dialogs[dialog_name]
        state = {
            "dialog": dialog_name,
            "state": "",
            "data": {},
            "history": [],
            "instance": uuid.uuid4().hex,
            "started_at": ctx.now.isoformat(),
        }
        return self._apply(ctx, dialog, state, dialog.start(ctx, args or {}), prefix=say, remember=False)

    def start_with_form(self, ctx: Context, dialog_name: str, answer: Answer) -> DialogResult:
        """A form submitted with no dialog in progress (a Slack modal opened by a slash command)."""
        started = self.start(ctx, dialog_name)
        if started.state is None:
            return started
        return self.handle(ctx, started.state, None, str(FormSubmission(dialog_name)), answer)

    def form_for(self, ctx: Context, dialog_name: str, prefill: Mapping[str, Any] | None = None) -> Form | None:
        data = dict(prefill or {})
        return self.dialogs[dialog_name].form(ctx, data)

    # ---- a turn inside a dialog ----------------------------------------------------------------
    def handle(
        self,
        ctx: Context,
        state: dict[str, Any],
        text: str | None,
        action: str | None,
        answer: Answer,
    ) -> DialogResult:
        """One turn inside a dialog; `action` is the turn's action as it came (its wire string)."""
        dialog = self.dialogs.get(state.get("dialog", ""))
        if dialog is None or state.get("state") not in dialog.steps:
            # A state saved by an older version of the bot: start over politely.
            return DialogResult(None, (Text(ctx.t("engine.lost_track"), Tone.WARNING),), done=True)
        step = dialog.steps[state["state"]]
        current_action = step_answer(state)
        clicked = parse_action(action)

        command = command_of(text if action is None else None, action)
        if command is Command.CANCEL:
            return DialogResult(None, (Text(ctx.t("engine.cancelled")),), done=True)
        if command is Command.HELP:
            help_text = Text(ctx.t(step.help_key) + "\n" + ctx.t("engine.commands_hint"))
            return DialogResult(state, (help_text,) + step.prompt(ctx, state["data"], current_action))
        if command is Command.BACK:
            if not state["history"]:
                return DialogResult(
                    state, (Text(ctx.t("engine.nothing_before")),) + step.prompt(ctx, state["data"], current_action)
                )
            previous = state["history"][-1]
            new_state = {**state, "state": previous, "history": state["history"][:-1]}
            replies = dialog.steps[previous].prompt(ctx, new_state["data"], step_answer(new_state))
            return DialogResult(new_state, replies)

        if isinstance(clicked, FormSubmission):
            if clicked.dialog != dialog.name:
                return self._stale(ctx, state, step)
            return self._apply(ctx, dialog, state, dialog.submit_form(ctx, state["data"], answer))
        # Any other action (an old card's, a forged or unknown one) that is not this question's.
        if action and clicked != current_action:
            return self._stale(ctx, state, step)
        typed = text if action is None else None
        if typed is not None and isinstance(step, TextStep) and is_menu_word(typed):
            # A free answer that is only "quote" or "tickets" asks for another dialog.
            return self._apply(ctx, dialog, state, Retry(ctx.t("engine.in_dialog")))
        special = dialog.intercept(ctx, state["state"], state["data"], answer) if action is None else None
        if special is not None:
            return self._apply(ctx, dialog, state, special)
        outcome = step.accept(ctx, state["data"], answer)
        if isinstance(outcome, Retry) and text is not None and action is None and _asks_elsewhere(text):
            # "ticket", "quote", "/tickets" refused as an answer: the person wants something else,
            # so say how to leave rather than "please pick one of the options".
            outcome = Retry(ctx.t("engine.in_dialog"))
        return self._apply(ctx, dialog, state, outcome)

    def completed(self, ctx: Context, dialog_name: str, data: Mapping[str, Any], result: Any) -> tuple[Reply, ...]:
        return self.dialogs[dialog_name].completed(ctx, data, result)

    def prompt(self, ctx: Context, state: Mapping[str, Any]) -> tuple[Reply, ...]:
        """The current question again (when a conversation resumes after a restart)."""
        dialog = self.dialogs[state["dialog"]]
        return dialog.steps[state["state"]].prompt(ctx, state["data"], step_answer(state))

    # ---- internals -----------------------------------------------------------------------------
    def _stale(self, ctx: Context, state: dict[str, Any], step: Step) -> DialogResult:
        return DialogResult(
            state,
            (Text(ctx.t("engine.stale_action"), Tone.WARNING),) + step.prompt(ctx, state["data"], step_answer(state)),
        )

    def _apply(
        self,
        ctx: Context,
        dialog: Dialog,
        state: dict[str, Any],
        outcome: Outcome,
        prefix: tuple[Reply, ...] = (),
        remember: bool = True,
    ) -> DialogResult:
        replies: list[Reply] = list(prefix)
        data = dict(state["data"])
        history = list(state["history"])
        current = state["state"]
        # Steps that already have their answer pass straight on (bounded: a table has no loops
        # of skips, but a bug must not hang a turn).
        for _ in range(len(dialog.steps) + 1):
            if isinstance(outcome, Retry):
                new_state = {**state, "data": data, "history": history}
                step = dialog.steps[current]
                replies.append(Text(outcome.message, Tone.ERROR))
                replies.extend(step.prompt(ctx, data, step_answer(new_state)))
                return DialogResult(new_state, tuple(replies))
            if isinstance(outcome, FormErrors):
                new_state = {**state, "data": data, "history": history}
                return DialogResult(new_state, tuple(replies), field_errors=dict(outcome.errors))
            if isinstance(outcome, Finish):
                data.update(outcome.updates)
                replies.extend(outcome.say)
                final = {**state, "data": data, "history": history}
                return DialogResult(final if outcome.effect else None, tuple(replies), effect=outcome.effect, done=True)
            assert isinstance(outcome, Goto)
            data.update(outcome.updates)
            replies.extend(outcome.say)
            if remember and outcome.remember and current and current != outcome.state:
                history = (history + [current])[-MAX_HISTORY:]
            remember = True
            current = outcome.state
            step = dialog.steps[current]
            skipped = step.skip(ctx, data)
            if skipped is None:
                new_state = {**state, "state": current, "data": data, "history": history}
                replies.extend(step.prompt(ctx, data, step_answer(new_state)))
                return DialogResult(new_state, tuple(replies))
            # A skipped step is not a place `back` should return to.
            remember = False
            outcome = skipped
        raise RuntimeError(f"dialog {dialog.name} skips in a loop at {current}")


# ---------------------------------------------------------------------------------------------
# Building blocks for steps


Parser = Callable[[Context, Mapping[str, Any], str], Any]
NextState = Union[str, Callable[[Context, Mapping[str, Any]], str]]


def resolve_option(answer: str, options: Sequence[Option]) -> Option | None:
    """An option by its value, its label (any case), or its number in the list (1-based)."""
    text = answer.strip()
    if not text:
        return None
    lowered = text.lower().rstrip(".)")
    for option in options:
        if lowered in (option.value.lower(), option.label.lower()):
            return option
    if re.fullmatch(r"\d{1,2}", lowered):
        index = int(lowered) - 1
        if 0 <= index < len(options):
            return options[index]
    return None


@dataclass(frozen=True)
class ChoiceStep(Step):
    """A question answered with one of a few options."""

    key: str  # the data key the chosen value is stored under
    prompt_key: str
    options: Callable[[Context, Mapping[str, Any]], tuple[Option, ...]]
    next: NextState
    help_key: str = "help.choice_step"
    on_choice: Callable[[Context, Mapping[str, Any], str], Outcome | None] | None = None

    def prompt(self, ctx: Context, data: Mapping[str, Any], action: Action) -> tuple[Reply, ...]:
        return (Choices(ctx.t(self.prompt_key), self.options(ctx, data), action),)

    def accept(self, ctx: Context, data: Mapping[str, Any], answer: Answer) -> Outcome:
        option = resolve_option(answer.text, self.options(ctx, data))
        if option is None:
            return Retry(ctx.t("validation.choice"))
        if self.on_choice is not None:
            special = self.on_choice(ctx, data, option.value)
            if special is not None:
                return special
        updates = {self.key: option.value}
        return Goto(_next(self.next, ctx, {**data, **updates}), updates)


@dataclass(frozen=True)
class TextStep(Step):
    """A question answered by typing; `parse` validates and normalises (raising Invalid)."""

    key: str
    prompt_key: str
    parse: Parser
    next: NextState
    required: bool = True
    help_key: str = "help.text_step"
    # Offer to keep a value known already (from the directory, or typed earlier).
    keep_current: bool = False
    prompt_params: Callable[[Context, Mapping[str, Any]], Mapping[str, Any]] | None = None
    # Stored along with the answer (e.g. "the contact details are now complete").
    also_set: Mapping[str, Any] = field(default_factory=dict)

    def _shortcuts(self, ctx: Context, data: Mapping[str, Any]) -> tuple[Option, ...]:
        """Buttons beside the free text: keep the value we have, or skip an optional question."""
        current = data.get(self.key)
        options: list[Option] = []
        if self.keep_current and current:
            options.append(Option(str(current), ctx.t("engine.keep", value=str(current)), primary=True))
        if not self.required:
            options.append(Option("-", ctx.t("engine.skip")))
        return tuple(options)

    def prompt(self, ctx: Context, data: Mapping[str, Any], action: Action) -> tuple[Reply, ...]:
        params = self.prompt_params(ctx, data) if self.prompt_params else {}
        question = ctx.t(self.prompt_key, **params)
        shortcuts = self._shortcuts(ctx, data)
        if shortcuts:
            return (Choices(question, shortcuts, action),)
        return (Text(question),)

    def accept(self, ctx: Context, data: Mapping[str, Any], answer: Answer) -> Outcome:
        text = answer.text.strip()
        shortcut = resolve_option(text, self._shortcuts(ctx, data))
        if shortcut is not None:
            text = shortcut.value
        if not self.required and text in ("-", ""):
            value = None
        else:
            try:
                value = self.parse(ctx, data, text)
            except Invalid as exc:
                return Retry(ctx.t(exc.key, **exc.params))
        updates = {**self.also_set, self.key: value}
        return Goto(_next(self.next, ctx, {**data, **updates}), updates)


def _next(next_state: NextState, ctx: Context, data: Mapping[str, Any]) -> str:
    return next_state if isinstance(next_state, str) else next_state(ctx, data)
