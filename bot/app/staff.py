"""What agents and managers do by command, in every channel: log time, move tickets through
the workflow, add internal notes, set solution and release dates, acknowledge escalations.

Each command checks who is asking (agents log time; agents and managers run the workflow;
managers acknowledge), validates everything before writing, and writes the change with the
messages it causes in one transaction.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone, tzinfo
from decimal import Decimal
from typing import Any, Mapping, Sequence

from bot.app.desk import Desk
from bot.domain.calendar import BusinessCalendar
from bot.domain.config import Multipliers
from bot.dialogs.common import ticket_facts, total_label
from bot.dialogs.engine import Context
from bot.dialogs.log_time import entry_replies
from bot.domain.parsing import parse_date
from bot.domain.model import EscalationReason, EscalationStatus, StaffMember, StaffRole, Ticket, TicketStatus, TimeEntry
from bot.app.escalations import Escalations, accepted_terms
from bot.i18n import (translate, format_date, format_datetime, format_duration, format_money, format_number,
                      format_short_date)
from bot.app.notifications import TICKET_UPDATE
from bot.app.reach import reach_of
from bot.domain.quote import QuoteError
from bot.protocol.replies import Facts, Reply, Text, Tone
from bot.store.ports import NewOutboxMessage, StaleTicketError, UnknownTicketError
from bot.domain.time_entries import (EMERGENCY_BASIS, AcceptedEmergency, TimeRequest, billed_duration, ensure_worked,
                                     is_agent, line_basis, parse_logtime, parse_start, to_entry, worked_already)
from bot.domain.validation import Invalid, clean_text
from bot.domain.workflow import NOTIFIED, TransitionRefused, read_status, check_release_date, check_solution_date, check_status

# The multipliers of the periods outside office hours (bot/domain/config.py Multipliers).
OUT_OF_HOURS_PERIODS = ("outside_office_hours", "saturday", "sunday", "public_holiday")

# Command words in English, French and Dutch.
COMMANDS = {
    # `uren` is the Dutch name the Teams manifest gives the command.
    "logtime": "logtime", "log": "logtime", "temps": "logtime", "tijd": "logtime", "uren": "logtime",
    "assign": "assign", "assigner": "assign", "attribuer": "assign", "toewijzen": "assign",
    "note": "note", "notitie": "note",
    "solution": "solution", "oplossing": "solution",
    "release": "release", "sortie": "release",
    "status": "status", "statut": "status",
    "company": "company", "société": "company", "societe": "company", "entreprise": "company",
    "bedrijf": "company",
    "ack": "ack", "acknowledge": "ack", "accuser": "ack", "prendre": "ack", "bevestig": "ack", "bevestigen": "ack",
    "escalations": "escalations", "escalades": "escalations", "escalaties": "escalations",
}
AGENT_ONLY = {"logtime"}
# `ack` is a manager's for escalations; an agent on call may ack an emergency page (checked in _ack).
MANAGER_ONLY: set[str] = {"escalations"}
# Commands that need no ticket number to mean something.
WITHOUT_NUMBER = {"logtime", "escalations"}
CONFIRM_WORDS = {"confirm", "confirmer", "bevestig", "bevestigen"}
# `ack NUMBER take over`: a manager takes an escalation that has not reached their level.
TAKE_OVER_WORDS = {"takeover", "take-over", "reprendre", "reprise", "overnemen", "overname"}


@dataclass(frozen=True)
class StaffCommand:
    name: str
    rest: str


class StaffDesk:
    def __init__(self, desk: Desk, number_pattern: re.Pattern[str]):
        self.desk = desk
        self.store = desk.store
        self.settings = desk.settings
        self.number_pattern = number_pattern
        self.escalations = Escalations(desk)

    # ---- recognising ------------------------------------------------------------------------------
    def recognise(self, text: str | None, staff: bool = False) -> StaffCommand | None:
        """A staff command is a command word followed by a ticket number (or, for logtime, by
        list/edit/delete or nothing), so a customer's sentence is not mistaken for one. From
        staff (`staff=True`) a command word alone is their command too: `ack` or `status CS-…`
        with a word missing gets the command's usage, never the customer's menu."""
        words = clean_text(text or "").split(maxsplit=1)
        if not words:
            return None
        name = COMMANDS.get(words[0].lower().lstrip("/"))
        rest = words[1] if len(words) > 1 else ""
        if name is None:
            return None
        if staff:
            return StaffCommand(name, rest)
        if name in MANAGER_ONLY:
            return None
        first = rest.split()[0].lower() if rest.split() else ""
        if name == "logtime":
            if not rest or first in ("list", "edit", "delete", "liste", "lijst", "modifier", "wijzig", "supprimer",
                                     "verwijder") or self.number_pattern.fullmatch(first.upper()):
                return StaffCommand(name, rest)
            return None
        if name == "status":
            # "status CS-… in_progress" changes a status; "status CS-…" alone is a customer's question.
            parts = rest.split()
            if len(parts) >= 2 and self.number_pattern.fullmatch(parts[0].upper()):
                return StaffCommand(name, rest)
            return None
        if self.number_pattern.fullmatch(first.upper()):
            return StaffCommand(name, rest)
        return None

    def allowed(self, ctx: Context, command: StaffCommand) -> bool:
        staff = ctx.staff
        if staff is None:
            return False
        if command.name in AGENT_ONLY:
            return is_agent(staff)
        if command.name in MANAGER_ONLY:
            return staff.role is StaffRole.MANAGER
        return True

    def refusal(self, ctx: Context, command: StaffCommand) -> tuple[Reply, ...]:
        key = {"logtime": "staff.only_agents", "ack": "staff.only_managers",
               "escalations": "staff.more.only_managers_list"}.get(command.name, "staff.only_staff")
        if command.name == "ack" and ctx.staff is None:
            # A customer pressing a page's or a ping's button (forwarded, or shown by mistake):
            # only the service desk acknowledges, said without naming its roles.
            key = "oncall_ack.only_desk"
        return (Text(ctx.t(key), Tone.WARNING),)

    # ---- running ----------------------------------------------------------------------------------
    async def run(self, ctx: Context, command: StaffCommand, idempotency_key: str | None) -> tuple[Reply, ...]:
        try:
            if command.name not in WITHOUT_NUMBER and not command.rest.split():
                # `ack`, `note`, `status` alone: which ticket, and how the command reads.
                raise Invalid("staff.more.number_missing")
            handler = getattr(self, f"_{command.name}")
            return await handler(ctx, command.rest, idempotency_key)
        except Invalid as exc:
            return (Text(ctx.t(exc.key, **exc.params), Tone.ERROR), Text(ctx.t(f"staff.usage.{command.name}")))
        except TransitionRefused as exc:
            return (Text(ctx.t(exc.key, **exc.params), Tone.ERROR),)
        except QuoteError as exc:
            return (Text(ctx.t(exc.key, **exc.params), Tone.ERROR),)
        except (UnknownTicketError, _UnknownTicket) as exc:
            return (Text(ctx.t("staff.unknown_ticket", number=str(exc.args[0]) if exc.args else ""), Tone.ERROR),)
        except StaleTicketError:
            return (Text(ctx.t("staff.stale_ticket"), Tone.WARNING),)

    async def _ticket(self, number: str) -> Ticket:
        if not self.number_pattern.fullmatch(number.upper()):
            raise Invalid("logtime.error.number", {"number": number})
        ticket = await self.store.get_ticket(number)
        if ticket is None:
            raise _UnknownTicket(number.upper())
        return ticket

    # ---- what staff see ---------------------------------------------------------------------------
    async def agent_view(self, ctx: Context, ticket: Ticket) -> tuple[Reply, ...]:
        """A ticket as staff need it: the customer's facts and, never shown to a customer, who
        has it, where it came from, its history, the internal notes (an accepted out-of-hours
        emergency's surcharge is one) and everyone's time."""
        t = ctx.t
        tz = ctx.calendar.tz
        facts = ticket_facts(ctx, ticket)
        assignee = await self.store.find_staff(ticket.assignee_email) if ticket.assignee_email else None
        rows = list(facts.facts) + [
            (t("staff.view.assignee"), (assignee.name if assignee else ticket.assignee_email) or t("staff.view.nobody")),
            (t("staff.view.channel"), ticket.channel),
        ]
        comments = await self.store.list_ticket_comments(ticket.number, include_internal=True)
        replies: list[Reply] = [Facts(tuple(rows), title=ticket.number)]
        events = [e for e in await self.store.list_ticket_events(ticket.number) if e.field == "status"]
        if events:
            replies.append(Facts(tuple(
                (format_datetime(e.created_at.astimezone(tz), ctx.lang),
                 t("staff.view.status_change", before=t(f"ticket.status.{e.before}") if e.before else "—",
                   after=t(f"ticket.status.{e.after}") if e.after else "—", by=e.actor))
                for e in events[-15:]), title=t("staff.view.history")))
        notes = [c for c in comments if c.get("internal")]
        if notes:
            replies.append(Facts(tuple(
                (format_datetime(_aware(c["created_at"]).astimezone(tz), ctx.lang), f"{c['author']}: {c['text']}")
                for c in notes[-15:]), title=t("staff.view.notes")))
        entries = await self.store.list_time_entries(ticket_number=ticket.number)
        if entries:
            emergencies = await self.escalations.accepted_emergencies([ticket.number])
            replies.extend(self._entry_facts(ctx, entries, t("staff.view.time", count=len(entries)), by_agent=True,
                                             emergencies=emergencies))
        return tuple(replies)

    def _entry_facts(self, ctx: Context, entries: Sequence[TimeEntry], title: str, by_agent: bool,
                     emergencies: Mapping[str, AcceptedEmergency] | None = None) -> tuple[Reply, ...]:
        rows = []
        total = sum((e.amount for e in entries), Decimal("0.00"))
        minutes_total = 0
        per_agent: dict[str, tuple[int, Decimal]] = {}
        for e in entries:
            minutes = int((e.ended_at - e.started_at).total_seconds() // 60)
            minutes_total += minutes
            before = per_agent.get(e.agent_email, (0, Decimal("0.00")))
            per_agent[e.agent_email] = (before[0] + minutes, before[1] + e.amount)
        for e in entries[-25:]:
            start = e.started_at.astimezone(ctx.calendar.tz)
            minutes = int((e.ended_at - e.started_at).total_seconds() // 60)
            row = ctx.t("logtime.list_row", date=format_short_date(start.date(), ctx.lang), time=f"{start:%H:%M}",
                        duration=format_duration(minutes, ctx.lang), service=e.service,
                        amount=format_money(e.amount, ctx.lang, e.currency))
            mark = emergency_mark(ctx.lang, e, (emergencies or {}).get(e.ticket_number), ctx.calendar,
                                  ctx.settings.multipliers)
            if mark:
                row = f"{row} {mark}"
            label = f"#{e.id} {e.ticket_number}"
            rows.append((label, f"{e.agent_email}: {row}" if by_agent else row))
        currency = entries[0].currency
        if by_agent and len(per_agent) > 1:
            for agent, (minutes, amount) in per_agent.items():
                rows.append((agent, f"{format_duration(minutes, ctx.lang)}, {format_money(amount, ctx.lang, currency)}"))
        rows.append((total_label(ctx.settings, ctx.lang),
                     f"{format_duration(minutes_total, ctx.lang)}, {format_money(total, ctx.lang, currency)}"))
        return (Facts(tuple(rows), title=title),)

    async def _escalations(self, ctx: Context, rest: str, key: str | None) -> tuple[Reply, ...]:
        """A manager's open escalations in chat, those they may take first."""
        assert ctx.staff is not None  # run() is reached only through allowed(), which needs staff
        # Waiting for someone: an acknowledged escalation is done (the store's "open" keeps it until closed).
        open_ones = [e for e in await self.store.list_escalations(open_only=True) if e.status is EscalationStatus.OPEN]
        if not open_ones:
            return (Text(ctx.t("staff.escalations.none")),)
        now = self.desk.now()
        mine = [e for e in open_ones if self.escalations.may_acknowledge(e, ctx.staff)]
        others = [e for e in open_ones if e not in mine]
        rows = []
        for e in mine + others:
            # Never below zero (the demo clock of another process may start a moment earlier).
            age = max(0, int((now - e.created_at).total_seconds() // 60))
            reason = ctx.t(f"escalation.reason.{e.reason.value}")
            rows.append((e.ticket_number, ctx.t("staff.escalations.row", level=e.level, reason=reason,
                                                 age=format_duration(age, ctx.lang), by=e.requested_by)
                         + ("" if e in mine else " " + ctx.t("staff.escalations.not_yours"))))
        return (Facts(tuple(rows), title=ctx.t("staff.escalations.title", count=len(open_ones))),
                Text(ctx.t("staff.escalations.hint")))

    # ---- time ---------------------------------------------------------------------------------------
    async def price(self, request: TimeRequest, ticket: Ticket):
        company = await self.store.get_company(ticket.company) if ticket.company else None
        overrides: Mapping[str, Decimal] | None = company.multiplier_overrides if company else None
        accepted = await self.accepted_multiplier(ticket)
        if accepted is not None:
            # An accepted out-of-hours emergency (rules page §1): its time outside office hours
            # is billed at the multiplier the requester accepted, on the basis it was shown
            # (their SLA's or the rate card's), whatever the period or a later change of the
            # agreement; time in office hours stays at the office rate.
            overrides = {**(overrides or {}), **{name: accepted for name in OUT_OF_HOURS_PERIODS}}
        billing = self.desk.settings.billing
        # Priced on the billed time (the increment and minimum of the settings), from the start.
        billed = billed_duration(request.end - request.start, billing.increment_minutes, billing.minimum_minutes)
        return self.desk.quotes.quote(request.service, request.start, request.start + billed, 1, overrides)

    async def accepted_multiplier(self, ticket: Ticket) -> Decimal | None:
        """The multiplier recorded when the ticket's out-of-hours emergency was accepted (the
        page's record, bot/app/escalations.py `accepted_terms`), or None."""
        if not ticket.out_of_hours_emergency:
            return None
        terms = accepted_terms(await self.store.list_escalations(ticket_number=ticket.number))
        return terms[2] if terms is not None else None

    async def log_time(self, ctx: Context, request: TimeRequest, idempotency_key: str | None,
                       ticket: Ticket | None = None) -> TimeEntry:
        """Price and save an entry (`ticket`: the request's, when the caller read it already)."""
        assert ctx.staff is not None
        ticket = ticket or await self._ticket(request.ticket_number)
        quote = await self.price(request, ticket)
        entry = to_entry(request, ticket, ctx.staff, quote)
        return await self.store.add_time_entry(entry, self.desk.now(), idempotency_key=idempotency_key)

    async def log_time_questioned(self, ctx: Context, request: TimeRequest, idempotency_key: str | None) -> TimeEntry:
        """The entry of the `logtime` form (Slack modal, Teams card) or of its questions: checked
        as the one-line command checks it. A dialog cannot ask back once finished, so a doubt
        saves nothing and gives the one line that logs it anyway, with `confirm`: what the agent
        filled in is not lost."""
        ticket = await self._ticket(request.ticket_number)
        doubts = await self._doubts(ctx, request, ticket)
        if doubts:
            raise Invalid("logtime.doubt.form", {"doubts": "\n".join(doubts),
                                                 "command": confirm_command(request, ctx.calendar.tz)})
        return await self.log_time(ctx, request, idempotency_key, ticket)

    async def _logtime(self, ctx: Context, rest: str, key: str | None) -> tuple[Reply, ...]:
        assert ctx.staff is not None  # run() is reached only through allowed(), which needs staff
        words = rest.split()
        verb = words[0].lower() if words else ""
        services = ctx.settings.service_keys
        if verb in ("list", "liste", "lijst"):
            number = words[1] if len(words) > 1 else None
            return await self._list(ctx, number)
        if verb in ("delete", "supprimer", "verwijder"):
            entry = await self._own_entry(ctx, words[1] if len(words) > 1 else "")
            deleted = await self.store.delete_time_entry(entry.id, ctx.staff.email, self.desk.now())
            return (Text(ctx.t("logtime.deleted", id=deleted.id, number=deleted.ticket_number), Tone.SUCCESS),)
        if verb in ("edit", "modifier", "wijzig"):
            entry = await self._own_entry(ctx, words[1] if len(words) > 1 else "")
            request = parse_logtime(" ".join([entry.ticket_number] + words[2:]), ctx.now, services, self.number_pattern)
            if not words[4:] or parse_start(words[4:], ctx.now)[0] is None:
                # No new start given: keep the entry's own start, not "now minus the duration".
                request = TimeRequest(request.ticket_number, request.duration, request.service,
                                      entry.started_at.astimezone(ctx.calendar.tz), request.note or entry.note)
            ensure_worked(request.start, request.duration, ctx.now)
            ticket = await self._ticket(entry.ticket_number)
            quote = await self.price(request, ticket)
            updated = await self.store.update_time_entry(entry.id, to_entry(request, ticket, ctx.staff, quote),
                                                         ctx.staff.email, self.desk.now())
            return entry_replies(ctx, updated, "logtime.updated")
        confirmed = bool(words) and words[-1].lower() in CONFIRM_WORDS
        if confirmed:
            rest = " ".join(words[:-1])
        request = parse_logtime(rest, ctx.now, services, self.number_pattern)
        ticket = await self._ticket(request.ticket_number)
        if not confirmed:
            doubts = await self._doubts(ctx, request, ticket)
            if doubts:
                # Questioned before it is saved: nothing is written until the agent confirms.
                return (Text("\n".join(doubts), Tone.WARNING),
                        Text(ctx.t("logtime.doubt.confirm", command=f"logtime {clean_text(rest)} confirm")))
        entry = await self.log_time(ctx, request, key, ticket)
        return entry_replies(ctx, entry)

    async def _doubts(self, ctx: Context, request: TimeRequest, ticket: Ticket) -> list[str]:
        """What makes a new entry look like a slip: the same entry logged already, time on a
        closed ticket, time before the ticket was opened, or more time than has passed (it ends
        in the future)."""
        assert ctx.staff is not None  # run() is reached only through allowed(), which needs staff
        doubts = []
        tz = ctx.calendar.tz
        opened = _aware(ticket.created_at).astimezone(tz)
        if request.start < opened - timedelta(minutes=1):
            # A minute of grace, as for the future: clocks differ and starts are typed to the minute.
            doubts.append(ctx.t("logtime.doubt.before_opened", number=ticket.number,
                                opened=format_datetime(opened, ctx.lang),
                                start=format_datetime(request.start.astimezone(tz), ctx.lang)))
        if not worked_already(request.start, request.duration, ctx.now):
            doubts.append(ctx.t("logtime.doubt.future", end=format_datetime(request.end.astimezone(tz), ctx.lang),
                                now=format_datetime(ctx.now.astimezone(tz), ctx.lang)))
        if ticket.status is TicketStatus.CLOSED:
            doubts.append(ctx.t("logtime.doubt.closed", number=ticket.number))
        mine = await self.store.list_time_entries(ticket_number=ticket.number, agent_email=ctx.staff.email)
        same = next((e for e in mine if e.service == request.service and e.started_at == request.start
                     and e.ended_at == request.end), None)
        if same is not None:
            doubts.append(ctx.t("logtime.doubt.duplicate", number=ticket.number, id=same.id))
        return doubts

    async def _own_entry(self, ctx: Context, text: str) -> TimeEntry:
        assert ctx.staff is not None  # run() is reached only through allowed(), which needs staff
        if not text.lstrip("#").isdigit():
            raise Invalid("logtime.error.entry_id")
        entry = await self.store.get_time_entry(int(text.lstrip("#")))
        if entry is None or entry.deleted_at is not None or entry.agent_email.lower() != ctx.staff.email.lower():
            raise Invalid("logtime.error.not_yours", {"id": text.lstrip("#")})
        return entry

    async def _list(self, ctx: Context, number: str | None) -> tuple[Reply, ...]:
        """`logtime list`: one's own entries; `logtime list NUMBER`: everyone's on that ticket,
        each marked by who logged it."""
        assert ctx.staff is not None  # run() is reached only through allowed(), which needs staff
        if number is not None:
            ticket = await self._ticket(number)
            entries = await self.store.list_time_entries(ticket_number=ticket.number)
            if not entries:
                return (Text(ctx.t("logtime.ticket.none", number=ticket.number)),)
            emergencies = await self.escalations.accepted_emergencies([ticket.number])
            return self._entry_facts(ctx, entries, ctx.t("logtime.ticket.title", number=ticket.number,
                                                         count=len(entries)), by_agent=True, emergencies=emergencies)
        entries = await self.store.list_time_entries(agent_email=ctx.staff.email)
        if not entries:
            return (Text(ctx.t("logtime.none")),)
        emergencies = await self.escalations.accepted_emergencies(e.ticket_number for e in entries[-25:])
        return self._entry_facts(ctx, entries, ctx.t("logtime.list_title", count=len(entries)), by_agent=False,
                                 emergencies=emergencies)

    # ---- workflow -----------------------------------------------------------------------------------
    def _notify(self, ticket: Ticket, event: str, key: str, **payload: Any) -> NewOutboxMessage:
        return NewOutboxMessage(
            idempotency_key=key,
            recipient=ticket.requester_email,
            kind=TICKET_UPDATE,
            payload={"ticket": ticket.number, "event": event, "channel": ticket.channel, **payload},
        )

    def _release_notice(self, ticket: Ticket, when: date) -> NewOutboxMessage:
        # The requester hears a release date once, when it is set: the key names the date, so
        # setting the same date again (by `status … scheduled` or `release`) queues nothing new.
        return self._notify(ticket, "release_date", f"ticket:{ticket.number}:release:{when.isoformat()}",
                            date=when.isoformat())

    async def _escalation_customer(self, ticket: Ticket, taken: Sequence[Any]) -> str:
        """Who hears that an escalation is taken (bot/app/escalations.py `acknowledge`): the one
        who asked or, when staff escalated on a customer's behalf, the ticket's requester."""
        asked = taken[-1].requested_by
        return ticket.requester_email if await self.store.find_staff(asked) is not None else asked

    async def _told(self, ctx: Context, email: str, name: str | None = None) -> Text:
        """Whether the message just queued for `email` reaches them, said to the staff member:
        pushed in their channel, kept for their next visit, or not at all (phone or mail them)."""
        if name is None:
            contact, staff, _ = await self.store.find_person(email)
            name = (contact.name if contact else staff.name if staff else None) or email
        return Text((await reach_of(self.store, email)).said(ctx.t, name))

    async def _assign(self, ctx: Context, rest: str, key: str | None) -> tuple[Reply, ...]:
        assert ctx.staff is not None  # run() is reached only through allowed(), which needs staff
        words = rest.split()
        ticket = await self._ticket(words[0])
        who = words[1] if len(words) > 1 else "me"
        assignee: StaffMember | None
        if who.lower() in ("me", "moi", "mij", "mezelf"):
            assignee = ctx.staff
        else:
            assignee = await self.store.find_staff(who)
            if assignee is None or assignee.role is not StaffRole.AGENT:
                raise Invalid("staff.unknown_agent", {"email": who})
        updated = await self.store.update_ticket(ticket.number, by=ctx.staff.email, now=self.desk.now(),
                                                 changes={"assignee_email": assignee.email})
        return (Text(ctx.t("staff.assigned", number=updated.number, name=assignee.name), Tone.SUCCESS),)

    async def _company(self, ctx: Context, rest: str, key: str | None) -> tuple[Reply, ...]:
        # A ticket from someone outside the directory belongs to no company (nobody may choose
        # one for themselves): staff put it in the right company's lists and bill here.
        assert ctx.staff is not None  # run() is reached only through allowed(), which needs staff
        number, _, name = rest.partition(" ")
        if not clean_text(name):
            raise Invalid("validation.unknown_company", {"company": ""})
        ticket = await self._ticket(number)
        company = await self.store.get_company(clean_text(name))
        if company is None:
            raise Invalid("validation.unknown_company", {"company": clean_text(name)})
        updated = await self.store.update_ticket(ticket.number, by=ctx.staff.email, now=self.desk.now(),
                                                 changes={"company": company.name})
        return (Text(ctx.t("staff.company_set", number=updated.number, company=company.name), Tone.SUCCESS),)

    async def _note(self, ctx: Context, rest: str, key: str | None) -> tuple[Reply, ...]:
        assert ctx.staff is not None  # run() is reached only through allowed(), which needs staff
        number, _, text = rest.partition(" ")
        text = clean_text(text)
        if not text:
            raise Invalid("staff.note_empty")
        ticket = await self._ticket(number)
        await self.store.add_ticket_comment(ticket.number, ctx.staff.email, text, self.desk.now(), internal=True,
                                            idempotency_key=key)
        return (Text(ctx.t("staff.noted", number=ticket.number), Tone.SUCCESS),)

    async def _status(self, ctx: Context, rest: str, key: str | None) -> tuple[Reply, ...]:
        assert ctx.staff is not None  # run() is reached only through allowed(), which needs staff
        words = rest.split()
        ticket = await self._ticket(words[0])
        if len(words) == 1:
            # `status NUMBER` from staff: the ticket as they need it, and how to change it.
            return await self.agent_view(ctx, ticket) + (Text(ctx.t("staff.usage.status")),)
        target, used = read_status(words[1:])
        if target is None:
            raise Invalid("staff.unknown_status", {"status": " ".join(words[1:])})
        after = words[1 + used:]
        confirmed = bool(after) and after[-1].lower() in CONFIRM_WORDS
        if confirmed:
            after = after[:-1]
        release = parse_date(after[0], ctx.now.date()) if target is TicketStatus.SCHEDULED and after else None
        if (target is TicketStatus.RELEASED and ticket.release_date is not None
                and ticket.release_date > ctx.now.date() and not confirmed):
            # Released before the date the requester was told: ask, as it was most likely a slip.
            return (Text(ctx.t("staff.more.release_early", number=ticket.number,
                               date=format_date(ticket.release_date, ctx.lang)), Tone.WARNING),)
        check_status(ticket, target, release)
        if target is TicketStatus.SCHEDULED and ticket.status is TicketStatus.SCHEDULED and release in (
                None, ticket.release_date):
            # Scheduled again for the same date: nothing changes, and the requester is not told twice.
            assert ticket.release_date is not None  # a scheduled ticket has its release date
            return (Text(ctx.t("staff.more.already_scheduled", number=ticket.number,
                               date=format_date(ticket.release_date, ctx.lang))),)
        changes: dict[str, Any] = {"status": target}
        outbox = []
        now = self.desk.now()
        if release is not None:
            check_release_date(ticket, release, ctx.now.date())
            changes["release_date"] = release
            outbox.append(self._release_notice(ticket, release))
        elif target is TicketStatus.SCHEDULED and ticket.release_date is not None:
            # Scheduled for the date already set: the requester hears that date once, whichever
            # command set it (the notice's key names the date).
            outbox.append(self._release_notice(ticket, ticket.release_date))
        elif target in NOTIFIED:
            outbox.append(self._notify(ticket, "status", f"ticket:{ticket.number}:status:{target.value}:{now.isoformat()}",
                                       status=target.value))
        updated = await self.store.update_ticket(ticket.number, by=ctx.staff.email, now=now, changes=changes,
                                                 expected_status=ticket.status.value, outbox=outbox)
        done = Text(ctx.t("staff.status_set", number=updated.number, status=ctx.t(f"ticket.status.{updated.status.value}")),
                    Tone.SUCCESS)
        if not outbox:
            return (done,)
        return (done, await self._told(ctx, updated.requester_email, updated.requester_name))

    async def _solution(self, ctx: Context, rest: str, key: str | None) -> tuple[Reply, ...]:
        assert ctx.staff is not None  # run() is reached only through allowed(), which needs staff
        words = rest.split()
        if len(words) < 2:
            raise Invalid("staff.date_missing")
        ticket = await self._ticket(words[0])
        when = parse_date(words[1], ctx.now.date())
        check_solution_date(ticket, when, ctx.now.date())
        outbox = [self._notify(ticket, "solution_date", f"ticket:{ticket.number}:solution:{when.isoformat()}",
                               date=when.isoformat())]
        updated = await self.store.update_ticket(ticket.number, by=ctx.staff.email, now=self.desk.now(),
                                                 changes={"solution_date": when}, outbox=outbox)
        return (Text(ctx.t("staff.solution_set", number=updated.number, date=format_date(when, ctx.lang)), Tone.SUCCESS),
                await self._told(ctx, updated.requester_email, updated.requester_name))

    async def _release(self, ctx: Context, rest: str, key: str | None) -> tuple[Reply, ...]:
        assert ctx.staff is not None  # run() is reached only through allowed(), which needs staff
        words = rest.split()
        if len(words) < 2:
            raise Invalid("staff.date_missing")
        ticket = await self._ticket(words[0])
        when = parse_date(words[1], ctx.now.date())
        check_release_date(ticket, when, ctx.now.date())
        changes: dict[str, Any] = {"release_date": when}
        if ticket.status is TicketStatus.APPROVED:
            changes["status"] = TicketStatus.SCHEDULED
        outbox = [self._release_notice(ticket, when)]
        updated = await self.store.update_ticket(ticket.number, by=ctx.staff.email, now=self.desk.now(),
                                                 changes=changes, expected_status=ticket.status.value, outbox=outbox)
        return (Text(ctx.t("staff.release_set", number=updated.number, date=format_date(when, ctx.lang)), Tone.SUCCESS),
                await self._told(ctx, updated.requester_email, updated.requester_name))

    # ---- escalations --------------------------------------------------------------------------------
    async def _ack(self, ctx: Context, rest: str, key: str | None) -> tuple[Reply, ...]:
        # An escalation button's value may come forged or empty ("ack:"): an unknown ticket, not a crash.
        assert ctx.staff is not None  # run() is reached only through allowed(), which needs staff
        number = rest.split()[0].upper() if rest.split() else ""
        ticket = await self._ticket(number)
        open_ones = await self.store.list_escalations(open_only=True, ticket_number=ticket.number)
        pages = [e for e in open_ones if e.reason is EscalationReason.EMERGENCY]
        if ctx.staff.role is not StaffRole.MANAGER and not pages:
            return (Text(ctx.t("staff.only_managers"), Tone.WARNING),)
        if pages and any(self.escalations.may_acknowledge(e, ctx.staff) for e in pages):
            taken = await self.escalations.acknowledge(ticket.number, ctx.staff)
            if any(e.reason is EscalationReason.EMERGENCY for e in taken):
                return (Text(ctx.t("staff.page_ack_done", number=ticket.number), Tone.SUCCESS),)
            open_ones = await self.store.list_escalations(open_only=True, ticket_number=ticket.number)
        take_over = " ".join(rest.lower().split()[1:]).replace(" ", "") in TAKE_OVER_WORDS
        if open_ones and not any(self.escalations.may_acknowledge(e, ctx.staff) for e in open_ones):
            # Pinged managers take an escalation: those of the levels it has reached, whatever
            # button value arrives (`acknowledge` checks the same again); another manager only
            # by saying they take it over, which the ticket records.
            level = max(e.level for e in open_ones)
            if take_over and ctx.staff.role is StaffRole.MANAGER:
                taken = await self.escalations.acknowledge(ticket.number, ctx.staff, take_over=True)
                if taken:
                    # Recorded in the desk's language, like the other notes the bot writes.
                    note = translate(self.settings.default_language, "staff.more.take_over_record", name=ctx.staff.name, email=ctx.staff.email,
                                     level=max(e.level for e in taken), own=ctx.staff.level or "-")
                    await self.store.add_ticket_comment(ticket.number, ctx.staff.email, note, self.desk.now(),
                                                        internal=True, idempotency_key=f"{key}:takeover" if key else None)
                    return (Text(ctx.t("staff.more.take_over_done", number=ticket.number), Tone.SUCCESS),
                            await self._told(ctx, await self._escalation_customer(ticket, taken)))
            return (Text(ctx.t("staff.ack_not_your_level", number=ticket.number, level=level), Tone.WARNING),
                    Text(ctx.t("staff.more.take_over_hint", number=ticket.number)))
        taken = await self.escalations.acknowledge(ticket.number, ctx.staff)
        if taken:
            return (Text(ctx.t("staff.ack_done", number=ticket.number), Tone.SUCCESS),
                    await self._told(ctx, await self._escalation_customer(ticket, taken)))
        latest = await self.store.list_escalations(open_only=False, ticket_number=ticket.number)
        by = next((e.acknowledged_by for e in reversed(latest) if e.acknowledged_by), None)
        if by:
            return (Text(ctx.t("staff.ack_already", number=ticket.number, name=by), Tone.WARNING),)
        return (Text(ctx.t("staff.ack_none", number=ticket.number)),)


def _aware(value: Any) -> datetime:
    """A stored time (SQLite gives it back naive, in UTC)."""
    moment = value if isinstance(value, datetime) else datetime.fromisoformat(str(value))
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)


class _UnknownTicket(LookupError):
    pass


def emergency_mark(lang: str, entry: TimeEntry, emergency: AcceptedEmergency | None, calendar: BusinessCalendar,
                   multipliers: Multipliers) -> str:
    """What tells agents a time entry is billed under its ticket's accepted out-of-hours
    emergency ("· ×2 — accepted emergency (SLA), 14 Dec 2026 21:40 by Lotte Peeters"): "" for an
    entry with no line out of office hours, or on a ticket with no accepted emergency. The same
    in the chat and in `caredesk tickets show`."""
    if emergency is None or not under_emergency(entry, emergency, calendar, multipliers):
        return ""
    return emergency_text(lang, emergency, calendar.tz)


def under_emergency(entry: TimeEntry, emergency: AcceptedEmergency | None, calendar: BusinessCalendar,
                    multipliers: Multipliers) -> bool:
    """Whether some of the entry's time is billed at the accepted emergency's multiplier."""
    return emergency is not None and any(
        line_basis(datetime.fromisoformat(line["start"]), calendar, multipliers, emergency) == EMERGENCY_BASIS
        for line in entry.lines)


def emergency_text(lang: str, emergency: AcceptedEmergency, tz: tzinfo) -> str:
    at = emergency.accepted_at.astimezone(tz)
    return translate(lang, "logtime.emergency.mark", multiplier=format_number(emergency.multiplier.normalize(), lang),
                     basis=translate(lang, f"logtime.emergency.basis.{emergency.basis}"),
                     at=f"{format_short_date(at.date(), lang)} {at:%H:%M}", by=emergency.accepted_by)


def confirm_command(request: TimeRequest, tz: tzinfo) -> str:
    """The one-line `logtime` that logs `request` as it stands, confirmed."""
    minutes = int(request.duration.total_seconds() // 60)
    start = request.start.astimezone(tz)
    words = ["logtime", request.ticket_number, f"{minutes}m", request.service, "at",
             start.strftime("%Y-%m-%d %H:%M")]
    if request.note:
        words.append(clean_text(request.note))
    return " ".join(words + ["confirm"])
