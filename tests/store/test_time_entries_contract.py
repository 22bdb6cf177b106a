"""Contract of `TimeEntryStore` (time registration and its change history), run against every
back end (SQLite and PostgreSQL).
"""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta
from decimal import Decimal

import pytest
from sqlalchemy import select

from bot.store import models
from bot.store.ports import UnknownTicketError
from bot.store.sql import SqlStore
from tests.store.helpers import AGENT, BRUSSELS, FMT, LINES, NOW, UTC, new_ticket, time_entry


# ---- time entries ---------------------------------------------------------------------------------


async def test_add_and_get_time_entry(store: SqlStore) -> None:
    await store.create_ticket(new_ticket(), NOW, FMT)
    entry = await store.add_time_entry(time_entry("cs-2026-00001"), NOW)
    assert entry.ticket_number == "CS-2026-00001" and entry.company == "Acme NV"
    assert (entry.agent_email, entry.service, entry.participants, entry.note) == (
        AGENT, "teamviewer", 1, "Rebuilt the index",
    )
    assert entry.started_at == datetime(2026, 3, 2, 15, 0, tzinfo=UTC)
    assert entry.ended_at == datetime(2026, 3, 2, 17, 30, tzinfo=UTC)
    assert entry.started_at.utcoffset() == timedelta(0)
    assert entry.amount == Decimal("261.25") and isinstance(entry.amount, Decimal)
    assert entry.amount.as_tuple().exponent == -2
    assert entry.lines == LINES and isinstance(entry.lines, tuple) and isinstance(entry.lines[0], dict)
    assert entry.currency == "EUR"
    assert (entry.created_at, entry.updated_at, entry.deleted_at) == (NOW, NOW, None)
    assert await store.get_time_entry(entry.id) == entry
    assert await store.get_time_entry(entry.id + 100) is None

    changes = await store.list_time_entry_changes(entry.id)
    assert [dict(c) for c in changes] == [
        {
            "changed_by": AGENT,
            "changed_at": NOW,
            "action": "create",
            "before": None,
            "after": {
                "id": entry.id,
                "ticket_number": "CS-2026-00001",
                "agent_email": AGENT,
                "service": "teamviewer",
                "started_at": "2026-03-02T15:00:00+00:00",
                "ended_at": "2026-03-02T17:30:00+00:00",
                "participants": 1,
                "note": "Rebuilt the index",
                "lines": [dict(line) for line in LINES],
                "amount": "261.25",
                "currency": "EUR",
            },
        }
    ]

    # a large amount keeps its cents exactly (SQLite stores NUMERIC as a float)
    big = await store.add_time_entry(time_entry(amount=Decimal("9876543210.99"), lines=()), NOW)
    assert (await store.get_time_entry(big.id)).amount == Decimal("9876543210.99")  # type: ignore[union-attr]
    assert big.lines == ()


async def test_add_time_entry_refusals_write_nothing(store: SqlStore) -> None:
    await store.create_ticket(new_ticket(), NOW, FMT)
    with pytest.raises(UnknownTicketError):
        await store.add_time_entry(time_entry("CS-2026-00404"), NOW)
    with pytest.raises(ValueError):
        await store.add_time_entry(time_entry(amount=Decimal("10.005")), NOW)  # never rounded silently
    with pytest.raises(TypeError):
        await store.add_time_entry(time_entry(amount=10.5), NOW)
    with pytest.raises(ValueError):
        await store.add_time_entry(time_entry(ended_at=datetime(2026, 3, 2, 15, 0, tzinfo=BRUSSELS)), NOW)
    with pytest.raises(ValueError):
        await store.add_time_entry(time_entry(started_at=datetime(2026, 3, 2, 16, 0)), NOW)
    with pytest.raises(TypeError):
        await store.add_time_entry(time_entry(lines=({"bad": object()},)), NOW)
    assert await store.list_time_entries(include_deleted=True) == []
    async with store.engine.connect() as conn:
        assert (await conn.execute(select(models.time_entry_changes))).all() == []


async def test_time_entry_idempotency_key(store: SqlStore, store_factory) -> None:  # type: ignore[no-untyped-def]
    await store.create_ticket(new_ticket(), NOW, FMT)
    other = await store_factory()
    results = await asyncio.gather(
        *(s.add_time_entry(time_entry(), NOW, idempotency_key="turn-7") for s in [store, other] * 3)
    )
    assert len({e.id for e in results}) == 1
    again = await store.add_time_entry(time_entry(note="a retry"), NOW, idempotency_key="turn-7")
    assert again == results[0] and again.note == "Rebuilt the index"
    second = await store.add_time_entry(time_entry(), NOW, idempotency_key="turn-8")
    third = await store.add_time_entry(time_entry(), NOW)
    assert len({results[0].id, second.id, third.id}) == 3
    assert len(await store.list_time_entries()) == 3
    assert [len(await store.list_time_entry_changes(e.id)) for e in (results[0], second, third)] == [1, 1, 1]


async def test_update_and_delete_time_entry(store: SqlStore) -> None:
    await store.create_ticket(new_ticket(), NOW, FMT)
    await store.create_ticket(new_ticket(company="Globex BV"), NOW, FMT)
    entry = await store.add_time_entry(time_entry(), NOW)
    edit_at = NOW + timedelta(hours=1)
    new_lines = ({"start": "16:00", "end": "17:00", "multiplier": "1.0", "hours": "1.00", "rate": "120.00", "amount": "240.00"},)
    changed = await store.update_time_entry(
        entry.id,
        time_entry(
            " cs-2026-00002",
            agent_email="someone.else@caresolutions.be",
            service="onsite",
            ended_at=datetime(2026, 3, 2, 17, 0, tzinfo=BRUSSELS),
            participants=2,
            note=None,
            lines=new_lines,
            amount=Decimal(240),
        ),
        "boss2@caresolutions.be",
        edit_at,
    )
    assert (changed.id, changed.ticket_number, changed.company) == (entry.id, "CS-2026-00002", "Globex BV")
    assert changed.agent_email == AGENT  # the agent who logged it stays
    assert (changed.service, changed.participants, changed.note, changed.lines) == ("onsite", 2, None, new_lines)
    assert changed.amount == Decimal("240.00") and str(changed.amount) == "240.00"
    assert changed.ended_at == datetime(2026, 3, 2, 16, 0, tzinfo=UTC)
    assert (changed.created_at, changed.updated_at, changed.deleted_at) == (NOW, edit_at, None)
    assert await store.get_time_entry(entry.id) == changed

    with pytest.raises(UnknownTicketError):
        await store.update_time_entry(entry.id, time_entry("CS-2026-00404"), "boss2@caresolutions.be", edit_at)
    assert await store.get_time_entry(entry.id) == changed

    delete_at = NOW + timedelta(hours=2)
    deleted = await store.delete_time_entry(entry.id, "agent.one@caresolutions.be", delete_at)
    assert deleted.deleted_at == delete_at and deleted.amount == Decimal("240.00")
    assert (await store.get_time_entry(entry.id)).deleted_at == delete_at  # type: ignore[union-attr]
    with pytest.raises(LookupError):
        await store.delete_time_entry(entry.id, "x@y.be", delete_at)
    with pytest.raises(LookupError):
        await store.update_time_entry(entry.id, time_entry(), "x@y.be", delete_at)
    with pytest.raises(LookupError):
        await store.update_time_entry(entry.id + 100, time_entry(), "x@y.be", delete_at)
    with pytest.raises(LookupError):
        await store.delete_time_entry(entry.id + 100, "x@y.be", delete_at)

    changes = await store.list_time_entry_changes(entry.id)
    assert [(c["action"], c["changed_by"], c["changed_at"]) for c in changes] == [
        ("create", AGENT, NOW),
        ("update", "boss2@caresolutions.be", edit_at),
        ("delete", "agent.one@caresolutions.be", delete_at),
    ]
    update_change = changes[1]
    assert update_change["before"] == changes[0]["after"]
    assert update_change["before"]["ticket_number"] == "CS-2026-00001"
    assert {k: update_change["after"][k] for k in ("ticket_number", "service", "amount", "note", "participants")} == {
        "ticket_number": "CS-2026-00002", "service": "onsite", "amount": "240.00", "note": None, "participants": 2,
    }
    assert changes[2]["before"] == update_change["after"] and changes[2]["after"] is None
    assert await store.list_time_entry_changes(entry.id + 100) == []


async def test_list_time_entries_filters(store: SqlStore) -> None:
    await store.create_ticket(new_ticket(), NOW, FMT)  # Acme NV
    await store.create_ticket(new_ticket(company="Globex BV"), NOW, FMT)
    day = lambda d, h: datetime(2026, 3, d, h, 0, tzinfo=UTC)
    e1 = await store.add_time_entry(time_entry(started_at=day(5, 9), ended_at=day(5, 10)), NOW)
    e2 = await store.add_time_entry(
        time_entry("CS-2026-00002", agent_email="other@caresolutions.be", started_at=day(1, 9), ended_at=day(1, 10)), NOW
    )
    e3 = await store.add_time_entry(time_entry(started_at=day(5, 9), ended_at=day(5, 11)), NOW)  # same start as e1
    e4 = await store.add_time_entry(time_entry(started_at=datetime(2026, 4, 1, 0, 0, tzinfo=BRUSSELS),
                                               ended_at=datetime(2026, 4, 1, 1, 0, tzinfo=BRUSSELS)), NOW)
    e5 = await store.add_time_entry(time_entry(started_at=day(3, 9), ended_at=day(3, 10)), NOW)
    await store.delete_time_entry(e5.id, AGENT, NOW)

    ids = lambda entries: [e.id for e in entries]
    assert ids(await store.list_time_entries()) == [e2.id, e1.id, e3.id, e4.id]
    assert ids(await store.list_time_entries(include_deleted=True)) == [e2.id, e5.id, e1.id, e3.id, e4.id]
    assert ids(await store.list_time_entries(ticket_number="cs-2026-00002")) == [e2.id]
    assert ids(await store.list_time_entries(ticket_number="CS-2026-00404")) == []
    assert ids(await store.list_time_entries(agent_email=" AGENT.one@caresolutions.BE")) == [e1.id, e3.id, e4.id]
    assert ids(await store.list_time_entries(company="globex bv")) == [e2.id]
    assert ids(await store.list_time_entries(company="ACME NV", include_deleted=True)) == [e5.id, e1.id, e3.id, e4.id]
    # March in Brussels: [2026-03-01 00:00+01:00, 2026-04-01 00:00+02:00)
    march = {
        "started_from": datetime(2026, 3, 1, tzinfo=BRUSSELS),
        "started_before": datetime(2026, 4, 1, tzinfo=BRUSSELS),
    }
    assert ids(await store.list_time_entries(**march)) == [e2.id, e1.id, e3.id]
    assert ids(await store.list_time_entries(started_from=day(5, 9))) == [e1.id, e3.id, e4.id]
    assert ids(await store.list_time_entries(started_before=day(5, 9))) == [e2.id]
    assert ids(await store.list_time_entries(company="Acme NV", agent_email=AGENT, **march)) == [e1.id, e3.id]
    assert [e.company for e in await store.list_time_entries()] == ["Globex BV", "Acme NV", "Acme NV", "Acme NV"]
