"""Conversations in progress: the versioned dialog states and the platform deliveries already
handled (so that a platform's retry is not worked on twice)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Mapping, Protocol, Sequence

from bot.domain.model import Company, CustomerContact, DialogKey, StaffMember, StoredDialog
from bot.store.ports.outbox import NewOutboxMessage


@dataclass(frozen=True)
class TurnStart:
    """What every turn reads before anything else (`DialogStore.read_turn_start`)."""

    processed: bool  # the delivery was handled already (a platform retry)
    dialog: StoredDialog | None
    contact: CustomerContact | None
    staff: StaffMember | None
    company: Company | None
    # Notices of lost answers are owed to the person the read was given (`NoticeStore`).
    notices_owed: bool = False
    # Messages are kept for the e-mail's next visit (`OutboxStore.pending_kept_messages`).
    kept_waiting: bool = False


class DialogStore(Protocol):
    """Dialog states (optimistic versions) and processed deliveries (claims), on one port because
    a dialog save or delete claims its delivery in its own transaction."""

    # Reads the directory too: a turn's first read is one transaction, and it is about the turn.
    async def read_turn_start(self, key: DialogKey, email: str | None,
                              event: tuple[str, str] | None = None, person: str | None = None) -> TurnStart:
        """In one read: whether the delivery `event` (source, id) was handled already, the
        conversation's stored dialog, who `email` is (as `find_person`; all None without it),
        whether notices are owed to `person` on the key's channel (`NoticeStore`), and whether
        messages are kept for `email` (shown_at unset: `OutboxStore.take_kept_messages`)."""

    async def load_dialog(self, key: DialogKey) -> StoredDialog | None: ...

    async def save_dialog(
        self,
        key: DialogKey,
        state: Mapping[str, Any],
        expected_version: int | None,
        now: datetime,
        *,
        event: tuple[str, str] | None = None,
        reply: NewOutboxMessage | None = None,
        shown: Sequence[int] = (),
    ) -> int:
        """Save and return the new version; raise StaleDialogError if the stored version is not
        `expected_version` (None means: there must be no stored dialog yet).

        `event=(source, event_id)` claims that platform delivery in the same transaction; a
        delivery claimed already raises StaleDialogError and nothing is saved. `reply`: the
        turn's answer, queued in the outbox in the same transaction (a durable reply). `shown`:
        the ids of the messages kept for the person (`OutboxStore.pending_kept_messages`) that
        the answer shows, marked shown in the same transaction; one shown meanwhile by another
        turn raises StaleDialogError and nothing is saved."""

    async def delete_dialog(
        self,
        key: DialogKey,
        expected_version: int,
        *,
        event: tuple[str, str] | None = None,
        now: datetime | None = None,
        reply: NewOutboxMessage | None = None,
        shown: Sequence[int] = (),
    ) -> None:
        """Raise StaleDialogError if the stored version is not `expected_version`; `event`,
        `reply` and `shown` as in save_dialog."""

    async def claim_event(self, source: str, event_id: str, now: datetime, *,
                          reply: NewOutboxMessage | None = None, shown: Sequence[int] = ()) -> bool:
        """True the first time (source, event_id) is seen, across every process; False afterwards.
        `reply` is queued in the outbox with the claim (only when it is the first time), and
        `shown` marked shown as in save_dialog."""

    async def is_event_processed(self, source: str, event_id: str) -> bool:
        """Whether (source, event_id) was claimed already (read only)."""
