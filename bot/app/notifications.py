"""Messages the bot sends on its own initiative (escalation pings, ticket updates), rendered in
the recipient's language when they are delivered. The outbox payload carries everything the
message needs, so rendering reads no database."""

from __future__ import annotations

from datetime import date
from typing import Any, Mapping

from bot.domain.config import Settings
from bot.i18n import format_short_date, translate
from bot.protocol.ids import ESCALATION, EscalationChoice, EscalationVerb
from bot.protocol.replies import Choices, Facts, Option, Reply, Response, Text, Tone
from bot.protocol.stored import response_from_json

ESCALATION_PING = "escalation_ping"
ESCALATION_TAKEN = "escalation_taken"
ESCALATION_HANDLED = "escalation_handled"
TICKET_UPDATE = "ticket_update"
# A ticket the service desk registered for the requester (issue 15 §3): its number.
TICKET_REGISTERED = "ticket_registered"
# An accepted out-of-hours emergency (rules page §1): the page to the person on duty (then the
# backup, then the level-1 manager), the word to the others that someone took it, and the word
# to the requester.
PAGE = "oncall_page"
PAGE_TAKEN = "oncall_taken"
PAGE_HANDLED = "oncall_handled"
# A turn's answer, kept until it is posted (`bot.app.outbox.durable_reply`): already rendered
# in the person's language, posted where the channel said (`payload["to"]`).
REPLY = "reply"


def render(kind: str, payload: Mapping[str, Any], lang: str, settings: Settings) -> Response:
    def t(key: str, **params: Any) -> str:
        return translate(lang, key, **params)

    replies: tuple[Reply, ...]
    if kind == REPLY:
        return response_from_json(payload["response"])
    if kind == ESCALATION_PING:
        number = payload["ticket"]
        title_key = "notify.escalation.repeat" if payload.get("repeat") else "notify.escalation.title"
        facts = Facts(
            (
                (t("ticket.field.company"), payload.get("company") or "—"),
                (t("ticket.field.requester"), payload.get("requester") or "—"),
                (t("ticket.field.description"), payload.get("summary") or "—"),
                (t("escalation.field.reason"), t(f"escalation.reason.{payload['reason']}")),
                (t("escalation.field.comment"), payload.get("comment") or "—"),
            ),
            title=number,
        )
        buttons = Choices(
            t("notify.escalation.question"),
            (
                Option(str(EscalationChoice(EscalationVerb.ACKNOWLEDGE, number)), t("notify.escalation.acknowledge"),
                       primary=True),
                Option(str(EscalationChoice(EscalationVerb.VIEW, number)), t("notify.escalation.view")),
            ),
            ESCALATION,
        )
        replies = (Text(t(title_key, number=number, level=payload["level"]), Tone.WARNING), facts, buttons)
    elif kind == PAGE:
        number = payload["ticket"]
        basis = t(f"notify.page.basis.{payload.get('basis') or 'default'}")
        surcharge = t("notify.page.surcharge", percent=payload.get("percent") or "—", basis=basis)
        if payload.get("fee_warning"):
            surcharge += " " + t("notify.page.fee_warning")
        facts = Facts(
            (
                (t("ticket.field.company"), payload.get("company") or "—"),
                (t("ticket.field.requester"), payload.get("requester") or "—"),
                (t("ticket.field.phone"), payload.get("phone") or "—"),
                (t("ticket.field.module"), payload.get("module") or "—"),
                (t("ticket.field.description"), payload.get("summary") or "—"),
                (t("notify.page.accepted"), surcharge),
            ),
            title=number,
        )
        buttons = Choices(
            t("notify.page.question", number=number),
            (
                Option(str(EscalationChoice(EscalationVerb.ACKNOWLEDGE, number)), t("notify.escalation.acknowledge"),
                       primary=True),
                Option(str(EscalationChoice(EscalationVerb.VIEW, number)), t("notify.escalation.view")),
            ),
            ESCALATION,
        )
        title = t(f"notify.page.title.{payload.get('role') or 'on_duty'}", number=number)
        if payload.get("repeat"):
            title = t("notify.page.repeat", number=number) + " " + title
        replies = (Text(title, Tone.WARNING), facts, buttons)
    elif kind == PAGE_TAKEN:
        replies = (Text(t("notify.page.taken", number=payload["ticket"], name=payload["by_name"])),)
    elif kind == PAGE_HANDLED:
        replies = (Text(t("notify.page.handled", number=payload["ticket"], name=payload["by_name"],
                          phone=payload.get("by_phone") or ""), Tone.SUCCESS),)
    elif kind == ESCALATION_TAKEN:
        replies = (Text(t("notify.escalation.taken", number=payload["ticket"], name=payload["by_name"])),)
    elif kind == ESCALATION_HANDLED:
        replies = (
            Text(
                t("notify.escalation.handled", number=payload["ticket"], name=payload["by_name"],
                  # A manager whose level the settings do not name has no role there: say their level.
                  role=payload.get("by_role") or t("notify.manager.level", level=payload.get("by_level") or 1),
                  email=payload.get("by_email") or ""),
                Tone.SUCCESS,
            ),
        )
    elif kind == TICKET_REGISTERED:
        replies = (Text(t("intake.notice", number=payload["ticket"], kind=t(f"ticket.kind.{payload['kind']}"),
                          intake=t(f"intake.by.{payload['intake']}"), summary=payload.get("summary") or "—"),
                        Tone.SUCCESS),)
    elif kind == TICKET_UPDATE:
        replies = (Text(_ticket_update(payload, lang, t)),)
    else:
        raise ValueError(f"unknown outbox message kind {kind!r}")
    return Response(replies, lang)


def _ticket_update(payload: Mapping[str, Any], lang: str, t) -> str:
    number = payload["ticket"]
    event = payload["event"]
    if event == "solution_date":
        return t("notify.ticket.solution_date", number=number,
                 date=format_short_date(date.fromisoformat(payload["date"]), lang))
    if event == "release_date":
        return t("notify.ticket.release_date", number=number,
                 date=format_short_date(date.fromisoformat(payload["date"]), lang))
    status = payload["status"]
    return t("notify.ticket.status", number=number, status=t(f"ticket.status.{status}"))
