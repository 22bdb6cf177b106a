"""The inbox on SQL: table `inbox`.

Transactions: a write inserts the items in one statement (on PostgreSQL one text for any
number of rows, the columns as arrays through unnest); a claim reads the conversations' heads,
then selects the due ones FOR UPDATE SKIP LOCKED (PostgreSQL) and marks them working; each
change of an item is one conditional UPDATE (only while the caller's claim holds).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any, Sequence

from sqlalchemy import bindparam, delete, func, select, text, update

from bot.store import models as m
from bot.store.ports import InboxItem, NewInboxItem
from bot.store.sql.base import SqlBase, _aware, _claim_limit, _due, _json_dumps


# Conversations considered by one claim (the oldest first): bounds the statement's size.
MAX_CLAIM_CANDIDATES = 1000
# The predicate of the inbox's partial index (models.InboxRow), word for word.
UNFINISHED_INBOX = text("inbox.status IN ('pending', 'working')")


def _inbound_turn(row: Any) -> InboxItem:
    return InboxItem(
        id=row.id,
        channel=row.channel,
        kind=row.kind,
        conversation_key=row.conversation_key,
        payload=row.payload,
        dedup_key=row.dedup_key,
        priority=row.priority,
        status=row.status,
        attempts=row.attempts,
        received_at=row.received_at,
        next_attempt_at=row.next_attempt_at,
        last_error=row.last_error,
        done_at=row.done_at,
    )


_INBOX_ARRAY_COLUMNS = ("channel", "kind", "conversation_key", "dedup_key", "payload", "priority")
# New inbox items on PostgreSQL, one array per column, inserted in the order given (ORDINALITY):
# the ids keep the arrival order that the workers follow. RETURNING names only the rows really
# inserted, not those whose dedup_key was stored already.
_PG_INBOX_INSERT = text(
    "INSERT INTO inbox (channel, kind, conversation_key, dedup_key, payload, priority, status, attempts,"
    " received_at, next_attempt_at)"
    " SELECT item.channel, item.kind, item.conversation_key, item.dedup_key, CAST(item.payload AS JSON),"
    " item.priority, 'pending', 0, CAST(:now AS TIMESTAMP WITH TIME ZONE), CAST(:now AS TIMESTAMP WITH TIME ZONE)"
    " FROM unnest(CAST(:channel AS VARCHAR[]), CAST(:kind AS VARCHAR[]), CAST(:conversation_key AS VARCHAR[]),"
    " CAST(:dedup_key AS VARCHAR[]), CAST(:payload AS TEXT[]), CAST(:priority AS SMALLINT[]))"
    " WITH ORDINALITY AS item(channel, kind, conversation_key, dedup_key, payload, priority, n)"
    " ORDER BY item.n"
    " ON CONFLICT (dedup_key) DO NOTHING"
    " RETURNING id"
).bindparams(bindparam("now", type_=m.UTCDateTime()))


def _inbox_rows(items: Sequence[NewInboxItem], now: datetime) -> list[dict[str, Any]]:
    """Column values of new inbox items; of items repeating a dedup_key only the first is kept."""
    rows: list[dict[str, Any]] = []
    seen: set[str] = set()
    for item in items:
        if item.dedup_key is not None:
            if item.dedup_key in seen:
                continue
            seen.add(item.dedup_key)
        rows.append(
            {
                "channel": item.channel,
                "kind": item.kind,
                "conversation_key": item.conversation_key,
                "dedup_key": item.dedup_key,
                # Already plain JSON (a parsed platform request): not copied through to_json, which
                # cost the acknowledgement path a second encoding of every request.
                "payload": item.payload if isinstance(item.payload, dict) else dict(item.payload),
                "priority": int(item.priority),
                "status": "pending",
                "attempts": 0,
                "received_at": now,
                "next_attempt_at": now,
                "locked_until": None,
                "done_at": None,
                "last_error": None,
            }
        )
    return rows


class SqlInbox(SqlBase):
    """`InboxStore` on SQL."""

    async def enqueue_inbound(self, items: Sequence[NewInboxItem], now: datetime) -> int:
        _aware(now)
        rows = _inbox_rows(items, now)
        if not rows:
            return 0
        i = m.inbox
        if self.dialect == "postgresql":
            # One statement whose text is the same for any number of rows (they go as arrays):
            # a multi-row VALUES has a text per count of rows, and under a flood each count was
            # prepared again on each connection (measured: 7 % of the server's time in prepare).
            columns = {name: [row[name] for row in rows] for name in _INBOX_ARRAY_COLUMNS}
            columns["payload"] = [_json_dumps(payload) for payload in columns["payload"]]
            async with self._tx() as conn:
                return len((await conn.execute(_PG_INBOX_INSERT, {**columns, "now": now})).all())
        # One statement (SQLAlchemy sends the rows as multi-row INSERTs): RETURNING names only
        # the rows really inserted, not those whose dedup_key was stored already.
        stmt = self._upsert(i).on_conflict_do_nothing(index_elements=[i.c.dedup_key]).returning(i.c.id)
        async with self._tx() as conn:
            return len((await conn.execute(stmt, rows)).all())

    async def claim_inbound(
        self, now: datetime, lease: timedelta, limit: int = 10, channels: Sequence[str] | None = None
    ) -> Sequence[InboxItem]:
        limit = _claim_limit(now, lease, limit)
        if limit <= 0:
            return []
        i = m.inbox
        due = _due(i, "working", now)
        # Only the oldest unfinished item of each conversation (its "head": so at most one per
        # conversation, and none while an older one waits for its retry), read from the partial
        # index of unfinished rows, written out word for word so that PostgreSQL's cached generic
        # plan can still use it. The heads are read first, on their own: in one statement with
        # the rest, a fast-growing table whose statistics lag made PostgreSQL re-run the grouping
        # for every candidate row (measured: 100-180 ms a claim under a flood).
        heads = (select(func.min(i.c.id)).where(UNFINISHED_INBOX).group_by(i.c.conversation_key)
                 .order_by(func.min(i.c.id)).limit(MAX_CLAIM_CANDIDATES))
        wanted = None if channels is None else list(channels)
        if wanted == []:
            return []
        async with self._tx() as conn:
            candidates = list((await conn.execute(heads)).scalars())
            if not candidates:
                return []
            query = select(i.c.id).where(i.c.id.in_(candidates), due)
            if wanted is not None:
                query = query.where(i.c.channel.in_(wanted))
            query = self._lock(query.order_by(i.c.priority, i.c.id).limit(limit), skip_locked=True)
            ids = list((await conn.execute(query)).scalars())
            if not ids:
                return []
            rows = (
                await conn.execute(
                    update(i)
                    .where(i.c.id.in_(ids))
                    .values(status="working", locked_until=now + lease, attempts=i.c.attempts + 1)
                    .returning(*i.c)
                )
            ).all()
        return sorted((_inbound_turn(r) for r in rows), key=lambda t: (t.priority, t.id))

    async def extend_inbound(self, item_id: int, locked_until: datetime, *, attempt: int | None = None) -> bool:
        _aware(locked_until, "locked_until")
        return await self._update_inbound(item_id, attempt, locked_until=locked_until)

    async def _update_inbound(self, item_id: int, attempt: int | None, **values: Any) -> bool:
        i = m.inbox
        query = update(i).where(i.c.id == item_id)
        if attempt is not None:  # only while the caller's claim still holds
            query = query.where(i.c.status == "working", i.c.attempts == attempt)
        elif "locked_until" in values:
            query = query.where(i.c.status == "working")
        async with self._tx() as conn:
            result = await conn.execute(query.values(**{"locked_until": None, **values}))
        return bool(result.rowcount)

    async def finish_inbound(self, item_id: int, now: datetime, *, attempt: int | None = None) -> bool:
        _aware(now)
        return await self._update_inbound(item_id, attempt, status="done", done_at=now)

    async def retry_inbound(self, item_id: int, next_attempt_at: datetime, error: str, *,
                            attempt: int | None = None) -> bool:
        _aware(next_attempt_at, "next_attempt_at")
        return await self._update_inbound(item_id, attempt, status="pending", next_attempt_at=next_attempt_at,
                                          last_error=error)

    async def fail_inbound(self, item_id: int, error: str, *, attempt: int | None = None) -> bool:
        return await self._update_inbound(item_id, attempt, status="failed", last_error=error)

    async def list_inbound(self, status: str | None = None) -> Sequence[InboxItem]:
        i = m.inbox
        query = select(i).order_by(i.c.id)
        if status is not None:
            query = query.where(i.c.status == status)
        async with self._tx(read_only=True) as conn:
            rows = (await conn.execute(query)).all()
        return [_inbound_turn(r) for r in rows]

    async def count_unfinished_inbound(self) -> int:
        i = m.inbox
        query = select(func.count()).select_from(i).where(i.c.status.in_(("pending", "working")))
        async with self._tx(read_only=True) as conn:
            return int((await conn.execute(query)).scalar_one())

    async def purge_inbound(self, done_before: datetime) -> int:
        _aware(done_before, "done_before")
        i = m.inbox
        stmt = delete(i).where(i.c.status == "done", i.c.done_at < done_before)
        async with self._tx() as conn:
            return int((await conn.execute(stmt)).rowcount)
