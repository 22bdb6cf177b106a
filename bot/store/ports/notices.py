"""Notices owed to a person: an answer that could not reach them (the platform failed after the
turn was done), told the next time a message gets through, whichever process sends it."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

# A person is told about their last few lost answers, not an unbounded backlog.
MAX_NOTICES_PER_PERSON = 5


@dataclass(frozen=True)
class Notice:
    id: int
    ticket_number: str | None  # the ticket the lost answer named, if any
    created_at: datetime


class NoticeStore(Protocol):
    async def add_notice(self, channel: str, person: str, ticket_number: str | None, now: datetime) -> None:
        """Remember a lost answer; only the newest `MAX_NOTICES_PER_PERSON` are kept."""

    async def pending_notices(self, channel: str, person: str) -> Sequence[Notice]:
        """The person's notices, oldest first."""

    async def clear_notices(self, channel: str, person: str, up_to: int) -> None:
        """Forget the notices up to id `up_to` (they were told); newer ones stay."""
