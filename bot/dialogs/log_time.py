"""The time-logging dialog (agents): asked question by question in a chat, or as one form
(a Slack modal, a Teams card) when `logtime` is typed without arguments."""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any, Mapping

from bot.dialogs.common import total_label
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
    Step,
    TextStep,
)
from bot.domain.parsing import parse_date, parse_duration, parse_time_on
from bot.i18n import format_date, format_duration, format_money, format_number, format_rate
from bot.protocol.ids import Action
from bot.protocol.replies import Facts, FieldKind, Form, FormField, Option, Reply, Text, Tone
from bot.domain.time_entries import ensure_worked, parse_start
from bot.domain.validation import Invalid, clean_text

NAME = "logtime"
MAX_NOTE = 1000


def _services(ctx: Context, data: Mapping[str, Any] | None = None) -> tuple[Option, ...]:
    return tuple(Option(s.key, s.key) for s in ctx.settings.services)


def _parse_number(ctx: Context, data: Mapping[str, Any], text: str) -> str:
    from bot.dialogs.intents import ticket_number_pattern

    value = clean_text(text).upper()
    if not ticket_number_pattern(ctx.settings.tickets.number_format).fullmatch(value):
        raise Invalid("logtime.error.number", {"number": value})
    return value


def _parse_duration(ctx: Context, data: Mapping[str, Any], text: str) -> int:
    return int(parse_duration(text).total_seconds() // 60)


def _parse_when(ctx: Context, data: Mapping[str, Any], text: str) -> str | None:
    start, rest = parse_start(clean_text(text).split(), ctx.now)
    if start is None:
        # A date and time without "at": "2026-11-27 16:00", "27/11 16:00".
        words = clean_text(text).split()
        if len(words) != 2:
            raise Invalid("logtime.error.when")
        start = parse_time_on(parse_date(words[0], ctx.now.date()), words[1], ctx.calendar.tz)
    elif rest:
        raise Invalid("logtime.error.when")
    ensure_worked(start, timedelta(minutes=int(data.get("minutes") or 0)), ctx.now)
    return start.isoformat()


def _parse_note(ctx: Context, data: Mapping[str, Any], text: str) -> str:
    return clean_text(text)[:MAX_NOTE]


def _finish(ctx: Context, data: Mapping[str, Any]) -> Outcome:
    minutes = int(data["minutes"])
    start = data.get("start") or (ctx.now - timedelta(minutes=minutes)).isoformat()
    return Finish(effect=Effect(EffectKind.LOG_TIME, {
        "ticket": data["ticket"], "minutes": minutes, "service": data["service"], "start": start,
        "note": data.get("note"),
    }))


class _Done(Step):
    def prompt(self, ctx: Context, data: Mapping[str, Any], action: Action) -> tuple[Reply, ...]:
        return ()

    def accept(self, ctx: Context, data: Mapping[str, Any], answer: Answer) -> Outcome:
        return _finish(ctx, data)

    def skip(self, ctx: Context, data: Mapping[str, Any]) -> Outcome:
        return _finish(ctx, data)


class LogTimeDialog(Dialog):
    name = NAME

    def __init__(self) -> None:
        self.steps = {
            "ticket": TextStep("ticket", "logtime.ask.ticket", _parse_number, "duration"),
            "duration": TextStep("minutes", "logtime.ask.duration", _parse_duration, "service", help_key="help.duration"),
            "service": ChoiceStep("service", "logtime.ask.service", _services, "when"),
            "when": TextStep("start", "logtime.ask.when", _parse_when, "note", required=False),
            "note": TextStep("note", "logtime.ask.note", _parse_note, "done", required=False),
            "done": _Done(),
        }

    def start(self, ctx: Context, args: Mapping[str, Any]) -> Outcome:
        data = {"ticket": args["ticket"]} if args.get("ticket") else {}
        return Goto("duration" if data else "ticket", data, remember=False)

    def form(self, ctx: Context, data: Mapping[str, Any]) -> Form:
        return Form(
            NAME,
            ctx.t("logtime.form.title"),
            (
                FormField("ticket", ctx.t("logtime.field.ticket"), FieldKind.SHORT_TEXT, value=data.get("ticket")),
                FormField("duration", ctx.t("logtime.field.duration"), FieldKind.SHORT_TEXT,
                          hint=ctx.t("quote.hint.duration")),
                FormField("service", ctx.t("logtime.field.service"), FieldKind.SINGLE_CHOICE, options=_services(ctx)),
                FormField("date", ctx.t("logtime.field.date"), FieldKind.DATE, required=False,
                          value=ctx.now.date().isoformat()),
                FormField("time", ctx.t("logtime.field.time"), FieldKind.TIME, required=False,
                          hint=ctx.t("logtime.hint.time")),
                FormField("note", ctx.t("logtime.field.note"), FieldKind.LONG_TEXT, required=False,
                          max_length=MAX_NOTE),
            ),
            ctx.t("logtime.form.submit"),
            ctx.t("logtime.form.cancel"),
        )

    def completed(self, ctx: Context, data: Mapping[str, Any], result: Any) -> tuple[Reply, ...]:
        return entry_replies(ctx, result)

    def submit_form(self, ctx: Context, data: Mapping[str, Any], answer: Answer) -> Outcome:
        values = {k: (v or "").strip() for k, v in answer.values.items()}
        parsed: dict[str, Any] = {}
        errors: dict[str, str] = {}
        for field, key, parse in (("ticket", "ticket", _parse_number), ("duration", "minutes", _parse_duration)):
            try:
                parsed[key] = parse(ctx, data, values.get(field, ""))
            except Invalid as exc:
                errors[field] = ctx.t(exc.key, **exc.params)
        if values.get("service") not in {o.value for o in _services(ctx)}:
            errors["service"] = ctx.t("validation.choice")
        else:
            parsed["service"] = values["service"]
        if values.get("time"):
            try:
                day = parse_date(values["date"], ctx.now.date()) if values.get("date") else ctx.now.date()
                start = parse_time_on(day, values["time"], ctx.calendar.tz)
                ensure_worked(start, timedelta(minutes=parsed.get("minutes", 0)), ctx.now)
                parsed["start"] = start.isoformat()
            except Invalid as exc:
                errors["time"] = ctx.t(exc.key, **exc.params)
        if values.get("note"):
            parsed["note"] = _parse_note(ctx, data, values["note"])
        if errors:
            return FormErrors(errors)
        return _finish(ctx, parsed)


def entry_replies(ctx: Context, entry: Any, title_key: str = "logtime.logged") -> tuple[Reply, ...]:
    """What an agent is shown for one priced entry: the multiplier lines and the amount."""
    lang, tz = ctx.lang, ctx.calendar.tz
    rows = []
    for line in entry.lines:
        start = datetime.fromisoformat(line["start"]).astimezone(tz)
        end = datetime.fromisoformat(line["end"]).astimezone(tz)
        rows.append((
            f"{format_date(start.date(), lang)} {start:%H:%M}–{end:%H:%M}",
            ctx.t("logtime.line", duration=format_duration(int((end - start).total_seconds() // 60), lang),
                  rate=format_rate(Decimal(line["rate"]), lang, entry.currency),
                  percent=format_number(Decimal(line["multiplier"]) * 100, lang),
                  amount=format_money(Decimal(line["amount"]), lang, entry.currency)),
        ))
    rows.append((total_label(ctx.settings, lang), format_money(entry.amount, lang, entry.currency)))
    title = ctx.t(title_key, id=entry.id, number=entry.ticket_number, service=entry.service)
    replies: list[Reply] = [Text(title, Tone.SUCCESS), Facts(tuple(rows))]
    if entry.note:
        replies.append(Text(ctx.t("logtime.note", note=entry.note)))
    return tuple(replies)
