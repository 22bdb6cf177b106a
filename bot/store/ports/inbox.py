"""The inbox: what people sent, written before the platform's ack, waiting for a worker."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Mapping, Protocol, Sequence


@dataclass(frozen=True)
class NewInboxItem:
    """What a person sent, written down before the platform is told it arrived (the ack), so
    that a crash between the ack and the work loses nothing: a worker takes it from the store.

    Items with the same `conversation_key` are worked on one at a time, in arrival order; an item
    whose `dedup_key` was seen already (a platform retry, a replayed request) is ignored."""

    channel: str
    kind: str
    conversation_key: str
    payload: Mapping[str, Any]  # plain JSON values only (as a platform's parsed request is)
    dedup_key: str | None = None
    priority: int = 1  # 0 first: work that must happen within seconds (a modal's trigger expires)


@dataclass(frozen=True)
class InboxItem:
    id: int
    channel: str
    kind: str
    conversation_key: str
    payload: Mapping[str, Any]
    dedup_key: str | None
    priority: int
    status: str  # pending, working, done, failed
    attempts: int
    received_at: datetime
    next_attempt_at: datetime
    last_error: str | None = None
    done_at: datetime | None = None


class InboxStore(Protocol):
    """Writing, claiming (leases, one conversation at a time) and finishing inbox items."""

    async def enqueue_inbound(self, items: Sequence[NewInboxItem], now: datetime) -> int:
        """Write the items (one transaction) as pending, due now; returns how many were new. An
        item whose dedup_key is already stored (or repeated in `items`) is ignored."""

    async def claim_inbound(
        self, now: datetime, lease: timedelta, limit: int = 10, channels: Sequence[str] | None = None
    ) -> Sequence[InboxItem]:
        """Take up to `limit` items to work on: pending items due by `now`, or working items
        whose lease ran out (their worker died). Fair order: conversations with fewer unfinished
        items first (a person who wrote once before a sender with a backlog), then by priority,
        then by arrival. Only the oldest unfinished
        (pending or working) item of a conversation can be taken, so one conversation's turns are
        never worked on at the same time nor out of order. Taken items become "working", locked
        until now + lease, attempts + 1; several workers never take the same item."""

    async def finish_and_claim_inbound(
        self, finished: Sequence[tuple[int, int]], now: datetime, lease: timedelta, limit: int = 10,
        channels: Sequence[str] | None = None, sent_replies: Sequence[str] = (),
    ) -> tuple[int, Sequence[InboxItem]]:
        """In one transaction: the `finished` items (item id, the attempt of the caller's claim)
        done, as `finish_inbound` with `attempt` does, the outbox's replies `sent_replies`
        (idempotency keys) sent, as `OutboxStore.mark_replies_sent`, then a claim as
        `claim_inbound` (their conversations' next items may be among those taken). Returns how
        many of `finished` were marked done (the others' claims no longer held) and the items taken."""

    # `attempt`: the `attempts` of the caller's claim. With it, the change is made only while that
    # claim holds (the item is working at that attempt): a worker whose lease ran out and whose
    # item another worker took changes nothing, and learns it from the False returned.
    async def extend_inbound(self, item_id: int, locked_until: datetime, *, attempt: int | None = None) -> bool:
        """A worker still on an item keeps it: its lease now runs until `locked_until`. False
        when the item is not being worked on (or not at `attempt`)."""

    async def finish_inbound(self, item_id: int, now: datetime, *, attempt: int | None = None) -> bool:
        """Done: the next item of its conversation may be taken."""

    async def retry_inbound(self, item_id: int, next_attempt_at: datetime, error: str, *,
                            attempt: int | None = None) -> bool:
        """Back to pending, due at `next_attempt_at` (its conversation waits for it)."""

    async def fail_inbound(self, item_id: int, error: str, *, attempt: int | None = None) -> bool:
        """Given up (dead letter): kept for inspection; its conversation goes on without it."""

    async def wait_for_items(self, timeout: float) -> bool:
        """Wait until items may have been written since the last wait returned: by this process
        (any back end) or, on PostgreSQL, by any process (LISTEN/NOTIFY), or until `timeout`
        seconds passed; True when woken. A wake says only "look now" (the items may be taken
        already), and one can be missed (while PostgreSQL's listening connection reconnects):
        a worker still looks now and then without one."""

    async def list_inbound(self, status: str | None = None) -> Sequence[InboxItem]: ...

    async def count_unfinished_inbound(self) -> int:
        """Items pending or working."""

    async def purge_inbound(self, done_before: datetime) -> int:
        """Delete done items finished before `done_before` (kept that long so that a platform's
        late retry or a replay is still recognised by its dedup_key), and the outbox's turn
        replies sent before then; returns how many items."""
