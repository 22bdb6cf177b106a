"""Pieces several dialogs share: ticket facts, option lists, the desk's contacts."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Mapping

from bot.domain.model import Ticket, TicketKind, Urgency
from bot.domain.config import Settings
from bot.i18n import format_datetime, format_short_date, translate
from bot.protocol.replies import Facts, Option

from bot.dialogs.engine import Context

YES, NO = "yes", "no"


def total_label(settings: Settings, lang: str) -> str:
    """"Total", or "Total (excl. VAT)" only where the settings say the prices exclude VAT (the
    rules page does not say)."""
    return translate(lang, "quote.total_excl_vat" if settings.billing.prices_exclude_vat else "quote.total")


def yes_no(ctx: Context) -> tuple[Option, ...]:
    return (Option(YES, ctx.t("common.yes"), primary=True), Option(NO, ctx.t("common.no")))


def kind_options(ctx: Context, data: Mapping[str, Any] | None = None) -> tuple[Option, ...]:
    return tuple(Option(k.value, ctx.t(f"ticket.kind.{k.value}")) for k in TicketKind)


def urgency_options(ctx: Context, data: Mapping[str, Any] | None = None) -> tuple[Option, ...]:
    return tuple(Option(u.value, ctx.t(f"ticket.urgency.{u.value}")) for u in Urgency)


def ticket_facts(ctx: Context, ticket: Ticket, full: bool = True) -> Facts:
    t = ctx.t
    tz = ctx.calendar.tz
    rows: list[tuple[str, str]] = [
        (t("ticket.field.kind"), t(f"ticket.kind.{ticket.kind.value}")),
        (t("ticket.field.status"), t(f"ticket.status.{ticket.status.value}")),
        (t("ticket.field.requester"), f"{ticket.requester_name} <{ticket.requester_email}>"),
    ]
    if ticket.company:
        rows.append((t("ticket.field.company"), ticket.company))
    rows.append((t("ticket.field.module"), ticket.module))
    rows.append((t("ticket.field.description"), ticket.description))
    if full:
        if ticket.reproduce:
            rows.append((t("ticket.field.reproduce"), ticket.reproduce))
        if ticket.diagnostics:
            rows.append((t("ticket.field.diagnostics"), ticket.diagnostics))
        rows.append((t("ticket.field.urgency"), t(f"ticket.urgency.{ticket.urgency.value}")))
        rows.append((t("ticket.field.created"), format_datetime(ticket.created_at.astimezone(tz), ctx.lang)))
        if ticket.solution_date:
            rows.append((t("ticket.field.solution_date"), format_short_date(ticket.solution_date, ctx.lang)))
        if ticket.release_date:
            rows.append((t("ticket.field.release_date"), format_short_date(ticket.release_date, ctx.lang)))
        if ticket.out_of_hours_emergency:
            rows.append((t("ticket.field.emergency"), t("common.yes")))
        if ctx.staff is not None:
            # How it reached the desk, and who registered it for the customer (issue 15 §3).
            by = f" ({ticket.created_by})" if ticket.created_by and ticket.created_by != ticket.requester_email else ""
            rows.append((t("intake.shown"), t(f"intake.channel.{ticket.intake.value}") + by))
            if ctx.mentioned is not None and ctx.mentioned.number == ticket.number:
                rows.extend(_comment_rows(ctx))
    return Facts(tuple(rows), title=f"{ticket.number}")


def ticket_option(ctx: Context, ticket: Ticket) -> Option:
    summary = ticket.description.splitlines()[0]
    if len(summary) > 40:
        summary = summary[:39] + "…"
    return Option(ticket.number, f"{ticket.number} — {summary}")


def contacts_facts(ctx: Context) -> Facts:
    s = ctx.settings
    cal = s.calendar
    days = ", ".join(ctx.t(f"weekday.{d}") for d in cal.office_days)
    return Facts(
        (
            (ctx.t("contacts.email"), s.contact.email),
            (ctx.t("contacts.phone"), s.contact.phone),
            (ctx.t("contacts.office_hours"),
             ctx.t("contacts.office_hours_value", days=days, start=cal.office_start.strftime("%H:%M"),
                   end=cal.office_end.strftime("%H:%M"), timezone=cal.timezone)),
        ),
        title=ctx.t("contacts.title"),
    )


# The newest comments an agent's view of a ticket shows (issue 16 builds the full agent view).
SHOWN_COMMENTS = 10


def _comment_rows(ctx: Context) -> list[tuple[str, str]]:
    rows = []
    for c in list(ctx.mentioned_comments)[-SHOWN_COMMENTS:]:
        when = c.get("created_at")
        shown = format_datetime(when.astimezone(ctx.calendar.tz), ctx.lang) if isinstance(when, datetime) else ""
        label = ctx.t("existing.comment_row", when=shown, author=c.get("author") or "—")
        if c.get("internal"):
            label += " " + ctx.t("existing.internal")
        rows.append((label, str(c.get("text") or "")))
    return rows
