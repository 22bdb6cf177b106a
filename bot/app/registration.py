"""Tickets the service desk registers for a customer (rules page §4.1, issue 15 §3): a request
that came by mail, by phone, in person or through the portal, typed in by an agent from the
chat (`register`) or the command line (`caredesk tickets create --intake … --by …`).

One path for both, with the chat's own checks of every field (bot/domain/validation.py):
the agent must be service desk staff, the requester a contact of the directory; the ticket
records its intake and who registered it; the requester is told its number through the outbox,
in their language, on the channel they last used or, when no channel can push it to them, the
next time they use CareDesk ("While you were away"); the agent is told which (bot/app/reach.py),
so that a number that cannot wait reaches them another way."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping

from bot.app.desk import Desk
from bot.app.notifications import TICKET_REGISTERED
from bot.app.reach import How, Reach, reach_of
from bot.domain import validation
from bot.domain.model import STAFF_INTAKES, Intake, NewTicket, Ticket, TicketKind, Urgency
from bot.domain.validation import Invalid
from bot.store.ports import NewOutboxMessage


@dataclass(frozen=True)
class Registered:
    ticket: Ticket
    # The channel the requester is told the number on, or None: no channel can push it to them.
    told_on: str | None
    # How the number reaches them (pushed, kept for their next visit, or not at all).
    reach: Reach


def check_intake(value: str) -> Intake:
    try:
        intake = Intake(str(value).strip().lower().replace("-", "_").replace(" ", "_"))
    except ValueError:
        intake = None
    if intake not in STAFF_INTAKES:
        raise Invalid("intake.invalid", {"field": "intake", "value": value,
                                         "allowed": ", ".join(i.value for i in STAFF_INTAKES)})
    return intake


def check_fields(values: Mapping[str, Any], min_words: int, min_chars: int) -> dict[str, Any]:
    """Every field as the chat checks it; Invalid names the first field at fault ("field")."""
    out: dict[str, Any] = {}

    def each(name: str, check: Any) -> None:
        try:
            out[name] = check(str(values.get(name) or ""))
        except Invalid as exc:
            raise Invalid(exc.key, {**exc.params, "field": name}) from None

    def kind(v: str) -> str:
        try:
            return TicketKind(v.strip().lower()).value
        except ValueError:
            raise Invalid("validation.ticket_kind", {"value": v}) from None

    def urgency(v: str) -> str:
        try:
            return Urgency((v or "normal").strip().lower()).value
        except ValueError:
            raise Invalid("validation.urgency", {"value": v}) from None

    each("kind", kind)
    each("module", validation.module)
    each("description", lambda v: validation.description(v, min_words=min_words, min_chars=min_chars))
    incident = out["kind"] == TicketKind.INCIDENT.value
    for name, key in (("reproduce", "validation.reproduce_unhelpful"),
                      ("diagnostics", "validation.diagnostics_unhelpful")):
        text = str(values.get(name) or "").strip()
        if incident and not text:
            raise Invalid("validation.required_for_incident", {"field": name})
        if incident:
            each(name, lambda v, k=key: validation.helpful_answer(v, k))
        else:
            # Only an incident has these answers (as in the chat): on another kind, dropped.
            out[name] = None
    each("urgency", urgency)
    return out


async def register_for_customer(desk: Desk, *, intake: str, by: str, requester: str, values: Mapping[str, Any],
                                idempotency_key: str | None = None) -> Registered:
    how = check_intake(intake)
    staff = await desk.store.find_staff(by.strip()) if by and by.strip() else None
    if staff is None:
        raise Invalid("intake.by_not_staff", {"field": "by", "email": by or ""})
    contact = await desk.store.find_contact(requester.strip()) if requester and requester.strip() else None
    if contact is None:
        raise Invalid("validation.unknown_requester", {"field": "requester", "email": requester or ""})
    ts = desk.settings.tickets
    fields = check_fields(values, ts.min_description_words, ts.min_description_chars)
    # The channel the requester used last (references are kept newest first): where they are
    # told the number now, and told of the ticket's changes later.
    reach = await reach_of(desk.store, contact.email)
    channel = reach.channel if reach.how is How.PUSHED else None
    new = NewTicket(
        kind=TicketKind(fields["kind"]), requester_email=contact.email, requester_name=contact.name,
        requester_phone=contact.phone, company=contact.company, module=fields["module"],
        description=fields["description"], reproduce=fields["reproduce"], diagnostics=fields["diagnostics"],
        urgency=Urgency(fields["urgency"]), channel=channel or how.value, created_by=staff.email, intake=how,
    )
    now = desk.now()
    ticket = await desk.store.create_ticket(new, now, ts.number_format, idempotency_key=idempotency_key)
    if reach.how is not How.NONE:
        # Keyed by the ticket: a retried registration (same idempotency key, same ticket) tells
        # the requester once (pushed, or kept for their next visit).
        await desk.store.enqueue([NewOutboxMessage(
            idempotency_key=f"ticket:{ticket.number}:registered", recipient=contact.email, kind=TICKET_REGISTERED,
            payload={"ticket": ticket.number, "kind": ticket.kind.value, "intake": how.value,
                     "summary": ticket.description.splitlines()[0][:140], "channel": ticket.channel},
        )], now)
    return Registered(ticket, channel, reach)
