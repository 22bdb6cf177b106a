"""What the store's contract suites share: times, ticket and time entry factories, the directory,
outbox messages."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from decimal import Decimal
from zoneinfo import ZoneInfo

from sqlalchemy import update

from bot.domain.model import (
    Company,
    CustomerContact,
    Directory,
    NewTicket,
    NewTimeEntry,
    StaffMember,
    StaffRole,
    TicketKind,
    TicketStatus,
)
from bot.store import models
from bot.store.ports import NewOutboxMessage
from bot.store.sql import SqlStore


UTC = timezone.utc
BRUSSELS = ZoneInfo("Europe/Brussels")
FMT = "CS-{year}-{seq:05d}"
NOW = datetime(2026, 3, 2, 9, 30, tzinfo=UTC)
LEASE = timedelta(minutes=5)
AGENT = "Agent.One@CareSolutions.be"


def numbers(year: int, count: int) -> list[str]:
    return [f"CS-{year}-{i:05d}" for i in range(1, count + 1)]


def new_ticket(**overrides: object) -> NewTicket:
    values: dict[str, object] = {
        "kind": TicketKind.INCIDENT,
        "requester_email": "Jan.Peeters@Acme.be",
        "requester_name": "Jan Peeters",
        "company": "Acme NV",
        "module": "invoicing",
        "description": "The invoice run stops halfway with an error",
    }
    values.update(overrides)
    return NewTicket(**values)  # type: ignore[arg-type]


def assert_utc(value: datetime) -> None:
    assert value.tzinfo is not None and value.utcoffset() == timedelta(0), value


DIRECTORY = Directory(
    companies=(
        Company("Acme NV", support_module=True, sla_plan="gold", multiplier_overrides={"sunday": Decimal("2.50")}),
        Company("Globex BV"),
    ),
    contacts=(
        CustomerContact("Jan.Peeters@Acme.be", "Jan Peeters", "acme nv", phone="+32 3 111 11 11", language="nl"),
        CustomerContact("marie@globex.be", "Marie Dubois", "Globex BV", language="fr", sla_named=True),
    ),
    staff=(
        StaffMember("Agent.One@CareSolutions.be", "Agent One", StaffRole.AGENT, language="en"),
        StaffMember("boss2@caresolutions.be", "Boss Two", StaffRole.MANAGER, phone="+32 2", level=2),
        StaffMember("Naida.jelacic@caresolutions.be", "Naïda Jelacic", StaffRole.MANAGER, level=1),
    ),
)


async def set_ticket_status(store: SqlStore, number: str, status: TicketStatus) -> None:
    async with store.engine.begin() as conn:
        await conn.execute(
            update(models.tickets).where(models.tickets.c.number == number).values(status=status.value)
        )


LINES = (
    {"start": "16:00", "end": "18:00", "multiplier": "1.0", "hours": "2.00", "rate": "95.00", "amount": "190.00"},
    {"start": "18:00", "end": "18:30", "multiplier": "1.5", "hours": "0.50", "rate": "95.00", "amount": "71.25"},
)


def time_entry(ticket_number: str = "CS-2026-00001", **overrides: object) -> NewTimeEntry:
    values: dict[str, object] = {
        "ticket_number": ticket_number,
        "agent_email": AGENT,
        "service": "teamviewer",
        # local (Brussels) times, as the logtime command produces them
        "started_at": datetime(2026, 3, 2, 16, 0, tzinfo=BRUSSELS),
        "ended_at": datetime(2026, 3, 2, 18, 30, tzinfo=BRUSSELS),
        "participants": 1,
        "note": "Rebuilt the index",
        "lines": LINES,
        "amount": Decimal("261.25"),
    }
    values.update(overrides)
    return NewTimeEntry(**values)  # type: ignore[arg-type]


def msgs(*keys: str, recipient: str = "boss@caresolutions.be") -> list[NewOutboxMessage]:
    return [NewOutboxMessage(k, recipient, "notice", {"key": k}) for k in keys]


async def outbox_keys(store: SqlStore, status: str | None = None) -> list[str]:
    return [q.idempotency_key for q in await store.list_outbox(status)]
