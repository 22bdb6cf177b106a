"""The store on SQLAlchemy 2 (async): SQLite through aiosqlite (embedded, the default) or PostgreSQL
through asyncpg, one module per aggregate over a shared base (`base.py`: engine, transactions,
migrations). The schema is managed by the Alembic migrations in `bot/store/migrations`.
"""

from __future__ import annotations

from bot.store.sql.base import (
    SqlBase,
    alembic_config,
    create_engine_for,
    lock_migrations,
    to_json,
    upgrade,
    upgrade_async,
)
from bot.store.sql.dialogs import SqlDialogs
from bot.store.sql.directory import SqlDirectory
from bot.store.sql.escalations import SqlEscalations
from bot.store.sql.inbox import SqlInbox
from bot.store.sql.notices import SqlNotices
from bot.store.sql.operations import SqlOperations
from bot.store.sql.outbox import SqlOutbox
from bot.store.sql.portal import SqlPortal
from bot.store.sql.tickets import SqlTickets
from bot.store.sql.time_entries import SqlTimeEntries


class SqlStore(SqlDirectory, SqlTickets, SqlDialogs, SqlTimeEntries, SqlEscalations, SqlOutbox, SqlInbox, SqlNotices,
               SqlOperations, SqlPortal, SqlBase):
    """`Store` on SQLite (aiosqlite) or PostgreSQL (asyncpg): every aggregate's SQL module at once.

    Composed of mixins over one `SqlBase` rather than by delegation: the aggregates share one
    engine, one transaction helper and SQLite's in-process write queue, and a transaction that
    writes two aggregates (a ticket move and its outbox messages) calls the other module's helper
    on its own connection; delegation would forward every port method and pass that connection
    between objects.

    Extra public API: `url`, `dialect` ("sqlite" / "postgresql") and `engine` (the AsyncEngine,
    e.g. for tests or later modules of the store); `**engine_kwargs` go to create_async_engine;
    `is_event_processed()`; the keyword `event=(source, event_id)` of save_dialog /
    delete_dialog that claims a platform delivery in the same transaction as the dialog write;
    the keyword `idempotency_key` of create_escalation and add_ticket_comment.

    Where the port leaves it open: update_time_entry / delete_time_entry raise LookupError for
    an unknown or deleted entry, escalation_pinged / acknowledge_escalation for an unknown
    escalation; get_time_entry also returns deleted entries; amounts must be whole cents.
    """


__all__ = [
    "SqlStore",
    "alembic_config",
    "create_engine_for",
    "lock_migrations",
    "to_json",
    "upgrade",
    "upgrade_async",
]
