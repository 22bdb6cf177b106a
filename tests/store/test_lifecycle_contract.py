"""Contract of `StoreLifecycle` (schema, migrations, health check), run against every back end
(SQLite and PostgreSQL). Migrations 0003 and 0004 (the inbox's) are in test_inbox_contract.py.

Every test gets a fresh, empty, migrated database through the `store` fixture (tests/conftest.py),
or a database of its own through `fresh_database_url`.
"""

from __future__ import annotations

from types import SimpleNamespace

import asyncio
from datetime import timedelta
from decimal import Decimal

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import insert, inspect, select, text

from bot.domain.model import EscalationReason
from bot.store import models
from bot.store.ports import StoreUnavailableError
from bot.store.sql import SqlStore, alembic_config, upgrade_async
from tests.store.helpers import (
    AGENT,
    FMT,
    LINES,
    NOW,
    msgs,
    new_ticket,
    numbers,
    outbox_keys,
    time_entry,
)


# ---- schema ---------------------------------------------------------------------------------------


async def test_migrated_schema_matches_models(store: SqlStore) -> None:
    def check(conn):  # type: ignore[no-untyped-def]
        ctx = MigrationContext.configure(conn, opts={"compare_type": True})
        diffs = compare_metadata(ctx, models.metadata)
        head = ScriptDirectory.from_config(alembic_config()).get_current_head()
        return diffs, ctx.get_current_revision(), head, set(inspect(conn).get_table_names())

    async with store.engine.connect() as conn:
        diffs, current, head, tables = await conn.run_sync(check)
    assert diffs == []
    assert current == head == "0011"
    assert tables == set(models.metadata.tables) | {"alembic_version"}
    assert "ticket_counters" in tables and "time_entries" in tables and "outbox" in tables and "inbox" in tables


async def test_concurrent_initialize_on_fresh_database(fresh_database_url: str) -> None:
    stores = [SqlStore(fresh_database_url), SqlStore(fresh_database_url)]
    try:
        await asyncio.gather(*(s.initialize() for s in stores))
        await stores[0].initialize()  # idempotent
        ticket = await stores[1].create_ticket(new_ticket(), NOW, FMT)
        assert ticket.number == "CS-2026-00001"
        async with stores[0].engine.connect() as conn:
            revisions = (await conn.execute(text("SELECT version_num FROM alembic_version"))).scalars().all()
        assert revisions == ["0011"]
    finally:
        for s in stores:
            await s.close()


async def test_ping(store: SqlStore) -> None:
    await store.ping()


@pytest.mark.parametrize(
    "url",
    [
        pytest.param("postgresql+asyncpg://postgres@127.0.0.1:1/nowhere", id="postgresql-unreachable"),
        pytest.param("sqlite-directory", id="sqlite-unreachable"),
    ],
)
async def test_ping_unreachable_raises_store_unavailable(url: str, tmp_path) -> None:  # type: ignore[no-untyped-def]
    if url == "sqlite-directory":
        url = f"sqlite+aiosqlite:///{tmp_path}"  # a directory cannot be opened as a database
    store = SqlStore(url)
    try:
        with pytest.raises(StoreUnavailableError):
            await store.ping()
        with pytest.raises(StoreUnavailableError):
            await store.get_ticket("CS-2026-00001")
    finally:
        await store.close()
        # aiosqlite stops the worker thread of a failed connection without waiting for it:
        # let it finish before this test's event loop closes.
        await asyncio.sleep(0.05)


async def test_sqlite_memory_database_is_shared_between_sessions() -> None:
    store = SqlStore("sqlite+aiosqlite:///:memory:")
    try:
        await store.initialize()
        created = await asyncio.gather(*(store.create_ticket(new_ticket(), NOW, FMT) for _ in range(5)))
        assert sorted(t.number for t in created) == numbers(2026, 5)
        assert len(await store.list_tickets()) == 5
    finally:
        await store.close()


# ---- migration 0002 -------------------------------------------------------------------------------


async def test_upgrade_from_0001_keeps_the_data(fresh_database_url: str) -> None:
    await upgrade_async(fresh_database_url, "0001")
    store = SqlStore(fresh_database_url)  # not initialized: the database stays at 0001 for now
    try:
        # Written as 0001 wrote it (the store of today writes columns 0001 did not have).
        async with store.engine.begin() as conn:
            ticket_id = (await conn.execute(insert(models.tickets).values(**_old_ticket_values())
                                            .returning(models.tickets.c.id))).scalar_one()
        ticket = SimpleNamespace(id=ticket_id, number="CS-2026-00001")
        esc = await store.create_escalation(
            ticket.number, 1, EscalationReason.FEEDBACK, "no answer", "jan@acme.be", NOW, msgs("old:1")
        )
        values = {
            "ticket_id": ticket.id,
            "agent_email": AGENT,
            "service": "onsite",
            "started_at": NOW,
            "ended_at": NOW + timedelta(hours=1),
            "participants": 2,
            "note": "logged before 0002",
            "lines": [dict(LINES[0])],
            "amount": Decimal("190.00"),
            "currency": "EUR",
            "created_at": NOW,
            "updated_at": NOW,
        }
        async with store.engine.begin() as conn:
            entry_id = (
                await conn.execute(insert(models.time_entries).values(**values).returning(models.time_entries.c.id))
            ).scalar_one()
            await conn.execute(
                insert(models.time_entry_changes).values(
                    time_entry_id=entry_id, changed_by=AGENT, changed_at=NOW, action="create", after={"n": 1}
                )
            )

        await store.initialize()  # 0001 -> head

        async with store.engine.connect() as conn:
            assert (await conn.execute(text("SELECT version_num FROM alembic_version"))).scalars().all() == ["0011"]
            keys = (await conn.execute(select(models.time_entries.c.idempotency_key))).scalars().all()
        assert keys == [None]
        entry = await store.get_time_entry(entry_id)
        assert entry is not None
        assert (entry.ticket_number, entry.company, entry.service, entry.participants) == (
            "CS-2026-00001", "Acme NV", "onsite", 2,
        )
        assert (entry.amount, entry.lines, entry.note) == (Decimal("190.00"), (dict(LINES[0]),), "logged before 0002")
        assert entry.started_at == NOW and entry.deleted_at is None
        assert [c["after"] for c in await store.list_time_entry_changes(entry_id)] == [{"n": 1}]
        upgraded = await store.get_ticket("CS-2026-00001")
        assert upgraded is not None and (upgraded.id, upgraded.description, upgraded.intake.value) == (
            ticket_id, "It fails since the update", "chat")
        assert await store.get_escalation(esc.id) == esc
        assert await outbox_keys(store) == ["old:1"]

        # the new parts work on the upgraded database
        added = await store.add_time_entry(time_entry(), NOW, idempotency_key="k1")
        assert (await store.add_time_entry(time_entry(), NOW, idempotency_key="k1")).id == added.id
        await store.update_ticket(ticket.number, by=AGENT, now=NOW, changes={"status": "in_progress"})
        assert [e.after for e in await store.list_ticket_events(ticket.number)] == ["in_progress"]

        # and back down to 0001 and up again, still with the data
        def downgrade(conn):  # type: ignore[no-untyped-def]
            command.downgrade(alembic_config(connection=conn), "0001")

        async with store.engine.begin() as conn:
            await conn.run_sync(downgrade)
        await store.initialize()
        assert [e.id for e in await store.list_time_entries()] == [entry_id, added.id]
        assert len(await store.list_time_entry_changes(entry_id)) == 1
        assert await store.list_ticket_events(ticket.number) == []  # the table was dropped and re-created
    finally:
        await store.close()


# ---- migration 0006 -------------------------------------------------------------------------------


async def test_0006_rota_table_up_and_down_keeps_the_directory(fresh_database_url: str) -> None:
    from dataclasses import replace

    from bot.domain.oncall import Shift
    from tests.store.helpers import DIRECTORY

    await upgrade_async(fresh_database_url, "0005")
    store = SqlStore(fresh_database_url)
    try:
        async with store.engine.connect() as conn:
            assert "oncall_shifts" not in await conn.run_sync(lambda c: inspect(c).get_table_names())
        await store.initialize()  # 0005 -> 0006
        rota = (Shift(0, "17:00", "09:00", "Agent.One@CareSolutions.be", None),)
        await store.replace_directory(replace(DIRECTORY, rota=rota))
        assert await store.get_rota() == rota

        def downgrade(conn):  # type: ignore[no-untyped-def]
            command.downgrade(alembic_config(connection=conn), "0005")

        async with store.engine.begin() as conn:
            await conn.run_sync(downgrade)
            assert "oncall_shifts" not in await conn.run_sync(lambda c: inspect(c).get_table_names())
        assert await store.find_staff("agent.one@caresolutions.be") is not None
        await store.initialize()
        assert await store.get_rota() == ()  # the table came back empty; the next load fills it
    finally:
        await store.close()


# ---- migration 0007 -------------------------------------------------------------------------------


async def test_0007_intake_reads_chat_for_older_tickets_and_goes_down_again(fresh_database_url: str) -> None:
    from dataclasses import replace

    from bot.domain.model import Intake

    await upgrade_async(fresh_database_url, "0006")
    store = SqlStore(fresh_database_url)
    try:
        async with store.engine.begin() as conn:
            columns = await conn.run_sync(lambda c: [col["name"] for col in inspect(c).get_columns("tickets")])
            assert "intake" not in columns
            # Last year's, so the counter of this year still hands out number 1.
            values = {**_old_ticket_values(), "number": "CS-2025-00009", "number_key": "cs-2025-00009",
                      "year": 2025, "seq": 9}
            await conn.execute(insert(models.tickets).values(**values))
        await store.initialize()  # 0006 -> 0007
        [old] = await store.list_tickets()
        assert old.intake is Intake.CHAT
        phoned = await store.create_ticket(replace(new_ticket(), intake=Intake.PHONE), NOW, FMT)
        assert (await store.get_ticket(phoned.number)).intake is Intake.PHONE

        def downgrade(conn):  # type: ignore[no-untyped-def]
            command.downgrade(alembic_config(connection=conn), "0006")

        async with store.engine.begin() as conn:
            await conn.run_sync(downgrade)
            columns = await conn.run_sync(lambda c: [col["name"] for col in inspect(c).get_columns("tickets")])
        assert "intake" not in columns
    finally:
        await store.close()


def _old_ticket_values() -> dict:
    return {
        "number": "CS-2026-00001", "number_key": "cs-2026-00001", "year": 2026, "seq": 1, "kind": "incident",
        "status": "new", "requester_email": "jan@acme.be", "requester_email_key": "jan@acme.be",
        "requester_name": "Jan", "company": "Acme NV", "module": "ERP", "description": "It fails since the update",
        "urgency": "normal", "channel": "console", "out_of_hours_emergency": False, "created_at": NOW,
        "updated_at": NOW,
    }


# ---- migration 0009 -------------------------------------------------------------------------------


async def test_0009_portal_tables_up_and_down(fresh_database_url: str) -> None:
    from tests.store.helpers import NOW

    await upgrade_async(fresh_database_url, "0006")
    store = SqlStore(fresh_database_url)
    try:
        async with store.engine.connect() as conn:
            assert "portal_activities" not in await conn.run_sync(lambda c: inspect(c).get_table_names())
        await store.initialize()  # 0006 -> head
        conv = await store.open_portal_conversation("a@example.com", "conv-1", NOW)
        assert await store.add_portal_activities(conv, [{"type": "message", "text": "hi"}], NOW) == [1]

        def downgrade(conn):  # type: ignore[no-untyped-def]
            command.downgrade(alembic_config(connection=conn), "0006")

        async with store.engine.begin() as conn:
            await conn.run_sync(downgrade)
            tables = await conn.run_sync(lambda c: inspect(c).get_table_names())
            assert "portal_activities" not in tables and "portal_conversations" not in tables
        await store.initialize()
        assert await store.portal_conversation_of("a@example.com") is None
    finally:
        await store.close()
