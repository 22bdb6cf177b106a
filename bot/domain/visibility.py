"""Who may see and act on which ticket (issue 15 §4): one policy for every place a ticket is
shown or acted on (the list, a typed number, a ticket's view and its buttons, escalation,
information added).

- Service desk staff (agents, managers) see every ticket.
- A customer contact named in their company's SLA speaks for the company: they see every ticket
  of their company (the same people the rules page lets call the desk out of hours).
- Any other customer contact sees the tickets they are the requester of.
- A person the directory does not know sees no ticket at all: they can open a first contact (a
  new ticket, whose number they are told), and nothing else, since the platform proves only an
  address, not that it belongs to the requester the desk knows.
"""

from __future__ import annotations

import enum

from bot.domain.model import CustomerContact, EscalationReason, StaffMember, Ticket, TicketKind, TicketStatus


class Scope(str, enum.Enum):
    ALL = "all"          # staff
    COMPANY = "company"  # a contact named in the SLA: the company's tickets
    OWN = "own"          # any other contact: the tickets they requested
    NONE = "none"        # not in the directory


def scope_of(contact: CustomerContact | None, staff: StaffMember | None) -> Scope:
    if staff is not None:
        return Scope.ALL
    if contact is None:
        return Scope.NONE
    return Scope.COMPANY if contact.sla_named else Scope.OWN


def may_see(ticket: Ticket, email: str | None, contact: CustomerContact | None, staff: StaffMember | None) -> bool:
    scope = scope_of(contact, staff)
    if scope is Scope.ALL:
        return True
    if scope is Scope.NONE or contact is None:
        return False
    if ticket.requester_email.strip().lower() == contact.email.strip().lower():
        return True
    if email and ticket.requester_email.strip().lower() == email.strip().lower():
        return True
    return (scope is Scope.COMPANY and ticket.company is not None
            and ticket.company.strip().lower() == contact.company.strip().lower())


def own_open(ticket: Ticket, contact: CustomerContact | None, staff: StaffMember | None) -> bool:
    """Whether a ticket is one the person may add to when they open a new one (rules page §2,
    issue 15 §3b): an open ticket they are the requester of. Staff registering a ticket for a
    customer and people outside the directory have none; a contact named in the SLA, who sees
    the company's tickets, is offered only their own."""
    if staff is not None or contact is None or not ticket.is_open:
        return False
    return ticket.requester_email.strip().lower() == contact.email.strip().lower()


def solution_given(ticket: Ticket) -> bool:
    """Whether the desk gave the ticket a solution one may find inadequate: an incident or a
    request resolved (or closed once resolved), a change request released. A change request
    waiting for its release (submitted, assessed, approved, scheduled), or rejected, has none."""
    if ticket.kind is TicketKind.CHANGE_REQUEST:
        return ticket.status is TicketStatus.RELEASED or (
            ticket.status is TicketStatus.CLOSED and ticket.release_date is not None)
    return ticket.status in (TicketStatus.RESOLVED, TicketStatus.CLOSED)


def escalation_reasons(ticket: Ticket | None) -> tuple[EscalationReason, ...]:
    """The reasons a customer may give to escalate this ticket (rules page §5): the feedback and
    the employee's attitude always; the solution only once one was given."""
    reasons = [EscalationReason.FEEDBACK]
    if ticket is not None and solution_given(ticket):
        reasons.append(EscalationReason.SOLUTION)
    reasons.append(EscalationReason.ATTITUDE)
    return tuple(reasons)
