"""The outbox on SQL: table `outbox`.

Transactions: enqueue writes the messages (a repeated idempotency key is ignored); a claim
selects due messages FOR UPDATE SKIP LOCKED (PostgreSQL) and marks them sending in one;
each mark is one UPDATE. A message no channel can push is kept (table `kept_messages`) and
marked sent in one; taking a person's kept messages selects them FOR UPDATE SKIP LOCKED and
marks them shown in one (each row's UPDATE checks it was not shown meanwhile). `_enqueue_rows` queues messages inside another aggregate's
transaction (a ticket move, an escalation).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any, Sequence

from sqlalchemy import and_, or_, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from bot.domain.model import KeptMessage, OutboxMessage
from bot.store import models as m
from bot.store.ports import NewOutboxMessage
from bot.store.sql.base import SqlBase, _aware, _claim_limit, dialect_insert, _due, to_json


def _outbox_message(row: Any) -> OutboxMessage:
    return OutboxMessage(
        id=row.id,
        idempotency_key=row.idempotency_key,
        recipient=row.recipient,
        kind=row.kind,
        payload=row.payload,
        status=row.status,
        attempts=row.attempts,
        next_attempt_at=row.next_attempt_at,
        created_at=row.created_at,
        last_error=row.last_error,
        sent_at=row.sent_at,
    )


# The columns `_outbox_rows` gives a value (the id is the database's).
OUTBOX_COLUMNS = ("idempotency_key", "recipient", "kind", "payload", "status", "attempts", "next_attempt_at",
                  "locked_until", "created_at", "sent_at", "last_error")


def _outbox_rows(messages: Sequence[NewOutboxMessage], now: datetime) -> list[dict[str, Any]]:
    return [
        {
            "idempotency_key": msg.idempotency_key,
            "recipient": msg.recipient,
            "kind": msg.kind,
            "payload": to_json(dict(msg.payload)),
            "status": "sending" if msg.held_until is not None else "pending",
            "attempts": 1 if msg.held_until is not None else 0,
            "next_attempt_at": now,
            "locked_until": msg.held_until,
            "created_at": now,
            "sent_at": None,
            "last_error": None,
        }
        for msg in messages
    ]


async def _enqueue_rows(conn: AsyncConnection, rows: list[dict[str, Any]]) -> None:
    if rows:
        o = m.outbox
        stmt = dialect_insert(conn.dialect.name)(o).on_conflict_do_nothing(index_elements=[o.c.idempotency_key])
        await conn.execute(stmt, rows)


# The kind of a turn's durable reply (`bot.app.notifications.REPLY`; the store does not import
# the application layer).
REPLY_KIND = "reply"


async def _mark_replies_sent(conn: AsyncConnection, keys: Sequence[str], now: datetime) -> int:
    """In the caller's transaction (an inbox worker's next claim): posted replies sent."""
    o = m.outbox
    result = await conn.execute(
        update(o).where(o.c.idempotency_key.in_(list(keys)), o.c.status.in_(("pending", "sending")))
        .values(status="sent", sent_at=now, locked_until=None))
    return int(result.rowcount)


class SqlOutbox(SqlBase):
    """`OutboxStore` on SQL."""

    async def enqueue(self, messages: Sequence[NewOutboxMessage], now: datetime) -> None:
        _aware(now)
        rows = _outbox_rows(messages, now)
        if not rows:
            return
        async with self._tx() as conn:
            await _enqueue_rows(conn, rows)

    async def list_outbox(self, status: str | None = None) -> Sequence[OutboxMessage]:
        o = m.outbox
        query = select(o).order_by(o.c.id)
        if status is not None:
            query = query.where(o.c.status == status)
        async with self._tx(read_only=True) as conn:
            rows = (await conn.execute(query)).all()
        return [_outbox_message(r) for r in rows]

    async def claim_outbox(self, now: datetime, lease: timedelta, limit: int = 20) -> Sequence[OutboxMessage]:
        limit = _claim_limit(now, lease, limit)
        if limit <= 0:
            return []
        o = m.outbox
        due = _due(o, "sending", now)
        query = self._lock(select(o.c.id).where(due).order_by(o.c.id).limit(limit), skip_locked=True)
        async with self._tx() as conn:
            ids = list((await conn.execute(query)).scalars())
            if not ids:
                return []
            await conn.execute(
                update(o)
                .where(o.c.id.in_(ids))
                .values(status="sending", locked_until=now + lease, attempts=o.c.attempts + 1)
            )
            rows = (await conn.execute(select(o).where(o.c.id.in_(ids)).order_by(o.c.id))).all()
        return [_outbox_message(r) for r in rows]

    async def _update_outbox(self, message_id: int, **values: Any) -> None:
        o = m.outbox
        async with self._tx() as conn:
            await conn.execute(update(o).where(o.c.id == message_id).values(locked_until=None, **values))

    async def mark_sent(self, message_id: int, now: datetime) -> None:
        _aware(now)
        await self._update_outbox(message_id, status="sent", sent_at=now)

    async def mark_retry(self, message_id: int, next_attempt_at: datetime, error: str) -> None:
        _aware(next_attempt_at, "next_attempt_at")
        await self._update_outbox(message_id, status="pending", next_attempt_at=next_attempt_at, last_error=error)

    async def mark_failed(self, message_id: int, error: str) -> None:
        await self._update_outbox(message_id, status="failed", last_error=error)

    async def claim_reply(self, key: str, now: datetime, lease: timedelta) -> OutboxMessage | None:
        _claim_limit(now, lease, 1)
        o = m.outbox
        takeable = or_(_due(o, "sending", now), and_(o.c.status == "sending", o.c.attempts == 1))
        async with self._tx() as conn:
            taken = await conn.execute(
                update(o).where(o.c.idempotency_key == key, takeable)
                .values(status="sending", locked_until=now + lease, attempts=o.c.attempts + 1)
            )
            if taken.rowcount != 1:
                return None
            row = (await conn.execute(select(o).where(o.c.idempotency_key == key))).first()
        return _outbox_message(row) if row is not None else None

    async def release_reply(self, key: str, next_attempt_at: datetime, error: str) -> bool:
        _aware(next_attempt_at, "next_attempt_at")
        o = m.outbox
        async with self._tx() as conn:
            result = await conn.execute(
                update(o).where(o.c.idempotency_key == key, o.c.status == "sending")
                .values(status="pending", next_attempt_at=next_attempt_at, locked_until=None, last_error=error))
            return bool(result.rowcount == 1)

    async def mark_replies_sent(self, keys: Sequence[str], now: datetime) -> int:
        _aware(now)
        if not keys:
            return 0
        async with self._tx() as conn:
            return await _mark_replies_sent(conn, keys, now)

    async def requeue_failed(self, now: datetime, message_ids: Sequence[int] | None = None) -> int:
        _aware(now)
        o = m.outbox
        stmt = (
            update(o)
            .where(o.c.status == "failed")
            .values(status="pending", attempts=0, next_attempt_at=now, locked_until=None)
        )
        if message_ids is not None:
            ids = [int(i) for i in message_ids]
            if not ids:
                return 0
            stmt = stmt.where(o.c.id.in_(ids))
        async with self._tx() as conn:
            return int((await conn.execute(stmt)).rowcount)

    # ---- kept for the next visit ------------------------------------------------------------------
    async def keep_for_next_visit(self, message_id: int, now: datetime) -> None:
        _aware(now)
        o, k = m.outbox, m.kept_messages
        async with self._tx() as conn:
            row = (await conn.execute(select(o).where(o.c.id == message_id))).one_or_none()
            if row is None:
                return
            insert = dialect_insert(conn.dialect.name)(k).on_conflict_do_nothing(index_elements=[k.c.outbox_key])
            await conn.execute(insert, [{
                "outbox_key": row.idempotency_key, "recipient": row.recipient,
                "recipient_key": row.recipient.lower(), "kind": row.kind, "payload": row.payload,
                "created_at": now, "shown_at": None,
            }])
            await conn.execute(update(o).where(o.c.id == message_id).values(
                status="sent", sent_at=now, locked_until=None, last_error="kept for the next visit"))

    async def take_kept_messages(self, recipient: str, now: datetime, limit: int = 10) -> Sequence[KeptMessage]:
        _aware(now)
        k = m.kept_messages
        waiting = self._lock(select(k.c.id).where(k.c.recipient_key == recipient.lower(), k.c.shown_at.is_(None))
                             .order_by(k.c.id).limit(limit), skip_locked=True)
        async with self._tx() as conn:
            ids = list((await conn.execute(waiting)).scalars())
            taken = []
            for kept_id in ids:
                result = await conn.execute(update(k).where(k.c.id == kept_id, k.c.shown_at.is_(None))
                                            .values(shown_at=now))
                if result.rowcount == 1:
                    taken.append(kept_id)
            rows = (await conn.execute(select(k).where(k.c.id.in_(taken)).order_by(k.c.id))).all() if taken else []
        return [_kept_message(r) for r in rows]

    async def pending_kept_messages(self, recipient: str, limit: int = 10) -> Sequence[KeptMessage]:
        k = m.kept_messages
        query = (select(k).where(k.c.recipient_key == recipient.lower(), k.c.shown_at.is_(None))
                 .order_by(k.c.id).limit(limit))
        async with self._tx(read_only=True) as conn:
            rows = (await conn.execute(query)).all()
        return [_kept_message(r) for r in rows]

    async def list_kept_messages(self, recipient: str | None = None) -> Sequence[KeptMessage]:
        k = m.kept_messages
        query = select(k).order_by(k.c.id)
        if recipient is not None:
            query = query.where(k.c.recipient_key == recipient.lower())
        async with self._tx(read_only=True) as conn:
            rows = (await conn.execute(query)).all()
        return [_kept_message(r) for r in rows]


def _kept_message(row: Any) -> KeptMessage:
    return KeptMessage(id=row.id, recipient=row.recipient, kind=row.kind, payload=row.payload,
                       created_at=row.created_at, shown_at=row.shown_at)
