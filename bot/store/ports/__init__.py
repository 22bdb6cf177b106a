"""The store's ports, one per aggregate, and `Store`, the union of them all.

A service types its dependency by the narrow port it uses (the inbox worker needs `InboxStore`
only); wiring and code that reaches every aggregate use `Store`. One implementation exists
(`bot.store.sql.SqlStore`, SQLite or PostgreSQL through SQLAlchemy); the contract tests in
`tests/store/` run each port against every implementation and back end.

A method whose transaction writes two aggregates sits on the port whose change it is (a ticket
move queues its messages in the outbox: `TicketStore.update_ticket`); its port says so.
"""

from __future__ import annotations

from typing import Protocol

from bot.store.ports.dialogs import DialogStore, TurnStart
from bot.store.ports.directory import DirectoryCounts, DirectoryStore
from bot.store.ports.errors import (
    StaleDialogError,
    StaleTicketError,
    StoreError,
    StoreUnavailableError,
    UnknownTicketError,
)
from bot.store.ports.escalations import EscalationStore
from bot.store.ports.inbox import InboxItem, InboxStore, NewInboxItem
from bot.store.ports.lifecycle import StoreLifecycle
from bot.store.ports.notices import Notice, NoticeStore
from bot.store.ports.operations import (
    ErasureReport,
    OperationsSnapshot,
    OperationsStore,
    QueueState,
    RetentionCutoffs,
)
from bot.store.ports.outbox import NewOutboxMessage, OutboxStore
from bot.store.ports.portal import PortalActivity, PortalStore
from bot.store.ports.tickets import TicketStore
from bot.store.ports.time_entries import TimeEntryStore


class Store(
    StoreLifecycle,
    DirectoryStore,
    TicketStore,
    DialogStore,
    TimeEntryStore,
    EscalationStore,
    OutboxStore,
    InboxStore,
    NoticeStore,
    OperationsStore,
    PortalStore,
    Protocol,
):
    """Everything the core persists: every port at once."""


# Every port `Store` is made of, for the check that an implementation has all their methods.
PORTS: tuple[type, ...] = (
    StoreLifecycle,
    DirectoryStore,
    TicketStore,
    DialogStore,
    TimeEntryStore,
    EscalationStore,
    OutboxStore,
    InboxStore,
    NoticeStore,
    OperationsStore,
    PortalStore,
)

__all__ = [
    "PORTS",
    "DialogStore",
    "DirectoryCounts",
    "DirectoryStore",
    "EscalationStore",
    "InboxItem",
    "InboxStore",
    "NewInboxItem",
    "NewOutboxMessage",
    "Notice",
    "NoticeStore",
    "ErasureReport",
    "OperationsSnapshot",
    "OperationsStore",
    "QueueState",
    "RetentionCutoffs",
    "OutboxStore",
    "PortalActivity",
    "PortalStore",
    "StaleDialogError",
    "StaleTicketError",
    "Store",
    "StoreError",
    "StoreLifecycle",
    "StoreUnavailableError",
    "TicketStore",
    "TimeEntryStore",
    "TurnStart",
    "UnknownTicketError",
]
