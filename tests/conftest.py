"""Shared fixtures of the CareDesk test suite.

Store fixtures (back-end parametrized: every test using them runs on SQLite and on PostgreSQL):

* `store_url`     -- URL of an empty database (no rows) for this test.  SQLite: a new file in
                     tmp_path (no schema yet); PostgreSQL: the session's throwaway database
                     (schema migrated once per session, every table truncated before each test).
                     Call `SqlStore.initialize()` on anything you open on it.
* `store`         -- an initialized `SqlStore` on `store_url`, closed after the test.
* `store_factory` -- `await store_factory()` opens (and initializes) one more `SqlStore` on the
                     same database: a second engine, like a second process.
* `fresh_database_url` -- URL of a brand-new database without any schema (a new PostgreSQL
                     database per test: slower, use only to test migrations themselves).

PostgreSQL is the server at $CAREDESK_TEST_PG_URL (default
postgresql+asyncpg://postgres@127.0.0.1:5432/test); the tests create and drop their own
`caredesk_test_<hex>` databases there.  When it is unreachable the PostgreSQL tests are skipped,
except when CI=true: then they fail, as CI must never skip PostgreSQL silently.  The number of
postgres-marked tests that passed is written to `.test-report/postgres-tests-passed`.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import threading
from pathlib import Path
from typing import Any, AsyncIterator, Awaitable, Callable, Coroutine, Iterator, TypeVar

import pytest
import pytest_asyncio

T = TypeVar("T")

DEFAULT_TEST_PG_URL = "postgresql+asyncpg://postgres@127.0.0.1:5432/test"
STORE_KINDS = (
    pytest.param("sqlite", id="sqlite"),
    pytest.param("postgresql", id="postgresql", marks=pytest.mark.postgres),
)


# ---- helpers -------------------------------------------------------------------------------------


def run_in_thread(factory: Callable[[], Coroutine[Any, Any, T]]) -> T:
    """Run a coroutine to completion on its own event loop in a helper thread.

    For synchronous (e.g. session-scoped) fixtures: leaves the event loops that pytest-asyncio
    manages in the main thread alone.
    """
    result: dict[str, Any] = {}

    def target() -> None:
        try:
            result["value"] = asyncio.run(factory())
        except BaseException as exc:  # re-raised in the caller's thread
            result["error"] = exc

    thread = threading.Thread(target=target, name="test-asyncio-helper")
    thread.start()
    thread.join()
    if "error" in result:
        raise result["error"]
    return result["value"]


def is_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() == "true"


def pg_base_url() -> str:
    return os.environ.get("CAREDESK_TEST_PG_URL") or DEFAULT_TEST_PG_URL


def _asyncpg_dsn(url: str, database: str | None = None) -> str:
    from sqlalchemy.engine import make_url

    u = make_url(url).set(drivername="postgresql")
    if database is not None:
        u = u.set(database=database)
    return u.render_as_string(hide_password=False)


def _sqlalchemy_url(url: str, database: str) -> str:
    from sqlalchemy.engine import make_url

    return make_url(url).set(database=database).render_as_string(hide_password=False)


async def _pg_admin(sql: str) -> None:
    import asyncpg

    conn = await asyncpg.connect(_asyncpg_dsn(pg_base_url()), timeout=5)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


def create_pg_database() -> str:
    """Create a throwaway database; return its SQLAlchemy URL.  Skip (or fail on CI) when the
    server cannot be reached."""
    import asyncpg

    name = f"caredesk_test_{secrets.token_hex(6)}"
    try:
        run_in_thread(lambda: _pg_admin(f'CREATE DATABASE "{name}"'))
    except (OSError, asyncio.TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
        from sqlalchemy.engine import make_url

        where = make_url(pg_base_url()).render_as_string(hide_password=True)
        message = f"PostgreSQL is not reachable at {where} (set CAREDESK_TEST_PG_URL): {exc!r}"
        if is_ci():
            pytest.fail(f"{message}; CI=true, and CI must run the PostgreSQL tests", pytrace=False)
        pytest.skip(message)
    return _sqlalchemy_url(pg_base_url(), name)


def drop_pg_database(url: str) -> None:
    from sqlalchemy.engine import make_url

    name = make_url(url).database
    run_in_thread(lambda: _pg_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


async def _pg_truncate_all(url: str) -> None:
    import asyncpg

    conn = await asyncpg.connect(_asyncpg_dsn(url), timeout=10)
    try:
        names = [
            r["tablename"]
            for r in await conn.fetch(
                "SELECT tablename FROM pg_tables WHERE schemaname = 'public' AND tablename <> 'alembic_version'"
            )
        ]
        if names:
            tables = ", ".join(f'"{n}"' for n in names)
            await conn.execute(f"TRUNCATE {tables} RESTART IDENTITY CASCADE")
    finally:
        await conn.close()


# ---- store fixtures ------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def pg_session_url() -> Iterator[str]:
    """The session's PostgreSQL database, migrated to head once; dropped at the end."""
    from bot.store.sql import upgrade_async

    url = create_pg_database()
    try:
        run_in_thread(lambda: upgrade_async(url))
        yield url
    finally:
        drop_pg_database(url)


@pytest.fixture(params=STORE_KINDS)
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite+aiosqlite:///{tmp_path / 'caredesk.db'}"
    url = request.getfixturevalue("pg_session_url")
    run_in_thread(lambda: _pg_truncate_all(url))
    return url


@pytest.fixture(params=STORE_KINDS)
def fresh_database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp_path / 'fresh' / 'caredesk.db'}"
        return
    url = create_pg_database()
    try:
        yield url
    finally:
        drop_pg_database(url)


@pytest_asyncio.fixture
async def store(store_url: str) -> AsyncIterator[Any]:
    from bot.store.sql import SqlStore

    s = SqlStore(store_url)
    try:
        await s.initialize()
        yield s
    finally:
        await s.close()


@pytest_asyncio.fixture
async def store_factory(store_url: str) -> AsyncIterator[Callable[..., Awaitable[Any]]]:
    from bot.store.sql import SqlStore

    opened: list[SqlStore] = []

    async def make(*, initialize: bool = True, **kwargs: Any) -> SqlStore:
        s = SqlStore(store_url, **kwargs)
        opened.append(s)
        if initialize:
            await s.initialize()
        return s

    yield make
    for s in opened:
        await s.close()


# ---- bytecode for the processes the tests start --------------------------------------------------


def pytest_configure(config: pytest.Config) -> None:
    """Byte-compile the project once (the controller, before any xdist worker starts).

    The tests start hundreds of `caredesk` processes (tests/test_cli.py, the fault and process
    tests). Where PYTHONDONTWRITEBYTECODE is set (this machine and CI set it) no process writes
    __pycache__, so each one compiled bot/, adapters/ and cards/ from source again (about 0.2 s of
    CPU each); they read the compiled files written here instead. compileall writes only what is
    missing or stale, and __pycache__/ is ignored by git."""
    if hasattr(config, "workerinput"):
        return
    import compileall

    root = Path(config.rootpath)
    for package in ("bot", "adapters", "cards"):
        if (root / package).is_dir():
            compileall.compile_dir(root / package, quiet=1, workers=1)


# ---- report: how many PostgreSQL tests really ran -------------------------------------------------

_postgres_passed = 0


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    global _postgres_passed
    if report.when == "call" and report.passed and "postgres" in report.keywords:
        _postgres_passed += 1


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    if hasattr(session.config, "workerinput"):  # pytest-xdist worker: the controller reports
        return
    report_dir = Path(session.config.rootpath) / ".test-report"
    report_dir.mkdir(parents=True, exist_ok=True)
    (report_dir / "postgres-tests-passed").write_text(f"{_postgres_passed}\n", encoding="utf-8")
