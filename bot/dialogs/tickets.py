"""Looking tickets up, adding information to one, and escalation requests (rules page §5)."""

from __future__ import annotations

from typing import Any, Mapping

from dataclasses import dataclass

from bot.domain.model import EscalationReason, Ticket, TicketKind
from bot.domain.visibility import escalation_reasons
from bot.protocol.ids import Action
from bot.protocol.replies import Confirmation, Option, Reply, Text, Tone

from bot.dialogs.common import ticket_facts, ticket_option
from bot.dialogs.engine import (
    Answer,
    ChoiceStep,
    Context,
    Dialog,
    Effect,
    EffectKind,
    Finish,
    Goto,
    Outcome,
    Retry,
    Step,
    TextStep,
    resolve_option,
)
from bot.domain import validation

ESCALATE = "escalate"
TICKET_INFO = "ticket_info"


def visible_ticket(ctx: Context, number: str | None) -> Ticket | None:
    if not number:
        return None
    wanted = number.strip().lower()
    return next((t for t in ctx.tickets if t.number.lower() == wanted), None)


def my_tickets_replies(ctx: Context) -> tuple[Reply, ...]:
    tickets = ctx.tickets
    if not tickets:
        return (Text(ctx.t("tickets.none")),)
    shown = tickets[:10]
    replies: list[Reply] = [Text(ctx.t("tickets.list_title", count=len(tickets)))]
    replies.extend(ticket_facts(ctx, t, full=False) for t in shown)
    if len(tickets) > len(shown):
        replies.append(Text(ctx.t("tickets.more", count=len(tickets) - len(shown))))
    return tuple(replies)


# ---- escalation steps (shared by the escalation dialog and the ticket view) ----------------------


def reason_options(ctx: Context, data: Mapping[str, Any] | None = None) -> tuple[Option, ...]:
    """The reasons that fit the ticket (bot/domain/visibility.py): "the solution is inadequate"
    only once a solution was given."""
    ticket = visible_ticket(ctx, (data or {}).get("ticket"))
    return tuple(Option(r.value, ctx.t(f"escalation.reason.{r.value}")) for r in escalation_reasons(ticket))


@dataclass(frozen=True)
class ReasonStep(ChoiceStep):
    """The escalation reason, saying why "the solution is inadequate" is not offered yet."""

    def prompt(self, ctx: Context, data: Mapping[str, Any], action: Action) -> tuple[Reply, ...]:
        ticket = visible_ticket(ctx, data.get("ticket"))
        if ticket is None or EscalationReason.SOLUTION in escalation_reasons(ticket):
            return super().prompt(ctx, data, action)
        why = "visibility.no_solution_yet_change" if ticket.kind is TicketKind.CHANGE_REQUEST \
            else "visibility.no_solution_yet"
        return (Text(ctx.t(why, number=ticket.number)),) + super().prompt(ctx, data, action)


def _parse_comment(ctx: Context, data: Mapping[str, Any], text: str) -> str:
    return validation.long_text(text)


class ConfirmEscalationStep(Step):
    help_key = "help.escalation_confirm"

    def _options(self, ctx: Context) -> tuple[Option, Option]:
        return (Option("confirm", ctx.t("escalation.confirm"), primary=True),
                Option("cancel", ctx.t("escalation.cancel"), danger=True))

    def prompt(self, ctx: Context, data: Mapping[str, Any], action: Action) -> tuple[Reply, ...]:
        level = ctx.settings.escalation.level(1)
        confirm, cancel = self._options(ctx)
        facts = (
            (ctx.t("escalation.field.ticket"), data["ticket"]),
            (ctx.t("escalation.field.reason"), ctx.t(f"escalation.reason.{data['reason']}")),
            (ctx.t("escalation.field.comment"), data["comment"]),
            (ctx.t("escalation.field.to"), f"{level.name} — {level.role}" if level else "—"),
        )
        return (Confirmation(ctx.t("escalation.summary_title"), facts, action, confirm, None, cancel),)

    def accept(self, ctx: Context, data: Mapping[str, Any], answer: Answer) -> Outcome:
        option = resolve_option(answer.text, self._options(ctx))
        if option is None:
            return Retry(ctx.t("validation.choice"))
        if option.value == "cancel":
            return Finish((Text(ctx.t("engine.cancelled")),))
        return Finish(effect=Effect(EffectKind.CREATE_ESCALATION, {
            "ticket": data["ticket"], "reason": data["reason"], "comment": data["comment"]}))


def escalation_steps() -> dict[str, Step]:
    return {
        "reason": ReasonStep("reason", "escalation.ask.reason", reason_options, "comment", help_key="help.escalation"),
        "comment": TextStep("comment", "escalation.ask.comment", _parse_comment, "confirm"),
        "confirm": ConfirmEscalationStep(),
    }


def escalation_completed(ctx: Context, escalation: Any) -> tuple[Reply, ...]:
    level = ctx.settings.escalation.level(escalation.level)
    text = ctx.t("escalation.recorded", number=escalation.ticket_number, name=level.name if level else "",
                 role=level.role if level else "", email=level.email if level else "",
                 phone=level.phone if level else "")
    return (Text(text, Tone.SUCCESS),)


def comment_completed(ctx: Context, number: str) -> tuple[Reply, ...]:
    return (Text(ctx.t("ticket_info.added", number=number), Tone.SUCCESS),)


class EscalationDialog(Dialog):
    name = ESCALATE

    def __init__(self) -> None:
        self.steps = {
            "ticket": ChoiceStep("ticket", "escalation.ask.ticket", self._ticket_options, "reason",
                                 help_key="help.escalation"),
            **escalation_steps(),
        }

    @staticmethod
    def _ticket_options(ctx: Context, data: Mapping[str, Any]) -> tuple[Option, ...]:
        # Open tickets first: those are the ones people usually escalate.
        ordered = sorted(ctx.tickets, key=lambda t: (not t.is_open,))
        return tuple(ticket_option(ctx, t) for t in ordered[:25])

    def start(self, ctx: Context, args: Mapping[str, Any]) -> Outcome:
        if ctx.contact is None and ctx.staff is None and not ctx.tickets:
            return Finish((Text(ctx.t("escalation.unknown_user", email=ctx.settings.contact.email,
                                      phone=ctx.settings.contact.phone)),))
        number = args.get("number")
        if number:
            ticket = visible_ticket(ctx, number)
            if ticket is None:
                return Finish((Text(ctx.t("tickets.not_found", number=number), Tone.WARNING),))
            return Goto("reason", {"ticket": ticket.number}, (ticket_facts(ctx, ticket, full=False),), remember=False)
        if not ctx.tickets:
            return Finish((Text(ctx.t("escalation.no_tickets")),))
        return Goto("ticket", {}, remember=False)

    def completed(self, ctx: Context, data: Mapping[str, Any], result: Any) -> tuple[Reply, ...]:
        return escalation_completed(ctx, result)


class TicketInfoDialog(Dialog):
    """A message quoted a ticket number: show it, offer to add information or escalate."""

    name = TICKET_INFO

    def __init__(self) -> None:
        self.steps = {
            "action": ChoiceStep("action", "ticket_info.ask.action", self._actions, self._after_action,
                                 help_key="help.ticket_info", on_choice=self._on_action),
            "info": TextStep("info", "ticket_info.ask.info", _parse_comment, "done"),
            "done": _AddComment(),
            **escalation_steps(),
        }

    @staticmethod
    def _actions(ctx: Context, data: Mapping[str, Any]) -> tuple[Option, ...]:
        return (
            Option("info", ctx.t("ticket_info.add"), primary=True),
            Option("escalate", ctx.t("ticket_info.escalate")),
            Option("close", ctx.t("ticket_info.close")),
        )

    @staticmethod
    def _on_action(ctx: Context, data: Mapping[str, Any], value: str) -> Outcome | None:
        if value == "close":
            return Finish((Text(ctx.t("ticket_info.closed")),))
        return None

    @staticmethod
    def _after_action(ctx: Context, data: Mapping[str, Any]) -> str:
        return "info" if data["action"] == "info" else "reason"

    def start(self, ctx: Context, args: Mapping[str, Any]) -> Outcome:
        ticket = visible_ticket(ctx, args.get("number"))
        if ticket is None:
            return Finish((Text(ctx.t("tickets.not_found", number=args.get("number", "")), Tone.WARNING),))
        return Goto("action", {"ticket": ticket.number}, (ticket_facts(ctx, ticket),), remember=False)

    def completed(self, ctx: Context, data: Mapping[str, Any], result: Any) -> tuple[Reply, ...]:
        if data.get("action") == "info":
            return comment_completed(ctx, data["ticket"])
        return escalation_completed(ctx, result)


class _AddComment(Step):
    """Reached once the information was typed: finishes with the effect that stores it."""

    def prompt(self, ctx: Context, data: Mapping[str, Any], action: Action) -> tuple[Reply, ...]:
        return ()

    def accept(self, ctx: Context, data: Mapping[str, Any], answer: Answer) -> Outcome:
        return self.skip(ctx, data)

    def skip(self, ctx: Context, data: Mapping[str, Any]) -> Outcome:
        return Finish(effect=Effect(EffectKind.ADD_COMMENT, {"ticket": data["ticket"], "text": data["info"]}))
