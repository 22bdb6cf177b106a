"""A requester who already has a ticket quotes it (rules page §2, issue 15 §3b): before a new
ticket is opened, a person with open tickets of their own is asked whether this is about one
of them (number and subject). Choosing one, or typing its number at any point of the dialog,
adds what they say to that ticket as a comment the desk sees, instead of a duplicate.

The one-shot form (a Slack modal, a Teams card) asks the same question as its first field
(`form_field`); a submission with a ticket chosen adds the description and the other filled-in
fields that help to it (`submit_addition`), through the same effect as the chat."""

from __future__ import annotations

import re
from typing import Any, Callable, Mapping

from bot.dialogs.engine import (Answer, ChoiceStep, Context, Effect, EffectKind, Finish, FormErrors, Goto, Outcome,
                                Retry, Step)
from bot.domain import validation
from bot.domain.validation import Invalid
from bot.domain.visibility import own_open
from bot.protocol.ids import Action
from bot.protocol.replies import FieldKind, FormField, Option, Reply, Text

NEW = "new"
MAX_OFFERED = 5
SUBJECT_LENGTH = 60


def own_open_tickets(ctx: Context) -> list[dict[str, str]]:
    """The speaker's own open tickets (number, subject), newest first: the ones they would quote.
    Staff registering for a customer and people outside the directory are offered none."""
    tickets = [t for t in ctx.tickets if own_open(t, ctx.contact, ctx.staff)]
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
    return Finish(effect=_addition(number, validation.long_text(answer.text)))


def _addition(number: str, text: str) -> Effect:
    # "own_open": the runner checks again, where it acts, that the ticket is still one of the
    # speaker's own open tickets (whatever the dialog state or a form brought).
    return Effect(EffectKind.ADD_COMMENT, {"ticket": number, "text": text, "own_open": True})


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
        return Finish(effect=_addition(_chosen(data), text))


def _chosen(data: Mapping[str, Any]) -> str:
    return str(data.get("addition_ticket") or data.get("existing") or "")


def steps(next_missing: Callable[[Context, Mapping[str, Any]], str]) -> dict[str, Step]:
    """The two states, for the new-ticket dialog; `next_missing` is its next question."""
    return {
        "existing": ChoiceStep("existing", "existing.question", _options, _after_existing(next_missing),
                               help_key="existing.help"),
        "addition": _AdditionStep(),
    }


# ---- the one-shot form (a Slack modal, a Teams card) ----------------------------------------------

FIELD = "existing"
# The fields of the new-ticket form whose answers help the desk on a ticket they are added to
# (the description first); the contact details and the kind are the ticket's already.
ADDED_FIELDS = ("description", "module", "reproduce", "diagnostics")


def form_field(ctx: Context, value: str | None) -> FormField | None:
    """The form's first question, for a person with open tickets of their own: is this about
    one of them? (Optional: "No, a new ticket" is the default.) None for anyone else."""
    offered = own_open_tickets(ctx)
    if not offered:
        return None
    options = _options(ctx, {"open_tickets": offered})
    chosen = value if value and any(o.value == value for o in options) else NEW
    return FormField(FIELD, ctx.t("existing.form.label"), FieldKind.SINGLE_CHOICE, required=False, value=chosen,
                     options=options, hint=ctx.t("existing.form.hint"))


def chosen_in_form(values: Mapping[str, str]) -> str | None:
    """The ticket a submitted form chose to add to, if any (not "a new ticket")."""
    chosen = (values.get(FIELD) or "").strip()
    return chosen if chosen and chosen != NEW else None


def submit_addition(ctx: Context, values: Mapping[str, str]) -> Outcome:
    """A form submitted with one of the person's open tickets chosen: only the text to add is
    required; the filled-in fields that help are added with it, as one comment. A number that
    is not one of their own open tickets (a forged submission) is refused and changes nothing."""
    chosen = chosen_in_form(values) or ""
    offered = {o["number"].upper() for o in own_open_tickets(ctx)}
    if chosen.upper() not in offered:
        return FormErrors({FIELD: ctx.t("existing.form.not_yours", number=chosen[:40])})
    number = chosen.upper()
    errors: dict[str, str] = {}
    parts: list[str] = []
    for name in ADDED_FIELDS:
        text = (values.get(name) or "").strip()
        if name == "description":
            if not text:
                errors[name] = ctx.t("existing.form.text_required", number=number)
                continue
            try:
                parts.append(validation.helpful_answer(text, "existing.unhelpful"))
            except Invalid as exc:
                errors[name] = ctx.t(exc.key, **exc.params)
        elif text:
            try:
                parts.append(f"{ctx.t(f'ticket.field.{name}')}: {validation.long_text(text)}")
            except Invalid as exc:
                errors[name] = ctx.t(exc.key, **exc.params)
    if errors:
        return FormErrors(errors)
    return Finish(effect=_addition(number, "\n".join(parts)), updates={"existing": number})
