"""Alembic environment of CareDesk, configured programmatically (there is no alembic.ini).

`bot.store.sql.alembic_config()` builds the `Config`; `SqlStore.initialize()` runs the upgrade
on its own (async) engine by passing a synchronous connection in
`config.attributes["connection"]` from inside `AsyncConnection.run_sync`.  Without one, this
file opens an async engine for `sqlalchemy.url` itself and uses the same run_sync pattern.
"""

from __future__ import annotations

import asyncio
from typing import Any

from alembic import context
from sqlalchemy.engine import Connection

from bot.store.models import UTCDateTime, metadata

config = context.config
target_metadata = metadata


def _render_item(type_: str, obj: Any, autogen_context: Any) -> str | bool:
    # Migrations stay independent of the models module: UTCDateTime is a TIMESTAMPTZ.
    if type_ == "type" and isinstance(obj, UTCDateTime):
        return "sa.DateTime(timezone=True)"
    return False


def _configure_options(dialect_name: str) -> dict[str, Any]:
    return {
        "target_metadata": target_metadata,
        "compare_type": True,
        "render_item": _render_item,
        # SQLite can hardly ALTER a table; batch mode re-creates it for later migrations.
        "render_as_batch": dialect_name == "sqlite",
    }


def do_run_migrations(connection: Connection) -> None:
    context.configure(connection=connection, **_configure_options(connection.dialect.name))
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_offline() -> None:
    url = config.get_main_option("sqlalchemy.url")
    dialect = url.split(":", 1)[0].split("+", 1)[0] if url else "sqlite"
    context.configure(
        url=url, literal_binds=True, dialect_opts={"paramstyle": "named"}, **_configure_options(dialect)
    )
    with context.begin_transaction():
        context.run_migrations()


async def _run_migrations_async(url: str) -> None:
    from bot.store.sql import create_engine_for, lock_migrations

    engine = create_engine_for(url)
    try:
        async with engine.begin() as conn:
            await conn.run_sync(lock_migrations)
            await conn.run_sync(do_run_migrations)
    finally:
        await engine.dispose()


def run_migrations_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        do_run_migrations(connection)
        return
    url = config.get_main_option("sqlalchemy.url")
    if not url:
        raise RuntimeError("no database: pass config.attributes['connection'] or set sqlalchemy.url")
    asyncio.run(_run_migrations_async(url))


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
