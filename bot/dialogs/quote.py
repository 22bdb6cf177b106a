"""The rate-quote dialog: service, date, start time, duration (participants for TeamViewer)."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from typing import Any, Mapping

from bot.i18n import format_date, format_duration, format_money, format_number, format_rate
from bot.protocol.ids import Action
from bot.protocol.replies import Facts, FieldKind, Form, FormField, Option, Reply, Text
from bot.domain.quote import Quote, QuoteError
from bot.domain.validation import Invalid

from bot.dialogs.common import total_label
from bot.dialogs.engine import Answer, ChoiceStep, Context, Dialog, Finish, FormErrors, Goto, Outcome, Step, TextStep
from bot.domain.parsing import combine_local, parse_date, parse_duration, parse_int, parse_time, parse_time_on

NAME = "quote"


def service_options(ctx: Context, data: Mapping[str, Any] | None = None) -> tuple[Option, ...]:
    return tuple(
        Option(s.key, f"{s.name(ctx.lang)} — {format_rate(s.rate, ctx.lang, ctx.settings.currency)}")
        for s in ctx.settings.services
    )


def _max_participants(ctx: Context, data: Mapping[str, Any]) -> int | None:
    service = ctx.settings.service(data.get("service", ""))
    return service.max_participants if service else None


def _after_duration(ctx: Context, data: Mapping[str, Any]) -> str:
    return "participants" if _max_participants(ctx, data) else "result"


def _parse_date(ctx: Context, data: Mapping[str, Any], text: str) -> str:
    return parse_date(text, ctx.now.date()).isoformat()


def _parse_time(ctx: Context, data: Mapping[str, Any], text: str) -> str:
    """The start time, checked against the day asked before it: a time the clocks skip or
    repeat that night is explained and asked again. Kept with its offset only when it needs
    one (the autumn repeat)."""
    if not data.get("date"):
        return parse_time(text).strftime("%H:%M")
    moment = parse_time_on(date.fromisoformat(data["date"]), text, ctx.calendar.tz)
    naive = moment.replace(tzinfo=None)
    repeated = naive.replace(tzinfo=ctx.calendar.tz, fold=1).utcoffset() != naive.replace(
        tzinfo=ctx.calendar.tz, fold=0).utcoffset()
    return moment.isoformat(timespec="minutes")[11:] if repeated else f"{moment:%H:%M}"


def _parse_duration(ctx: Context, data: Mapping[str, Any], text: str) -> int:
    return int(parse_duration(text).total_seconds() // 60)


def _parse_participants(ctx: Context, data: Mapping[str, Any], text: str) -> int:
    maximum = _max_participants(ctx, data) or 1
    number = parse_int(text, 1, PARTICIPANTS_ASKED)
    if number > maximum:
        # Not "a number from 1 to 3": the rate card's limit is the reason, and it is said.
        service = ctx.settings.service(data.get("service", ""))
        raise Invalid("quote.error.too_many_participants",
                      {"max": maximum, "service": service.name(ctx.lang) if service else ""})
    return number


# The largest number the participants question reads before the rate card's limit is applied.
PARTICIPANTS_ASKED = 999


def compute(ctx: Context, data: Mapping[str, Any]) -> Quote:
    start = combine_local(date.fromisoformat(data["date"]), time.fromisoformat(data["time"]), ctx.calendar.tz)
    end = start + timedelta(minutes=int(data["minutes"]))
    overrides = ctx.company.multiplier_overrides if ctx.company else None
    return ctx.quotes.quote(data["service"], start, end, int(data.get("participants") or 1), overrides)


def _minutes(start: datetime, end: datetime) -> int:
    return int((end - start).total_seconds() // 60)


def quote_replies(ctx: Context, quote: Quote) -> tuple[Reply, ...]:
    lang, currency = ctx.lang, quote.currency
    tz = ctx.calendar.tz
    rows = []
    for line in quote.lines:
        start, end = line.start.astimezone(tz), line.end.astimezone(tz)
        when = f"{format_date(start.date(), lang)} {start:%H:%M}–{end:%H:%M}"
        if end.date() != start.date():
            when = f"{format_date(start.date(), lang)} {start:%H:%M} → {format_date(end.date(), lang)} {end:%H:%M}"
        periods = ", ".join(ctx.t(f"period.{p.value}") for p in sorted(line.periods, key=lambda p: p.value))
        rows.append(
            (
                when,
                ctx.t(
                    "quote.line",
                    duration=format_duration(_minutes(line.start, line.end), lang),
                    rate=format_rate(quote.service.rate, lang, currency),
                    percent=format_number(line.multiplier * 100, lang),
                    period=periods,
                    amount=format_money(line.amount, lang, currency),
                ),
            )
        )
    rows.append((total_label(ctx.settings, lang), format_money(quote.total, lang, currency)))
    title = ctx.t("quote.title", service=quote.service.name(lang), rate=format_rate(quote.service.rate, lang, currency))
    notes = [ctx.t("quote.note")]
    if ctx.company and ctx.company.multiplier_overrides:
        notes.append(ctx.t("quote.note_sla", company=ctx.company.name))
    return (Facts(tuple(rows), title=title), Text("\n".join(notes)))


def _result(ctx: Context, data: Mapping[str, Any]) -> Outcome:
    try:
        quote = compute(ctx, data)
    except (QuoteError, Invalid) as exc:
        return Finish((Text(ctx.t(exc.key, **exc.params)),))
    return Finish(quote_replies(ctx, quote))


class QuoteDialog(Dialog):
    name = NAME

    def __init__(self) -> None:
        self.steps = {
            "service": ChoiceStep("service", "quote.ask.service", service_options, "date", help_key="help.quote"),
            "date": TextStep("date", "quote.ask.date", _parse_date, "time", help_key="help.date"),
            "time": TextStep("time", "quote.ask.time", _parse_time, "duration", help_key="help.time"),
            "duration": TextStep("minutes", "quote.ask.duration", _parse_duration, _after_duration,
                                 help_key="help.duration"),
            "participants": TextStep("participants", "quote.ask.participants", _parse_participants, "result",
                                     prompt_params=lambda ctx, data: {"max": _max_participants(ctx, data)}),
            "result": _Result(),
        }

    def start(self, ctx: Context, args: Mapping[str, Any]) -> Outcome:
        data = {}
        if args.get("service") and ctx.settings.service(args["service"]):
            data["service"] = args["service"]
            return Goto("date", data, remember=False)
        return Goto("service", data, remember=False)

    def form(self, ctx: Context, data: Mapping[str, Any]) -> Form:
        return Form(
            NAME,
            ctx.t("quote.form.title"),
            (
                FormField("service", ctx.t("quote.field.service"), FieldKind.SINGLE_CHOICE,
                          value=data.get("service"), options=service_options(ctx)),
                FormField("date", ctx.t("quote.field.date"), FieldKind.DATE, value=data.get("date")),
                FormField("time", ctx.t("quote.field.time"), FieldKind.TIME, value=data.get("time")),
                FormField("duration", ctx.t("quote.field.duration"), FieldKind.SHORT_TEXT,
                          value=data.get("duration"), hint=ctx.t("quote.hint.duration")),
                FormField("participants", ctx.t("quote.field.participants"), FieldKind.NUMBER, required=False,
                          value=str(data.get("participants") or 1)),
            ),
            ctx.t("quote.form.submit"),
            ctx.t("quote.form.cancel"),
        )

    def submit_form(self, ctx: Context, data: Mapping[str, Any], answer: Answer) -> Outcome:
        values = {k: (v or "").strip() for k, v in answer.values.items()}
        parsed: dict[str, Any] = {}
        errors: dict[str, str] = {}
        option_values = {o.value for o in service_options(ctx)}
        if values.get("service") not in option_values:
            errors["service"] = ctx.t("validation.choice")
        else:
            parsed["service"] = values["service"]
        for field, key, parse in (
            ("date", "date", _parse_date),
            ("time", "time", _parse_time),
            ("duration", "minutes", _parse_duration),
        ):
            try:
                parsed[key] = parse(ctx, parsed, values.get(field, ""))
            except Invalid as exc:
                errors[field] = ctx.t(exc.key, **exc.params)
        if "service" in parsed and values.get("participants"):
            try:
                parsed["participants"] = _parse_participants(ctx, parsed, values["participants"])
            except Invalid as exc:
                errors["participants"] = ctx.t(exc.key, **exc.params)
        if errors:
            return FormErrors(errors)
        return _result(ctx, parsed)


class _Result(Step):
    """Never asked: reaching it computes the quote and finishes the dialog."""

    def prompt(self, ctx: Context, data: Mapping[str, Any], action: Action) -> tuple[Reply, ...]:
        return ()

    def accept(self, ctx: Context, data: Mapping[str, Any], answer: Answer) -> Outcome:
        return _result(ctx, data)

    def skip(self, ctx: Context, data: Mapping[str, Any]) -> Outcome:
        return _result(ctx, data)
