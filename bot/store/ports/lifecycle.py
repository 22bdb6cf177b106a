"""The store's life cycle: its schema, its connections, whether the database answers."""

from __future__ import annotations

from typing import Protocol


class StoreLifecycle(Protocol):
    """What a process does with its store as a whole, whichever aggregates it then uses."""

    async def initialize(self) -> None:
        """Bring the schema up to date (Alembic migrations)."""

    async def close(self) -> None: ...

    async def ping(self) -> None:
        """Raise StoreUnavailableError when the database does not answer."""
