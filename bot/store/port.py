"""The store port: everything the core persists goes through this interface.

One implementation exists (`bot.store.sql.SqlStore`, SQLite or PostgreSQL through SQLAlchemy);
the contract tests in `tests/store/` run against every implementation and back end.
"""

from __future__ import annotations

import abc
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Mapping, Sequence

from bot.domain.model import (
    Company,
    CustomerContact,
    DialogKey,
    Directory,
    Escalation,
    EscalationReason,
    NewTicket,
    NewTimeEntry,
    OutboxMessage,
    StaffMember,
    StaffRole,
    StoredDialog,
    Ticket,
    TicketEvent,
    TimeEntry,
)


class StoreError(Exception):
    """Base class of the store's own errors."""


class StaleDialogError(StoreError):
    """Someone else saved this dialog since it was read (optimistic concurrency, like e-tags)."""


class UnknownTicketError(StoreError):
    pass


class StaleTicketError(StoreError):
    """The ticket changed since it was read (another agent moved it first)."""


class StoreUnavailableError(StoreError):
    """The database cannot be reached; the caller should ask the platform to retry later."""


@dataclass(frozen=True)
class NewOutboxMessage:
    """A message the bot must send on its own initiative, written with the change that caused it."""

    idempotency_key: str
    recipient: str
    kind: str
    payload: Mapping[str, Any] = field(default_factory=dict)


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


@dataclass(frozen=True)
class TurnStart:
    """What every turn reads before anything else (`Store.read_turn_start`)."""

    processed: bool  # the delivery was handled already (a platform retry)
    dialog: StoredDialog | None
    contact: CustomerContact | None
    staff: StaffMember | None
    company: Company | None


@dataclass(frozen=True)
class DirectoryCounts:
    companies: int
    contacts: int
    staff: int


class Store(abc.ABC):
    # ---- life cycle -------------------------------------------------------------------------
    @abc.abstractmethod
    async def initialize(self) -> None:
        """Bring the schema up to date (Alembic migrations)."""

    @abc.abstractmethod
    async def close(self) -> None: ...

    @abc.abstractmethod
    async def ping(self) -> None:
        """Raise StoreUnavailableError when the database does not answer."""

    # ---- directory ----------------------------------------------------------------------------
    @abc.abstractmethod
    async def replace_directory(self, directory: Directory) -> DirectoryCounts:
        """Make the stored directory equal to `directory` (idempotent; e-mails compared case-insensitively)."""

    @abc.abstractmethod
    async def find_contact(self, email: str) -> CustomerContact | None: ...

    @abc.abstractmethod
    async def find_staff(self, email: str) -> StaffMember | None: ...

    @abc.abstractmethod
    async def get_company(self, name: str) -> Company | None:
        """Look a company up by name, case-insensitively."""

    @abc.abstractmethod
    async def read_turn_start(self, key: DialogKey, email: str | None,
                              event: tuple[str, str] | None = None) -> TurnStart:
        """In one read: whether the delivery `event` (source, id) was handled already, the
        conversation's stored dialog, and who `email` is (as `find_person`; all None without it)."""

    @abc.abstractmethod
    async def find_person(self, email: str) -> tuple[CustomerContact | None, StaffMember | None, Company | None]:
        """Who this e-mail is, read at once (every turn needs it): the customer contact, the staff
        member and the contact's company, each None when there is none."""

    @abc.abstractmethod
    async def list_companies(self) -> Sequence[Company]: ...

    @abc.abstractmethod
    async def list_staff(self, role: StaffRole | None = None, level: int | None = None) -> Sequence[StaffMember]: ...

    # ---- tickets ------------------------------------------------------------------------------
    @abc.abstractmethod
    async def create_ticket(
        self,
        new: NewTicket,
        now: datetime,
        number_format: str,
        idempotency_key: str | None = None,
    ) -> Ticket:
        """Create a ticket with the next number of `now`'s year: unique and gap-free under concurrency.

        With an idempotency key already used, return that ticket instead of creating a second one.
        """

    @abc.abstractmethod
    async def get_ticket(self, number: str) -> Ticket | None:
        """Look a ticket up by number, case-insensitively."""

    @abc.abstractmethod
    async def list_tickets(
        self,
        *,
        requester_email: str | None = None,
        company: str | None = None,
        open_only: bool = False,
        limit: int = 100,
    ) -> Sequence[Ticket]:
        """Newest first."""

    @abc.abstractmethod
    async def add_ticket_comment(
        self, number: str, author: str, text: str, now: datetime, internal: bool, *, idempotency_key: str | None = None
    ) -> None:
        """A comment whose idempotency key was used already is not added a second time."""

    @abc.abstractmethod
    async def list_ticket_comments(self, number: str, include_internal: bool) -> Sequence[Mapping[str, Any]]: ...

    # ---- dialog state (versioned) -----------------------------------------------------------------
    @abc.abstractmethod
    async def load_dialog(self, key: DialogKey) -> StoredDialog | None: ...

    @abc.abstractmethod
    async def save_dialog(
        self,
        key: DialogKey,
        state: Mapping[str, Any],
        expected_version: int | None,
        now: datetime,
        *,
        event: tuple[str, str] | None = None,
    ) -> int:
        """Save and return the new version; raise StaleDialogError if the stored version is not
        `expected_version` (None means: there must be no stored dialog yet).

        `event=(source, event_id)` claims that platform delivery in the same transaction; a
        delivery claimed already raises StaleDialogError and nothing is saved."""

    @abc.abstractmethod
    async def delete_dialog(
        self,
        key: DialogKey,
        expected_version: int,
        *,
        event: tuple[str, str] | None = None,
        now: datetime | None = None,
    ) -> None:
        """Raise StaleDialogError if the stored version is not `expected_version`; `event` as in
        save_dialog."""

    # ---- idempotency of platform deliveries ---------------------------------------------------------
    @abc.abstractmethod
    async def claim_event(self, source: str, event_id: str, now: datetime) -> bool:
        """True the first time (source, event_id) is seen, across every process; False afterwards."""

    @abc.abstractmethod
    async def is_event_processed(self, source: str, event_id: str) -> bool:
        """Whether (source, event_id) was claimed already (read only)."""

    # ---- conversation references (proactive messages) -----------------------------------------------
    @abc.abstractmethod
    async def save_conversation_ref(
        self, channel: str, user_key: str, reference: Mapping[str, Any], now: datetime, email: str | None = None
    ) -> None: ...

    @abc.abstractmethod
    async def get_conversation_ref(self, channel: str, user_key: str) -> Mapping[str, Any] | None: ...

    @abc.abstractmethod
    async def find_conversation_refs_by_email(self, email: str) -> Sequence[tuple[str, str, Mapping[str, Any]]]:
        """(channel, user_key, reference) of every place the person with this e-mail was seen."""

    # ---- escalations --------------------------------------------------------------------------------
    @abc.abstractmethod
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

    @abc.abstractmethod
    async def list_escalations(self, *, open_only: bool = True, ticket_number: str | None = None) -> Sequence[Escalation]: ...

    # ---- outbox -------------------------------------------------------------------------------------
    @abc.abstractmethod
    async def enqueue(self, messages: Sequence[NewOutboxMessage], now: datetime) -> None:
        """Queue messages; a message whose idempotency key is already queued is ignored."""

    @abc.abstractmethod
    async def list_outbox(self, status: str | None = None) -> Sequence[OutboxMessage]: ...

    @abc.abstractmethod
    async def claim_outbox(self, now: datetime, lease: timedelta, limit: int = 20) -> Sequence[OutboxMessage]:
        """Take up to `limit` due messages for delivery: status pending with next_attempt_at <= now,
        or status sending whose lease ran out (a dispatcher died mid-delivery). They become
        "sending", locked until now + lease, attempts + 1. Several dispatchers on one PostgreSQL
        database never take the same message (SELECT … FOR UPDATE SKIP LOCKED)."""

    @abc.abstractmethod
    async def mark_sent(self, message_id: int, now: datetime) -> None: ...

    @abc.abstractmethod
    async def mark_retry(self, message_id: int, next_attempt_at: datetime, error: str) -> None:
        """Back to pending, to be tried again at `next_attempt_at`."""

    @abc.abstractmethod
    async def mark_failed(self, message_id: int, error: str) -> None:
        """Dead letter: no more attempts until `requeue_failed`."""

    @abc.abstractmethod
    async def requeue_failed(self, now: datetime, message_ids: Sequence[int] | None = None) -> int:
        """Failed messages (all, or those ids) back to pending with attempts reset; returns how many."""

    # ---- inbox: what people sent, waiting for a worker ----------------------------------------------
    @abc.abstractmethod
    async def enqueue_inbound(self, items: Sequence[NewInboxItem], now: datetime) -> int:
        """Write the items (one transaction) as pending, due now; returns how many were new. An
        item whose dedup_key is already stored (or repeated in `items`) is ignored."""

    @abc.abstractmethod
    async def claim_inbound(
        self, now: datetime, lease: timedelta, limit: int = 10, channels: Sequence[str] | None = None
    ) -> Sequence[InboxItem]:
        """Take up to `limit` items to work on, by priority then arrival: pending items due by
        `now`, or working items whose lease ran out (their worker died). Only the oldest unfinished
        (pending or working) item of a conversation can be taken, so one conversation's turns are
        never worked on at the same time nor out of order. Taken items become "working", locked
        until now + lease, attempts + 1; several workers never take the same item."""

    # `attempt`: the `attempts` of the caller's claim. With it, the change is made only while that
    # claim holds (the item is working at that attempt): a worker whose lease ran out and whose
    # item another worker took changes nothing, and learns it from the False returned.
    @abc.abstractmethod
    async def extend_inbound(self, item_id: int, locked_until: datetime, *, attempt: int | None = None) -> bool:
        """A worker still on an item keeps it: its lease now runs until `locked_until`. False
        when the item is not being worked on (or not at `attempt`)."""

    @abc.abstractmethod
    async def finish_inbound(self, item_id: int, now: datetime, *, attempt: int | None = None) -> bool:
        """Done: the next item of its conversation may be taken."""

    @abc.abstractmethod
    async def retry_inbound(self, item_id: int, next_attempt_at: datetime, error: str, *,
                            attempt: int | None = None) -> bool:
        """Back to pending, due at `next_attempt_at` (its conversation waits for it)."""

    @abc.abstractmethod
    async def fail_inbound(self, item_id: int, error: str, *, attempt: int | None = None) -> bool:
        """Given up (dead letter): kept for inspection; its conversation goes on without it."""

    @abc.abstractmethod
    async def list_inbound(self, status: str | None = None) -> Sequence[InboxItem]: ...

    @abc.abstractmethod
    async def count_unfinished_inbound(self) -> int:
        """Items pending or working."""

    @abc.abstractmethod
    async def purge_inbound(self, done_before: datetime) -> int:
        """Delete done items finished before `done_before` (kept that long so that a platform's
        late retry or a replay is still recognised by its dedup_key); returns how many."""

    # ---- time entries ---------------------------------------------------------------------------------
    @abc.abstractmethod
    async def add_time_entry(self, entry: NewTimeEntry, now: datetime, idempotency_key: str | None = None) -> TimeEntry:
        """Record the entry and its "create" change; UnknownTicketError for an unknown ticket. With
        an idempotency key already used, return that entry."""

    @abc.abstractmethod
    async def get_time_entry(self, entry_id: int) -> TimeEntry | None: ...

    @abc.abstractmethod
    async def update_time_entry(self, entry_id: int, entry: NewTimeEntry, by: str, now: datetime) -> TimeEntry:
        """Replace the entry's values, recording who changed what (before and after)."""

    @abc.abstractmethod
    async def delete_time_entry(self, entry_id: int, by: str, now: datetime) -> TimeEntry:
        """Mark deleted (never removed), recording who and when."""

    @abc.abstractmethod
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

    @abc.abstractmethod
    async def list_time_entry_changes(self, entry_id: int) -> Sequence[Mapping[str, Any]]:
        """Dicts with changed_by, changed_at, action ("create", "update", "delete"), before, after."""

    # ---- ticket workflow ------------------------------------------------------------------------------
    @abc.abstractmethod
    async def update_ticket(
        self,
        number: str,
        *,
        by: str,
        now: datetime,
        changes: Mapping[str, Any],
        expected_status: str | None = None,
        outbox: Sequence[NewOutboxMessage] = (),
    ) -> Ticket:
        """Change fields of a ticket (status, assignee_email, solution_date, release_date) and queue
        the messages it causes, in one transaction; each changed field is recorded as a TicketEvent.
        With `expected_status`, raise StaleTicketError if the status is not that any more (two agents
        moving the same ticket at once). UnknownTicketError for an unknown number."""

    @abc.abstractmethod
    async def list_ticket_events(self, number: str) -> Sequence[TicketEvent]: ...

    # ---- escalation climbing --------------------------------------------------------------------------
    @abc.abstractmethod
    async def get_escalation(self, escalation_id: int) -> Escalation | None: ...

    @abc.abstractmethod
    async def escalation_pinged(
        self, escalation_id: int, level: int, now: datetime, outbox: Sequence[NewOutboxMessage] = ()
    ) -> Escalation:
        """Queue (re-)pings and set the escalation's level (level_since = now when it changes) and
        last_ping_at = now, in one transaction — only while it is still open (else return it as is
        and queue nothing)."""

    @abc.abstractmethod
    async def acknowledge_escalation(
        self, escalation_id: int, by: str, now: datetime, outbox: Sequence[NewOutboxMessage] = ()
    ) -> tuple[Escalation, bool]:
        """Mark acknowledged by `by` and queue the messages, in one transaction. Returns the
        escalation and whether this call acknowledged it (False: someone had already; nothing queued)."""
