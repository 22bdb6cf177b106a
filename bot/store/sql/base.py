"""What every aggregate's SQL module shares: the engine (SQLite through aiosqlite, the default, or
PostgreSQL through asyncpg), transactions, dialect helpers, the mapping of connection failures to
`StoreUnavailableError`, the Alembic migration runner, and the checks and conversions of values.
The schema is managed by the Alembic migrations in `bot/store/migrations`.

Concurrency:
* SQLite: WAL journal, a 30 s busy timeout, and every transaction starts with BEGIN IMMEDIATE (the
  write lock is taken up front), so concurrent writers queue instead of failing with "database is
  locked" when a reader tries to become a writer; a process's own writers queue on a lock first.
* PostgreSQL: row locks; the ticket counter row is locked by its upsert until commit; a ticket
  (update_ticket), time entry or escalation being changed is read with SELECT … FOR UPDATE, and
  outbox dispatchers claim messages, and inbox workers items, with FOR UPDATE SKIP LOCKED.
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
import time
from contextlib import asynccontextmanager
from datetime import date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any, AsyncIterator, Callable

from alembic import command
from prometheus_client import Counter
from alembic.config import Config
from sqlalchemy import Select, and_, event, or_, text
from sqlalchemy import exc as sa_exc
from sqlalchemy.dialects import postgresql as pg_dialect
from sqlalchemy.dialects import sqlite as sqlite_dialect
from sqlalchemy.engine import Connection, make_url
from sqlalchemy.engine.url import URL
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine
from sqlalchemy.pool import StaticPool

from bot.store.ports import StoreError, StoreUnavailableError

try:  # asyncpg is a dependency, but keep SQLite usable should it be missing
    import asyncpg.exceptions as _asyncpg_exc

    _ASYNCPG_UNAVAILABLE: tuple[type[BaseException], ...] = (
        _asyncpg_exc.PostgresConnectionError,
        _asyncpg_exc.InterfaceError,
        _asyncpg_exc.CannotConnectNowError,
        _asyncpg_exc.TooManyConnectionsError,
        _asyncpg_exc.AdminShutdownError,
        _asyncpg_exc.CrashShutdownError,
        # 55000 when connecting: "database … is not currently accepting connections" (being
        # restored, or closed for maintenance); CareDesk's own statements never raise it.
        _asyncpg_exc.ObjectNotInPrerequisiteStateError,
    )
except ImportError:  # pragma: no cover
    _ASYNCPG_UNAVAILABLE = ()

# The migrations stay in bot/store/migrations, beside this package (not in it).
MIGRATIONS_DIR = Path(__file__).resolve().parent.parent / "migrations"
# Any constant shared by every CareDesk process: serialises concurrent `alembic upgrade`s.
MIGRATION_LOCK_ID = 0x43617265_4465736B  # "CareDesk"
SQLITE_BUSY_TIMEOUT_S = 30


# Failures of the database as the store met them (docs/operations.md): `unavailable` (connection
# lost, timeout, locked: the platform is asked to retry) or `error` (any other driver error).
DATABASE_ERRORS = Counter("caredesk_database_errors", "Database failures met by the store", ["kind"])
for _kind in ("unavailable", "error"):  # shown at 0 from the start
    DATABASE_ERRORS.labels(_kind)


# ---- engine and migrations ------------------------------------------------------------------------


def _is_sqlite_memory(url: URL) -> bool:
    database = url.database or ""
    return database in ("", ":memory:") or url.query.get("mode") == "memory"


def _sqlite_on_connect(dbapi_connection: Any, connection_record: Any) -> None:
    # Take transaction control away from the sqlite3 driver: SQLAlchemy's "begin" event (below)
    # emits BEGIN IMMEDIATE itself.  PRAGMAs must run outside a transaction, i.e. now.
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute(f"PRAGMA busy_timeout = {SQLITE_BUSY_TIMEOUT_S * 1000}")
        _enable_wal(cursor)
        cursor.execute("PRAGMA synchronous = NORMAL")
        cursor.execute("PRAGMA foreign_keys = ON")
    finally:
        cursor.close()


def _enable_wal(cursor: Any) -> None:
    """Switch the database file to WAL (persistent: a no-op once done).

    The switch needs an exclusive lock and SQLite does not always wait for it through the busy
    handler: when several connections open a brand-new file at once, the losers see "database is
    locked" and retry briefly (WAL set by the winner also applies to them).
    """
    for _ in range(300):
        try:
            cursor.execute("PRAGMA journal_mode = WAL")
            row = cursor.fetchone()
            mode = str(row[0]).lower() if row else ""
            if mode in ("wal", "memory"):
                return
        except Exception as exc:  # the adapted sqlite3.OperationalError
            if "locked" not in str(exc) and "busy" not in str(exc):
                raise
        time.sleep(0.01)  # only ever while a new database file is being created
    raise StoreUnavailableError("could not switch the SQLite database to WAL mode (database locked)")


def _sqlite_on_begin(conn: Connection) -> None:
    # Writers take the write lock at once (no deadlock between two deferred upgrades); readers
    # start deferred and read the last committed state (WAL) without waiting.
    read_only = conn.get_execution_options().get("caredesk_read_only", False)
    conn.exec_driver_sql("BEGIN" if read_only else "BEGIN IMMEDIATE")


def create_engine_for(url: str | URL, *, echo: bool = False, **kwargs: Any) -> AsyncEngine:
    """An async engine set up for CareDesk: SQLite (aiosqlite) or PostgreSQL (asyncpg)."""
    u = make_url(url)
    backend = u.get_backend_name()
    # JSON columns take Decimal and dates as to_json() writes them (strings), in one encoding.
    kwargs.setdefault("json_serializer", _json_dumps)
    if backend == "sqlite":
        if u.get_driver_name() != "aiosqlite":
            raise ValueError(f"SQLite is used through aiosqlite: sqlite+aiosqlite:///PATH, got {u.render_as_string()}")
        connect_args = dict(kwargs.pop("connect_args", {}))
        connect_args.setdefault("timeout", SQLITE_BUSY_TIMEOUT_S)
        if _is_sqlite_memory(u):
            kwargs.setdefault("poolclass", StaticPool)
        else:
            Path(u.database or "").expanduser().parent.mkdir(parents=True, exist_ok=True)
            # Connections kept open, not the pool's default 5: under a flood the acks' checks,
            # the inbox's writes and the worker's turns want more at once, and a connection
            # beyond the kept ones is closed when returned; opening one costs a thread and
            # its PRAGMAs (measured: a new connection every few requests under a flood).
            kwargs.setdefault("pool_size", 20)
            kwargs.setdefault("max_overflow", 20)
        engine = create_async_engine(u, echo=echo, connect_args=connect_args, **kwargs)
        event.listen(engine.sync_engine, "connect", _sqlite_on_connect)
        event.listen(engine.sync_engine, "begin", _sqlite_on_begin)
        return engine
    if backend == "postgresql":
        if u.get_driver_name() != "asyncpg":
            raise ValueError(
                f"PostgreSQL is used through asyncpg: postgresql+asyncpg://USER@HOST/DB, got {u.render_as_string()}"
            )
        # No pre-ping: it costs a round trip per transaction. A connection that died with the
        # server fails once (StoreUnavailableError: the platform retries) and the pool then
        # replaces every connection older than that failure.
        # Ten connections kept per process, ten more at a peak: connections beyond the kept
        # ones are closed when returned, and opening one costs a PostgreSQL backend (measured:
        # under a flood with the default 5 most of the server's time went to reconnecting).
        kwargs.setdefault("pool_size", 10)
        kwargs.setdefault("max_overflow", 10)
        # No bitmap scans: CareDesk's statements read a few rows by index, and its two queues
        # (inbox, outbox) change every row's status, leaving a dead entry in their partial
        # indexes for each change until the next vacuum. A plain index scan marks the dead entries
        # it meets so the next one skips them; a bitmap scan (the planner's pick for the few rows
        # it expects) never does, and every claim read them all again (measured: 2,000 entries
        # for 50 live rows, and a quarter of the database's time per turn; docs/performance.md).
        connect_args = dict(kwargs.pop("connect_args", {}))
        connect_args["server_settings"] = {"enable_bitmapscan": "off", **connect_args.get("server_settings", {})}
        return create_async_engine(u, echo=echo, connect_args=connect_args, **kwargs)
    raise ValueError(f"unsupported database {backend!r}: use sqlite+aiosqlite or postgresql+asyncpg")


def alembic_config(url: str | None = None, connection: Connection | None = None) -> Config:
    """Alembic's configuration, built in code (there is no alembic.ini)."""
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    if url is not None:
        cfg.set_main_option("sqlalchemy.url", str(url).replace("%", "%%"))
    if connection is not None:
        cfg.attributes["connection"] = connection
    return cfg


def lock_migrations(connection: Connection) -> None:
    """Serialise schema upgrades of several processes starting at once (inside the transaction).

    PostgreSQL: a transaction-level advisory lock.  SQLite: BEGIN IMMEDIATE already holds the
    database's write lock.
    """
    if connection.dialect.name == "postgresql":
        connection.execute(text("SELECT pg_advisory_xact_lock(:id)"), {"id": MIGRATION_LOCK_ID})


def _upgrade_on_connection(connection: Connection, revision: str = "head") -> None:
    lock_migrations(connection)
    command.upgrade(alembic_config(connection=connection), revision)


async def upgrade_async(url: str, revision: str = "head") -> None:
    """Bring the database at `url` up to `revision` (one transaction)."""
    engine = create_engine_for(url)
    try:
        await _run_upgrade(engine, revision)
    finally:
        await engine.dispose()


def upgrade(url: str, revision: str = "head") -> None:
    """Synchronous helper for the command line (`caredesk db upgrade`); not for a running loop."""
    asyncio.run(upgrade_async(url, revision))


async def _run_upgrade(engine: AsyncEngine, revision: str) -> None:
    try:
        async with engine.begin() as conn:
            await conn.run_sync(_upgrade_on_connection, revision)
    except Exception as exc:
        if _is_unavailable(exc):
            raise StoreUnavailableError(f"database unavailable: {exc}") from exc
        raise


# ---- errors ---------------------------------------------------------------------------------------


def _is_unavailable(exc: BaseException) -> bool:
    if isinstance(exc, StoreError):
        return False
    if isinstance(exc, (OSError, asyncio.TimeoutError, sa_exc.TimeoutError, sqlite3.OperationalError)):
        return True
    if _ASYNCPG_UNAVAILABLE and isinstance(exc, _ASYNCPG_UNAVAILABLE):
        return True
    if isinstance(exc, sa_exc.DBAPIError):
        if exc.connection_invalidated:
            return True
        if isinstance(exc, (sa_exc.OperationalError, sa_exc.InterfaceError)):
            return True
        orig = getattr(exc, "orig", None)
        cause = getattr(orig, "__cause__", None)
        return any(isinstance(e, (OSError,) + _ASYNCPG_UNAVAILABLE) for e in (orig, cause) if e is not None)
    return False


# ---- values ---------------------------------------------------------------------------------------


def _json_default(value: Any) -> Any:
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, (datetime, date)):
        return value.isoformat()
    if isinstance(value, (set, frozenset)):
        return sorted(value, key=str)
    raise TypeError(f"value of type {type(value).__name__} is not JSON serialisable: {value!r}")


def _json_dumps(value: Any) -> str:
    try:
        return json.dumps(value, default=_json_default, allow_nan=False)
    except ValueError as exc:  # NaN / infinity
        raise TypeError(str(exc)) from None


def to_json(value: Any) -> Any:
    """Plain JSON-compatible copy of `value` (Decimal -> str, date/datetime -> ISO 8601).

    Raises TypeError now, rather than at the database, for anything JSON cannot hold.
    """
    return json.loads(_json_dumps(value))


def _claim_limit(now: datetime, lease: timedelta, limit: int) -> int:
    """The arguments of a claim (outbox, inbox), checked; the limit as an int."""
    _aware(now)
    if not isinstance(lease, timedelta) or lease <= timedelta(0):
        raise ValueError(f"lease must be a positive timedelta, got {lease!r}")
    return int(limit)


def _due(table: Any, taken: str, now: datetime) -> Any:
    """Rows a claim may take: pending and due, or `taken` by a process whose lease ran out
    (it died or hung before marking them)."""
    return or_(
        and_(table.c.status == "pending", table.c.next_attempt_at <= now),
        and_(table.c.status == taken, table.c.locked_until < now),
    )


def _aware(value: datetime, name: str = "now") -> datetime:
    if not isinstance(value, datetime):
        raise TypeError(f"{name} must be a datetime, got {type(value).__name__}")
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"{name} must be timezone-aware, got {value.isoformat()}")
    return value


def _email_key(email: str) -> str:
    return email.strip().lower()


def _number_key(number: str) -> str:
    return number.strip().lower()


def _value(v: Any) -> Any:
    return v.value if hasattr(v, "value") else v


def dialect_insert(dialect: str) -> Callable[[Any], Any]:
    """The dialect's INSERT, the one with ON CONFLICT (PostgreSQL's or SQLite's)."""
    return pg_dialect.insert if dialect == "postgresql" else sqlite_dialect.insert


# ---- the shared base ------------------------------------------------------------------------------


class SqlBase:
    """The engine and the transactions every aggregate's SQL module runs on, and the store's life
    cycle (`StoreLifecycle`). Each aggregate is a subclass adding its port's methods; `SqlStore`
    combines them all over one engine.

    Public: `url`, `dialect` ("sqlite" / "postgresql") and `engine` (the AsyncEngine, e.g. for
    tests); `**engine_kwargs` go to create_async_engine.
    """

    def __init__(self, url: str, *, echo: bool = False, **engine_kwargs: Any) -> None:
        self.url = url
        self.engine: AsyncEngine = create_engine_for(url, echo=echo, **engine_kwargs)
        self.dialect: str = self.engine.dialect.name
        # A :memory: database lives in one shared connection (StaticPool): one transaction at a time.
        u = make_url(url)
        self._serial = asyncio.Lock() if self.dialect == "sqlite" and _is_sqlite_memory(u) else None
        self._writers = asyncio.Lock() if self.dialect == "sqlite" and self._serial is None else None
        self._upsert: Callable[[Any], Any] = dialect_insert(self.dialect)
        # On PostgreSQL reads, and writes of one statement, run without BEGIN/COMMIT (`_tx`):
        # one statement is atomic by itself, and at READ COMMITTED (the default) each statement
        # sees its own snapshot inside a transaction too, so the transaction guarantees nothing
        # more and costs two round trips (measured: a tenth of a worker's turn).
        self._autocommit: AsyncEngine | None = (
            self.engine.execution_options(isolation_level="AUTOCOMMIT") if self.dialect == "postgresql" else None)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.engine.url.render_as_string(hide_password=True)!r})"

    # ---- plumbing -----------------------------------------------------------------------------
    @asynccontextmanager
    async def _tx(self, read_only: bool = False, autocommit: bool = False) -> AsyncIterator[AsyncConnection]:
        """One transaction; connection failures become StoreUnavailableError. On SQLite a
        read-only one starts deferred, so reads do not queue behind every writer; on PostgreSQL
        its statements run in autocommit (see `_autocommit`): no locks, no writes there.
        `autocommit`: each statement of the block stands alone (a write that is atomic by itself,
        which no other statement of the block must undo or see uncommitted): PostgreSQL runs
        them in autocommit too; elsewhere the block is one transaction as usual."""
        try:
            if self._serial is not None:
                async with self._serial:
                    async with self.engine.begin() as conn:
                        yield conn
            elif self._writers is not None and not read_only:
                # SQLite has one writer at a time: this process's writers queue here, and each
                # starts the moment the previous one commits, instead of sleeping in SQLite's
                # busy handler (1, 2, 5, 10 … 100 ms steps) while another connection writes.
                async with self._writers:
                    async with self.engine.connect() as conn:
                        async with conn.begin():
                            yield conn
            elif (read_only or autocommit) and self._autocommit is not None:
                async with self._autocommit.connect() as conn:
                    yield conn
            else:
                async with self.engine.connect() as conn:
                    if read_only:
                        await conn.execution_options(caredesk_read_only=True)
                    async with conn.begin():
                        yield conn
        except Exception as exc:
            if _is_unavailable(exc):
                DATABASE_ERRORS.labels("unavailable").inc()
                raise StoreUnavailableError(f"database unavailable: {exc}") from exc
            if isinstance(exc, sa_exc.DBAPIError):
                DATABASE_ERRORS.labels("error").inc()
            raise

    def _lock(self, query: Select[Any], **kwargs: Any) -> Select[Any]:
        """SELECT … FOR UPDATE on PostgreSQL; on SQLite, BEGIN IMMEDIATE already holds the
        database's write lock for the whole transaction."""
        return query.with_for_update(**kwargs) if self.dialect == "postgresql" else query

    # ---- life cycle ---------------------------------------------------------------------------
    async def initialize(self) -> None:
        if self._serial is not None:
            async with self._serial:
                await _run_upgrade(self.engine, "head")
        else:
            await _run_upgrade(self.engine, "head")

    async def close(self) -> None:
        await self.engine.dispose()

    async def ping(self) -> None:
        try:
            async with self._tx() as conn:
                await conn.execute(text("SELECT 1"))
        except StoreUnavailableError:
            raise
        except Exception as exc:  # never leak a raw driver error from a health check
            raise StoreUnavailableError(f"database unavailable: {exc}") from exc
