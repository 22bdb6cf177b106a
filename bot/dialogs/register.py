"""A ticket the service desk registers for a customer (rules page §4.1, issue 15 §3): the
`register` staff command. The same dialog engine as every other dialog, as named states:

intake (mail, phone, in person, portal) → the customer contact's e-mail → kind → module →
description → [incidents: how to reproduce → first tests] → urgency → summary → confirm.

In one go as a form too (a Slack modal, a Teams card). Every answer is checked as in the
customer's own dialog; the runner registers the ticket through bot/app/registration.py, which
checks it all again and tells the requester the number."""

from __future__ import annotations

from typing import Any, Callable, Mapping

from bot.dialogs.common import kind_options, urgency_options
from bot.dialogs.engine import (
    Answer,
    ChoiceStep,
    Context,
    Dialog,
    Effect,
    EffectKind,
    Finish,
    FormErrors,
    Goto,
    Outcome,
    Retry,
    Step,
    TextStep,
    resolve_option,
)
from bot.dialogs.new_ticket import _parse_description, _parse_diagnostics, _parse_module, _parse_reproduce
from bot.domain import validation
from bot.domain.model import STAFF_INTAKES, TicketKind, Urgency
from bot.domain.validation import Invalid
from bot.protocol.ids import Action
from bot.protocol.replies import Confirmation, FieldKind, Form, FormField, Option, Reply, Text

NAME = "register"
FIELDS = ("intake", "requester", "kind", "module", "description", "reproduce", "diagnostics", "urgency")


def intake_options(ctx: Context, data: Mapping[str, Any] | None = None) -> tuple[Option, ...]:
    return tuple(Option(i.value, ctx.t(f"intake.channel.{i.value}")) for i in STAFF_INTAKES)


def _parse_requester(ctx: Context, data: Mapping[str, Any], text: str) -> str:
    """A customer contact of the directory (the runner looked the address up: `ctx.named`)."""
    address = validation.email(text)
    entry = ctx.named.get(address.lower())
    if entry is None or entry.company is None:
        raise Invalid("validation.unknown_requester", {"email": address})
    return address


def _after_description(ctx: Context, data: Mapping[str, Any]) -> str:
    return "reproduce" if data.get("kind") == TicketKind.INCIDENT.value else "urgency"


class _Summary(Step):
    help_key = "register.help_summary"

    def _options(self, ctx: Context) -> tuple[Option, Option]:
        return (Option("confirm", ctx.t("register.confirm"), primary=True),
                Option("cancel", ctx.t("escalation.cancel"), danger=True))

    def prompt(self, ctx: Context, data: Mapping[str, Any], action: Action) -> tuple[Reply, ...]:
        t = ctx.t
        facts: list[tuple[str, str]] = [
            (t("intake.shown"), t(f"intake.channel.{data['intake']}")),
            (t("ticket.field.requester"), str(data["requester"])),
            (t("ticket.field.kind"), t(f"ticket.kind.{data['kind']}")),
            (t("ticket.field.module"), str(data["module"])),
            (t("ticket.field.description"), str(data["description"])),
        ]
        if data.get("reproduce"):
            facts.append((t("ticket.field.reproduce"), str(data["reproduce"])))
        if data.get("diagnostics"):
            facts.append((t("ticket.field.diagnostics"), str(data["diagnostics"])))
        facts.append((t("ticket.field.urgency"), t(f"ticket.urgency.{data['urgency']}")))
        confirm, cancel = self._options(ctx)
        return (Confirmation(t("register.summary_title"), tuple(facts), action, confirm, None, cancel),)

    def accept(self, ctx: Context, data: Mapping[str, Any], answer: Answer) -> Outcome:
        option = resolve_option(answer.text, self._options(ctx))
        if option is None:
            return Retry(ctx.t("validation.choice"))
        if option.value == "cancel":
            return Finish((Text(ctx.t("engine.cancelled")),))
        return Finish(effect=_effect(data))


def _effect(data: Mapping[str, Any]) -> Effect:
    return Effect(EffectKind.REGISTER_TICKET, {k: data.get(k) for k in FIELDS})


class RegisterDialog(Dialog):
    name = NAME

    def __init__(self) -> None:
        self.steps = {
            "intake": ChoiceStep("intake", "register.ask.intake", intake_options, "requester"),
            "requester": TextStep("requester", "register.ask.requester", _parse_requester, "kind"),
            "kind": ChoiceStep("kind", "ticket.ask.kind", kind_options, "module", help_key="help.kind"),
            "module": TextStep("module", "ticket.ask.module", _parse_module, "description", help_key="help.module"),
            "description": TextStep("description", "ticket.ask.description", _parse_description, _after_description,
                                    help_key="help.description"),
            "reproduce": TextStep("reproduce", "ticket.ask.reproduce", _parse_reproduce, "diagnostics",
                                  help_key="help.reproduce"),
            "diagnostics": TextStep("diagnostics", "ticket.ask.diagnostics", _parse_diagnostics, "urgency",
                                    help_key="help.diagnostics"),
            "urgency": ChoiceStep("urgency", "ticket.ask.urgency", urgency_options, "summary", help_key="help.urgency"),
            "summary": _Summary(),
        }

    def start(self, ctx: Context, args: Mapping[str, Any]) -> Outcome:
        if ctx.staff is None:
            return Finish((Text(ctx.t("register.only_staff")),))
        return Goto("intake", {}, (Text(ctx.t("register.intro")),), remember=False)

    def form(self, ctx: Context, data: Mapping[str, Any]) -> Form | None:
        if ctx.staff is None:
            return None
        t = ctx.t
        fields = (
            FormField("intake", t("intake.shown"), FieldKind.SINGLE_CHOICE, value=data.get("intake"),
                      options=intake_options(ctx)),
            FormField("requester", t("register.field.requester"), FieldKind.EMAIL, value=data.get("requester")),
            FormField("kind", t("ticket.field.kind"), FieldKind.SINGLE_CHOICE, value=data.get("kind"),
                      options=kind_options(ctx)),
            FormField("module", t("ticket.field.module"), FieldKind.SHORT_TEXT, hint=t("ticket.hint.module"),
                      max_length=validation.MAX_SHORT_TEXT),
            FormField("description", t("ticket.field.description"), FieldKind.LONG_TEXT,
                      hint=t("ticket.hint.description"), max_length=validation.MAX_LONG_TEXT),
            FormField("reproduce", t("ticket.field.reproduce"), FieldKind.LONG_TEXT, required=False,
                      hint=t("ticket.hint.reproduce"), max_length=validation.MAX_LONG_TEXT),
            FormField("diagnostics", t("ticket.field.diagnostics"), FieldKind.LONG_TEXT, required=False,
                      hint=t("ticket.hint.diagnostics"), max_length=validation.MAX_LONG_TEXT),
            FormField("urgency", t("ticket.field.urgency"), FieldKind.SINGLE_CHOICE, value=Urgency.NORMAL.value,
                      options=urgency_options(ctx)),
        )
        return Form(NAME, t("register.form.title"), fields, t("register.form.submit"), t("ticket.form.cancel"),
                    intro=t("register.intro"))

    def submit_form(self, ctx: Context, data: Mapping[str, Any], answer: Answer) -> Outcome:
        values = {k: (v or "").strip() for k, v in answer.values.items() if isinstance(v, str)}
        parsed: dict[str, Any] = {}
        errors: dict[str, str] = {}

        def choice(options: Callable[..., tuple[Option, ...]], default: str = "") -> Callable[[str], str]:
            def check(v: str) -> str:
                option = resolve_option(v or default, options(ctx))
                if option is None:
                    raise Invalid("validation.choice")
                return option.value
            return check

        checks: dict[str, Callable[[str], str]] = {
            "intake": choice(intake_options),
            "requester": lambda v: _parse_requester(ctx, data, v),
            "kind": choice(kind_options),
            "module": lambda v: _parse_module(ctx, data, v),
            "description": lambda v: _parse_description(ctx, data, v),
            "urgency": choice(urgency_options, Urgency.NORMAL.value),
        }
        for field, check in checks.items():
            try:
                parsed[field] = check(values.get(field, ""))
            except Invalid as exc:
                errors[field] = ctx.t(exc.key, **exc.params)
        incident = parsed.get("kind") == TicketKind.INCIDENT.value
        for field, parse in (("reproduce", _parse_reproduce), ("diagnostics", _parse_diagnostics)):
            text = values.get(field, "")
            if incident and not text:
                errors[field] = ctx.t("validation.required_for_incident")
            elif incident:
                try:
                    parsed[field] = parse(ctx, data, text)
                except Invalid as exc:
                    errors[field] = ctx.t(exc.key, **exc.params)
        if errors:
            return FormErrors(errors)
        if answer.confirmed:
            return Finish(effect=_effect(parsed), updates=parsed)
        return Goto("summary", parsed)

    def completed(self, ctx: Context, data: Mapping[str, Any], result: Any) -> tuple[Reply, ...]:
        ticket = result.ticket
        told = result.reach.said(ctx.t, ticket.requester_name)
        return (Text(ctx.t("register.created", number=ticket.number, name=ticket.requester_name,
                           intake=ctx.t(f"intake.channel.{ticket.intake.value}")) + "\n" + told),)
