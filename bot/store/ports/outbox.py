"""The outbox: messages the bot sends on its own initiative, written with the change that caused
them and delivered by a dispatcher."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Mapping, Protocol, Sequence

from bot.domain.model import KeptMessage, OutboxMessage


@dataclass(frozen=True)
class NewOutboxMessage:
    """A message the bot must send on its own initiative, written with the change that caused it."""

    idempotency_key: str
    recipient: str
    kind: str
    payload: Mapping[str, Any] = field(default_factory=dict)
    # Given: the writer tries it itself first (a turn's reply, posted right after the commit),
    # so it is written as being sent (attempt 1), locked until then; the dispatcher takes it only
    # if that try has not reported back by then.
    held_until: datetime | None = None


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

    # A turn's durable reply (`NewOutboxMessage.held_until`), by its idempotency key.
    async def claim_reply(self, key: str, now: datetime, lease: timedelta) -> OutboxMessage | None:
        """Take the unsent reply `key` to post it now: pending and due; sending with its lease run
        out; or still held by its first try (attempt 1: the turn's own worker, which lost the
        turn's inbox item). Sending, locked until now + lease, attempts + 1; None otherwise (sent,
        failed, waiting for a Retry-After, or held by a dispatcher)."""

    async def release_reply(self, key: str, next_attempt_at: datetime, error: str) -> bool:
        """The reply `key` could not be posted: pending again, due at `next_attempt_at`, for the
        dispatcher (False when it is not being sent)."""

    async def mark_replies_sent(self, keys: Sequence[str], now: datetime) -> int:
        """The replies `keys` were posted: sent (those still pending or sending); how many."""

    async def requeue_failed(self, now: datetime, message_ids: Sequence[int] | None = None) -> int:
        """Failed messages (all, or those ids) back to pending with attempts reset; returns how many."""

    # ---- kept for the next visit (people with no push channel) ----------------------------------
    async def keep_for_next_visit(self, message_id: int, now: datetime) -> None:
        """In one transaction: the message (being sent) kept for its recipient's next turn, and
        marked sent in the outbox (the dispatcher is done with it). Kept once per message."""

    async def take_kept_messages(self, recipient: str, now: datetime, limit: int = 10) -> Sequence[KeptMessage]:
        """The recipient's kept messages not shown yet, oldest first, marked shown in the same
        transaction that reads them: two processes, or a retry, never get the same one (for a
        turn that saves nothing else)."""

    async def pending_kept_messages(self, recipient: str, limit: int = 10) -> Sequence[KeptMessage]:
        """The recipient's kept messages not shown yet, oldest first, read only: a turn that saves
        something shows them and marks them shown in that save's transaction (`shown=` of
        `DialogStore.save_dialog`, `delete_dialog`, `claim_event`)."""

    async def list_kept_messages(self, recipient: str | None = None) -> Sequence[KeptMessage]:
        """Every kept message (of `recipient`), shown or not, oldest first."""
