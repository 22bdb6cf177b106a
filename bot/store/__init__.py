"""Persistence: the store's ports (one per aggregate, and `Store`, their union) and its SQL implementation."""

from bot.store.ports import Store, StoreError, StaleDialogError, StoreUnavailableError, UnknownTicketError


def open_store(url: str) -> Store:
    """The store for a database URL (sqlite+aiosqlite:// or postgresql+asyncpg://)."""
    from bot.store.sql import SqlStore

    return SqlStore(url)


__all__ = ["Store", "StoreError", "StaleDialogError", "StoreUnavailableError", "UnknownTicketError", "open_store"]
