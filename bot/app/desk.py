"""The service desk's operations, shared by every channel and the command line."""

from __future__ import annotations

from datetime import datetime

from bot.domain import validation
from bot.domain.calendar import BusinessCalendar
from bot.domain.clock import Clock, SystemClock
from bot.domain.config import Settings
from bot.domain.model import NewTicket, Ticket, TicketKind, Urgency
from bot.domain.quote import Quote, QuoteEngine, QuoteError
from bot.store.ports import Store
from bot.domain.validation import Invalid


class Desk:
    def __init__(self, settings: Settings, store: Store, clock: Clock | None = None):
        self.settings = settings
        self.store = store
        self.clock = clock or SystemClock()
        self.calendar = BusinessCalendar(settings.calendar)
        self.quotes = QuoteEngine(self.calendar, settings.multipliers, settings.services, settings.currency)

    def now(self) -> datetime:
        return self.clock.now()

    def local_now(self) -> datetime:
        return self.clock.now().astimezone(self.calendar.tz)

    # ---- quotes ---------------------------------------------------------------------------------
    async def quote(
        self,
        service: str,
        start: datetime,
        end: datetime,
        participants: int = 1,
        customer: str | None = None,
    ) -> Quote:
        overrides = None
        if customer:
            company = await self.store.get_company(customer)
            if company is None:
                raise QuoteError("quote.error.unknown_customer", customer=customer)
            overrides = company.multiplier_overrides
        return self.quotes.quote(service, start, end, participants, overrides)

    # ---- tickets --------------------------------------------------------------------------------
    async def register_ticket(
        self,
        *,
        kind: str,
        requester_email: str,
        module: str,
        description: str,
        reproduce: str | None = None,
        diagnostics: str | None = None,
        urgency: str = "normal",
        channel: str = "console",
        created_by: str | None = None,
        requester_phone: str | None = None,
        out_of_hours_emergency: bool = False,
        idempotency_key: str | None = None,
    ) -> Ticket:
        """Register a ticket for a known customer contact (an agent transcribing a mail or a call,
        or the end of a chat dialog). Raises Invalid naming the field at fault."""
        try:
            ticket_kind = TicketKind(kind)
        except ValueError:
            raise Invalid("validation.ticket_kind", {"field": "kind", "value": kind}) from None
        try:
            ticket_urgency = Urgency(urgency)
        except ValueError:
            raise Invalid("validation.urgency", {"field": "urgency", "value": urgency}) from None
        contact = await self.store.find_contact(requester_email.strip())
        if contact is None:
            raise Invalid("validation.unknown_requester", {"field": "requester", "email": requester_email})
        fields = {}
        for name, value, check in (
            ("module", module, validation.short_text),
            ("description", description, validation.long_text),
        ):
            try:
                fields[name] = check(value or "")
            except Invalid as exc:
                raise Invalid(exc.key, {**exc.params, "field": name}) from None
        new = NewTicket(
            kind=ticket_kind,
            requester_email=contact.email,
            requester_name=contact.name,
            requester_phone=requester_phone or contact.phone,
            company=contact.company,
            module=fields["module"],
            description=fields["description"],
            reproduce=validation.long_text(reproduce or "", required=False),
            diagnostics=validation.long_text(diagnostics or "", required=False),
            urgency=ticket_urgency,
            channel=channel,
            out_of_hours_emergency=out_of_hours_emergency,
            created_by=created_by,
        )
        return await self.store.create_ticket(
            new, self.now(), self.settings.tickets.number_format, idempotency_key=idempotency_key
        )
