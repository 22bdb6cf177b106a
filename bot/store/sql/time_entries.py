"""Time registration on SQL: tables `time_entries`, `time_entry_changes`.

Transactions: each add, update or delete writes the entry and its change row together; an
update or delete locks the entry's row first (PostgreSQL). Entries name their ticket by id
(`tickets._ticket_id`) and are read joined with it.
"""

from __future__ import annotations

from datetime import datetime, timezone
from decimal import Decimal
from typing import Any, Mapping, Sequence

from sqlalchemy import Select, func, insert, select, update
from sqlalchemy import exc as sa_exc
from sqlalchemy.ext.asyncio import AsyncConnection

from bot.domain.model import NewTimeEntry, TimeEntry
from bot.store import models as m
from bot.store.sql.base import SqlBase, _aware, _email_key, _number_key, to_json
from bot.store.sql.tickets import _ticket_id


CENT = Decimal("0.01")
MAX_AMOUNT = Decimal("1e10")  # Numeric(12, 2)


def _amount(value: Any) -> Decimal:
    if isinstance(value, bool) or not isinstance(value, (Decimal, int)):
        raise TypeError(f"a time entry's amount must be a Decimal, got {type(value).__name__}")
    amount = Decimal(value)
    if not amount.is_finite():
        raise ValueError(f"a time entry's amount must be finite, got {amount}")
    cents = amount.quantize(CENT)
    if cents != amount:  # never round money silently: the quote rounds its lines to the cent
        raise ValueError(f"a time entry's amount must be in whole cents, got {amount}")
    if abs(cents) >= MAX_AMOUNT:
        raise ValueError(f"a time entry's amount is too large: {amount}")
    return cents


def _time_entry_values(entry: NewTimeEntry) -> dict[str, Any]:
    """Column values of a time entry (all but ticket, times of the record and keys), checked."""
    _aware(entry.started_at, "started_at")
    _aware(entry.ended_at, "ended_at")
    if entry.ended_at < entry.started_at:
        raise ValueError(f"a time entry ends ({entry.ended_at}) before it starts ({entry.started_at})")
    if isinstance(entry.participants, bool) or not isinstance(entry.participants, int) or entry.participants < 1:
        raise ValueError(f"participants must be a positive integer, got {entry.participants!r}")
    for line in entry.lines:
        if not isinstance(line, Mapping):
            raise TypeError(f"a quote line must be a mapping, got {type(line).__name__}")
    currency = entry.currency.strip().upper()
    if len(currency) != 3:
        raise ValueError(f"currency must be a 3-letter code, got {entry.currency!r}")
    return {
        "agent_email": entry.agent_email.strip(),
        "service": entry.service,
        "started_at": entry.started_at,
        "ended_at": entry.ended_at,
        "participants": entry.participants,
        "note": entry.note,
        "lines": to_json([dict(line) for line in entry.lines]),
        "amount": _amount(entry.amount),
        "currency": currency,
    }


def _time_entry(row: Any) -> TimeEntry:
    return TimeEntry(
        id=row.id,
        ticket_number=row.ticket_number,
        company=row.ticket_company,
        agent_email=row.agent_email,
        service=row.service,
        started_at=row.started_at,
        ended_at=row.ended_at,
        participants=row.participants,
        note=row.note,
        lines=tuple(dict(line) for line in (row.lines or ())),
        amount=_stored_amount(row),
        currency=row.currency,
        created_at=row.created_at,
        updated_at=row.updated_at,
        deleted_at=row.deleted_at,
    )


def _stored_amount(row: Any) -> Decimal:
    # Every entry is priced when it is written; a row without an amount was changed by hand.
    if row.amount is None:
        raise ValueError(f"time entry {row.id} has no amount")
    # SQLite keeps NUMERIC as a float: back to exact cents
    return Decimal(str(row.amount)).quantize(CENT)


def _utc_iso(value: datetime | None) -> str | None:
    return value.astimezone(timezone.utc).isoformat() if value is not None else None


def _entry_snapshot(entry: TimeEntry) -> dict[str, Any]:
    """A time entry as a time_entry_changes row keeps it (JSON: amounts as strings, UTC ISO times)."""
    return to_json(
        {
            "id": entry.id,
            "ticket_number": entry.ticket_number,
            "agent_email": entry.agent_email,
            "service": entry.service,
            "started_at": _utc_iso(entry.started_at),
            "ended_at": _utc_iso(entry.ended_at),
            "participants": entry.participants,
            "note": entry.note,
            "lines": [dict(line) for line in entry.lines],
            "amount": str(entry.amount) if entry.amount is not None else None,
            "currency": entry.currency,
        }
    )


class SqlTimeEntries(SqlBase):
    """`TimeEntryStore` on SQL."""

    def _time_entry_query(self) -> Select[Any]:
        te, t = m.time_entries, m.tickets
        return select(te, t.c.number.label("ticket_number"), t.c.company.label("ticket_company")).join(
            t, t.c.id == te.c.ticket_id
        )

    async def _time_entry_where(self, conn: AsyncConnection, condition: Any) -> TimeEntry | None:
        row = (await conn.execute(self._time_entry_query().where(condition))).first()
        return _time_entry(row) if row else None

    async def _record_change(
        self,
        conn: AsyncConnection,
        entry_id: int,
        by: str,
        now: datetime,
        action: str,
        before: TimeEntry | None,
        after: TimeEntry | None,
    ) -> None:
        await conn.execute(
            insert(m.time_entry_changes).values(
                time_entry_id=entry_id,
                changed_by=by,
                changed_at=now,
                action=action,
                before=_entry_snapshot(before) if before is not None else None,
                after=_entry_snapshot(after) if after is not None else None,
            )
        )

    async def _live_time_entry(self, conn: AsyncConnection, entry_id: int) -> TimeEntry:
        """The entry, its row locked (PostgreSQL); LookupError if unknown or deleted."""
        te = m.time_entries
        locked = (
            await conn.execute(self._lock(select(te.c.id, te.c.deleted_at).where(te.c.id == entry_id)))
        ).first()
        if locked is None:
            raise LookupError(f"no time entry {entry_id}")
        if locked.deleted_at is not None:
            raise LookupError(f"time entry {entry_id} was deleted")
        entry = await self._time_entry_where(conn, te.c.id == entry_id)
        assert entry is not None
        return entry

    async def add_time_entry(self, entry: NewTimeEntry, now: datetime, idempotency_key: str | None = None) -> TimeEntry:
        _aware(now)
        values = _time_entry_values(entry)
        te = m.time_entries
        try:
            async with self._tx() as conn:
                if idempotency_key is not None:
                    existing = await self._time_entry_where(conn, te.c.idempotency_key == idempotency_key)
                    if existing is not None:
                        return existing
                ticket_id = await _ticket_id(conn, entry.ticket_number)
                entry_id = (
                    await conn.execute(
                        insert(te)
                        .values(
                            ticket_id=ticket_id,
                            created_at=now,
                            updated_at=now,
                            deleted_at=None,
                            idempotency_key=idempotency_key,
                            **values,
                        )
                        .returning(te.c.id)
                    )
                ).scalar_one()
                created = await self._time_entry_where(conn, te.c.id == entry_id)
                assert created is not None
                await self._record_change(conn, entry_id, values["agent_email"], now, "create", None, created)
                return created
        except sa_exc.IntegrityError:
            if idempotency_key is None:
                raise
            # a concurrent request with the same key won: return its entry
            async with self._tx() as conn:
                existing = await self._time_entry_where(conn, te.c.idempotency_key == idempotency_key)
            if existing is None:
                raise
            return existing

    async def get_time_entry(self, entry_id: int) -> TimeEntry | None:
        """Deleted entries too (with deleted_at set)."""
        async with self._tx(read_only=True) as conn:
            return await self._time_entry_where(conn, m.time_entries.c.id == entry_id)

    async def update_time_entry(self, entry_id: int, entry: NewTimeEntry, by: str, now: datetime) -> TimeEntry:
        """Port method: LookupError for an unknown or deleted entry, UnknownTicketError for an
        unknown ticket number.  The agent who logged the entry stays (`entry.agent_email` is
        not applied: `by` is who edits it)."""
        _aware(now)
        values = _time_entry_values(entry)
        del values["agent_email"]
        te = m.time_entries
        async with self._tx() as conn:
            before = await self._live_time_entry(conn, entry_id)
            ticket_id = await _ticket_id(conn, entry.ticket_number)
            await conn.execute(update(te).where(te.c.id == entry_id).values(ticket_id=ticket_id, updated_at=now, **values))
            after = await self._time_entry_where(conn, te.c.id == entry_id)
            assert after is not None
            await self._record_change(conn, entry_id, by, now, "update", before, after)
        return after

    async def delete_time_entry(self, entry_id: int, by: str, now: datetime) -> TimeEntry:
        """Port method: LookupError for an unknown or already deleted entry."""
        _aware(now)
        te = m.time_entries
        async with self._tx() as conn:
            before = await self._live_time_entry(conn, entry_id)
            await conn.execute(update(te).where(te.c.id == entry_id).values(deleted_at=now))
            after = await self._time_entry_where(conn, te.c.id == entry_id)
            assert after is not None
            await self._record_change(conn, entry_id, by, now, "delete", before, None)
        return after

    async def list_time_entries(
        self,
        *,
        ticket_number: str | None = None,
        agent_email: str | None = None,
        company: str | None = None,
        started_from: datetime | None = None,
        started_before: datetime | None = None,
        include_deleted: bool = False,
    ) -> Sequence[TimeEntry]:
        te, t = m.time_entries, m.tickets
        query = self._time_entry_query().order_by(te.c.started_at, te.c.id)
        if ticket_number is not None:
            query = query.where(t.c.number_key == _number_key(ticket_number))
        if agent_email is not None:
            query = query.where(func.lower(te.c.agent_email) == _email_key(agent_email))
        if company is not None:
            query = query.where(func.lower(t.c.company) == company.strip().lower())
        if started_from is not None:
            query = query.where(te.c.started_at >= _aware(started_from, "started_from"))
        if started_before is not None:
            query = query.where(te.c.started_at < _aware(started_before, "started_before"))
        if not include_deleted:
            query = query.where(te.c.deleted_at.is_(None))
        async with self._tx(read_only=True) as conn:
            rows = (await conn.execute(query)).all()
        return [_time_entry(r) for r in rows]

    async def list_time_entry_changes(self, entry_id: int) -> Sequence[Mapping[str, Any]]:
        """Oldest first (in the order they were recorded); [] for an unknown entry."""
        c = m.time_entry_changes
        query = select(c).where(c.c.time_entry_id == entry_id).order_by(c.c.id)
        async with self._tx(read_only=True) as conn:
            rows = (await conn.execute(query)).all()
        return [
            {
                "changed_by": r.changed_by,
                "changed_at": r.changed_at,
                "action": r.action,
                "before": r.before,
                "after": r.after,
            }
            for r in rows
        ]
