"""Escalations of a ticket to the managers, and their climbing from level to level."""

from __future__ import annotations

from datetime import datetime
from typing import Protocol, Sequence

from bot.domain.model import Escalation, EscalationReason
from bot.store.ports.outbox import NewOutboxMessage


class EscalationStore(Protocol):
    """Escalations; each change queues the messages it causes in its own transaction."""

    # Writes outbox rows too: the managers' pings are queued in the escalation's transaction.
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
        """Record an escalation and queue its messages in the same transaction. With an
        idempotency key already used, return that escalation and queue nothing."""

    async def list_escalations(self, *, open_only: bool = True, ticket_number: str | None = None) -> Sequence[Escalation]: ...

    async def get_escalation(self, escalation_id: int) -> Escalation | None: ...

    # Writes outbox rows too, in the same transaction (see create_escalation).
    async def escalation_pinged(
        self, escalation_id: int, level: int, now: datetime, outbox: Sequence[NewOutboxMessage] = ()
    ) -> Escalation:
        """Queue (re-)pings and set the escalation's level (level_since = now when it changes) and
        last_ping_at = now, in one transaction — only while it is still open (else return it as is
        and queue nothing)."""

    # Writes outbox rows too, in the same transaction (see create_escalation).
    async def acknowledge_escalation(
        self, escalation_id: int, by: str, now: datetime, outbox: Sequence[NewOutboxMessage] = ()
    ) -> tuple[Escalation, bool]:
        """Mark acknowledged by `by` and queue the messages, in one transaction. Returns the
        escalation and whether this call acknowledged it (False: someone had already; nothing queued)."""
