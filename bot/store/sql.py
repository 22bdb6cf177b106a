"""The store on SQLAlchemy 2 (async): SQLite through aiosqlite (embedded, the default) or PostgreSQL
through asyncpg.  The schema is managed by the Alembic migrations in `bot/store/migrations`.

Concurrency:
* SQLite: WAL journal, a 30 s busy timeout, and every transaction starts with BEGIN IMMEDIATE (the
  write lock is taken up front), so concurrent writers queue instead of failing with "database is
  locked" when a reader tries to become a writer.
* PostgreSQL: row locks; the ticket counter row is locked by its upsert until commit; a ticket
  (update_ticket), time entry or escalation being changed is read with SELECT … FOR UPDATE, and
  outbox dispatchers claim messages, and inbox workers items, with FOR UPDATE SKIP LOCKED.
"""

from __future__ import annotations

import asyncio
import enum
import json
import sqlite3
import time
from contextlib import asynccontextmanager
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path
from typing import Any, AsyncIterator, Callable, Mapping, Sequence
from zoneinfo import ZoneInfo

from alembic import command
from alembic.config import Config
from sqlalchemy import Select, and_, bindparam, delete, event, func, insert, or_, select, text, update
from sqlalchemy import exc as sa_exc
from sqlalchemy.dialects import postgresql as pg_dialect
from sqlalchemy.dialects import sqlite as sqlite_dialect
from sqlalchemy.engine import Connection, make_url
from sqlalchemy.engine.url import URL
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine
from sqlalchemy.pool import StaticPool

from bot.domain.model import (
    OPEN_STATUSES,
    Company,
    CustomerContact,
    DialogKey,
    Directory,
    Escalation,
    EscalationReason,
    EscalationStatus,
    NewTicket,
    NewTimeEntry,
    OutboxMessage,
    StaffMember,
    StaffRole,
    StoredDialog,
    Ticket,
    TicketEvent,
    TicketKind,
    TicketStatus,
    TimeEntry,
    Urgency,
)
from bot.store import models as m
from bot.store.port import (
    DirectoryCounts,
    InboxItem,
    NewInboxItem,
    NewOutboxMessage,
    StaleDialogError,
    StaleTicketError,
    Store,
    StoreError,
    StoreUnavailableError,
    TurnStart,
    UnknownTicketError,
)

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

# Ticket numbers follow the service desk's calendar year, in Brussels.
NUMBER_TIMEZONE = ZoneInfo("Europe/Brussels")
MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"
# Any constant shared by every CareDesk process: serialises concurrent `alembic upgrade`s.
MIGRATION_LOCK_ID = 0x43617265_4465736B  # "CareDesk"
SQLITE_BUSY_TIMEOUT_S = 30


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
            Path(u.database).expanduser().parent.mkdir(parents=True, exist_ok=True)
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
        return create_async_engine(u, echo=echo, **kwargs)
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


# Built once: every turn reads its dialog, and building the statement each time cost more
# than running it (measured in the modal submission's check, before its ack).
DIALOG_BY_KEY = select(m.dialog_states).where(
    m.dialog_states.c.channel == bindparam("k_channel"),
    m.dialog_states.c.tenant == bindparam("k_tenant"),
    m.dialog_states.c.conversation == bindparam("k_conversation"),
    m.dialog_states.c.user_id == bindparam("k_user"),
)


def _dialog_params(key: DialogKey) -> dict[str, str]:
    return {"k_channel": key.channel, "k_tenant": key.tenant, "k_conversation": key.conversation,
            "k_user": key.user}


# Conversations considered by one claim (the oldest first): bounds the statement's size.
MAX_CLAIM_CANDIDATES = 1000
# The predicate of the inbox's partial index (models.InboxRow), word for word.
UNFINISHED_INBOX = text("inbox.status IN ('pending', 'working')")


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


def _ticket_row(
    new: NewTicket,
    *,
    number: str,
    year: int,
    seq: int,
    now: datetime,
    idempotency_key: str | None,
) -> dict[str, Any]:
    """Column values of a new ticket (called once its number is drawn)."""
    kind = _value(new.kind)
    status = TicketStatus.SUBMITTED if kind == TicketKind.CHANGE_REQUEST.value else TicketStatus.NEW
    return {
        "number": number,
        "number_key": _number_key(number),
        "year": year,
        "seq": seq,
        "kind": kind,
        "status": status.value,
        "requester_email": new.requester_email.strip(),
        "requester_email_key": _email_key(new.requester_email),
        "requester_name": new.requester_name,
        "requester_phone": new.requester_phone,
        "company": new.company,
        "module": new.module,
        "description": new.description,
        "reproduce": new.reproduce,
        "diagnostics": new.diagnostics,
        "urgency": _value(new.urgency),
        "channel": new.channel,
        "out_of_hours_emergency": bool(new.out_of_hours_emergency),
        "created_at": now,
        "updated_at": now,
        "created_by": new.created_by,
        "idempotency_key": idempotency_key,
    }


def _ticket(row: Any) -> Ticket:
    return Ticket(
        id=row.id,
        number=row.number,
        kind=TicketKind(row.kind),
        status=TicketStatus(row.status),
        requester_email=row.requester_email,
        requester_name=row.requester_name,
        requester_phone=row.requester_phone,
        company=row.company,
        module=row.module,
        description=row.description,
        reproduce=row.reproduce,
        diagnostics=row.diagnostics,
        urgency=Urgency(row.urgency),
        channel=row.channel,
        out_of_hours_emergency=bool(row.out_of_hours_emergency),
        created_at=row.created_at,
        updated_at=row.updated_at,
        solution_date=row.solution_date,
        release_date=row.release_date,
        assignee_email=row.assignee_email,
        created_by=row.created_by,
    )


def _company(row: Any) -> Company:
    return Company(
        name=row.name,
        support_module=bool(row.support_module),
        sla_plan=row.sla_plan,
        multiplier_overrides={k: Decimal(str(v)) for k, v in (row.multiplier_overrides or {}).items()},
    )


def _contact(row: Any) -> CustomerContact:
    return CustomerContact(
        email=row.email,
        name=row.name,
        company=row.company_name,
        phone=row.phone,
        language=row.language,
        sla_named=bool(row.sla_named),
    )


def _staff(row: Any) -> StaffMember:
    return StaffMember(
        email=row.email,
        name=row.name,
        role=StaffRole(row.role),
        phone=row.phone,
        language=row.language,
        level=row.level,
    )


def _escalation(row: Any) -> Escalation:
    return Escalation(
        id=row.id,
        ticket_number=row.ticket_number,
        level=row.level,
        reason=EscalationReason(row.reason),
        comment=row.comment,
        requested_by=row.requested_by,
        status=EscalationStatus(row.status),
        created_at=row.created_at,
        level_since=row.level_since,
        acknowledged_by=row.acknowledged_by,
        acknowledged_at=row.acknowledged_at,
        last_ping_at=row.last_ping_at,
    )


def _outbox_message(row: Any) -> OutboxMessage:
    return OutboxMessage(
        id=row.id,
        idempotency_key=row.idempotency_key,
        recipient=row.recipient,
        kind=row.kind,
        payload=row.payload,
        status=row.status,
        attempts=row.attempts,
        next_attempt_at=row.next_attempt_at,
        created_at=row.created_at,
        last_error=row.last_error,
        sent_at=row.sent_at,
    )


def _outbox_rows(messages: Sequence[NewOutboxMessage], now: datetime) -> list[dict[str, Any]]:
    return [
        {
            "idempotency_key": msg.idempotency_key,
            "recipient": msg.recipient,
            "kind": msg.kind,
            "payload": to_json(dict(msg.payload)),
            "status": "pending",
            "attempts": 0,
            "next_attempt_at": now,
            "locked_until": None,
            "created_at": now,
            "sent_at": None,
            "last_error": None,
        }
        for msg in messages
    ]


def _inbound_turn(row: Any) -> InboxItem:
    return InboxItem(
        id=row.id,
        channel=row.channel,
        kind=row.kind,
        conversation_key=row.conversation_key,
        payload=row.payload,
        dedup_key=row.dedup_key,
        priority=row.priority,
        status=row.status,
        attempts=row.attempts,
        received_at=row.received_at,
        next_attempt_at=row.next_attempt_at,
        last_error=row.last_error,
        done_at=row.done_at,
    )


_INBOX_ARRAY_COLUMNS = ("channel", "kind", "conversation_key", "dedup_key", "payload", "priority")
# New inbox items on PostgreSQL, one array per column, inserted in the order given (ORDINALITY):
# the ids keep the arrival order that the workers follow. RETURNING names only the rows really
# inserted, not those whose dedup_key was stored already.
_PG_INBOX_INSERT = text(
    "INSERT INTO inbox (channel, kind, conversation_key, dedup_key, payload, priority, status, attempts,"
    " received_at, next_attempt_at)"
    " SELECT item.channel, item.kind, item.conversation_key, item.dedup_key, CAST(item.payload AS JSON),"
    " item.priority, 'pending', 0, CAST(:now AS TIMESTAMP WITH TIME ZONE), CAST(:now AS TIMESTAMP WITH TIME ZONE)"
    " FROM unnest(CAST(:channel AS VARCHAR[]), CAST(:kind AS VARCHAR[]), CAST(:conversation_key AS VARCHAR[]),"
    " CAST(:dedup_key AS VARCHAR[]), CAST(:payload AS TEXT[]), CAST(:priority AS SMALLINT[]))"
    " WITH ORDINALITY AS item(channel, kind, conversation_key, dedup_key, payload, priority, n)"
    " ORDER BY item.n"
    " ON CONFLICT (dedup_key) DO NOTHING"
    " RETURNING id"
).bindparams(bindparam("now", type_=m.UTCDateTime()))


def _inbox_rows(items: Sequence[NewInboxItem], now: datetime) -> list[dict[str, Any]]:
    """Column values of new inbox items; of items repeating a dedup_key only the first is kept."""
    rows: list[dict[str, Any]] = []
    seen: set[str] = set()
    for item in items:
        if item.dedup_key is not None:
            if item.dedup_key in seen:
                continue
            seen.add(item.dedup_key)
        rows.append(
            {
                "channel": item.channel,
                "kind": item.kind,
                "conversation_key": item.conversation_key,
                "dedup_key": item.dedup_key,
                # Already plain JSON (a parsed platform request): not copied through to_json, which
                # cost the acknowledgement path a second encoding of every request.
                "payload": item.payload if isinstance(item.payload, dict) else dict(item.payload),
                "priority": int(item.priority),
                "status": "pending",
                "attempts": 0,
                "received_at": now,
                "next_attempt_at": now,
                "locked_until": None,
                "done_at": None,
                "last_error": None,
            }
        )
    return rows


# ---- values of the ticket workflow and time registration -------------------------------------------

CENT = Decimal("0.01")
MAX_AMOUNT = Decimal("1e10")  # Numeric(12, 2)
TICKET_FIELDS = ("status", "assignee_email", "solution_date", "release_date")


def _ticket_changes(changes: Mapping[str, Any]) -> dict[str, Any]:
    """The column values of update_ticket's `changes`, checked (ValueError) and normalised."""
    unknown = sorted(set(changes) - set(TICKET_FIELDS))
    if unknown:
        raise ValueError(f"cannot change {', '.join(unknown)} of a ticket (only {', '.join(TICKET_FIELDS)})")
    values: dict[str, Any] = {}
    for name, value in changes.items():
        if name == "status":
            try:
                values[name] = TicketStatus(_value(value)).value
            except ValueError:
                raise ValueError(f"unknown ticket status {value!r}") from None
        elif name == "assignee_email":
            if value is not None and not isinstance(value, str):
                raise ValueError(f"assignee_email must be an e-mail address or None, got {value!r}")
            values[name] = (value or "").strip() or None
        else:
            if value is not None and (not isinstance(value, date) or isinstance(value, datetime)):
                raise ValueError(f"{name} must be a date or None, got {value!r}")
            values[name] = value
    return values


def _same_ticket_value(name: str, old: Any, new: Any) -> bool:
    if name == "assignee_email" and old is not None and new is not None:
        return _email_key(old) == _email_key(new)
    return old == new


def _event_text(value: Any) -> str | None:
    """A ticket field's value as a TicketEvent records it: enum values, ISO dates, text or None."""
    if value is None:
        return None
    if isinstance(value, enum.Enum):
        return str(value.value)
    if isinstance(value, (date, datetime)):
        return value.isoformat()
    return str(value)


def _amount(value: Any) -> Decimal:
    if isinstance(value, bool) or not isinstance(value, (Decimal, int)):
        raise TypeError(f"a time entry's amount must be a Decimal, got {type(value).__name__}")
    amount = Decimal(value)
    if not amount.is_finite():
        raise ValueError(f"a time entry's amount must be finite, got {amount}")
    cents = amount.quantize(CENT)
    if cents != amount:  # never round money silently: the quote rounds its lines to the cent
        raise ValueError(f"a time entry's amount must be in whole cents, got {amount}")
    if abs(cents) >= MAX_AMOUNT:
        raise ValueError(f"a time entry's amount is too large: {amount}")
    return cents


def _time_entry_values(entry: NewTimeEntry) -> dict[str, Any]:
    """Column values of a time entry (all but ticket, times of the record and keys), checked."""
    _aware(entry.started_at, "started_at")
    _aware(entry.ended_at, "ended_at")
    if entry.ended_at < entry.started_at:
        raise ValueError(f"a time entry ends ({entry.ended_at}) before it starts ({entry.started_at})")
    if isinstance(entry.participants, bool) or not isinstance(entry.participants, int) or entry.participants < 1:
        raise ValueError(f"participants must be a positive integer, got {entry.participants!r}")
    for line in entry.lines:
        if not isinstance(line, Mapping):
            raise TypeError(f"a quote line must be a mapping, got {type(line).__name__}")
    currency = entry.currency.strip().upper()
    if len(currency) != 3:
        raise ValueError(f"currency must be a 3-letter code, got {entry.currency!r}")
    return {
        "agent_email": entry.agent_email.strip(),
        "service": entry.service,
        "started_at": entry.started_at,
        "ended_at": entry.ended_at,
        "participants": entry.participants,
        "note": entry.note,
        "lines": to_json([dict(line) for line in entry.lines]),
        "amount": _amount(entry.amount),
        "currency": currency,
    }


def _time_entry(row: Any) -> TimeEntry:
    return TimeEntry(
        id=row.id,
        ticket_number=row.ticket_number,
        company=row.ticket_company,
        agent_email=row.agent_email,
        service=row.service,
        started_at=row.started_at,
        ended_at=row.ended_at,
        participants=row.participants,
        note=row.note,
        lines=tuple(dict(line) for line in (row.lines or ())),
        # SQLite keeps NUMERIC as a float: back to exact cents
        amount=Decimal(str(row.amount)).quantize(CENT) if row.amount is not None else row.amount,
        currency=row.currency,
        created_at=row.created_at,
        updated_at=row.updated_at,
        deleted_at=row.deleted_at,
    )


def _utc_iso(value: datetime | None) -> str | None:
    return value.astimezone(timezone.utc).isoformat() if value is not None else None


def _entry_snapshot(entry: TimeEntry) -> dict[str, Any]:
    """A time entry as a time_entry_changes row keeps it (JSON: amounts as strings, UTC ISO times)."""
    return to_json(
        {
            "id": entry.id,
            "ticket_number": entry.ticket_number,
            "agent_email": entry.agent_email,
            "service": entry.service,
            "started_at": _utc_iso(entry.started_at),
            "ended_at": _utc_iso(entry.ended_at),
            "participants": entry.participants,
            "note": entry.note,
            "lines": [dict(line) for line in entry.lines],
            "amount": str(entry.amount) if entry.amount is not None else None,
            "currency": entry.currency,
        }
    )


def _check_directory(directory: Directory) -> None:
    names: dict[str, str] = {}
    for company in directory.companies:
        key = company.name.strip().lower()
        if not key:
            raise ValueError("a company has an empty name")
        if key in names:
            raise ValueError(f"company {company.name!r} appears twice in the directory")
        names[key] = company.name
    seen: set[str] = set()
    for contact in directory.contacts:
        key = _email_key(contact.email)
        if key in seen:
            raise ValueError(f"contact {contact.email!r} appears twice in the directory")
        seen.add(key)
        if contact.company.strip().lower() not in names:
            raise ValueError(
                f"contact {contact.email!r} ({contact.name}) names company {contact.company!r}, "
                "which is not in the directory"
            )
    seen = set()
    for member in directory.staff:
        key = _email_key(member.email)
        if key in seen:
            raise ValueError(f"staff member {member.email!r} appears twice in the directory")
        seen.add(key)


# ---- the store ------------------------------------------------------------------------------------


class SqlStore(Store):
    """`Store` on SQLite (aiosqlite) or PostgreSQL (asyncpg).

    Extra public API: `url`, `dialect` ("sqlite" / "postgresql") and `engine` (the AsyncEngine,
    e.g. for tests or later modules of the store); `**engine_kwargs` go to create_async_engine;
    `is_event_processed()`; the keyword `event=(source, event_id)` of save_dialog /
    delete_dialog that claims a platform delivery in the same transaction as the dialog write;
    the keyword `idempotency_key` of create_escalation and add_ticket_comment.

    Where the port leaves it open: update_time_entry / delete_time_entry raise LookupError for
    an unknown or deleted entry, escalation_pinged / acknowledge_escalation for an unknown
    escalation; get_time_entry also returns deleted entries; amounts must be whole cents.
    """

    def __init__(self, url: str, *, echo: bool = False, **engine_kwargs: Any) -> None:
        self.url = url
        self.engine: AsyncEngine = create_engine_for(url, echo=echo, **engine_kwargs)
        self.dialect: str = self.engine.dialect.name
        # A :memory: database lives in one shared connection (StaticPool): one transaction at a time.
        u = make_url(url)
        self._serial = asyncio.Lock() if self.dialect == "sqlite" and _is_sqlite_memory(u) else None
        self._writers = asyncio.Lock() if self.dialect == "sqlite" and self._serial is None else None
        self._upsert: Callable[[Any], Any] = (
            pg_dialect.insert if self.dialect == "postgresql" else sqlite_dialect.insert
        )

    def __repr__(self) -> str:
        return f"SqlStore({self.engine.url.render_as_string(hide_password=True)!r})"

    # ---- plumbing -----------------------------------------------------------------------------
    @asynccontextmanager
    async def _tx(self, read_only: bool = False) -> AsyncIterator[AsyncConnection]:
        """One transaction; connection failures become StoreUnavailableError. On SQLite a
        read-only one starts deferred, so reads do not queue behind every writer."""
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
            else:
                async with self.engine.connect() as conn:
                    if read_only:
                        await conn.execution_options(caredesk_read_only=True)
                    async with conn.begin():
                        yield conn
        except Exception as exc:
            if _is_unavailable(exc):
                raise StoreUnavailableError(f"database unavailable: {exc}") from exc
            raise

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

    # ---- directory ----------------------------------------------------------------------------
    async def replace_directory(self, directory: Directory) -> DirectoryCounts:
        _check_directory(directory)
        canonical = {c.name.strip().lower(): c.name.strip() for c in directory.companies}
        company_rows = [
            {
                "name": c.name.strip(),
                "name_key": c.name.strip().lower(),
                "support_module": bool(c.support_module),
                "sla_plan": c.sla_plan,
                "multiplier_overrides": {k: str(Decimal(str(v))) for k, v in c.multiplier_overrides.items()},
            }
            for c in directory.companies
        ]
        contact_rows = [
            {
                "email_key": _email_key(c.email),
                "email": c.email.strip(),
                "name": c.name,
                "company_name": canonical[c.company.strip().lower()],
                "phone": c.phone,
                "language": c.language,
                "sla_named": bool(c.sla_named),
            }
            for c in directory.contacts
        ]
        staff_rows = [
            {
                "email_key": _email_key(s.email),
                "email": s.email.strip(),
                "name": s.name,
                "role": StaffRole(_value(s.role)).value,
                "phone": s.phone,
                "language": s.language,
                "level": s.level,
            }
            for s in directory.staff
        ]
        async with self._tx() as conn:
            await conn.execute(delete(m.contacts))
            await conn.execute(delete(m.staff))
            await conn.execute(delete(m.companies))
            for table, rows in ((m.companies, company_rows), (m.contacts, contact_rows), (m.staff, staff_rows)):
                if rows:
                    await conn.execute(insert(table), rows)
        return DirectoryCounts(len(company_rows), len(contact_rows), len(staff_rows))

    async def find_contact(self, email: str) -> CustomerContact | None:
        async with self._tx(read_only=True) as conn:
            row = (await conn.execute(select(m.contacts).where(m.contacts.c.email_key == _email_key(email)))).first()
        return _contact(row) if row else None

    async def find_staff(self, email: str) -> StaffMember | None:
        async with self._tx(read_only=True) as conn:
            row = (await conn.execute(select(m.staff).where(m.staff.c.email_key == _email_key(email)))).first()
        return _staff(row) if row else None

    async def get_company(self, name: str) -> Company | None:
        async with self._tx(read_only=True) as conn:
            row = (
                await conn.execute(select(m.companies).where(m.companies.c.name_key == name.strip().lower()))
            ).first()
        return _company(row) if row else None

    async def find_person(self, email: str) -> tuple[CustomerContact | None, StaffMember | None, Company | None]:
        async with self._tx(read_only=True) as conn:
            return await self._person(conn, email)

    async def _person(self, conn: AsyncConnection, email: str
                      ) -> tuple[CustomerContact | None, StaffMember | None, Company | None]:
        key = _email_key(email)
        contact_row = (await conn.execute(select(m.contacts).where(m.contacts.c.email_key == key))).first()
        staff_row = (await conn.execute(select(m.staff).where(m.staff.c.email_key == key))).first()
        contact = _contact(contact_row) if contact_row else None
        company_row = None
        if contact is not None:
            company_row = (await conn.execute(
                select(m.companies).where(m.companies.c.name_key == contact.company.strip().lower()))).first()
        return contact, _staff(staff_row) if staff_row else None, _company(company_row) if company_row else None

    async def read_turn_start(self, key: DialogKey, email: str | None,
                              event: tuple[str, str] | None = None) -> TurnStart:
        p = m.processed_events
        async with self._tx(read_only=True) as conn:
            processed = False
            if event is not None:
                processed = (await conn.execute(
                    select(p.c.event_id).where(p.c.source == event[0], p.c.event_id == event[1]))).first() is not None
            row = (await conn.execute(DIALOG_BY_KEY, _dialog_params(key))).first()
            person = await self._person(conn, email) if email else (None, None, None)
        dialog = StoredDialog(key=key, state=row.state, version=row.version, updated_at=row.updated_at) if row else None
        return TurnStart(processed, dialog, *person)

    async def list_companies(self) -> Sequence[Company]:
        async with self._tx(read_only=True) as conn:
            rows = (await conn.execute(select(m.companies).order_by(m.companies.c.name_key))).all()
        return [_company(r) for r in rows]

    async def list_staff(self, role: StaffRole | None = None, level: int | None = None) -> Sequence[StaffMember]:
        s = m.staff
        query = select(s).order_by(s.c.level.asc().nulls_last(), s.c.name, s.c.email_key)
        if role is not None:
            query = query.where(s.c.role == StaffRole(_value(role)).value)
        if level is not None:
            query = query.where(s.c.level == level)
        async with self._tx(read_only=True) as conn:
            rows = (await conn.execute(query)).all()
        return [_staff(r) for r in rows]

    # ---- tickets ------------------------------------------------------------------------------
    async def _ticket_where(self, conn: AsyncConnection, condition: Any) -> Ticket | None:
        row = (await conn.execute(select(m.tickets).where(condition))).first()
        return _ticket(row) if row else None

    async def create_ticket(
        self,
        new: NewTicket,
        now: datetime,
        number_format: str,
        idempotency_key: str | None = None,
    ) -> Ticket:
        _aware(now)
        year = now.astimezone(NUMBER_TIMEZONE).year
        t, counters = m.tickets, m.ticket_counters
        bump = (
            self._upsert(counters)
            .values(year=year, last_seq=1)
            .on_conflict_do_update(
                index_elements=[counters.c.year], set_={"last_seq": counters.c.last_seq + 1}
            )
            .returning(counters.c.last_seq)
        )
        try:
            async with self._tx() as conn:
                if idempotency_key is not None:
                    existing = await self._ticket_where(conn, t.c.idempotency_key == idempotency_key)
                    if existing is not None:
                        return existing
                # The counter row stays locked until commit and is rolled back with a failed
                # insert: numbers are unique and without gaps.
                seq = (await conn.execute(bump)).scalar_one()
                number = number_format.format(year=year, seq=seq)
                values = _ticket_row(new, number=number, year=year, seq=seq, now=now, idempotency_key=idempotency_key)
                ticket_id = (await conn.execute(insert(t).values(**values).returning(t.c.id))).scalar_one()
                created = await self._ticket_where(conn, t.c.id == ticket_id)
                assert created is not None
                return created
        except sa_exc.IntegrityError as exc:
            if idempotency_key is not None:
                # Another request with the same key won the race: return its ticket.
                async with self._tx() as conn:
                    existing = await self._ticket_where(conn, t.c.idempotency_key == idempotency_key)
                if existing is not None:
                    return existing
            raise ValueError(f"the ticket was refused by the database: {exc.orig}") from exc

    async def get_ticket(self, number: str) -> Ticket | None:
        async with self._tx(read_only=True) as conn:
            return await self._ticket_where(conn, m.tickets.c.number_key == _number_key(number))

    async def list_tickets(
        self,
        *,
        requester_email: str | None = None,
        company: str | None = None,
        open_only: bool = False,
        limit: int = 100,
    ) -> Sequence[Ticket]:
        t = m.tickets
        # Registration order (ids grow with every ticket), not clock times that several processes may disagree on.
        query: Select[Any] = select(t).order_by(t.c.id.desc()).limit(max(0, int(limit)))
        if requester_email is not None:
            query = query.where(t.c.requester_email_key == _email_key(requester_email))
        if company is not None:
            query = query.where(func.lower(t.c.company) == company.strip().lower())
        if open_only:
            query = query.where(t.c.status.in_(sorted(s.value for s in OPEN_STATUSES)))
        async with self._tx(read_only=True) as conn:
            rows = (await conn.execute(query)).all()
        return [_ticket(r) for r in rows]

    async def _ticket_id(self, conn: AsyncConnection, number: str) -> int:
        ticket_id = (
            await conn.execute(select(m.tickets.c.id).where(m.tickets.c.number_key == _number_key(number)))
        ).scalar_one_or_none()
        if ticket_id is None:
            raise UnknownTicketError(f"no ticket {number.strip()!r}")
        return ticket_id

    async def add_ticket_comment(
        self,
        number: str,
        author: str,
        text: str,
        now: datetime,
        internal: bool,
        *,
        idempotency_key: str | None = None,
    ) -> None:
        """Port method; extension: a comment whose `idempotency_key` was used already is not
        added a second time."""
        _aware(now)
        c = m.ticket_comments
        async with self._tx() as conn:
            ticket_id = await self._ticket_id(conn, number)
            stmt = self._upsert(c).values(
                ticket_id=ticket_id,
                author=author,
                text=text,
                internal=bool(internal),
                created_at=now,
                idempotency_key=idempotency_key,
            )
            if idempotency_key is not None:
                stmt = stmt.on_conflict_do_nothing(index_elements=[c.c.idempotency_key])
            await conn.execute(stmt)

    async def list_ticket_comments(self, number: str, include_internal: bool) -> Sequence[Mapping[str, Any]]:
        c = m.ticket_comments
        async with self._tx(read_only=True) as conn:
            ticket_id = await self._ticket_id(conn, number)
            query = select(c).where(c.c.ticket_id == ticket_id).order_by(c.c.created_at, c.c.id)
            if not include_internal:
                query = query.where(c.c.internal.is_(False))
            rows = (await conn.execute(query)).all()
        return [
            {"author": r.author, "text": r.text, "internal": bool(r.internal), "created_at": r.created_at}
            for r in rows
        ]

    # ---- dialog state -------------------------------------------------------------------------
    @staticmethod
    def _dialog_pk(key: DialogKey) -> Any:
        d = m.dialog_states
        return and_(
            d.c.channel == key.channel,
            d.c.tenant == key.tenant,
            d.c.conversation == key.conversation,
            d.c.user_id == key.user,
        )

    async def load_dialog(self, key: DialogKey) -> StoredDialog | None:
        async with self._tx(read_only=True) as conn:
            row = (await conn.execute(DIALOG_BY_KEY, _dialog_params(key))).first()
        if row is None:
            return None
        return StoredDialog(key=key, state=row.state, version=row.version, updated_at=row.updated_at)

    async def save_dialog(
        self,
        key: DialogKey,
        state: Mapping[str, Any],
        expected_version: int | None,
        now: datetime,
        *,
        event: tuple[str, str] | None = None,
    ) -> int:
        """Port method; extension: `event=(source, event_id)` claims that platform delivery in
        the same transaction, and a delivery already claimed raises StaleDialogError (nothing
        is saved: the caller retries and then sees the delivery as processed)."""
        _aware(now)
        data = to_json(dict(state))
        d = m.dialog_states
        if expected_version is None:
            try:
                async with self._tx() as conn:
                    await self._claim_in_tx(conn, event, now, key)
                    await conn.execute(
                        insert(d).values(
                            channel=key.channel,
                            tenant=key.tenant,
                            conversation=key.conversation,
                            user_id=key.user,
                            state=data,
                            version=1,
                            updated_at=now,
                        )
                    )
            except sa_exc.IntegrityError:
                raise StaleDialogError(f"a dialog is already stored for {key}") from None
            return 1
        async with self._tx() as conn:
            await self._claim_in_tx(conn, event, now, key)
            result = await conn.execute(
                update(d)
                .where(self._dialog_pk(key), d.c.version == expected_version)
                .values(state=data, version=d.c.version + 1, updated_at=now)
            )
            if result.rowcount != 1:
                raise StaleDialogError(f"dialog {key} is not at version {expected_version}")
        return expected_version + 1

    async def delete_dialog(
        self,
        key: DialogKey,
        expected_version: int,
        *,
        event: tuple[str, str] | None = None,
        now: datetime | None = None,
    ) -> None:
        """Port method; extension: `event=(source, event_id)` as in save_dialog (claimed at `now`,
        default: the current time)."""
        d = m.dialog_states
        async with self._tx() as conn:
            await self._claim_in_tx(conn, event, now or datetime.now(timezone.utc), key)
            result = await conn.execute(delete(d).where(self._dialog_pk(key), d.c.version == expected_version))
            if result.rowcount != 1:
                raise StaleDialogError(f"dialog {key} is not at version {expected_version}")

    # ---- platform deliveries ------------------------------------------------------------------
    def _claim_statement(self, source: str, event_id: str, now: datetime) -> Any:
        _aware(now)
        p = m.processed_events
        return (
            self._upsert(p)
            .values(source=source, event_id=event_id, processed_at=now)
            .on_conflict_do_nothing(index_elements=[p.c.source, p.c.event_id])
            .returning(p.c.event_id)
        )

    async def _claim_in_tx(
        self, conn: AsyncConnection, event: tuple[str, str] | None, now: datetime, key: DialogKey
    ) -> None:
        if event is None:
            return
        source, event_id = event
        if (await conn.execute(self._claim_statement(source, event_id, now))).first() is None:
            raise StaleDialogError(f"delivery {source}/{event_id} of dialog {key} was already processed")

    async def claim_event(self, source: str, event_id: str, now: datetime) -> bool:
        stmt = self._claim_statement(source, event_id, now)
        async with self._tx() as conn:
            return (await conn.execute(stmt)).first() is not None

    async def is_event_processed(self, source: str, event_id: str) -> bool:
        """Extension: whether (source, event_id) was claimed already (read only)."""
        p = m.processed_events
        async with self._tx(read_only=True) as conn:
            found = await conn.execute(
                select(p.c.event_id).where(p.c.source == source, p.c.event_id == event_id)
            )
            return found.first() is not None

    # ---- conversation references --------------------------------------------------------------
    async def save_conversation_ref(
        self, channel: str, user_key: str, reference: Mapping[str, Any], now: datetime, email: str | None = None
    ) -> None:
        _aware(now)
        r = m.conversation_refs
        stmt = self._upsert(r).values(
            channel=channel,
            user_key=user_key,
            email_key=_email_key(email) if email else None,
            reference=to_json(dict(reference)),
            updated_at=now,
        )
        stmt = stmt.on_conflict_do_update(
            index_elements=[r.c.channel, r.c.user_key],
            set_={
                "reference": stmt.excluded.reference,
                "updated_at": stmt.excluded.updated_at,
                # a later save without the e-mail keeps the one already known
                "email_key": func.coalesce(stmt.excluded.email_key, r.c.email_key),
            },
        )
        async with self._tx() as conn:
            await conn.execute(stmt)

    async def get_conversation_ref(self, channel: str, user_key: str) -> Mapping[str, Any] | None:
        r = m.conversation_refs
        async with self._tx(read_only=True) as conn:
            row = (
                await conn.execute(select(r.c.reference).where(r.c.channel == channel, r.c.user_key == user_key))
            ).first()
        return row.reference if row else None

    async def find_conversation_refs_by_email(self, email: str) -> Sequence[tuple[str, str, Mapping[str, Any]]]:
        r = m.conversation_refs
        query = (
            select(r.c.channel, r.c.user_key, r.c.reference)
            .where(r.c.email_key == _email_key(email))
            .order_by(r.c.updated_at.desc(), r.c.channel, r.c.user_key)
        )
        async with self._tx(read_only=True) as conn:
            rows = (await conn.execute(query)).all()
        return [(row.channel, row.user_key, row.reference) for row in rows]

    # ---- escalations --------------------------------------------------------------------------
    def _escalation_query(self) -> Select[Any]:
        e, t = m.escalations, m.tickets
        return select(e, t.c.number.label("ticket_number")).join(t, t.c.id == e.c.ticket_id)

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
        """Port method; extension: with an `idempotency_key` already used, return that
        escalation (and queue nothing) instead of recording a second one."""
        _aware(now)
        reason_value = EscalationReason(_value(reason)).value
        outbox_rows = _outbox_rows(outbox, now)
        e = m.escalations
        try:
            async with self._tx() as conn:
                ticket_id = await self._ticket_id(conn, ticket_number)
                if idempotency_key is not None:
                    row = (
                        await conn.execute(self._escalation_query().where(e.c.idempotency_key == idempotency_key))
                    ).first()
                    if row is not None:
                        return _escalation(row)
                escalation_id = (
                    await conn.execute(
                        insert(e)
                        .values(
                            ticket_id=ticket_id,
                            level=level,
                            reason=reason_value,
                            comment=comment,
                            requested_by=requested_by,
                            status=EscalationStatus.OPEN.value,
                            created_at=now,
                            level_since=now,
                            idempotency_key=idempotency_key,
                        )
                        .returning(e.c.id)
                    )
                ).scalar_one()
                await self._enqueue_rows(conn, outbox_rows)
                row = (await conn.execute(self._escalation_query().where(e.c.id == escalation_id))).one()
            return _escalation(row)
        except sa_exc.IntegrityError:
            if idempotency_key is None:
                raise
            # a concurrent request with the same key won: return its escalation
            async with self._tx() as conn:
                row = (
                    await conn.execute(self._escalation_query().where(e.c.idempotency_key == idempotency_key))
                ).first()
            if row is None:
                raise
            return _escalation(row)

    async def list_escalations(self, *, open_only: bool = True, ticket_number: str | None = None) -> Sequence[Escalation]:
        e, t = m.escalations, m.tickets
        query = self._escalation_query().order_by(e.c.created_at, e.c.id)
        if open_only:
            query = query.where(e.c.status != EscalationStatus.CLOSED.value)
        if ticket_number is not None:
            query = query.where(t.c.number_key == _number_key(ticket_number))
        async with self._tx(read_only=True) as conn:
            rows = (await conn.execute(query)).all()
        return [_escalation(r) for r in rows]

    # ---- outbox -------------------------------------------------------------------------------
    async def _enqueue_rows(self, conn: AsyncConnection, rows: list[dict[str, Any]]) -> None:
        if rows:
            o = m.outbox
            stmt = self._upsert(o).on_conflict_do_nothing(index_elements=[o.c.idempotency_key])
            await conn.execute(stmt, rows)

    async def enqueue(self, messages: Sequence[NewOutboxMessage], now: datetime) -> None:
        _aware(now)
        rows = _outbox_rows(messages, now)
        if not rows:
            return
        async with self._tx() as conn:
            await self._enqueue_rows(conn, rows)

    async def list_outbox(self, status: str | None = None) -> Sequence[OutboxMessage]:
        o = m.outbox
        query = select(o).order_by(o.c.id)
        if status is not None:
            query = query.where(o.c.status == status)
        async with self._tx(read_only=True) as conn:
            rows = (await conn.execute(query)).all()
        return [_outbox_message(r) for r in rows]

    # ---- outbox delivery ----------------------------------------------------------------------
    def _lock(self, query: Select[Any], **kwargs: Any) -> Select[Any]:
        """SELECT … FOR UPDATE on PostgreSQL; on SQLite, BEGIN IMMEDIATE already holds the
        database's write lock for the whole transaction."""
        return query.with_for_update(**kwargs) if self.dialect == "postgresql" else query

    async def claim_outbox(self, now: datetime, lease: timedelta, limit: int = 20) -> Sequence[OutboxMessage]:
        limit = _claim_limit(now, lease, limit)
        if limit <= 0:
            return []
        o = m.outbox
        due = _due(o, "sending", now)
        query = self._lock(select(o.c.id).where(due).order_by(o.c.id).limit(limit), skip_locked=True)
        async with self._tx() as conn:
            ids = list((await conn.execute(query)).scalars())
            if not ids:
                return []
            await conn.execute(
                update(o)
                .where(o.c.id.in_(ids))
                .values(status="sending", locked_until=now + lease, attempts=o.c.attempts + 1)
            )
            rows = (await conn.execute(select(o).where(o.c.id.in_(ids)).order_by(o.c.id))).all()
        return [_outbox_message(r) for r in rows]

    async def _update_outbox(self, message_id: int, **values: Any) -> None:
        o = m.outbox
        async with self._tx() as conn:
            await conn.execute(update(o).where(o.c.id == message_id).values(locked_until=None, **values))

    async def mark_sent(self, message_id: int, now: datetime) -> None:
        _aware(now)
        await self._update_outbox(message_id, status="sent", sent_at=now)

    async def mark_retry(self, message_id: int, next_attempt_at: datetime, error: str) -> None:
        _aware(next_attempt_at, "next_attempt_at")
        await self._update_outbox(message_id, status="pending", next_attempt_at=next_attempt_at, last_error=error)

    async def mark_failed(self, message_id: int, error: str) -> None:
        await self._update_outbox(message_id, status="failed", last_error=error)

    async def requeue_failed(self, now: datetime, message_ids: Sequence[int] | None = None) -> int:
        _aware(now)
        o = m.outbox
        stmt = (
            update(o)
            .where(o.c.status == "failed")
            .values(status="pending", attempts=0, next_attempt_at=now, locked_until=None)
        )
        if message_ids is not None:
            ids = [int(i) for i in message_ids]
            if not ids:
                return 0
            stmt = stmt.where(o.c.id.in_(ids))
        async with self._tx() as conn:
            return int((await conn.execute(stmt)).rowcount)

    # ---- inbox --------------------------------------------------------------------------------
    async def enqueue_inbound(self, items: Sequence[NewInboxItem], now: datetime) -> int:
        _aware(now)
        rows = _inbox_rows(items, now)
        if not rows:
            return 0
        i = m.inbox
        if self.dialect == "postgresql":
            # One statement whose text is the same for any number of rows (they go as arrays):
            # a multi-row VALUES has a text per count of rows, and under a flood each count was
            # prepared again on each connection (measured: 7 % of the server's time in prepare).
            columns = {name: [row[name] for row in rows] for name in _INBOX_ARRAY_COLUMNS}
            columns["payload"] = [_json_dumps(payload) for payload in columns["payload"]]
            async with self._tx() as conn:
                return len((await conn.execute(_PG_INBOX_INSERT, {**columns, "now": now})).all())
        # One statement (SQLAlchemy sends the rows as multi-row INSERTs): RETURNING names only
        # the rows really inserted, not those whose dedup_key was stored already.
        stmt = self._upsert(i).on_conflict_do_nothing(index_elements=[i.c.dedup_key]).returning(i.c.id)
        async with self._tx() as conn:
            return len((await conn.execute(stmt, rows)).all())

    async def claim_inbound(
        self, now: datetime, lease: timedelta, limit: int = 10, channels: Sequence[str] | None = None
    ) -> Sequence[InboxItem]:
        limit = _claim_limit(now, lease, limit)
        if limit <= 0:
            return []
        i = m.inbox
        due = _due(i, "working", now)
        # Only the oldest unfinished item of each conversation (its "head": so at most one per
        # conversation, and none while an older one waits for its retry), read from the partial
        # index of unfinished rows, written out word for word so that PostgreSQL's cached generic
        # plan can still use it. The heads are read first, on their own: in one statement with
        # the rest, a fast-growing table whose statistics lag made PostgreSQL re-run the grouping
        # for every candidate row (measured: 100-180 ms a claim under a flood).
        heads = (select(func.min(i.c.id)).where(UNFINISHED_INBOX).group_by(i.c.conversation_key)
                 .order_by(func.min(i.c.id)).limit(MAX_CLAIM_CANDIDATES))
        wanted = None if channels is None else list(channels)
        if wanted == []:
            return []
        async with self._tx() as conn:
            candidates = list((await conn.execute(heads)).scalars())
            if not candidates:
                return []
            query = select(i.c.id).where(i.c.id.in_(candidates), due)
            if wanted is not None:
                query = query.where(i.c.channel.in_(wanted))
            query = self._lock(query.order_by(i.c.priority, i.c.id).limit(limit), skip_locked=True)
            ids = list((await conn.execute(query)).scalars())
            if not ids:
                return []
            rows = (
                await conn.execute(
                    update(i)
                    .where(i.c.id.in_(ids))
                    .values(status="working", locked_until=now + lease, attempts=i.c.attempts + 1)
                    .returning(*i.c)
                )
            ).all()
        return sorted((_inbound_turn(r) for r in rows), key=lambda t: (t.priority, t.id))

    async def extend_inbound(self, item_id: int, locked_until: datetime, *, attempt: int | None = None) -> bool:
        _aware(locked_until, "locked_until")
        return await self._update_inbound(item_id, attempt, locked_until=locked_until)

    async def _update_inbound(self, item_id: int, attempt: int | None, **values: Any) -> bool:
        i = m.inbox
        query = update(i).where(i.c.id == item_id)
        if attempt is not None:  # only while the caller's claim still holds
            query = query.where(i.c.status == "working", i.c.attempts == attempt)
        elif "locked_until" in values:
            query = query.where(i.c.status == "working")
        async with self._tx() as conn:
            result = await conn.execute(query.values(**{"locked_until": None, **values}))
        return bool(result.rowcount)

    async def finish_inbound(self, item_id: int, now: datetime, *, attempt: int | None = None) -> bool:
        _aware(now)
        return await self._update_inbound(item_id, attempt, status="done", done_at=now)

    async def retry_inbound(self, item_id: int, next_attempt_at: datetime, error: str, *,
                            attempt: int | None = None) -> bool:
        _aware(next_attempt_at, "next_attempt_at")
        return await self._update_inbound(item_id, attempt, status="pending", next_attempt_at=next_attempt_at,
                                          last_error=error)

    async def fail_inbound(self, item_id: int, error: str, *, attempt: int | None = None) -> bool:
        return await self._update_inbound(item_id, attempt, status="failed", last_error=error)

    async def list_inbound(self, status: str | None = None) -> Sequence[InboxItem]:
        i = m.inbox
        query = select(i).order_by(i.c.id)
        if status is not None:
            query = query.where(i.c.status == status)
        async with self._tx(read_only=True) as conn:
            rows = (await conn.execute(query)).all()
        return [_inbound_turn(r) for r in rows]

    async def count_unfinished_inbound(self) -> int:
        i = m.inbox
        query = select(func.count()).select_from(i).where(i.c.status.in_(("pending", "working")))
        async with self._tx(read_only=True) as conn:
            return int((await conn.execute(query)).scalar_one())

    async def purge_inbound(self, done_before: datetime) -> int:
        _aware(done_before, "done_before")
        i = m.inbox
        stmt = delete(i).where(i.c.status == "done", i.c.done_at < done_before)
        async with self._tx() as conn:
            return int((await conn.execute(stmt)).rowcount)

    # ---- time entries -------------------------------------------------------------------------
    def _time_entry_query(self) -> Select[Any]:
        te, t = m.time_entries, m.tickets
        return select(te, t.c.number.label("ticket_number"), t.c.company.label("ticket_company")).join(
            t, t.c.id == te.c.ticket_id
        )

    async def _time_entry_where(self, conn: AsyncConnection, condition: Any) -> TimeEntry | None:
        row = (await conn.execute(self._time_entry_query().where(condition))).first()
        return _time_entry(row) if row else None

    async def _record_change(
        self,
        conn: AsyncConnection,
        entry_id: int,
        by: str,
        now: datetime,
        action: str,
        before: TimeEntry | None,
        after: TimeEntry | None,
    ) -> None:
        await conn.execute(
            insert(m.time_entry_changes).values(
                time_entry_id=entry_id,
                changed_by=by,
                changed_at=now,
                action=action,
                before=_entry_snapshot(before) if before is not None else None,
                after=_entry_snapshot(after) if after is not None else None,
            )
        )

    async def _live_time_entry(self, conn: AsyncConnection, entry_id: int) -> TimeEntry:
        """The entry, its row locked (PostgreSQL); LookupError if unknown or deleted."""
        te = m.time_entries
        locked = (
            await conn.execute(self._lock(select(te.c.id, te.c.deleted_at).where(te.c.id == entry_id)))
        ).first()
        if locked is None:
            raise LookupError(f"no time entry {entry_id}")
        if locked.deleted_at is not None:
            raise LookupError(f"time entry {entry_id} was deleted")
        entry = await self._time_entry_where(conn, te.c.id == entry_id)
        assert entry is not None
        return entry

    async def add_time_entry(self, entry: NewTimeEntry, now: datetime, idempotency_key: str | None = None) -> TimeEntry:
        _aware(now)
        values = _time_entry_values(entry)
        te = m.time_entries
        try:
            async with self._tx() as conn:
                if idempotency_key is not None:
                    existing = await self._time_entry_where(conn, te.c.idempotency_key == idempotency_key)
                    if existing is not None:
                        return existing
                ticket_id = await self._ticket_id(conn, entry.ticket_number)
                entry_id = (
                    await conn.execute(
                        insert(te)
                        .values(
                            ticket_id=ticket_id,
                            created_at=now,
                            updated_at=now,
                            deleted_at=None,
                            idempotency_key=idempotency_key,
                            **values,
                        )
                        .returning(te.c.id)
                    )
                ).scalar_one()
                created = await self._time_entry_where(conn, te.c.id == entry_id)
                assert created is not None
                await self._record_change(conn, entry_id, values["agent_email"], now, "create", None, created)
                return created
        except sa_exc.IntegrityError:
            if idempotency_key is None:
                raise
            # a concurrent request with the same key won: return its entry
            async with self._tx() as conn:
                existing = await self._time_entry_where(conn, te.c.idempotency_key == idempotency_key)
            if existing is None:
                raise
            return existing

    async def get_time_entry(self, entry_id: int) -> TimeEntry | None:
        """Deleted entries too (with deleted_at set)."""
        async with self._tx(read_only=True) as conn:
            return await self._time_entry_where(conn, m.time_entries.c.id == entry_id)

    async def update_time_entry(self, entry_id: int, entry: NewTimeEntry, by: str, now: datetime) -> TimeEntry:
        """Port method: LookupError for an unknown or deleted entry, UnknownTicketError for an
        unknown ticket number.  The agent who logged the entry stays (`entry.agent_email` is
        not applied: `by` is who edits it)."""
        _aware(now)
        values = _time_entry_values(entry)
        del values["agent_email"]
        te = m.time_entries
        async with self._tx() as conn:
            before = await self._live_time_entry(conn, entry_id)
            ticket_id = await self._ticket_id(conn, entry.ticket_number)
            await conn.execute(update(te).where(te.c.id == entry_id).values(ticket_id=ticket_id, updated_at=now, **values))
            after = await self._time_entry_where(conn, te.c.id == entry_id)
            assert after is not None
            await self._record_change(conn, entry_id, by, now, "update", before, after)
        return after

    async def delete_time_entry(self, entry_id: int, by: str, now: datetime) -> TimeEntry:
        """Port method: LookupError for an unknown or already deleted entry."""
        _aware(now)
        te = m.time_entries
        async with self._tx() as conn:
            before = await self._live_time_entry(conn, entry_id)
            await conn.execute(update(te).where(te.c.id == entry_id).values(deleted_at=now))
            after = await self._time_entry_where(conn, te.c.id == entry_id)
            assert after is not None
            await self._record_change(conn, entry_id, by, now, "delete", before, None)
        return after

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
        te, t = m.time_entries, m.tickets
        query = self._time_entry_query().order_by(te.c.started_at, te.c.id)
        if ticket_number is not None:
            query = query.where(t.c.number_key == _number_key(ticket_number))
        if agent_email is not None:
            query = query.where(func.lower(te.c.agent_email) == _email_key(agent_email))
        if company is not None:
            query = query.where(func.lower(t.c.company) == company.strip().lower())
        if started_from is not None:
            query = query.where(te.c.started_at >= _aware(started_from, "started_from"))
        if started_before is not None:
            query = query.where(te.c.started_at < _aware(started_before, "started_before"))
        if not include_deleted:
            query = query.where(te.c.deleted_at.is_(None))
        async with self._tx(read_only=True) as conn:
            rows = (await conn.execute(query)).all()
        return [_time_entry(r) for r in rows]

    async def list_time_entry_changes(self, entry_id: int) -> Sequence[Mapping[str, Any]]:
        """Oldest first (in the order they were recorded); [] for an unknown entry."""
        c = m.time_entry_changes
        query = select(c).where(c.c.time_entry_id == entry_id).order_by(c.c.id)
        async with self._tx(read_only=True) as conn:
            rows = (await conn.execute(query)).all()
        return [
            {
                "changed_by": r.changed_by,
                "changed_at": r.changed_at,
                "action": r.action,
                "before": r.before,
                "after": r.after,
            }
            for r in rows
        ]

    # ---- ticket workflow ----------------------------------------------------------------------
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
        """Port method.  `changes` keys: status (TicketStatus or its value), assignee_email
        (str or None; compared case-insensitively), solution_date / release_date (date or
        None); anything else raises ValueError.  Only fields whose value really changes are
        written and recorded (updated_at moves only then); the outbox is queued either way."""
        _aware(now)
        values = _ticket_changes(changes)
        expected = None
        if expected_status is not None:
            try:
                expected = TicketStatus(_value(expected_status)).value
            except ValueError:
                raise ValueError(f"unknown ticket status {expected_status!r}") from None
        outbox_rows = _outbox_rows(outbox, now)
        t, ev = m.tickets, m.ticket_events
        async with self._tx() as conn:
            row = (await conn.execute(self._lock(select(t).where(t.c.number_key == _number_key(number))))).first()
            if row is None:
                raise UnknownTicketError(f"no ticket {number.strip()!r}")
            if expected is not None and row.status != expected:
                raise StaleTicketError(f"ticket {row.number} is {row.status}, not {expected} any more")
            changed = {
                name: value
                for name, value in values.items()
                if not _same_ticket_value(name, getattr(row, name), value)
            }
            if changed:
                await conn.execute(update(t).where(t.c.id == row.id).values(updated_at=now, **changed))
                await conn.execute(
                    insert(ev),
                    [
                        {
                            "ticket_id": row.id,
                            "actor": by,
                            "field": name,
                            "before": _event_text(getattr(row, name)),
                            "after": _event_text(value),
                            "created_at": now,
                        }
                        for name, value in changed.items()
                    ],
                )
            await self._enqueue_rows(conn, outbox_rows)
            updated = await self._ticket_where(conn, t.c.id == row.id)
        assert updated is not None
        return updated

    async def list_ticket_events(self, number: str) -> Sequence[TicketEvent]:
        """Oldest first (in the order they were recorded); UnknownTicketError for an unknown number."""
        ev, t = m.ticket_events, m.tickets
        async with self._tx(read_only=True) as conn:
            ticket_id = await self._ticket_id(conn, number)
            rows = (
                await conn.execute(
                    select(ev, t.c.number.label("ticket_number"))
                    .join(t, t.c.id == ev.c.ticket_id)
                    .where(ev.c.ticket_id == ticket_id)
                    .order_by(ev.c.id)
                )
            ).all()
        return [
            TicketEvent(
                ticket_number=r.ticket_number,
                actor=r.actor,
                field=r.field,
                before=r.before,
                after=r.after,
                created_at=r.created_at,
            )
            for r in rows
        ]

    # ---- escalation climbing ------------------------------------------------------------------
    async def get_escalation(self, escalation_id: int) -> Escalation | None:
        async with self._tx(read_only=True) as conn:
            row = (
                await conn.execute(self._escalation_query().where(m.escalations.c.id == escalation_id))
            ).first()
        return _escalation(row) if row else None

    async def escalation_pinged(
        self, escalation_id: int, level: int, now: datetime, outbox: Sequence[NewOutboxMessage] = ()
    ) -> Escalation:
        """Port method; LookupError for an unknown escalation."""
        _aware(now)
        if isinstance(level, bool) or not isinstance(level, int) or level < 1:
            raise ValueError(f"an escalation level is a positive integer, got {level!r}")
        outbox_rows = _outbox_rows(outbox, now)
        e = m.escalations
        async with self._tx() as conn:
            locked = (
                await conn.execute(self._lock(select(e.c.status, e.c.level).where(e.c.id == escalation_id)))
            ).first()
            if locked is None:
                raise LookupError(f"no escalation {escalation_id}")
            if locked.status == EscalationStatus.OPEN.value:
                values: dict[str, Any] = {"level": level, "last_ping_at": now}
                if locked.level != level:
                    values["level_since"] = now
                await conn.execute(update(e).where(e.c.id == escalation_id).values(**values))
                await self._enqueue_rows(conn, outbox_rows)
            row = (await conn.execute(self._escalation_query().where(e.c.id == escalation_id))).one()
        return _escalation(row)

    async def acknowledge_escalation(
        self, escalation_id: int, by: str, now: datetime, outbox: Sequence[NewOutboxMessage] = ()
    ) -> tuple[Escalation, bool]:
        """Port method; LookupError for an unknown escalation.  Only an open escalation can be
        acknowledged (a closed one is returned as is, with False)."""
        _aware(now)
        outbox_rows = _outbox_rows(outbox, now)
        e = m.escalations
        async with self._tx() as conn:
            # One conditional UPDATE: of concurrent acknowledgements, the first one to write
            # wins; the others wait for its row lock and then no longer match status = 'open'.
            result = await conn.execute(
                update(e)
                .where(e.c.id == escalation_id, e.c.status == EscalationStatus.OPEN.value)
                .values(status=EscalationStatus.ACKNOWLEDGED.value, acknowledged_by=by, acknowledged_at=now)
            )
            acknowledged = result.rowcount == 1
            if acknowledged:
                await self._enqueue_rows(conn, outbox_rows)
            row = (await conn.execute(self._escalation_query().where(e.c.id == escalation_id))).first()
            if row is None:
                raise LookupError(f"no escalation {escalation_id}")
        return _escalation(row), acknowledged


__all__ = [
    "SqlStore",
    "alembic_config",
    "create_engine_for",
    "lock_migrations",
    "to_json",
    "upgrade",
    "upgrade_async",
]
