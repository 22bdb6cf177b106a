"""Escalations that climb (rules page §5): every manager of the escalation's level is pinged;
if nobody acknowledges within the configured time (counted in office hours, unless the ticket
is an out-of-hours emergency), the next level is pinged; the top level is pinged again on an
interval. Acknowledging stops the climb, tells the other pinged managers who took it, and
tells the customer who handles it. All messages go through the outbox, written in the same
transaction as the change that causes them."""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import Protocol, Sequence, TypedDict

from bot.app.desk import Desk
from bot.domain.model import Escalation, EscalationStatus, StaffMember, StaffRole, Ticket
from bot.app.notifications import ESCALATION_HANDLED, ESCALATION_PING, ESCALATION_TAKEN
from bot.store.ports import DirectoryStore, EscalationStore, NewOutboxMessage, TicketStore

log = logging.getLogger("caredesk.escalations")


class EscalationsStore(EscalationStore, TicketStore, DirectoryStore, Protocol):
    """What the climb needs of the store: the escalations, their tickets, and the managers."""


class Escalations:
    def __init__(self, desk: Desk):
        self.desk = desk
        self.settings = desk.settings
        self.store: EscalationsStore = desk.store

    # ---- who is at which level -----------------------------------------------------------------
    async def managers(self, level: int) -> list[tuple[str, str]]:
        """(e-mail, name) of everyone to ping at a level: the directory's managers of that level,
        and the level's configured contact (the rules page's hierarchy)."""
        people: dict[str, tuple[str, str]] = {}
        for manager in await self.store.list_staff(StaffRole.MANAGER, level=level):
            people.setdefault(manager.email.lower(), (manager.email, manager.name))
        configured = self.settings.escalation.level(level)
        if configured is not None:
            people.setdefault(configured.email.lower(), (configured.email, configured.name))
        return list(people.values())

    async def top_level(self) -> int:
        levels = [lvl.level for lvl in self.settings.escalation.levels]
        levels += [m.level for m in await self.store.list_staff(StaffRole.MANAGER) if m.level]
        return max(levels or [1])

    # ---- messages ---------------------------------------------------------------------------------
    async def ping_messages(
        self, ticket: Ticket, level: int, reason: str, comment: str, requested_by: str, key: str, repeat: bool = False
    ) -> list[NewOutboxMessage]:
        payload = {
            "ticket": ticket.number,
            "level": level,
            "reason": reason,
            "comment": comment,
            "requested_by": requested_by,
            "requester": f"{ticket.requester_name} <{ticket.requester_email}>",
            "company": ticket.company,
            "summary": ticket.description.splitlines()[0][:300],
            "repeat": repeat,
        }
        return [
            NewOutboxMessage(f"{key}:{email.lower()}", email, ESCALATION_PING, payload)
            for email, _name in await self.managers(level)
        ]

    # ---- the climb --------------------------------------------------------------------------------
    def due_at(self, escalation: Escalation, ticket: Ticket, since: datetime, minutes: int) -> datetime:
        wait = timedelta(minutes=minutes)
        if ticket.out_of_hours_emergency:
            return since + wait
        return self.desk.calendar.add_office_time(since, wait)

    async def tick(self) -> int:
        """Climb or re-ping every open escalation that is due; returns how many were."""
        now = self.desk.now()
        top = await self.top_level()
        acted = 0
        for escalation in await self.store.list_escalations(open_only=True):
            if escalation.status is not EscalationStatus.OPEN:
                continue
            ticket = await self.store.get_ticket(escalation.ticket_number)
            if ticket is None:
                continue
            timeout = self.settings.escalation.ack_timeout_minutes
            if escalation.level < top:
                if now < self.due_at(escalation, ticket, escalation.level_since, timeout):
                    continue
                level = escalation.level + 1
                # The key names the escalation and the level: two workers ticking at once queue
                # the same messages, and the outbox keeps one of each.
                key = f"escalation:{escalation.id}:level:{level}"
                outbox = await self.ping_messages(ticket, level, escalation.reason.value, escalation.comment,
                                                  escalation.requested_by, key)
                await self.store.escalation_pinged(escalation.id, level, now, outbox)
                log.info("escalation of %s climbed to level %d", ticket.number, level)
                acted += 1
                continue
            repeat = self.settings.escalation.top_level_repeat_minutes
            last = escalation.last_ping_at or escalation.level_since
            if now < self.due_at(escalation, ticket, last, repeat):
                continue
            round_no = int((now - escalation.level_since) / timedelta(minutes=repeat))
            key = f"escalation:{escalation.id}:level:{escalation.level}:repeat:{round_no}"
            outbox = await self.ping_messages(ticket, escalation.level, escalation.reason.value, escalation.comment,
                                              escalation.requested_by, key, repeat=True)
            await self.store.escalation_pinged(escalation.id, escalation.level, now, outbox)
            log.info("escalation of %s re-pinged at top level %d", ticket.number, escalation.level)
            acted += 1
        return acted

    # ---- acknowledging ------------------------------------------------------------------------------
    async def acknowledge(self, ticket_number: str, manager: StaffMember) -> list[Escalation]:
        """Acknowledge the open escalations of a ticket; returns those this manager took (empty if
        someone else had already)."""
        now = self.desk.now()
        taken: list[Escalation] = []
        role = self._role_of(manager)
        for escalation in await self.store.list_escalations(open_only=True, ticket_number=ticket_number):
            if escalation.status is not EscalationStatus.OPEN or not self.may_acknowledge(escalation, manager):
                continue
            others = [email for level in range(1, escalation.level + 1) for email, _ in await self.managers(level)
                      if email.lower() != manager.email.lower()]
            key = f"escalation:{escalation.id}:ack"
            outbox = [
                NewOutboxMessage(f"{key}:taken:{email.lower()}", email, ESCALATION_TAKEN,
                                 {"ticket": ticket_number, "by_name": manager.name})
                for email in dict.fromkeys(others)
            ]
            outbox.append(
                NewOutboxMessage(f"{key}:customer", escalation.requested_by, ESCALATION_HANDLED,
                                 {"ticket": ticket_number, "by_name": manager.name, "by_role": role,
                                  "by_email": manager.email})
            )
            updated, mine = await self.store.acknowledge_escalation(escalation.id, manager.email, now, outbox)
            if mine:
                taken.append(updated)
                log.info("escalation of %s acknowledged by %s", ticket_number, manager.email)
        return taken

    @staticmethod
    def may_acknowledge(escalation: Escalation, person: StaffMember) -> bool:
        """Whoever was pinged may take an escalation: a manager of a level it has reached (rules
        page §5: level 1 first, then the next levels as it climbs)."""
        return (person.role is StaffRole.MANAGER and person.level is not None
                and 1 <= person.level <= escalation.level)

    def _role_of(self, manager: StaffMember) -> str:
        level = self.settings.escalation.level(manager.level or 0)
        return level.role if level else ""


class EscalationRow(TypedDict):
    """One line of `caredesk escalations list`, as printed or dumped to JSON."""

    id: int
    ticket: str
    level: int
    status: str
    reason: str
    requested_by: str
    created_at: str
    age_minutes: int
    acknowledged_by: str | None


def describe(escalations: Sequence[Escalation], now: datetime) -> list[EscalationRow]:
    """For `caredesk escalations list`: level, status and age of each escalation."""
    rows: list[EscalationRow] = []
    for e in escalations:
        age = now - e.created_at
        rows.append({
            "id": e.id, "ticket": e.ticket_number, "level": e.level, "status": e.status.value,
            "reason": e.reason.value, "requested_by": e.requested_by, "created_at": e.created_at.isoformat(),
            "age_minutes": int(age.total_seconds() // 60), "acknowledged_by": e.acknowledged_by,
        })
    return rows
