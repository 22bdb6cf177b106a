"""The customer-portal chat's conversations and transcript: each person (their e-mail, as the
portal's signed token proves it) has one conversation; its activities are kept, numbered in
order, so a reload or the next visit shows the conversation so far and a page that reconnects
asks only for what it has not seen (the number is the Direct Line watermark)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

# A page opened on a long conversation is sent its newest activities, not the whole history.
PORTAL_HISTORY_LIMIT = 200


@dataclass(frozen=True)
class PortalActivity:
    seq: int  # 1, 2, 3 … within its conversation
    activity: Mapping[str, Any]  # the Bot Framework activity as the page shows it
    client_id: str | None
    created_at: datetime


class PortalStore(Protocol):
    async def open_portal_conversation(self, person: str, new_id: str, now: datetime) -> str:
        """The person's conversation id: the one they have, or `new_id`, created now."""

    async def portal_person(self, conversation_id: str) -> str | None:
        """Whose conversation this is (their e-mail key), or None for an unknown id."""

    async def portal_conversation_of(self, person: str) -> str | None:
        """The person's conversation id, or None when they never opened the portal chat."""

    async def add_portal_activities(self, conversation_id: str, activities: Sequence[Mapping[str, Any]],
                                    now: datetime, *, client_id: str | None = None) -> list[int]:
        """Append activities in order and return their numbers. With a `client_id` (what the page
        gave the person's message; then `activities` is that one message), a second call with the
        same id appends nothing and returns the number the first one got: a message sent again is
        one message."""

    async def portal_activities(self, conversation_id: str, after: int = 0,
                                limit: int = PORTAL_HISTORY_LIMIT) -> Sequence[PortalActivity]:
        """The activities numbered above `after`, oldest first; at most the newest `limit`."""
