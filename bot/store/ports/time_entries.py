"""Time registration: the time agents log on tickets, never removed, every change recorded."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Mapping, Protocol, Sequence

from bot.domain.model import NewTimeEntry, TimeEntry


class TimeEntryStore(Protocol):
    """Time entries and their change history."""

    async def add_time_entry(self, entry: NewTimeEntry, now: datetime, idempotency_key: str | None = None) -> TimeEntry:
        """Record the entry and its "create" change; UnknownTicketError for an unknown ticket. With
        an idempotency key already used, return that entry."""

    async def get_time_entry(self, entry_id: int) -> TimeEntry | None: ...

    async def update_time_entry(self, entry_id: int, entry: NewTimeEntry, by: str, now: datetime) -> TimeEntry:
        """Replace the entry's values, recording who changed what (before and after)."""

    async def delete_time_entry(self, entry_id: int, by: str, now: datetime) -> TimeEntry:
        """Mark deleted (never removed), recording who and when."""

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
        """Oldest first (by start, then id)."""

    async def list_time_entry_changes(self, entry_id: int) -> Sequence[Mapping[str, Any]]:
        """Dicts with changed_by, changed_at, action ("create", "update", "delete"), before, after."""
