"""What operators read and run beside the conversations: the queues' state for the metrics,
the retention purge, and a person's data (GDPR export and erasure, `caredesk privacy`)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Mapping, Protocol, Sequence


@dataclass(frozen=True)
class QueueState:
    """A queue's rows by status and the age of its oldest unfinished row (None: none waits)."""

    by_status: Mapping[str, int] = field(default_factory=dict)
    oldest_waiting_seconds: float | None = None


@dataclass(frozen=True)
class OperationsSnapshot:
    inbox: QueueState
    outbox: QueueState
    # escalations (reason != emergency) and on-call pages (reason == emergency) by status
    escalations: Mapping[str, int]
    pages: Mapping[str, int]


@dataclass(frozen=True)
class RetentionCutoffs:
    dialogs: timedelta
    inbox_done: timedelta
    outbox_sent: timedelta
    conversation_refs: timedelta


@dataclass(frozen=True)
class ErasureReport:
    audit_id: int
    pseudonym: str
    # table -> rows deleted / rows rewritten
    deleted: Mapping[str, int]
    pseudonymised: Mapping[str, int]


class OperationsStore(Protocol):
    async def operations_snapshot(self, now: datetime) -> OperationsSnapshot:
        """Queue depths and ages, open and acknowledged escalations and pages."""
        ...

    async def purge_retained(self, now: datetime, cutoffs: RetentionCutoffs) -> Mapping[str, int]:
        """Delete what has been kept long enough (rows deleted per table)."""
        ...

    async def privacy_export(self, email: str) -> Mapping[str, Any] | None:
        """Everything held about the person with this e-mail (None: nothing at all)."""
        ...

    async def privacy_erase(self, email: str, now: datetime, by: str) -> ErasureReport | None:
        """Remove or pseudonymise the person's data in every table (None: nothing held), and
        keep an audit record of the erasure (without the person's identifiers)."""
        ...

    async def list_privacy_erasures(self) -> Sequence[Mapping[str, Any]]:
        """The erasures' audit records, oldest first."""
        ...
