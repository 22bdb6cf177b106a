"""The outbox: messages the bot sends on its own initiative, written with the change that caused
them and delivered by a dispatcher."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Mapping, Protocol, Sequence

from bot.domain.model import OutboxMessage


@dataclass(frozen=True)
class NewOutboxMessage:
    """A message the bot must send on its own initiative, written with the change that caused it."""

    idempotency_key: str
    recipient: str
    kind: str
    payload: Mapping[str, Any] = field(default_factory=dict)


class OutboxStore(Protocol):
    """Queueing, claiming (leases) and marking outbox messages."""

    async def enqueue(self, messages: Sequence[NewOutboxMessage], now: datetime) -> None:
        """Queue messages; a message whose idempotency key is already queued is ignored."""

    async def list_outbox(self, status: str | None = None) -> Sequence[OutboxMessage]: ...

    async def claim_outbox(self, now: datetime, lease: timedelta, limit: int = 20) -> Sequence[OutboxMessage]:
        """Take up to `limit` due messages for delivery: status pending with next_attempt_at <= now,
        or status sending whose lease ran out (a dispatcher died mid-delivery). They become
        "sending", locked until now + lease, attempts + 1. Several dispatchers on one PostgreSQL
        database never take the same message (SELECT … FOR UPDATE SKIP LOCKED)."""

    async def mark_sent(self, message_id: int, now: datetime) -> None: ...

    async def mark_retry(self, message_id: int, next_attempt_at: datetime, error: str) -> None:
        """Back to pending, to be tried again at `next_attempt_at`."""

    async def mark_failed(self, message_id: int, error: str) -> None:
        """Dead letter: no more attempts until `requeue_failed`."""

    async def requeue_failed(self, now: datetime, message_ids: Sequence[int] | None = None) -> int:
        """Failed messages (all, or those ids) back to pending with attempts reset; returns how many."""
