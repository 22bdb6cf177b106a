"""Tickets: their numbering (a counter per year), their comments and the events of their workflow."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Mapping, Protocol, Sequence

from bot.domain.model import NewTicket, Ticket, TicketEvent
from bot.store.ports.outbox import NewOutboxMessage


class TicketStore(Protocol):
    """Tickets, ticket counters, comments and ticket events."""

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

    async def get_ticket(self, number: str) -> Ticket | None:
        """Look a ticket up by number, case-insensitively."""

    async def list_tickets(
        self,
        *,
        requester_email: str | None = None,
        company: str | None = None,
        open_only: bool = False,
        limit: int = 100,
    ) -> Sequence[Ticket]:
        """Newest first."""

    async def add_ticket_comment(
        self, number: str, author: str, text: str, now: datetime, internal: bool, *, idempotency_key: str | None = None
    ) -> None:
        """A comment whose idempotency key was used already is not added a second time."""

    async def list_ticket_comments(self, number: str, include_internal: bool) -> Sequence[Mapping[str, Any]]: ...

    # Writes outbox rows too: the messages a move causes are queued in the move's transaction.
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
        """Change fields of a ticket (status, assignee_email, solution_date, release_date, company) and queue
        the messages it causes, in one transaction; each changed field is recorded as a TicketEvent.
        With `expected_status`, raise StaleTicketError if the status is not that any more (two agents
        moving the same ticket at once). UnknownTicketError for an unknown number."""

    async def list_ticket_events(self, number: str) -> Sequence[TicketEvent]: ...
