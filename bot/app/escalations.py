"""Escalations that climb (rules page §5): every manager of the escalation's level is pinged;
if nobody acknowledges within the configured time (counted in office hours, unless the ticket
is an out-of-hours emergency), the next level is pinged; the top level is pinged again on an
interval. Acknowledging stops the climb, tells the other pinged managers who took it, and
tells the customer who handles it. All messages go through the outbox, written in the same
transaction as the change that causes them."""

from __future__ import annotations

import json
import logging
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from typing import Any, Iterable, Protocol, Sequence, TypedDict

from bot.app.desk import Desk
from bot.domain.model import Escalation, EscalationReason, EscalationStatus, StaffMember, StaffRole, Ticket
from bot.domain.oncall import on_duty
from bot.domain.time_entries import AcceptedEmergency
from bot.app.notifications import (ESCALATION_HANDLED, ESCALATION_PING, ESCALATION_TAKEN, PAGE, PAGE_HANDLED,
                                   PAGE_TAKEN)
from bot.store.ports import DirectoryStore, EscalationStore, NewOutboxMessage, TicketStore

log = logging.getLogger("caredesk.escalations")



def accepted_terms(pages: Iterable[Escalation]) -> tuple[Escalation, Acceptance, Decimal] | None:
    """The first emergency page whose recorded acceptance names a multiplier: the page, what
    was accepted, and the multiplier (the percent accepted / 100). The one reading of the terms
    for both the price of time logged under them and what agents are shown of them."""
    for page in pages:
        if page.reason is not EscalationReason.EMERGENCY:
            continue
        acceptance = Acceptance.from_comment(page.comment)
        if acceptance is None or not acceptance.percent:
            continue
        try:
            return page, acceptance, Decimal(acceptance.percent) / 100
        except ArithmeticError:  # decimal.InvalidOperation: a percent that is not a number
            continue
    return None

class EscalationsStore(EscalationStore, TicketStore, DirectoryStore, Protocol):
    """What the climb needs of the store: the escalations, their tickets, and the managers."""


@dataclass(frozen=True)
class Acceptance:
    """What the requester accepted for an out-of-hours emergency (rules page §1), recorded with
    the page (in its comment) and on the ticket."""

    percent: str         # the multiplier in force, as a percent ("150")
    basis: str           # "sla" (the company's written agreement) or "default" (the rate card)
    fee_warning: bool    # told that fees may be charged (no support module)
    accepted_by: str
    accepted_at: str     # ISO, UTC

    def to_comment(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)

    @classmethod
    def from_comment(cls, comment: str) -> "Acceptance | None":
        try:
            data = json.loads(comment)
            return cls(str(data["percent"]), str(data["basis"]), bool(data["fee_warning"]),
                       str(data["accepted_by"]), str(data["accepted_at"]))
        except (ValueError, KeyError, TypeError):
            return None


# A page goes round: the person on duty, their backup, the level-1 manager (rules page §5), then the
# person on duty again, one step per `oncall.ack_timeout_minutes` without an acknowledgement.
PAGE_ROUND = ("on_duty", "backup", "manager")


class Escalations:
    def __init__(self, desk: Desk):
        self.desk = desk
        self.settings = desk.settings
        self.store: EscalationsStore = desk.store

    # ---- an accepted emergency's terms (for time billed under it) ---------------------------------
    async def accepted_emergency(self, ticket_number: str) -> AcceptedEmergency | None:
        """The terms the requester accepted for the ticket's out-of-hours emergency, as its page
        recorded them (who accepted by name where the directory knows them), or None."""
        terms = accepted_terms(await self.store.list_escalations(ticket_number=ticket_number))
        if terms is None:
            return None
        page, acceptance, multiplier = terms
        try:
            at = datetime.fromisoformat(acceptance.accepted_at)
        except ValueError:
            at = page.created_at
        at = at if at.tzinfo is not None else at.replace(tzinfo=timezone.utc)
        who = acceptance.accepted_by
        contact, staff, _ = await self.store.find_person(who) if "@" in who else (None, None, None)
        name = contact.name if contact else staff.name if staff else who
        return AcceptedEmergency(multiplier, acceptance.basis, name, at)

    async def accepted_emergencies(self, ticket_numbers: Iterable[str]) -> dict[str, AcceptedEmergency]:
        """`accepted_emergency` of each ticket that has one, by number."""
        found: dict[str, AcceptedEmergency] = {}
        for number in sorted(set(ticket_numbers)):
            accepted = await self.accepted_emergency(number)
            if accepted is not None:
                found[number] = accepted
        return found

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

    # ---- out-of-hours emergency pages ----------------------------------------------------------------
    async def page_targets(self, step: int, now: datetime) -> tuple[str, list[tuple[str, str]]]:
        """Who a page's step reaches, read from the rota at `now` (a shift may have changed since the
        page began): (role in the round, [(e-mail, name)]). Nobody on duty, or no backup: the
        level-1 manager, so a page always reaches a person."""
        role = PAGE_ROUND[(step - 1) % len(PAGE_ROUND)]
        duty = on_duty(await self.store.get_rota(), now, self.desk.calendar.tz)
        email = None
        if duty is not None:
            email = duty.person if role == "on_duty" else duty.backup if role == "backup" else None
        if email is not None:
            member = await self.store.find_staff(email)
            return role, [(member.email if member else email, member.name if member else email)]
        return "manager", await self.managers(1)

    async def page_messages(self, ticket: Ticket, step: int, acceptance: Acceptance, key: str,
                            now: datetime) -> list[NewOutboxMessage]:
        role, people = await self.page_targets(step, now)
        payload: dict[str, Any] = {
            "ticket": ticket.number,
            "step": step,
            "role": role,
            "repeat": step > len(PAGE_ROUND),
            "requester": f"{ticket.requester_name} <{ticket.requester_email}>",
            "phone": ticket.requester_phone or "",
            "company": ticket.company,
            "module": ticket.module,
            "summary": ticket.description[:600],
            "urgency": ticket.urgency.value,
            "percent": acceptance.percent,
            "basis": acceptance.basis,
            "fee_warning": acceptance.fee_warning,
        }
        return [NewOutboxMessage(f"{key}:{email.lower()}", email, PAGE, payload) for email, _name in people]

    async def start_page(self, ticket: Ticket, acceptance: Acceptance, now: datetime, key: str) -> Escalation:
        """Page whoever is on duty for an accepted emergency, with the page's first messages queued
        in the same transaction. Idempotent by `key`: a retried turn pages once."""
        outbox = await self.page_messages(ticket, 1, acceptance, f"{key}:page:step:1", now)
        page = await self.store.create_escalation(
            ticket.number, 1, EscalationReason.EMERGENCY, acceptance.to_comment(), ticket.requester_email, now,
            outbox=outbox, idempotency_key=f"{key}:page",
        )
        log.info("out-of-hours emergency %s: paged %s", ticket.number, ", ".join(m.recipient for m in outbox))
        return page

    async def _climb_page(self, page: Escalation, ticket: Ticket, now: datetime) -> bool:
        # Real minutes: the page is out of hours by definition, and nobody is in the office to wait for.
        last = page.last_ping_at or page.level_since
        if now < last + timedelta(minutes=self.settings.oncall.ack_timeout_minutes):
            return False
        acceptance = Acceptance.from_comment(page.comment) or Acceptance("", "default", False, "", "")
        step = page.level + 1
        # The key names the page and the step: two workers ticking at once queue each message once.
        outbox = await self.page_messages(ticket, step, acceptance, f"page:{page.id}:step:{step}", now)
        await self.store.escalation_pinged(page.id, step, now, outbox)
        log.info("out-of-hours emergency %s not acknowledged: page step %d", ticket.number, step)
        return True

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
            if escalation.reason is EscalationReason.EMERGENCY:
                acted += await self._climb_page(escalation, ticket, now)
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
    async def acknowledge(self, ticket_number: str, manager: StaffMember, take_over: bool = False) -> list[Escalation]:
        """Acknowledge the open escalations of a ticket; returns those this manager took (empty if
        someone else had already). `take_over`: a manager takes an escalation that has not reached
        their level (said in so many words; the caller records it on the ticket)."""
        now = self.desk.now()
        taken: list[Escalation] = []
        role = self._role_of(manager)
        for escalation in await self.store.list_escalations(open_only=True, ticket_number=ticket_number):
            allowed = self.may_acknowledge(escalation, manager) or (
                take_over and manager.role is StaffRole.MANAGER and escalation.reason is not EscalationReason.EMERGENCY)
            if escalation.status is not EscalationStatus.OPEN or not allowed:
                continue
            if escalation.reason is EscalationReason.EMERGENCY:
                if await self._acknowledge_page(escalation, manager, now):
                    taken.append(escalation)
                continue
            others = [email for level in range(1, escalation.level + 1) for email, _ in await self.managers(level)
                      if email.lower() != manager.email.lower()]
            key = f"escalation:{escalation.id}:ack"
            outbox = [
                NewOutboxMessage(f"{key}:taken:{email.lower()}", email, ESCALATION_TAKEN,
                                 {"ticket": ticket_number, "by_name": manager.name})
                for email in dict.fromkeys(others)
            ]
            # The customer hears who handles it: the one who asked, or, when staff escalated on a
            # customer's behalf, the ticket's requester (the agent knows already).
            customer = escalation.requested_by
            if await self.store.find_staff(customer) is not None:
                ticket = await self.store.get_ticket(ticket_number)
                customer = ticket.requester_email if ticket is not None else customer
            outbox.append(
                NewOutboxMessage(f"{key}:customer", customer, ESCALATION_HANDLED,
                                 {"ticket": ticket_number, "by_name": manager.name, "by_role": role,
                                  "by_level": manager.level, "by_email": manager.email})
            )
            updated, mine = await self.store.acknowledge_escalation(escalation.id, manager.email, now, outbox)
            if mine:
                taken.append(updated)
                log.info("escalation of %s acknowledged by %s", ticket_number, manager.email)
        return taken

    async def _acknowledge_page(self, page: Escalation, person: StaffMember, now: datetime) -> bool:
        paged: list[str] = []
        for step in range(1, min(page.level, len(PAGE_ROUND)) + 1):
            paged += [email for email, _ in (await self.page_targets(step, now))[1]]
        key = f"page:{page.id}:ack"
        outbox = [
            NewOutboxMessage(f"{key}:taken:{email.lower()}", email, PAGE_TAKEN,
                             {"ticket": page.ticket_number, "by_name": person.name})
            for email in dict.fromkeys(paged) if email.lower() != person.email.lower()
        ]
        outbox.append(NewOutboxMessage(f"{key}:customer", page.requested_by, PAGE_HANDLED,
                                       {"ticket": page.ticket_number, "by_name": person.name,
                                        "by_phone": person.phone or self.settings.contact.phone}))
        _updated, mine = await self.store.acknowledge_escalation(page.id, person.email, now, outbox)
        if mine:
            log.info("out-of-hours emergency %s acknowledged by %s", page.ticket_number, person.email)
        return mine

    @staticmethod
    def may_acknowledge(escalation: Escalation, person: StaffMember) -> bool:
        """Whoever was pinged may take an escalation: a manager of a level it has reached (rules
        page §5: level 1 first, then the next levels as it climbs). An emergency page may be taken
        by anyone of the service desk: whoever takes it first stops the round."""
        if escalation.reason is EscalationReason.EMERGENCY:
            return person.role in (StaffRole.AGENT, StaffRole.MANAGER)
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
