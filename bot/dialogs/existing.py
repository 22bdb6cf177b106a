"""A requester who already has a ticket quotes it (rules page §2, issue 15 §3b): before a new
ticket is opened, a person with open tickets of their own is asked whether this is about one
of them (number and subject). Choosing one, or typing its number at any point of the dialog,
adds what they say to that ticket as a comment the desk sees, instead of a duplicate."""

from __future__ import annotations

import re
from typing import Any, Callable, Mapping

from bot.dialogs.engine import Answer, ChoiceStep, Context, Effect, EffectKind, Finish, Goto, Outcome, Retry, Step
from bot.domain import validation
from bot.domain.validation import Invalid
from bot.protocol.ids import Action
from bot.protocol.replies import Option, Reply, Text

NEW = "new"
MAX_OFFERED = 5
SUBJECT_LENGTH = 60


def own_open_tickets(ctx: Context) -> list[dict[str, str]]:
    """The speaker's own open tickets (number, subject), newest first: the ones they would quote.
    Staff registering for a customer and people outside the directory are offered none."""
    if ctx.staff is not None or ctx.contact is None:
        return []
    own = ctx.contact.email.strip().lower()
    tickets = [t for t in ctx.tickets if t.is_open and t.requester_email.strip().lower() == own]
    return [{"number": t.number, "subject": _subject(t.description)} for t in tickets[:MAX_OFFERED]]


def _subject(description: str) -> str:
    line = " ".join(description.split())
    return line if len(line) <= SUBJECT_LENGTH else line[:SUBJECT_LENGTH - 1].rstrip() + "…"


def _options(ctx: Context, data: Mapping[str, Any]) -> tuple[Option, ...]:
    offered = tuple(Option(o["number"], f"{o['number']} — {o['subject']}") for o in data.get("open_tickets") or ())
    return offered + (Option(NEW, ctx.t("existing.new"), primary=True),)


def quoted_number(data: Mapping[str, Any], text: str) -> str | None:
    """The number of one of the offered tickets that a typed answer quotes, if any."""
    for offered in data.get("open_tickets") or ():
        if re.search(r"(?<![\w-])" + re.escape(offered["number"]) + r"(?![\w-])", text, re.IGNORECASE):
            return str(offered["number"])
    return None


def intercept(ctx: Context, state: str, data: Mapping[str, Any], answer: Answer) -> Outcome | None:
    """A typed answer anywhere in the new-ticket dialog that quotes one of the person's open
    tickets: the number alone asks what to add to it; a sentence with it is added as it is."""
    if answer.is_form or state in ("existing", "addition") or not answer.text:
        return None
    number = quoted_number(data, answer.text)
    if number is None:
        return None
    rest = re.sub(re.escape(number), "", answer.text, flags=re.IGNORECASE).strip(" :,-—.\t\n")
    if len(re.findall(r"[^\W\d_]", rest)) < validation.MIN_HELPFUL_LETTERS:
        return Goto("addition", {"addition_ticket": number})
    return Finish(effect=Effect(EffectKind.ADD_COMMENT, {"ticket": number, "text": validation.long_text(answer.text)}))


def _after_existing(next_missing: Callable[[Context, Mapping[str, Any]], str]) -> Callable[..., str]:
    def after(ctx: Context, data: Mapping[str, Any]) -> str:
        return "addition" if data.get("existing") != NEW else next_missing(ctx, data)
    return after


class _AdditionStep(Step):
    """What to add to the chosen ticket; finishes with the comment."""

    help_key = "existing.help"

    def prompt(self, ctx: Context, data: Mapping[str, Any], action: Action) -> tuple[Reply, ...]:
        return (Text(ctx.t("existing.ask", number=_chosen(data))),)

    def accept(self, ctx: Context, data: Mapping[str, Any], answer: Answer) -> Outcome:
        try:
            text = validation.helpful_answer(answer.text, "existing.unhelpful")
        except Invalid as exc:
            return Retry(ctx.t(exc.key, **exc.params))
        return Finish(effect=Effect(EffectKind.ADD_COMMENT, {"ticket": _chosen(data), "text": text}))


def _chosen(data: Mapping[str, Any]) -> str:
    return str(data.get("addition_ticket") or data.get("existing") or "")


def steps(next_missing: Callable[[Context, Mapping[str, Any]], str]) -> dict[str, Step]:
    """The two states, for the new-ticket dialog; `next_missing` is its next question."""
    return {
        "existing": ChoiceStep("existing", "existing.question", _options, _after_existing(next_missing),
                               help_key="existing.help"),
        "addition": _AdditionStep(),
    }
