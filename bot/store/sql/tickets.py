"""Tickets on SQL: tables `tickets`, `ticket_counters`, `ticket_comments`, `ticket_events`.

Transactions: a creation draws the year's next number (the counter row's upsert keeps it locked
until commit, so numbers are unique and gap-free) and inserts the ticket; a move (update_ticket)
locks the ticket row (PostgreSQL), writes the changed fields and their events, and queues the
outbox messages it causes, all in one. `_ticket_id` resolves a number inside another aggregate's
transaction (time entries, escalations).
"""

from __future__ import annotations

import enum
from datetime import date, datetime
from typing import Any, Mapping, Sequence
from zoneinfo import ZoneInfo

from sqlalchemy import Select, func, insert, select, update
from sqlalchemy import exc as sa_exc
from sqlalchemy.ext.asyncio import AsyncConnection

from bot.domain.model import (
    OPEN_STATUSES,
    Intake,
    NewTicket,
    Ticket,
    TicketEvent,
    TicketKind,
    TicketStatus,
    Urgency,
)
from bot.store import models as m
from bot.store.ports import NewOutboxMessage, StaleTicketError, UnknownTicketError
from bot.store.sql.base import SqlBase, _aware, _email_key, _number_key, _value
from bot.store.sql.outbox import _enqueue_rows, _outbox_rows


# Ticket numbers follow the service desk's calendar year, in Brussels.
NUMBER_TIMEZONE = ZoneInfo("Europe/Brussels")


def _ticket_row(
    new: NewTicket,
    *,
    number: str,
    year: int,
    seq: int,
    now: datetime,
    idempotency_key: str | None,
) -> dict[str, Any]:
    """Column values of a new ticket (called once its number is drawn)."""
    kind = _value(new.kind)
    status = TicketStatus.SUBMITTED if kind == TicketKind.CHANGE_REQUEST.value else TicketStatus.NEW
    return {
        "number": number,
        "number_key": _number_key(number),
        "year": year,
        "seq": seq,
        "kind": kind,
        "status": status.value,
        "requester_email": new.requester_email.strip(),
        "requester_email_key": _email_key(new.requester_email),
        "requester_name": new.requester_name,
        "requester_phone": new.requester_phone,
        "company": new.company,
        "module": new.module,
        "description": new.description,
        "reproduce": new.reproduce,
        "diagnostics": new.diagnostics,
        "urgency": _value(new.urgency),
        "channel": new.channel,
        "out_of_hours_emergency": bool(new.out_of_hours_emergency),
        "created_at": now,
        "updated_at": now,
        "created_by": new.created_by,
        "intake": _value(new.intake),
        "idempotency_key": idempotency_key,
    }


def _ticket(row: Any) -> Ticket:
    return Ticket(
        id=row.id,
        number=row.number,
        kind=TicketKind(row.kind),
        status=TicketStatus(row.status),
        requester_email=row.requester_email,
        requester_name=row.requester_name,
        requester_phone=row.requester_phone,
        company=row.company,
        module=row.module,
        description=row.description,
        reproduce=row.reproduce,
        diagnostics=row.diagnostics,
        urgency=Urgency(row.urgency),
        channel=row.channel,
        out_of_hours_emergency=bool(row.out_of_hours_emergency),
        created_at=row.created_at,
        updated_at=row.updated_at,
        solution_date=row.solution_date,
        release_date=row.release_date,
        assignee_email=row.assignee_email,
        created_by=row.created_by,
        intake=Intake(row.intake),
    )


# ---- values of the ticket workflow ----------------------------------------------------------------


TICKET_FIELDS = ("status", "assignee_email", "solution_date", "release_date", "company")


def _ticket_changes(changes: Mapping[str, Any]) -> dict[str, Any]:
    """The column values of update_ticket's `changes`, checked (ValueError) and normalised."""
    unknown = sorted(set(changes) - set(TICKET_FIELDS))
    if unknown:
        raise ValueError(f"cannot change {', '.join(unknown)} of a ticket (only {', '.join(TICKET_FIELDS)})")
    values: dict[str, Any] = {}
    for name, value in changes.items():
        if name == "status":
            try:
                values[name] = TicketStatus(_value(value)).value
            except ValueError:
                raise ValueError(f"unknown ticket status {value!r}") from None
        elif name in ("assignee_email", "company"):
            if value is not None and not isinstance(value, str):
                raise ValueError(f"{name} must be text or None, got {value!r}")
            values[name] = (value or "").strip() or None
        else:
            if value is not None and (not isinstance(value, date) or isinstance(value, datetime)):
                raise ValueError(f"{name} must be a date or None, got {value!r}")
            values[name] = value
    return values


def _same_ticket_value(name: str, old: Any, new: Any) -> bool:
    if name == "assignee_email" and old is not None and new is not None:
        return _email_key(old) == _email_key(new)
    return old == new


def _event_text(value: Any) -> str | None:
    """A ticket field's value as a TicketEvent records it: enum values, ISO dates, text or None."""
    if value is None:
        return None
    if isinstance(value, enum.Enum):
        return str(value.value)
    if isinstance(value, (date, datetime)):
        return value.isoformat()
    return str(value)


async def _ticket_id(conn: AsyncConnection, number: str) -> int:
    ticket_id = (
        await conn.execute(select(m.tickets.c.id).where(m.tickets.c.number_key == _number_key(number)))
    ).scalar_one_or_none()
    if ticket_id is None:
        raise UnknownTicketError(f"no ticket {number.strip()!r}")
    return ticket_id


class SqlTickets(SqlBase):
    """`TicketStore` on SQL."""

    async def _ticket_where(self, conn: AsyncConnection, condition: Any) -> Ticket | None:
        row = (await conn.execute(select(m.tickets).where(condition))).first()
        return _ticket(row) if row else None

    async def create_ticket(
        self,
        new: NewTicket,
        now: datetime,
        number_format: str,
        idempotency_key: str | None = None,
    ) -> Ticket:
        _aware(now)
        year = now.astimezone(NUMBER_TIMEZONE).year
        t, counters = m.tickets, m.ticket_counters
        bump = (
            self._upsert(counters)
            .values(year=year, last_seq=1)
            .on_conflict_do_update(
                index_elements=[counters.c.year], set_={"last_seq": counters.c.last_seq + 1}
            )
            .returning(counters.c.last_seq)
        )
        try:
            async with self._tx() as conn:
                if idempotency_key is not None:
                    existing = await self._ticket_where(conn, t.c.idempotency_key == idempotency_key)
                    if existing is not None:
                        return existing
                # The counter row stays locked until commit and is rolled back with a failed
                # insert: numbers are unique and without gaps.
                seq = (await conn.execute(bump)).scalar_one()
                number = number_format.format(year=year, seq=seq)
                values = _ticket_row(new, number=number, year=year, seq=seq, now=now, idempotency_key=idempotency_key)
                ticket_id = (await conn.execute(insert(t).values(**values).returning(t.c.id))).scalar_one()
                created = await self._ticket_where(conn, t.c.id == ticket_id)
                assert created is not None
                return created
        except sa_exc.IntegrityError as exc:
            if idempotency_key is not None:
                # Another request with the same key won the race: return its ticket.
                async with self._tx() as conn:
                    existing = await self._ticket_where(conn, t.c.idempotency_key == idempotency_key)
                if existing is not None:
                    return existing
            raise ValueError(f"the ticket was refused by the database: {exc.orig}") from exc

    async def get_ticket(self, number: str) -> Ticket | None:
        async with self._tx(read_only=True) as conn:
            return await self._ticket_where(conn, m.tickets.c.number_key == _number_key(number))

    async def list_tickets(
        self,
        *,
        requester_email: str | None = None,
        company: str | None = None,
        open_only: bool = False,
        limit: int = 100,
    ) -> Sequence[Ticket]:
        t = m.tickets
        # Registration order (ids grow with every ticket), not clock times that several processes may disagree on.
        query: Select[Any] = select(t).order_by(t.c.id.desc()).limit(max(0, int(limit)))
        if requester_email is not None:
            query = query.where(t.c.requester_email_key == _email_key(requester_email))
        if company is not None:
            query = query.where(func.lower(t.c.company) == company.strip().lower())
        if open_only:
            query = query.where(t.c.status.in_(sorted(s.value for s in OPEN_STATUSES)))
        async with self._tx(read_only=True) as conn:
            rows = (await conn.execute(query)).all()
        return [_ticket(r) for r in rows]

    async def add_ticket_comment(
        self,
        number: str,
        author: str,
        text: str,
        now: datetime,
        internal: bool,
        *,
        idempotency_key: str | None = None,
    ) -> None:
        """Port method; extension: a comment whose `idempotency_key` was used already is not
        added a second time."""
        _aware(now)
        c = m.ticket_comments
        async with self._tx() as conn:
            ticket_id = await _ticket_id(conn, number)
            stmt = self._upsert(c).values(
                ticket_id=ticket_id,
                author=author,
                text=text,
                internal=bool(internal),
                created_at=now,
                idempotency_key=idempotency_key,
            )
            if idempotency_key is not None:
                stmt = stmt.on_conflict_do_nothing(index_elements=[c.c.idempotency_key])
            await conn.execute(stmt)

    async def list_ticket_comments(self, number: str, include_internal: bool) -> Sequence[Mapping[str, Any]]:
        c = m.ticket_comments
        async with self._tx(read_only=True) as conn:
            ticket_id = await _ticket_id(conn, number)
            query = select(c).where(c.c.ticket_id == ticket_id).order_by(c.c.created_at, c.c.id)
            if not include_internal:
                query = query.where(c.c.internal.is_(False))
            rows = (await conn.execute(query)).all()
        return [
            {"author": r.author, "text": r.text, "internal": bool(r.internal), "created_at": r.created_at}
            for r in rows
        ]

    async def update_ticket(
        self,
        number: str,
        *,
        by: str,
        now: datetime,
        changes: Mapping[str, Any],
        expected_status: str | None = None,
        outbox: Sequence[NewOutboxMessage] = (),
    ) -> Ticket:
        """Port method.  `changes` keys: status (TicketStatus or its value), assignee_email
        (str or None; compared case-insensitively), solution_date / release_date (date or
        None), company (str or None: staff put a ticket in a company); anything else raises ValueError.  Only fields whose value really changes are
        written and recorded (updated_at moves only then); the outbox is queued either way."""
        _aware(now)
        values = _ticket_changes(changes)
        expected = None
        if expected_status is not None:
            try:
                expected = TicketStatus(_value(expected_status)).value
            except ValueError:
                raise ValueError(f"unknown ticket status {expected_status!r}") from None
        outbox_rows = _outbox_rows(outbox, now)
        t, ev = m.tickets, m.ticket_events
        async with self._tx() as conn:
            row = (await conn.execute(self._lock(select(t).where(t.c.number_key == _number_key(number))))).first()
            if row is None:
                raise UnknownTicketError(f"no ticket {number.strip()!r}")
            if expected is not None and row.status != expected:
                raise StaleTicketError(f"ticket {row.number} is {row.status}, not {expected} any more")
            changed = {
                name: value
                for name, value in values.items()
                if not _same_ticket_value(name, getattr(row, name), value)
            }
            if changed:
                await conn.execute(update(t).where(t.c.id == row.id).values(updated_at=now, **changed))
                await conn.execute(
                    insert(ev),
                    [
                        {
                            "ticket_id": row.id,
                            "actor": by,
                            "field": name,
                            "before": _event_text(getattr(row, name)),
                            "after": _event_text(value),
                            "created_at": now,
                        }
                        for name, value in changed.items()
                    ],
                )
            await _enqueue_rows(conn, outbox_rows)
            updated = await self._ticket_where(conn, t.c.id == row.id)
        assert updated is not None
        return updated

    async def list_ticket_events(self, number: str) -> Sequence[TicketEvent]:
        """Oldest first (in the order they were recorded); UnknownTicketError for an unknown number."""
        ev, t = m.ticket_events, m.tickets
        async with self._tx(read_only=True) as conn:
            ticket_id = await _ticket_id(conn, number)
            rows = (
                await conn.execute(
                    select(ev, t.c.number.label("ticket_number"))
                    .join(t, t.c.id == ev.c.ticket_id)
                    .where(ev.c.ticket_id == ticket_id)
                    .order_by(ev.c.id)
                )
            ).all()
        return [
            TicketEvent(
                ticket_number=r.ticket_number,
                actor=r.actor,
                field=r.field,
                before=r.before,
                after=r.after,
                created_at=r.created_at,
            )
            for r in rows
        ]
