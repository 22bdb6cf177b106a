"""The inbox on SQL: table `inbox`.

Transactions: a write inserts the items in one statement (on PostgreSQL one text for any
number of rows, the columns as arrays through unnest, and a NOTIFY that wakes the workers of
every process when it commits); a claim takes the due heads of the conversations (their oldest
unfinished item) in fair order (PostgreSQL: one UPDATE whose CTE counts the heads and whose rows
are selected FOR UPDATE SKIP LOCKED; SQLite: the heads read first, in one transaction); each
change of an item is one conditional UPDATE (only while the caller's claim holds), and a worker's
finished items are marked together, with the replies they posted, before its next claim.

Fair order: a conversation with few unfinished items goes before one with many, then by
priority, then by arrival. A person who just wrote has one item waiting; a sender flooding the
inbox has many, so a flood from a few heavy senders cannot hold everyone else's answer back
behind its backlog (each conversation's own items still go one at a time and in order).
"""

from __future__ import annotations

import asyncio
import logging
from datetime import datetime, timedelta
from typing import Any, Sequence

from sqlalchemy import BigInteger, bindparam, column, delete, func, select, text, update
from sqlalchemy.ext.asyncio import AsyncConnection

from bot.store import models as m
from bot.store.ports import InboxItem, NewInboxItem
from bot.store.sql.base import SqlBase, _aware, _claim_limit, _due, _json_dumps
from bot.store.sql.outbox import REPLY_KIND, _mark_replies_sent


log = logging.getLogger("caredesk.inbox")

# Conversations considered by one claim (the fewest waiting items first, then the oldest):
# bounds the statement's size.
MAX_CLAIM_CANDIDATES = 1000
# The PostgreSQL channel on which an insert into the inbox wakes the workers (LISTEN).
INBOX_WRITTEN_CHANNEL = "caredesk_inbox"
# Back-off of the listening connection after it dropped or could not connect.
LISTEN_RETRY_S = (0.5, 1.0, 2.0, 5.0)
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
_PG_INBOX_INSERT = (
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
)
# The insert, and a NOTIFY when it inserted anything (delivered at commit, once per transaction
# however often it is called), in one statement: the wake costs the acknowledgement's path no
# extra round trip.
_PG_INBOX_INSERT_AND_NOTIFY = text(
    "WITH inserted AS (" + _PG_INBOX_INSERT + ")"
    " SELECT inserted.id FROM inserted CROSS JOIN"
    f" (SELECT pg_notify('{INBOX_WRITTEN_CHANNEL}', '') FROM (SELECT 1 FROM inserted LIMIT 1) AS one) AS wake"
).bindparams(bindparam("now", type_=m.UTCDateTime()))

# The conversations' heads (their oldest unfinished item) with their count of unfinished items,
# fewest first, from the partial index of unfinished rows (written out word for word so that
# PostgreSQL's cached generic plan can still use it). SQLite's claim reads them first.
_HEADS = (select(func.min(m.inbox.c.id).label("head"), func.count().label("waiting")).where(UNFINISHED_INBOX)
          .group_by(m.inbox.c.conversation_key).order_by(func.count(), func.min(m.inbox.c.id))
          .limit(MAX_CLAIM_CANDIDATES))
# PostgreSQL's claim, as one statement: the conversations' heads with their counts (as `_HEADS`;
# MATERIALIZED, so that they are computed once: inlined, a fast-growing table whose statistics lag
# made PostgreSQL re-run the grouping for every candidate row), then the due ones in fair order,
# selected FOR UPDATE SKIP LOCKED (several workers never take the same row) and marked working.
# The partial index's predicate is written out word for word (see UNFINISHED_INBOX).
_PG_CLAIM = text(
    "WITH head AS MATERIALIZED ("
    " SELECT min(inbox.id) AS id, count(*) AS waiting FROM inbox"
    " WHERE inbox.status IN ('pending', 'working')"
    " GROUP BY inbox.conversation_key ORDER BY count(*), min(inbox.id)"
    f" LIMIT {MAX_CLAIM_CANDIDATES})"
    " UPDATE inbox SET status = 'working', locked_until = :locked_until, attempts = inbox.attempts + 1"
    " FROM head WHERE inbox.id = head.id AND inbox.id IN ("
    " SELECT inbox.id FROM inbox JOIN head ON inbox.id = head.id"
    " WHERE ((inbox.status = 'pending' AND inbox.next_attempt_at <= :now)"
    " OR (inbox.status = 'working' AND inbox.locked_until < :now))"
    " AND (CAST(:channels AS VARCHAR[]) IS NULL OR inbox.channel = ANY(CAST(:channels AS VARCHAR[])))"
    " ORDER BY head.waiting, inbox.priority, inbox.id"
    " LIMIT :limit"
    " FOR UPDATE OF inbox SKIP LOCKED)"
    " RETURNING inbox.*, head.waiting"
).bindparams(bindparam("now", type_=m.UTCDateTime()), bindparam("locked_until", type_=m.UTCDateTime())).columns(
    *m.inbox.c, column("waiting", BigInteger))


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


# A worker's item done, while its claim holds (built once: every item ends with it).
_INBOX_FINISH = (update(m.inbox)
                 .where(m.inbox.c.id == bindparam("item_id"), m.inbox.c.status == "working",
                        m.inbox.c.attempts == bindparam("attempt"))
                 .values(status="done", done_at=bindparam("done_at", type_=m.inbox.c.done_at.type), locked_until=None))

# PostgreSQL: the worker's finished items (ids and the attempt each was claimed at) done in one
# statement, while each claim holds, and the replies they posted marked sent.
_PG_FINISH = text(
    # The replies the finished items' turns posted (`sent`, outbox keys) marked sent by the same
    # statement: a data-modifying CTE runs whether or not the UPDATE below reads it.
    "WITH sent AS (UPDATE outbox SET status = 'sent', sent_at = :done_at, locked_until = NULL"
    " WHERE outbox.idempotency_key = ANY(CAST(:sent AS VARCHAR[])) AND outbox.status IN ('pending', 'sending'))"
    " UPDATE inbox SET status = 'done', done_at = :done_at, locked_until = NULL"
    " FROM unnest(CAST(:ids AS INTEGER[]), CAST(:attempts AS INTEGER[])) AS finished(id, attempt)"
    " WHERE inbox.id = finished.id AND inbox.status = 'working' AND inbox.attempts = finished.attempt"
).bindparams(bindparam("done_at", type_=m.UTCDateTime()))


class SqlInbox(SqlBase):
    """`InboxStore` on SQL."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # Set when this process wrote to the inbox, or (PostgreSQL) another process did.
        self._inbox_written = asyncio.Event()
        self._inbox_listener: asyncio.Task[None] | None = None

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
            async with self._tx(autocommit=True) as conn:
                written = len((await conn.execute(_PG_INBOX_INSERT_AND_NOTIFY, {**columns, "now": now})).all())
        else:
            # One statement (SQLAlchemy sends the rows as multi-row INSERTs): RETURNING names only
            # the rows really inserted, not those whose dedup_key was stored already.
            stmt = self._upsert(i).on_conflict_do_nothing(index_elements=[i.c.dedup_key]).returning(i.c.id)
            async with self._tx() as conn:
                written = len((await conn.execute(stmt, rows)).all())
        if written:
            self._inbox_written.set()
        return written

    async def wait_for_items(self, timeout: float) -> bool:
        # PostgreSQL: a connection of its own LISTENs for the inserts' NOTIFY, started here (in
        # the running loop) by the first wait and stopped by close().
        if self.dialect == "postgresql" and (self._inbox_listener is None or self._inbox_listener.done()):
            self._inbox_listener = asyncio.create_task(self._listen_for_inbox_writes(),
                                                       name="caredesk-inbox-listener")
        written = self._inbox_written
        if not written.is_set():
            try:
                await asyncio.wait_for(written.wait(), timeout)
            except asyncio.TimeoutError:
                return False
        written.clear()
        return True

    async def _listen_for_inbox_writes(self) -> None:
        """LISTEN on a dedicated asyncpg connection (not one of the pool's: it stays open), and
        connect again when it drops. A NOTIFY sent while it is away is lost, so each (re)connection
        wakes the waiter once, and the workers keep a slow poll besides."""
        dsn = self.engine.url.set(drivername="postgresql").render_as_string(hide_password=False)
        failures = 0
        while True:
            try:
                await self._listen_until_dropped(dsn)
                failures = 0
                log.warning("inbox: the connection listening for new items dropped; connecting again")
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("inbox: cannot listen for new items (%s); polling meanwhile", exc)
            await asyncio.sleep(LISTEN_RETRY_S[min(failures, len(LISTEN_RETRY_S) - 1)])
            failures += 1

    async def _listen_until_dropped(self, dsn: str) -> None:
        import asyncpg

        conn = await asyncpg.connect(dsn)
        try:
            dropped = asyncio.Event()
            conn.add_termination_listener(lambda _: dropped.set())
            await conn.add_listener(INBOX_WRITTEN_CHANNEL, lambda *_: self._inbox_written.set())
            self._inbox_written.set()
            await dropped.wait()
        finally:
            if not conn.is_closed():
                await conn.close(timeout=2)

    async def close(self) -> None:
        listener, self._inbox_listener = self._inbox_listener, None
        if listener is not None:
            listener.cancel()
            await asyncio.gather(listener, return_exceptions=True)
        await super().close()

    async def claim_inbound(
        self, now: datetime, lease: timedelta, limit: int = 10, channels: Sequence[str] | None = None
    ) -> Sequence[InboxItem]:
        return (await self.finish_and_claim_inbound((), now, lease, limit, channels))[1]

    async def finish_and_claim_inbound(
        self, finished: Sequence[tuple[int, int]], now: datetime, lease: timedelta, limit: int = 10,
        channels: Sequence[str] | None = None, sent_replies: Sequence[str] = (),
    ) -> tuple[int, Sequence[InboxItem]]:
        limit = _claim_limit(now, lease, limit)
        wanted = None if channels is None else list(channels)
        if not finished and not sent_replies and (limit <= 0 or wanted == []):
            return 0, []
        # PostgreSQL: two statements, each standing alone (the finish; the claim, which locks
        # what it takes), so no transaction around them; SQLite: one transaction.
        async with self._tx(autocommit=True) as conn:
            done = 0
            if self.dialect == "postgresql":
                if finished or sent_replies:
                    result = await conn.execute(_PG_FINISH, {"ids": [item_id for item_id, _ in finished],
                                                             "attempts": [attempt for _, attempt in finished],
                                                             "sent": list(sent_replies), "done_at": now})
                    done = result.rowcount
            else:
                for item_id, attempt in finished:
                    result = await conn.execute(_INBOX_FINISH, {"item_id": item_id, "attempt": attempt,
                                                                "done_at": now})
                    done += result.rowcount
                if sent_replies:
                    # The replies these items' turns posted: marked here rather than each in a
                    # transaction of its own, as the items themselves are.
                    await _mark_replies_sent(conn, sent_replies, now)
            if limit <= 0 or wanted == []:
                return done, []
            return done, await self._claim_inbound_in_tx(conn, now, lease, limit, wanted)

    async def _claim_inbound_in_tx(self, conn: AsyncConnection, now: datetime, lease: timedelta, limit: int,
                                   wanted: list[str] | None) -> Sequence[InboxItem]:
        i = m.inbox
        if self.dialect == "postgresql":
            rows = (await conn.execute(_PG_CLAIM, {
                "now": now, "locked_until": now + lease, "channels": wanted, "limit": limit})).all()
            return [_inbound_turn(r) for r in sorted(rows, key=lambda r: (r.waiting, r.priority, r.id))]
        # SQLite: BEGIN IMMEDIATE holds the database's write lock, no row is locked by anyone
        # else; the heads are read first, and the fair order is applied here.
        waiting = {head: count for head, count in (await conn.execute(_HEADS)).all()}
        if not waiting:
            return []
        query = select(i.c.id, i.c.priority).where(i.c.id.in_(list(waiting)), _due(i, "working", now))
        if wanted is not None:
            query = query.where(i.c.channel.in_(wanted))
        due = (await conn.execute(query)).all()
        ids = [row.id for row in sorted(due, key=lambda r: (waiting[r.id], r.priority, r.id))[:limit]]
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
        return sorted((_inbound_turn(r) for r in rows), key=lambda t: (waiting[t.id], t.priority, t.id))

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
        async with self._tx(autocommit=True) as conn:
            result = await conn.execute(query.values(**{"locked_until": None, **values}))
        return bool(result.rowcount)

    async def finish_inbound(self, item_id: int, now: datetime, *, attempt: int | None = None) -> bool:
        _aware(now)
        if attempt is None:
            return await self._update_inbound(item_id, attempt, status="done", done_at=now)
        async with self._tx(autocommit=True) as conn:
            result = await conn.execute(_INBOX_FINISH, {"item_id": item_id, "attempt": attempt, "done_at": now})
        return bool(result.rowcount)

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
        o = m.outbox
        # The turns' replies, once posted, go with their items: a redelivery then finds no reply
        # owed, which is right.
        replies = delete(o).where(o.c.kind == REPLY_KIND, o.c.status == "sent", o.c.sent_at < done_before)
        async with self._tx() as conn:
            purged = int((await conn.execute(stmt)).rowcount)
            await conn.execute(replies)
            return purged
