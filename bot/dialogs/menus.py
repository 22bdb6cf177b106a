"""One-shot answers: the menu, help, contacts and the rate card."""

from __future__ import annotations

from bot.i18n import format_money
from bot.domain.model import StaffRole
from bot.domain.money import percent
from bot.protocol.ids import MENU
from bot.protocol.replies import Choices, Facts, Option, Reply, Text

from bot.dialogs.common import contacts_facts
from bot.dialogs.engine import Context, resolve_option

MENU_ITEMS = ("new_ticket", "my_tickets", "quote", "escalate", "contacts")


def menu(ctx: Context) -> tuple[Reply, ...]:
    options = tuple(Option(item, ctx.t(f"menu.{item}"), primary=item == "new_ticket") for item in MENU_ITEMS)
    return (Choices(ctx.t("menu.prompt"), options, MENU),)


def menu_choice(ctx: Context, text: str | None) -> str | None:
    """The menu item a typed answer names: its number in the menu as shown, or its label."""
    options = menu(ctx)[0]
    assert isinstance(options, Choices)
    option = resolve_option(text or "", options.options)
    return option.value if option else None


def help_replies(ctx: Context) -> tuple[Reply, ...]:
    """What the person can do: staff get their own commands (with examples, in their language)
    before the customer's menu, which they may use as well."""
    if ctx.staff is not None:
        key = "help.staff.manager" if ctx.staff.role is StaffRole.MANAGER else "help.staff.agent"
        return (Text(ctx.t(key)),) + menu(ctx)
    return (Text(ctx.t("help.overview")),) + menu(ctx)


def contacts_replies(ctx: Context) -> tuple[Reply, ...]:
    s = ctx.settings
    m = s.multipliers.with_overrides(ctx.company.multiplier_overrides if ctx.company else None)
    rates = Facts(
        tuple(
            (service.name(ctx.lang),
             ctx.t("contacts.rate_value", rate=format_money(service.rate, ctx.lang, s.currency))
             + (" " + ctx.t("contacts.max_participants", max=service.max_participants) if service.max_participants else ""))
            for service in s.services
        ),
        title=ctx.t("contacts.rates_title"),
    )
    surcharges = Text(
        ctx.t(
            "contacts.surcharges",
            outside=percent(m.outside_office_hours),
            saturday=percent(m.saturday),
            sunday=percent(m.sunday),
            holiday=percent(m.public_holiday),
        )
        + ("\n" + ctx.t("contacts.sla_note", company=ctx.company.name) if ctx.company and ctx.company.multiplier_overrides else "")
    )
    emergency = Text(ctx.t("contacts.emergency_rules"))
    escalation = Facts(
        tuple((f"{lvl.level}. {lvl.role}", f"{lvl.name} — {lvl.email} — {lvl.phone}") for lvl in s.escalation.levels),
        title=ctx.t("contacts.escalation_title"),
    )
    return (contacts_facts(ctx), rates, surcharges, emergency, escalation)
