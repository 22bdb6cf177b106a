"""A pure driver for the dialog engine: a Context built by hand and the state kept in a dict,
as the runner would keep it in the store. No store, no network, no platform SDK."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from bot.domain.calendar import BusinessCalendar
from bot.domain.config import Settings
from bot.dialogs.engine import Answer, Context, DialogEngine, DialogResult
from bot.dialogs.new_ticket import NewTicketDialog
from bot.dialogs.quote import QuoteDialog
from bot.dialogs.tickets import EscalationDialog, TicketInfoDialog
from bot.domain.model import Company, CustomerContact
from bot.domain.quote import QuoteEngine
from bot.protocol.replies import Choices, Confirmation
from bot.protocol.turn import UserIdentity
from cards.text import render_all

BXL = ZoneInfo("Europe/Brussels")
SETTINGS = Settings()

ACME = Company("ACME", support_module=False)
LOTTE = CustomerContact("lotte@acme.be", "Lotte Peeters", "ACME", "+3235551234", "nl", sla_named=True)


def context(now: str = "2026-11-26T10:00", lang: str = "en", contact: CustomerContact | None = LOTTE,
            company: Company | None = ACME, **kw: Any) -> Context:
    return Context(
        settings=SETTINGS,
        lang=lang,
        now=datetime.fromisoformat(now).replace(tzinfo=BXL),
        calendar=BusinessCalendar(SETTINGS.calendar),
        quotes=QuoteEngine.from_settings(SETTINGS),
        user=UserIdentity(id="u1", email=contact.email if contact else None,
                          display_name=contact.name if contact else None, locale=lang),
        contact=contact,
        company=company,
        **kw,
    )


@dataclass
class Driver:
    ctx: Context
    engine: DialogEngine = field(default_factory=lambda: DialogEngine([NewTicketDialog(), QuoteDialog(), EscalationDialog(), TicketInfoDialog()]))
    state: dict | None = None
    last: DialogResult | None = None

    def start(self, dialog: str, **args: Any) -> str:
        self.last = self.engine.start(self.ctx, dialog, args)
        self.state = self.last.state
        return render_all(self.last.replies)

    def say(self, text: str) -> str:
        assert self.state is not None, "no dialog in progress"
        self.last = self.engine.handle(self.ctx, self.state, text, None, Answer(text=text))
        self.state = self.last.state if self.last.effect is None else None
        return render_all(self.last.replies)

    def click(self, value: str) -> str:
        assert self.state is not None
        from bot.dialogs.engine import step_answer

        # A click brings the question's action back as its wire string, as a channel's Turn does.
        action = str(step_answer(self.state))
        self.last = self.engine.handle(self.ctx, self.state, None, action, Answer(text=value))
        self.state = self.last.state if self.last.effect is None else None
        return render_all(self.last.replies)

    def submit(self, dialog: str, confirmed: bool = False, **values: str) -> DialogResult:
        assert self.state is not None
        self.last = self.engine.handle(self.ctx, self.state, None, f"form:{dialog}",
                                       Answer(values=values, is_form=True, confirmed=confirmed))
        if self.last.effect is None:
            self.state = self.last.state
        return self.last

    @property
    def at(self) -> str | None:
        return self.state["state"] if self.state else None

    @property
    def data(self) -> dict:
        return self.state["data"] if self.state else {}

    def options(self) -> list[str]:
        for reply in reversed(self.last.replies):
            if isinstance(reply, Choices):
                return [o.value for o in reply.options]
            if isinstance(reply, Confirmation):
                return [reply.confirm.value] + ([reply.edit.value] if reply.edit else []) + [reply.cancel.value]
        return []
