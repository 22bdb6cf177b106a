"""Values of the service desk's domain: tickets, directory entries, escalations, time entries.

Small frozen dataclasses, free of any storage or channel concern.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from typing import Any, Mapping

from bot.domain.oncall import Shift


class TicketKind(str, enum.Enum):
    INCIDENT = "incident"
    SERVICE_REQUEST = "service_request"
    CHANGE_REQUEST = "change_request"


class TicketStatus(str, enum.Enum):
    NEW = "new"
    IN_PROGRESS = "in_progress"
    WAITING_FOR_CUSTOMER = "waiting_for_customer"
    # change management (rules page §4.2)
    SUBMITTED = "submitted"
    ASSESSED = "assessed"
    APPROVED = "approved"
    REJECTED = "rejected"
    SCHEDULED = "scheduled"
    RELEASED = "released"
    RESOLVED = "resolved"
    CLOSED = "closed"


OPEN_STATUSES = frozenset(
    {
        TicketStatus.NEW,
        TicketStatus.IN_PROGRESS,
        TicketStatus.WAITING_FOR_CUSTOMER,
        TicketStatus.SUBMITTED,
        TicketStatus.ASSESSED,
        TicketStatus.APPROVED,
        TicketStatus.SCHEDULED,
    }
)


class Urgency(str, enum.Enum):
    LOW = "low"
    NORMAL = "normal"
    HIGH = "high"
    CRITICAL = "critical"


class Intake(str, enum.Enum):
    """How a ticket reached the desk (rules page §4.1): the bot's own chat, or registered by
    staff for a customer who wrote, phoned, came in person or used the portal."""

    CHAT = "chat"
    MAIL = "mail"
    PHONE = "phone"
    IN_PERSON = "in_person"
    PORTAL = "portal"


STAFF_INTAKES = (Intake.MAIL, Intake.PHONE, Intake.IN_PERSON, Intake.PORTAL)


class StaffRole(str, enum.Enum):
    AGENT = "agent"
    MANAGER = "manager"


@dataclass(frozen=True)
class Company:
    name: str
    support_module: bool = False
    sla_plan: str = "standard"
    # A written agreement (upgraded SLA) may replace the default multipliers.
    multiplier_overrides: Mapping[str, Decimal] = field(default_factory=dict)


@dataclass(frozen=True)
class CustomerContact:
    email: str
    name: str
    company: str
    phone: str | None = None
    language: str | None = None
    sla_named: bool = False


@dataclass(frozen=True)
class StaffMember:
    email: str
    name: str
    role: StaffRole
    phone: str | None = None
    language: str | None = None
    # Escalation level for managers (1 = first contact); None for agents.
    level: int | None = None


# The channels whose workspaces or tenants are bound to companies (`Binding.channel`): the
# `Turn.channel` of Slack and of Microsoft Teams.
SLACK_WORKSPACE = "slack"
TEAMS_TENANT = "msteams"
BINDABLE_CHANNELS = (SLACK_WORKSPACE, TEAMS_TENANT)


@dataclass(frozen=True)
class Binding:
    """A Slack workspace (team id) or a Microsoft 365 tenant (tenant id) bound to a customer
    company, or to the service desk itself (`company` None): a person's profile e-mail counts
    for the directory only when their workspace or tenant is bound to their company (staff: to
    the service desk)."""

    channel: str  # SLACK_WORKSPACE or TEAMS_TENANT
    tenant: str  # T… for Slack, the tenant's GUID for Teams
    company: str | None  # the company's name; None: the service desk's own workspace or tenant

    @property
    def party_key(self) -> str:
        """The company's key (its lower-case name), "" for the service desk."""
        return (self.company or "").strip().lower()


def vouches_for(parties: frozenset[str], contact: "CustomerContact | None", staff: "StaffMember | None") -> bool:
    """Whether a workspace or tenant bound to `parties` (`Binding.party_key`s; empty: bound to
    nobody) proves the directory entry its person's profile e-mail names. A contact counts only
    from a workspace of their own company, staff only from the service desk's; an e-mail that is
    nobody's in the directory only from a bound workspace."""
    if not parties:
        return False
    if contact is not None and contact.company.strip().lower() not in parties:
        return False
    if staff is not None and "" not in parties:
        return False
    return True


@dataclass(frozen=True)
class Directory:
    companies: tuple[Company, ...] = ()
    contacts: tuple[CustomerContact, ...] = ()
    staff: tuple[StaffMember, ...] = ()
    rota: tuple[Shift, ...] = ()  # the on-call rota (bot/domain/oncall.py)
    # Which workspaces and tenants belong to which company (and to the service desk).
    bindings: tuple[Binding, ...] = ()


@dataclass(frozen=True)
class NewTicket:
    """What a requester (or an agent on their behalf) supplies; the store adds number and times."""

    kind: TicketKind
    requester_email: str
    requester_name: str
    company: str | None
    module: str
    description: str
    requester_phone: str | None = None
    reproduce: str | None = None
    diagnostics: str | None = None
    urgency: Urgency = Urgency.NORMAL
    channel: str = "console"
    out_of_hours_emergency: bool = False
    created_by: str | None = None
    intake: Intake = Intake.CHAT


@dataclass(frozen=True)
class Ticket:
    id: int
    number: str
    kind: TicketKind
    status: TicketStatus
    requester_email: str
    requester_name: str
    requester_phone: str | None
    company: str | None
    module: str
    description: str
    reproduce: str | None
    diagnostics: str | None
    urgency: Urgency
    channel: str
    out_of_hours_emergency: bool
    created_at: datetime
    updated_at: datetime
    solution_date: date | None = None
    release_date: date | None = None
    assignee_email: str | None = None
    created_by: str | None = None
    intake: Intake = Intake.CHAT

    @property
    def is_open(self) -> bool:
        return self.status in OPEN_STATUSES

    def as_dict(self) -> dict[str, Any]:
        return {
            "number": self.number,
            "kind": self.kind.value,
            "status": self.status.value,
            "requester": self.requester_email,
            "requester_name": self.requester_name,
            "requester_phone": self.requester_phone,
            "company": self.company,
            "module": self.module,
            "description": self.description,
            "reproduce": self.reproduce,
            "diagnostics": self.diagnostics,
            "urgency": self.urgency.value,
            "channel": self.channel,
            "out_of_hours_emergency": self.out_of_hours_emergency,
            "created_at": self.created_at.isoformat(),
            "updated_at": self.updated_at.isoformat(),
            "solution_date": self.solution_date.isoformat() if self.solution_date else None,
            "release_date": self.release_date.isoformat() if self.release_date else None,
            "assignee": self.assignee_email,
            "created_by": self.created_by,
            "intake": self.intake.value,
        }


class EscalationReason(str, enum.Enum):
    FEEDBACK = "feedback"  # feedback insufficient or poor
    SOLUTION = "solution"  # solution to the incident inadequate
    ATTITUDE = "attitude"  # the employee's attitude inadequate
    # Not a customer's choice: an accepted out-of-hours emergency pages the person on duty
    # (rules page §1), and the page climbs like an escalation.
    EMERGENCY = "emergency"


class EscalationStatus(str, enum.Enum):
    OPEN = "open"
    ACKNOWLEDGED = "acknowledged"
    CLOSED = "closed"


@dataclass(frozen=True)
class Escalation:
    id: int
    ticket_number: str
    level: int
    reason: EscalationReason
    comment: str
    requested_by: str
    status: EscalationStatus
    created_at: datetime
    level_since: datetime
    acknowledged_by: str | None = None
    acknowledged_at: datetime | None = None
    last_ping_at: datetime | None = None


@dataclass(frozen=True)
class OutboxMessage:
    id: int
    idempotency_key: str
    recipient: str  # e-mail of the person, resolved to a channel address at delivery
    kind: str
    payload: Mapping[str, Any]
    status: str
    attempts: int
    next_attempt_at: datetime
    created_at: datetime
    last_error: str | None = None
    sent_at: datetime | None = None


@dataclass(frozen=True)
class KeptMessage:
    """An outbox message no channel could push to its person, kept for their next turn."""

    id: int
    recipient: str
    kind: str
    payload: Mapping[str, Any]
    created_at: datetime
    shown_at: datetime | None = None


@dataclass(frozen=True)
class DialogKey:
    """Dialog state is keyed by where the conversation happens and who talks."""

    channel: str
    tenant: str
    conversation: str
    user: str


@dataclass(frozen=True)
class StoredDialog:
    key: DialogKey
    state: Mapping[str, Any]
    version: int
    updated_at: datetime


@dataclass(frozen=True)
class NewTimeEntry:
    """Time an agent worked on a ticket, priced when it is logged."""

    ticket_number: str
    agent_email: str
    service: str
    started_at: datetime
    ended_at: datetime
    participants: int
    note: str | None
    # The quote lines as JSON-able dicts (start, end, multiplier, hours, rate, amount: strings).
    lines: tuple[Mapping[str, str], ...]
    amount: Decimal
    currency: str = "EUR"


@dataclass(frozen=True)
class TimeEntry:
    id: int
    ticket_number: str
    company: str | None
    agent_email: str
    service: str
    started_at: datetime
    ended_at: datetime
    participants: int
    note: str | None
    lines: tuple[Mapping[str, str], ...]
    amount: Decimal
    currency: str
    created_at: datetime
    updated_at: datetime
    deleted_at: datetime | None = None


@dataclass(frozen=True)
class TicketEvent:
    """One change to a ticket (status, assignee, dates), kept for the record."""

    ticket_number: str
    actor: str
    field: str
    before: str | None
    after: str | None
    created_at: datetime
