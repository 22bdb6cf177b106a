"""The guided new-ticket dialog (rules page §2), with the out-of-hours rules (§1).

Flow: kind → contact details (prefilled, confirm or correct) → company → module or
hardware/environment → description → [incidents: how to reproduce → first diagnostics] →
urgency → [urgent incident out of office hours: acceptance of the surcharge] → summary →
confirm (the ticket is created), edit a field, or cancel.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any, Callable, Mapping

from bot.domain import validation
from bot.domain.model import Ticket, TicketKind, Urgency
from bot.i18n import format_datetime
from bot.domain.money import percent
from bot.protocol.ids import Action
from bot.protocol.replies import Choices, Confirmation, Facts, FieldKind, Form, FormField, Option, Reply, Text, Tone
from bot.domain.validation import Invalid

from bot.dialogs import existing
from bot.dialogs.common import NO, YES, kind_options, urgency_options, yes_no
from bot.dialogs.intents import kind_in_words
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

NAME = "new_ticket"
URGENT = {Urgency.HIGH.value, Urgency.CRITICAL.value}
# The order of the questions; `_next_missing` walks it to find what is still to be asked.
FLOW = ("kind", "contact", "company", "module", "description", "reproduce", "diagnostics", "urgency")
EDITABLE = ("kind", "name", "email", "phone", "company", "module", "description", "reproduce", "diagnostics", "urgency")


def _is_incident(data: Mapping[str, Any]) -> bool:
    return data.get("kind") == TicketKind.INCIDENT.value


def _needed(ctx: Context, data: Mapping[str, Any], state: str) -> bool:
    """Whether a question of the flow still needs an answer."""
    if state == "contact":
        return not all(data.get(k) for k in ("name", "email", "phone")) or not data.get("contact_confirmed")
    if state in ("reproduce", "diagnostics"):
        return _is_incident(data) and not data.get(state)
    if state == "company":
        # Only staff choose a company (registering a ticket for a customer): a contact's is their
        # directory company, and a ticket from outside the directory has none until staff set it.
        return chooses_company(ctx) and not data.get("company")
    return not data.get(state)


def chooses_company(ctx: Context) -> bool:
    return ctx.staff is not None and ctx.company is None


def _next_missing(ctx: Context, data: Mapping[str, Any]) -> str:
    for state in FLOW:
        if _needed(ctx, data, state):
            return state
    return "check_hours"


# ---- parsers (shared by the chat questions and the one-shot form) ----------------------------


def _parse_name(ctx: Context, data: Mapping[str, Any], text: str) -> str:
    return validation.short_text(text)


def _parse_email(ctx: Context, data: Mapping[str, Any], text: str) -> str:
    address = validation.email(text)
    check_requester(ctx, address)
    return address


def check_requester(ctx: Context, address: str) -> None:
    """Nobody files a ticket as someone else: a directory contact files for themselves or a
    contact of their own company; someone outside the directory for the address the platform
    proved (or, without one, for an address that is nobody's in the directory); staff register
    tickets for customers. Raises Invalid with the polite reason."""
    if ctx.staff is not None:
        return
    wanted = address.strip().lower()
    entry = ctx.named.get(wanted)
    if ctx.contact is not None:
        company = ctx.contact.company
        if wanted == ctx.contact.email.strip().lower():
            return
        if entry is None or entry.company is None or entry.company.lower() != company.lower():
            raise Invalid("validation.requester_other_company", {"company": company})
        return
    proven = (ctx.user.email or "").strip()
    if proven:
        if wanted != proven.lower():
            raise Invalid("validation.requester_not_yours", {"email": proven})
        return
    if entry is None or entry.company is not None or entry.staff:
        raise Invalid("validation.requester_in_directory")


def _parse_phone(ctx: Context, data: Mapping[str, Any], text: str) -> str:
    return validation.phone(text)


def _parse_short(ctx: Context, data: Mapping[str, Any], text: str) -> str:
    return validation.short_text(text)


def _parse_module(ctx: Context, data: Mapping[str, Any], text: str) -> str:
    return validation.module(text)


def _parse_description(ctx: Context, data: Mapping[str, Any], text: str) -> str:
    ts = ctx.settings.tickets
    return validation.description(text, min_words=ts.min_description_words, min_chars=ts.min_description_chars)


def _parse_long(ctx: Context, data: Mapping[str, Any], text: str) -> str:
    return validation.long_text(text)


def _parse_reproduce(ctx: Context, data: Mapping[str, Any], text: str) -> str:
    return validation.helpful_answer(text, "validation.reproduce_unhelpful")


def _parse_diagnostics(ctx: Context, data: Mapping[str, Any], text: str) -> str:
    return validation.helpful_answer(text, "validation.diagnostics_unhelpful")


# ---- out of office hours (rules page §1) -----------------------------------------------------


def _surcharge_now(ctx: Context) -> tuple[str, str, str]:
    """The multiplier in force now (the customer's own SLA where they have one), as a percent,
    the name of the period, and its basis: "sla" when the company's written agreement sets it,
    else "default" (the rate card of the rules page)."""
    overrides = ctx.company.multiplier_overrides if ctx.company else None
    multipliers = ctx.settings.multipliers.with_overrides(overrides)
    periods = ctx.calendar.periods_at(ctx.now)
    winner = max(periods, key=lambda p: getattr(multipliers, p.value))
    basis = "sla" if overrides and winner.value in overrides else "default"
    return percent(getattr(multipliers, winner.value)), ctx.t(f"period.{winner.value}"), basis


class CheckHoursStep(Step):
    """Not a question: decides, with the clock of this turn, whether the out-of-hours rules apply."""

    def prompt(self, ctx: Context, data: Mapping[str, Any], action: Action) -> tuple[Reply, ...]:
        return ()

    def accept(self, ctx: Context, data: Mapping[str, Any], answer: Answer) -> Outcome:
        return self.skip(ctx, data)

    def skip(self, ctx: Context, data: Mapping[str, Any]) -> Goto:
        if ctx.calendar.is_office_hours(ctx.now):
            return Goto("summary", {"ooh": None, "emergency": False}, remember=False)
        opening = format_datetime(ctx.calendar.next_office_opening(ctx.now), ctx.lang)
        if _is_incident(data) and data.get("urgency") in URGENT:
            if ctx.contact is None or not ctx.contact.sla_named:
                say = Text(
                    ctx.t("ticket.ooh.not_named", opening=opening, email=ctx.settings.contact.email,
                          phone=ctx.settings.contact.phone),
                    Tone.WARNING,
                )
                return Goto("summary", {"ooh": "not_named", "emergency": False}, (say,), remember=False)
            return Goto("emergency", {"ooh": None, "emergency": False}, remember=False)
        lines = [ctx.t("ticket.ooh.deferred", opening=opening)]
        if not _is_incident(data):
            # Say why: only a disruption may be handled out of hours (rules page §1.1).
            lines.append(ctx.t("ticket.ooh.deferred_not_incident"))
        return Goto("summary", {"ooh": "deferred", "emergency": False},
                    (Text("\n".join(lines)),), remember=False)


class EmergencyStep(Step):
    help_key = "help.emergency"

    def prompt(self, ctx: Context, data: Mapping[str, Any], action: Action) -> tuple[Reply, ...]:
        pct, period, _basis = _surcharge_now(ctx)
        lines = [ctx.t("ticket.ooh.surcharge", percent=pct, period=period)]
        if ctx.company is None or not ctx.company.support_module:
            lines.append(ctx.t("ticket.ooh.no_support_module"))
        text = Text("\n".join(lines), Tone.WARNING)
        options = (Option(YES, ctx.t("ticket.ooh.accept"), primary=True), Option(NO, ctx.t("ticket.ooh.decline")))
        return (text, Choices(ctx.t("ticket.ooh.question"), options, action))

    def accept(self, ctx: Context, data: Mapping[str, Any], answer: Answer) -> Outcome:
        option = resolve_option(answer.text, yes_no(ctx) + (
            Option(YES, ctx.t("ticket.ooh.accept")), Option(NO, ctx.t("ticket.ooh.decline"))))
        if option is None:
            return Retry(ctx.t("validation.choice"))
        if option.value == YES:
            pct, _, basis = _surcharge_now(ctx)
            # What was accepted, recorded on the ticket and shown to whoever is paged.
            return Goto("summary", {"ooh": "emergency", "emergency": True, "accepted_percent": pct,
                                    "accepted_basis": basis,
                                    "fee_warning": ctx.company is None or not ctx.company.support_module})
        opening = format_datetime(ctx.calendar.next_office_opening(ctx.now), ctx.lang)
        return Goto("summary", {"ooh": "declined", "emergency": False},
                    (Text(ctx.t("ticket.ooh.deferred", opening=opening)),))


# ---- contact details ---------------------------------------------------------------------------


class ContactStep(Step):
    help_key = "help.contact"

    def skip(self, ctx: Context, data: Mapping[str, Any]) -> Goto | None:
        if not (data.get("name") and data.get("email")):
            return Goto("name", remember=False)
        return None

    def prompt(self, ctx: Context, data: Mapping[str, Any], action: Action) -> tuple[Reply, ...]:
        facts = Facts(
            (
                (ctx.t("ticket.field.name"), data.get("name") or "—"),
                (ctx.t("ticket.field.email"), data.get("email") or "—"),
                (ctx.t("ticket.field.phone"), data.get("phone") or "—"),
            ),
            title=ctx.t("ticket.contact.title"),
        )
        options = (Option(YES, ctx.t("ticket.contact.correct"), primary=True), Option("change", ctx.t("ticket.contact.change")))
        return (facts, Choices(ctx.t("ticket.contact.question"), options, action))

    def accept(self, ctx: Context, data: Mapping[str, Any], answer: Answer) -> Outcome:
        options = (Option(YES, ctx.t("ticket.contact.correct")), Option("change", ctx.t("ticket.contact.change")))
        option = resolve_option(answer.text, options + yes_no(ctx))
        if option is None:
            return Retry(ctx.t("validation.choice"))
        if option.value == YES:
            if not data.get("phone"):
                return Goto("phone", {"contact_confirmed": True})
            updates = {"contact_confirmed": True}
            return Goto(_next_missing(ctx, {**data, **updates}), updates)
        return Goto("name")


def _after_contact_field(field: str) -> Callable[[Context, Mapping[str, Any]], str]:
    def next_state(ctx: Context, data: Mapping[str, Any]) -> str:
        order = ("name", "email", "phone")
        if not data.get("editing") and field != "phone":
            return order[order.index(field) + 1]
        return _next_missing(ctx, data)

    return next_state


def _after(ctx: Context, data: Mapping[str, Any]) -> str:
    return _next_missing(ctx, data)


# ---- the kind of ticket (rules page §4.2) ------------------------------------------------------

# Answers only an incident has: a ticket that stops being an incident must not carry them hidden.
INCIDENT_ONLY = ("reproduce", "diagnostics")


@dataclass(frozen=True)
class KindStep(ChoiceStep):
    """The kind question. A kind guessed from the first message is shown as a suggestion to
    confirm or change, never chosen silently; the options keep their order (and numbers)."""

    def prompt(self, ctx: Context, data: Mapping[str, Any], action: Action) -> tuple[Reply, ...]:
        guess = data.get("kind_guess")
        if not guess or data.get("kind"):
            return super().prompt(ctx, data, action)
        options = tuple(replace(o, primary=o.value == guess) for o in self.options(ctx, data))
        question = ctx.t("ticket.ask.kind_guessed", kind=ctx.t(f"ticket.kind.{guess}"))
        return (Choices(question, options, action),)

    def accept(self, ctx: Context, data: Mapping[str, Any], answer: Answer) -> Outcome:
        if resolve_option(answer.text, self.options(ctx, data)) is None and not answer.values:
            # "une demande de modification", "it's a change request": the kind in words.
            kind = kind_in_words(answer.text)
            if kind is not None:
                return _on_kind(ctx, data, kind)
        return super().accept(ctx, data, answer)


def _on_kind(ctx: Context, data: Mapping[str, Any], kind: str) -> Outcome:
    updates: dict[str, Any] = {"kind": kind}
    if kind != TicketKind.INCIDENT.value:
        updates.update({k: None for k in INCIDENT_ONLY})
    return Goto(_after(ctx, {**data, **updates}), updates)


# ---- summary and editing -----------------------------------------------------------------------


def summary_facts(ctx: Context, data: Mapping[str, Any]) -> tuple[tuple[str, str], ...]:
    t = ctx.t
    rows = [
        (t("ticket.field.kind"), t(f"ticket.kind.{data['kind']}")),
        (t("ticket.field.name"), data.get("name") or "—"),
        (t("ticket.field.email"), data.get("email") or "—"),
        (t("ticket.field.phone"), data.get("phone") or "—"),
        (t("ticket.field.company"), data.get("company") or "—"),
        (t("ticket.field.module"), data.get("module") or "—"),
        (t("ticket.field.description"), data.get("description") or "—"),
    ]
    if _is_incident(data):
        rows.append((t("ticket.field.reproduce"), data.get("reproduce") or "—"))
        rows.append((t("ticket.field.diagnostics"), data.get("diagnostics") or "—"))
    rows.append((t("ticket.field.urgency"), t(f"ticket.urgency.{data['urgency']}")))
    if data.get("emergency"):
        rows.append((t("ticket.field.emergency"), t("ticket.ooh.accepted", percent=data.get("accepted_percent", ""))))
    return tuple(rows)


class SummaryStep(Step):
    help_key = "help.summary"

    def prompt(self, ctx: Context, data: Mapping[str, Any], action: Action) -> tuple[Reply, ...]:
        return (
            Confirmation(
                title=ctx.t("ticket.summary.title"),
                facts=summary_facts(ctx, data),
                action=action,
                confirm=Option("confirm", ctx.t("ticket.summary.confirm"), primary=True),
                edit=Option("edit", ctx.t("ticket.summary.edit")),
                cancel=Option("cancel", ctx.t("ticket.summary.cancel"), danger=True),
            ),
        )

    def accept(self, ctx: Context, data: Mapping[str, Any], answer: Answer) -> Outcome:
        options = (
            Option("confirm", ctx.t("ticket.summary.confirm")),
            Option("edit", ctx.t("ticket.summary.edit")),
            Option("cancel", ctx.t("ticket.summary.cancel")),
        )
        option = resolve_option(answer.text, options)
        if option is None and answer.text.strip().lower() in {YES, ctx.t("common.yes").lower()}:
            option = options[0]
        if option is None:
            return Retry(ctx.t("validation.choice"))
        if option.value == "cancel":
            return Finish((Text(ctx.t("engine.cancelled")),))
        if option.value == "edit":
            return Goto("edit", {"editing": True})
        return _create(ctx, data)


def _create(ctx: Context, data: Mapping[str, Any]) -> Finish:
    payload = {k: data.get(k) for k in EDITABLE}
    if not _is_incident(data):
        payload.update({k: None for k in INCIDENT_ONLY})
    payload["emergency"] = bool(data.get("emergency"))
    if payload["emergency"]:
        payload["accepted_percent"] = data.get("accepted_percent")
        payload["accepted_basis"] = data.get("accepted_basis") or "default"
        payload["fee_warning"] = bool(data.get("fee_warning"))
    return Finish(effect=Effect(EffectKind.CREATE_TICKET, payload))


def _edit_options(ctx: Context, data: Mapping[str, Any]) -> tuple[Option, ...]:
    fields = [f for f in EDITABLE if f not in ("reproduce", "diagnostics") or _is_incident(data)]
    if not chooses_company(ctx):
        fields.remove("company")  # a directory contact's company is not theirs to change
    return tuple(Option(f, ctx.t(f"ticket.field.{f}")) for f in fields)


# ---- the dialog --------------------------------------------------------------------------------


class NewTicketDialog(Dialog):
    name = NAME

    def __init__(self) -> None:
        self.steps = {
            "kind": KindStep("kind", "ticket.ask.kind", kind_options, _after, help_key="help.kind", on_choice=_on_kind),
            "contact": ContactStep(),
            "name": TextStep("name", "ticket.ask.name", _parse_name, _after_contact_field("name"), keep_current=True),
            "email": TextStep("email", "ticket.ask.email", _parse_email, _after_contact_field("email"), keep_current=True),
            "phone": TextStep("phone", "ticket.ask.phone", _parse_phone, _after_contact_field("phone"), keep_current=True,
                              also_set={"contact_confirmed": True}),
            "company": TextStep("company", "ticket.ask.company", _parse_short, _after, keep_current=True),
            "module": TextStep("module", "ticket.ask.module", _parse_module, _after, help_key="help.module",
                               keep_current=True),
            "description": TextStep("description", "ticket.ask.description", _parse_description, _after,
                                    help_key="help.description"),
            "reproduce": TextStep("reproduce", "ticket.ask.reproduce", _parse_reproduce, _after, help_key="help.reproduce"),
            "diagnostics": TextStep("diagnostics", "ticket.ask.diagnostics", _parse_diagnostics, _after,
                                    help_key="help.diagnostics"),
            "urgency": ChoiceStep("urgency", "ticket.ask.urgency", urgency_options, "check_hours",
                                  help_key="help.urgency"),
            "check_hours": CheckHoursStep(),
            "emergency": EmergencyStep(),
            "summary": SummaryStep(),
            "edit": ChoiceStep("edit_field", "ticket.ask.edit", _edit_options, lambda ctx, data: data["edit_field"]),
            # A person with open tickets is first asked whether it is about one of them (§3b).
            **existing.steps(_next_missing),
        }

    def prefill(self, ctx: Context, args: Mapping[str, Any]) -> dict[str, Any]:
        contact = ctx.contact
        data: dict[str, Any] = {
            "name": (contact.name if contact else None) or ctx.user.display_name,
            "email": (contact.email if contact else None) or ctx.user.email,
            "phone": (contact.phone if contact else None) or ctx.user.phone,
            "company": ctx.company.name if ctx.company else None,
        }
        if data["phone"]:
            try:
                data["phone"] = validation.phone(data["phone"])
            except Invalid:
                data["phone"] = None
        for key in ("kind", "description", "module"):
            if args.get(key):
                data[key] = args[key]
        if args.get("kind_guess") in {k.value for k in TicketKind}:
            data["kind_guess"] = args["kind_guess"]
        return data

    def start(self, ctx: Context, args: Mapping[str, Any]) -> Outcome:
        data = self.prefill(ctx, args)
        intro = Text(ctx.t("ticket.intro"))
        offered = existing.own_open_tickets(ctx)
        if offered:
            return Goto("existing", {**data, "open_tickets": offered}, (intro,), remember=False)
        return Goto(_next_missing(ctx, data), data, (intro,), remember=False)

    def intercept(self, ctx: Context, state: str, data: Mapping[str, Any], answer: Answer) -> Outcome | None:
        return existing.intercept(ctx, state, data, answer)

    # ---- everything at once (a Slack modal, a Teams card) -----------------------------------------
    def form(self, ctx: Context, data: Mapping[str, Any]) -> Form:
        prefill = {**self.prefill(ctx, {}), **{k: v for k, v in data.items() if v}}
        fields = [
            FormField("kind", ctx.t("ticket.field.kind"), FieldKind.SINGLE_CHOICE, value=prefill.get("kind"),
                      options=kind_options(ctx)),
            FormField("name", ctx.t("ticket.field.name"), FieldKind.SHORT_TEXT, value=prefill.get("name"),
                      max_length=validation.MAX_SHORT_TEXT),
            FormField("email", ctx.t("ticket.field.email"), FieldKind.EMAIL, value=prefill.get("email")),
            FormField("phone", ctx.t("ticket.field.phone"), FieldKind.PHONE, value=prefill.get("phone")),
        ]
        if chooses_company(ctx):
            fields.append(FormField("company", ctx.t("ticket.field.company"), FieldKind.SHORT_TEXT,
                                    value=prefill.get("company"), max_length=validation.MAX_SHORT_TEXT))
        fields += [
            FormField("module", ctx.t("ticket.field.module"), FieldKind.SHORT_TEXT, value=prefill.get("module"),
                      hint=ctx.t("ticket.hint.module"), max_length=validation.MAX_SHORT_TEXT),
            FormField("description", ctx.t("ticket.field.description"), FieldKind.LONG_TEXT,
                      value=prefill.get("description"), hint=ctx.t("ticket.hint.description"),
                      max_length=validation.MAX_LONG_TEXT),
            FormField("reproduce", ctx.t("ticket.field.reproduce"), FieldKind.LONG_TEXT, required=False,
                      value=prefill.get("reproduce"), hint=ctx.t("ticket.hint.reproduce"),
                      max_length=validation.MAX_LONG_TEXT),
            FormField("diagnostics", ctx.t("ticket.field.diagnostics"), FieldKind.LONG_TEXT, required=False,
                      value=prefill.get("diagnostics"), hint=ctx.t("ticket.hint.diagnostics"),
                      max_length=validation.MAX_LONG_TEXT),
            FormField("urgency", ctx.t("ticket.field.urgency"), FieldKind.SINGLE_CHOICE,
                      value=prefill.get("urgency") or Urgency.NORMAL.value, options=urgency_options(ctx)),
        ]
        existing_field = existing.form_field(ctx, prefill.get(existing.FIELD))
        if existing_field is not None:
            # Is this about one of their open tickets (§3b)? Then only the text to add is
            # needed: the platform must let the other fields be left empty (they are still
            # checked, as always, when the answer is "a new ticket").
            fields = [existing_field] + [f if f.name == "description" else replace(f, required=False)
                                         for f in fields]
        return Form(NAME, ctx.t("ticket.form.title"), tuple(fields), ctx.t("ticket.form.submit"),
                    ctx.t("ticket.form.cancel"), intro=ctx.t("ticket.form.intro"))

    def submit_form(self, ctx: Context, data: Mapping[str, Any], answer: Answer) -> Outcome:
        values = {k: (v or "").strip() for k, v in answer.values.items()}
        if existing.chosen_in_form(values):
            # About one of their open tickets: added to it, no new ticket (§3b).
            return existing.submit_addition(ctx, values)
        parsed: dict[str, Any] = {}
        errors: dict[str, str] = {}
        checks: dict[str, Callable[[str], str]] = {
            "kind": lambda v: _choice(ctx, v, kind_options(ctx)),
            "name": lambda v: _parse_name(ctx, data, v),
            "email": lambda v: _parse_email(ctx, data, v),
            "phone": lambda v: _parse_phone(ctx, data, v),
            "module": lambda v: _parse_module(ctx, data, v),
            "description": lambda v: _parse_description(ctx, data, v),
            "urgency": lambda v: _choice(ctx, v or Urgency.NORMAL.value, urgency_options(ctx)),
        }
        if chooses_company(ctx):
            checks["company"] = lambda v: _parse_short(ctx, data, v)
        for field, check in checks.items():
            try:
                parsed[field] = check(values.get(field, ""))
            except Invalid as exc:
                errors[field] = ctx.t(exc.key, **exc.params)
        for field in ("reproduce", "diagnostics"):
            text = values.get(field, "")
            if parsed.get("kind") == TicketKind.INCIDENT.value and not text:
                errors[field] = ctx.t("validation.required_for_incident")
            elif text and parsed.get("kind") == TicketKind.INCIDENT.value:
                # Only an incident has these answers: on another kind they are dropped, unjudged.
                try:
                    parsed[field] = (_parse_reproduce if field == "reproduce" else _parse_diagnostics)(ctx, data, text)
                except Invalid as exc:
                    errors[field] = ctx.t(exc.key, **exc.params)
        if errors:
            return FormErrors(errors)
        parsed["contact_confirmed"] = True
        if not chooses_company(ctx):
            parsed["company"] = ctx.company.name if ctx.company else None
        merged = {**data, **parsed}
        hours = CheckHoursStep().skip(ctx, merged)
        if answer.confirmed and hours.state == "summary":
            finish = _create(ctx, {**merged, **hours.updates})
            return Finish(hours.say, finish.effect, {**parsed, **hours.updates})
        return Goto("check_hours", parsed)

    # ---- after the ticket was created ----------------------------------------------------------------
    def completed(self, ctx: Context, data: Mapping[str, Any], result: Any) -> tuple[Reply, ...]:
        if not isinstance(result, Ticket):
            # What they said went to one of their open tickets (§3b): no new ticket.
            return (Text(ctx.t("existing.added", number=str(result)), Tone.SUCCESS),)
        ticket: Ticket = result
        t = ctx.t
        lines = [t("ticket.created", number=ticket.number)]
        kind = ticket.kind.value
        if ticket.out_of_hours_emergency:
            lines.append(t("ticket.next.emergency", phone=ctx.settings.contact.phone))
        elif kind == TicketKind.SERVICE_REQUEST.value:
            lines.append(t("ticket.next.service_request"))
        elif kind == TicketKind.CHANGE_REQUEST.value:
            lines.append(t("ticket.next.change_request"))
        else:
            lines.append(t("ticket.next.incident"))
        if data.get("ooh") in ("deferred", "declined", "not_named"):
            opening = format_datetime(ctx.calendar.next_office_opening(ctx.now), ctx.lang)
            lines.append(t("ticket.next.office_hours", opening=opening))
        lines.append(t("ticket.keep_number", number=ticket.number))
        replies: list[Reply] = [Text("\n".join(lines), Tone.SUCCESS)]
        return tuple(replies)


def _choice(ctx: Context, value: str, options: tuple[Option, ...]) -> str:
    option = resolve_option(value, options)
    if option is None:
        raise Invalid("validation.choice")
    return option.value

