"""Escalations on SQL: table `escalations`.

Transactions: a creation, a ping and an acknowledgement each write the escalation and queue its
outbox messages (`outbox._enqueue_rows`) in one; a ping locks the row (PostgreSQL), an
acknowledgement is one conditional UPDATE (the first of concurrent ones wins).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Sequence

from sqlalchemy import Select, insert, select, update
from sqlalchemy import exc as sa_exc

from bot.domain.model import Escalation, EscalationReason, EscalationStatus
from bot.store import models as m
from bot.store.ports import NewOutboxMessage
from bot.store.sql.base import SqlBase, _aware, _number_key, _value
from bot.store.sql.outbox import _enqueue_rows, _outbox_rows
from bot.store.sql.tickets import _ticket_id


def _escalation(row: Any) -> Escalation:
    return Escalation(
        id=row.id,
        ticket_number=row.ticket_number,
        level=row.level,
        reason=EscalationReason(row.reason),
        comment=row.comment,
        requested_by=row.requested_by,
        status=EscalationStatus(row.status),
        created_at=row.created_at,
        level_since=row.level_since,
        acknowledged_by=row.acknowledged_by,
        acknowledged_at=row.acknowledged_at,
        last_ping_at=row.last_ping_at,
    )


class SqlEscalations(SqlBase):
    """`EscalationStore` on SQL."""

    def _escalation_query(self) -> Select[Any]:
        e, t = m.escalations, m.tickets
        return select(e, t.c.number.label("ticket_number")).join(t, t.c.id == e.c.ticket_id)

    async def create_escalation(
        self,
        ticket_number: str,
        level: int,
        reason: EscalationReason,
        comment: str,
        requested_by: str,
        now: datetime,
        outbox: Sequence[NewOutboxMessage] = (),
        *,
        idempotency_key: str | None = None,
    ) -> Escalation:
        """Port method; extension: with an `idempotency_key` already used, return that
        escalation (and queue nothing) instead of recording a second one."""
        _aware(now)
        reason_value = EscalationReason(_value(reason)).value
        outbox_rows = _outbox_rows(outbox, now)
        e = m.escalations
        try:
            async with self._tx() as conn:
                ticket_id = await _ticket_id(conn, ticket_number)
                if idempotency_key is not None:
                    row = (
                        await conn.execute(self._escalation_query().where(e.c.idempotency_key == idempotency_key))
                    ).first()
                    if row is not None:
                        return _escalation(row)
                escalation_id = (
                    await conn.execute(
                        insert(e)
                        .values(
                            ticket_id=ticket_id,
                            level=level,
                            reason=reason_value,
                            comment=comment,
                            requested_by=requested_by,
                            status=EscalationStatus.OPEN.value,
                            created_at=now,
                            level_since=now,
                            idempotency_key=idempotency_key,
                        )
                        .returning(e.c.id)
                    )
                ).scalar_one()
                await _enqueue_rows(conn, outbox_rows)
                row = (await conn.execute(self._escalation_query().where(e.c.id == escalation_id))).one()
            return _escalation(row)
        except sa_exc.IntegrityError:
            if idempotency_key is None:
                raise
            # a concurrent request with the same key won: return its escalation
            async with self._tx() as conn:
                row = (
                    await conn.execute(self._escalation_query().where(e.c.idempotency_key == idempotency_key))
                ).first()
            if row is None:
                raise
            return _escalation(row)

    async def list_escalations(self, *, open_only: bool = True, ticket_number: str | None = None) -> Sequence[Escalation]:
        e, t = m.escalations, m.tickets
        query = self._escalation_query().order_by(e.c.created_at, e.c.id)
        if open_only:
            query = query.where(e.c.status != EscalationStatus.CLOSED.value)
        if ticket_number is not None:
            query = query.where(t.c.number_key == _number_key(ticket_number))
        async with self._tx(read_only=True) as conn:
            rows = (await conn.execute(query)).all()
        return [_escalation(r) for r in rows]

    async def get_escalation(self, escalation_id: int) -> Escalation | None:
        async with self._tx(read_only=True) as conn:
            row = (
                await conn.execute(self._escalation_query().where(m.escalations.c.id == escalation_id))
            ).first()
        return _escalation(row) if row else None

    async def escalation_pinged(
        self, escalation_id: int, level: int, now: datetime, outbox: Sequence[NewOutboxMessage] = ()
    ) -> Escalation:
        """Port method; LookupError for an unknown escalation."""
        _aware(now)
        if isinstance(level, bool) or not isinstance(level, int) or level < 1:
            raise ValueError(f"an escalation level is a positive integer, got {level!r}")
        outbox_rows = _outbox_rows(outbox, now)
        e = m.escalations
        async with self._tx() as conn:
            locked = (
                await conn.execute(self._lock(select(e.c.status, e.c.level).where(e.c.id == escalation_id)))
            ).first()
            if locked is None:
                raise LookupError(f"no escalation {escalation_id}")
            if locked.status == EscalationStatus.OPEN.value:
                values: dict[str, Any] = {"level": level, "last_ping_at": now}
                if locked.level != level:
                    values["level_since"] = now
                await conn.execute(update(e).where(e.c.id == escalation_id).values(**values))
                await _enqueue_rows(conn, outbox_rows)
            row = (await conn.execute(self._escalation_query().where(e.c.id == escalation_id))).one()
        return _escalation(row)

    async def acknowledge_escalation(
        self, escalation_id: int, by: str, now: datetime, outbox: Sequence[NewOutboxMessage] = ()
    ) -> tuple[Escalation, bool]:
        """Port method; LookupError for an unknown escalation.  Only an open escalation can be
        acknowledged (a closed one is returned as is, with False)."""
        _aware(now)
        outbox_rows = _outbox_rows(outbox, now)
        e = m.escalations
        async with self._tx() as conn:
            # One conditional UPDATE: of concurrent acknowledgements, the first one to write
            # wins; the others wait for its row lock and then no longer match status = 'open'.
            result = await conn.execute(
                update(e)
                .where(e.c.id == escalation_id, e.c.status == EscalationStatus.OPEN.value)
                .values(status=EscalationStatus.ACKNOWLEDGED.value, acknowledged_by=by, acknowledged_at=now)
            )
            acknowledged = result.rowcount == 1
            if acknowledged:
                await _enqueue_rows(conn, outbox_rows)
            row = (await conn.execute(self._escalation_query().where(e.c.id == escalation_id))).first()
            if row is None:
                raise LookupError(f"no escalation {escalation_id}")
        return _escalation(row), acknowledged
