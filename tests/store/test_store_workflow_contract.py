"""Contract of the store port's workflow part (outbox delivery, time entries, ticket workflow,
escalation climbing), run against every back end (SQLite and PostgreSQL), plus migration 0002.
"""

from __future__ import annotations

import asyncio
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
from alembic import command
from sqlalchemy import insert, select, text

from bot.domain.model import (
    EscalationReason,
    EscalationStatus,
    NewTicket,
    NewTimeEntry,
    TicketEvent,
    TicketKind,
    TicketStatus,
)
from bot.store import models
from bot.store.ports import NewOutboxMessage, StaleTicketError, UnknownTicketError
from bot.store.sql import SqlStore, alembic_config, upgrade_async

UTC = timezone.utc
BRUSSELS = ZoneInfo("Europe/Brussels")
FMT = "CS-{year}-{seq:05d}"
NOW = datetime(2026, 3, 2, 9, 30, tzinfo=UTC)
LEASE = timedelta(minutes=5)
AGENT = "Agent.One@CareSolutions.be"


def new_ticket(company: str | None = "Acme NV", **overrides: object) -> NewTicket:
    values: dict[str, object] = {
        "kind": TicketKind.INCIDENT,
        "requester_email": "jan.peeters@acme.be",
        "requester_name": "Jan Peeters",
        "company": company,
        "module": "invoicing",
        "description": "The invoice run stops halfway",
    }
    values.update(overrides)
    return NewTicket(**values)  # type: ignore[arg-type]


LINES = (
    {"start": "16:00", "end": "18:00", "multiplier": "1.0", "hours": "2.00", "rate": "95.00", "amount": "190.00"},
    {"start": "18:00", "end": "18:30", "multiplier": "1.5", "hours": "0.50", "rate": "95.00", "amount": "71.25"},
)


def time_entry(ticket_number: str = "CS-2026-00001", **overrides: object) -> NewTimeEntry:
    values: dict[str, object] = {
        "ticket_number": ticket_number,
        "agent_email": AGENT,
        "service": "teamviewer",
        # local (Brussels) times, as the logtime command produces them
        "started_at": datetime(2026, 3, 2, 16, 0, tzinfo=BRUSSELS),
        "ended_at": datetime(2026, 3, 2, 18, 30, tzinfo=BRUSSELS),
        "participants": 1,
        "note": "Rebuilt the index",
        "lines": LINES,
        "amount": Decimal("261.25"),
    }
    values.update(overrides)
    return NewTimeEntry(**values)  # type: ignore[arg-type]


def msgs(*keys: str, recipient: str = "boss@caresolutions.be") -> list[NewOutboxMessage]:
    return [NewOutboxMessage(k, recipient, "notice", {"key": k}) for k in keys]


async def outbox_keys(store: SqlStore, status: str | None = None) -> list[str]:
    return [q.idempotency_key for q in await store.list_outbox(status)]


# ---- migration 0002 ----------------------------------------------------------------------------------


async def test_upgrade_from_0001_keeps_the_data(fresh_database_url: str) -> None:
    await upgrade_async(fresh_database_url, "0001")
    store = SqlStore(fresh_database_url)  # not initialized: the database stays at 0001 for now
    try:
        ticket = await store.create_ticket(new_ticket(), NOW, FMT)
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
            assert (await conn.execute(text("SELECT version_num FROM alembic_version"))).scalars().all() == ["0004"]
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
        assert await store.get_ticket("CS-2026-00001") == ticket
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


# ---- outbox delivery ---------------------------------------------------------------------------------


async def test_claim_outbox_due_messages_and_expired_leases(store: SqlStore) -> None:
    await store.enqueue(msgs("a", "b", "c"), NOW)
    await store.enqueue(msgs("later"), NOW + timedelta(hours=1))  # due in an hour

    first = await store.claim_outbox(NOW, LEASE, limit=2)
    assert [(q.idempotency_key, q.status, q.attempts) for q in first] == [("a", "sending", 1), ("b", "sending", 1)]
    assert [(q.idempotency_key, q.attempts) for q in await store.claim_outbox(NOW, LEASE, limit=2)] == [("c", 1)]
    assert await store.claim_outbox(NOW + timedelta(minutes=4), LEASE) == []  # leases still running
    assert await outbox_keys(store, "pending") == ["later"]

    # the dispatcher died: after the lease the messages are taken again, "later" still is not due
    again = await store.claim_outbox(NOW + timedelta(minutes=6), LEASE)
    assert [(q.idempotency_key, q.status, q.attempts) for q in again] == [
        ("a", "sending", 2), ("b", "sending", 2), ("c", "sending", 2),
    ]
    async with store.engine.connect() as conn:
        locks = (await conn.execute(select(models.outbox.c.locked_until).order_by(models.outbox.c.id))).scalars().all()
    assert locks == [NOW + timedelta(minutes=11)] * 3 + [None]

    for q in again[:2]:
        await store.mark_sent(q.id, NOW + timedelta(minutes=7))
    late = await store.claim_outbox(NOW + timedelta(hours=1), LEASE)  # "c" was never marked: taken a third time
    assert [(q.idempotency_key, q.attempts) for q in late] == [("c", 3), ("later", 1)]
    assert await store.claim_outbox(NOW, LEASE, limit=0) == []
    with pytest.raises(ValueError):
        await store.claim_outbox(NOW, timedelta(0))


async def test_mark_sent_retry_failed_and_requeue(store: SqlStore) -> None:
    await store.enqueue(msgs("a", "b", "c", "d"), NOW)
    a, b, c, d = await store.claim_outbox(NOW, LEASE)
    sent_at = NOW + timedelta(seconds=2)
    await store.mark_sent(a.id, sent_at)
    retry_at = NOW + timedelta(minutes=1)
    await store.mark_retry(b.id, retry_at, "429 Too Many Requests")
    await store.mark_failed(c.id, "user not found")
    await store.mark_failed(d.id, "403 Forbidden")

    by_key = {q.idempotency_key: q for q in await store.list_outbox()}
    assert (by_key["a"].status, by_key["a"].sent_at, by_key["a"].last_error) == ("sent", sent_at, None)
    assert (by_key["b"].status, by_key["b"].next_attempt_at, by_key["b"].last_error) == (
        "pending", retry_at, "429 Too Many Requests",
    )
    assert (by_key["c"].status, by_key["c"].attempts, by_key["c"].sent_at) == ("failed", 1, None)
    async with store.engine.connect() as conn:
        locks = (await conn.execute(select(models.outbox.c.locked_until))).scalars().all()
    assert locks == [None] * 4

    # sent and failed messages are never claimed again; the retry only once it is due
    assert await store.claim_outbox(NOW + timedelta(seconds=30), LEASE) == []
    assert [q.idempotency_key for q in await store.claim_outbox(retry_at, LEASE)] == ["b"]

    requeue_at = NOW + timedelta(hours=2)
    assert await store.requeue_failed(requeue_at, [c.id, a.id, b.id]) == 1  # only the failed one
    assert await store.requeue_failed(requeue_at, []) == 0
    by_key = {q.idempotency_key: q for q in await store.list_outbox()}
    assert (by_key["c"].status, by_key["c"].attempts, by_key["c"].next_attempt_at, by_key["c"].last_error) == (
        "pending", 0, requeue_at, "user not found",
    )
    assert (by_key["a"].status, by_key["b"].status, by_key["d"].status) == ("sent", "sending", "failed")
    assert await store.requeue_failed(requeue_at) == 1  # all failed: d
    assert await store.requeue_failed(requeue_at) == 0
    assert await outbox_keys(store, "pending") == ["c", "d"]


async def test_concurrent_dispatchers_never_take_the_same_message(store: SqlStore, store_factory) -> None:  # type: ignore[no-untyped-def]
    other = await store_factory()
    keys = [f"m{i:03d}" for i in range(60)]
    await store.enqueue(msgs(*keys), NOW)

    async def dispatcher(s: SqlStore) -> list[int]:
        taken: list[int] = []
        while batch := await s.claim_outbox(NOW, LEASE, limit=3):
            assert len(batch) <= 3
            taken.extend(q.id for q in batch)
        return taken

    results = await asyncio.gather(*(dispatcher(s) for s in [store, other, store, other]))
    taken = [i for r in results for i in r]
    assert len(taken) == len(set(taken)) == 60
    all_ids = {q.id for q in await store.list_outbox()}
    assert set(taken) == all_ids
    assert [q.attempts for q in await store.list_outbox()] == [1] * 60
    assert await outbox_keys(store, "sending") == keys


# ---- time entries ------------------------------------------------------------------------------------


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


# ---- ticket workflow ---------------------------------------------------------------------------------


async def test_update_ticket_records_events_and_queues_outbox(store: SqlStore) -> None:
    ticket = await store.create_ticket(new_ticket(), NOW, FMT)
    t1 = NOW + timedelta(minutes=5)
    updated = await store.update_ticket(
        "cs-2026-00001",
        by=AGENT,
        now=t1,
        changes={"status": TicketStatus.IN_PROGRESS, "assignee_email": AGENT},
        expected_status="new",
        outbox=msgs("assigned:1", "assigned:2"),
    )
    assert (updated.status, updated.assignee_email, updated.updated_at) == (TicketStatus.IN_PROGRESS, AGENT, t1)
    assert updated.created_at == NOW and updated.description == ticket.description
    assert await store.get_ticket(ticket.number) == updated
    assert await outbox_keys(store) == ["assigned:1", "assigned:2"]

    t2 = NOW + timedelta(minutes=10)
    updated = await store.update_ticket(
        ticket.number,
        by="boss2@caresolutions.be",
        now=t2,
        changes={
            "status": "resolved",
            "assignee_email": "agent.one@caresolutions.BE",  # the same person: no change
            "solution_date": date(2026, 3, 2),
            "release_date": None,  # was None already: no change
        },
        expected_status=TicketStatus.IN_PROGRESS,
        outbox=msgs("assigned:2", "resolved:1"),  # assigned:2 is queued already: ignored
    )
    assert (updated.status, updated.solution_date, updated.release_date, updated.assignee_email) == (
        TicketStatus.RESOLVED, date(2026, 3, 2), None, AGENT,
    )
    assert await outbox_keys(store) == ["assigned:1", "assigned:2", "resolved:1"]

    # nothing really changes: no event, updated_at stays
    t3 = NOW + timedelta(minutes=15)
    same = await store.update_ticket(ticket.number, by=AGENT, now=t3, changes={"status": "resolved"})
    assert same.updated_at == t2

    t4 = NOW + timedelta(minutes=20)
    await store.update_ticket(
        ticket.number, by=AGENT, now=t4, changes={"assignee_email": None, "solution_date": None}
    )
    events = await store.list_ticket_events(" CS-2026-00001")
    assert events == [
        TicketEvent("CS-2026-00001", AGENT, "status", "new", "in_progress", t1),
        TicketEvent("CS-2026-00001", AGENT, "assignee_email", None, AGENT, t1),
        TicketEvent("CS-2026-00001", "boss2@caresolutions.be", "status", "in_progress", "resolved", t2),
        TicketEvent("CS-2026-00001", "boss2@caresolutions.be", "solution_date", None, "2026-03-02", t2),
        TicketEvent("CS-2026-00001", AGENT, "assignee_email", AGENT, None, t4),
        TicketEvent("CS-2026-00001", AGENT, "solution_date", "2026-03-02", None, t4),
    ]
    assert events[0].created_at.utcoffset() == timedelta(0)


async def test_update_ticket_refusals_change_nothing(store: SqlStore) -> None:
    ticket = await store.create_ticket(new_ticket(), NOW, FMT)
    later = NOW + timedelta(minutes=1)
    refusals = [
        ({"status": "in_progress", "description": "hacked"}, None, ValueError),
        ({"priority": "high"}, None, ValueError),
        ({"status": "no_such_status"}, None, ValueError),
        ({"solution_date": "2026-03-02"}, None, ValueError),
        ({"release_date": datetime(2026, 3, 2, tzinfo=UTC)}, None, ValueError),
        ({"assignee_email": 42}, None, ValueError),
        ({"status": "in_progress"}, "waiting_for_customer", StaleTicketError),
    ]
    for changes, expected, error in refusals:
        with pytest.raises(error):
            await store.update_ticket(
                ticket.number, by=AGENT, now=later, changes=changes, expected_status=expected, outbox=msgs("x")
            )
    with pytest.raises(UnknownTicketError):
        await store.update_ticket("CS-2026-00404", by=AGENT, now=later, changes={"status": "closed"}, outbox=msgs("x"))
    with pytest.raises(UnknownTicketError):
        await store.list_ticket_events("CS-2026-00404")
    assert await store.get_ticket(ticket.number) == ticket
    assert await store.list_ticket_events(ticket.number) == []
    assert await store.list_outbox() == []


async def test_two_agents_moving_one_ticket_at_once(store: SqlStore, store_factory) -> None:  # type: ignore[no-untyped-def]
    ticket = await store.create_ticket(new_ticket(), NOW, FMT)
    other = await store_factory()

    async def move(s: SqlStore, i: int) -> str | None:
        try:
            await s.update_ticket(
                ticket.number,
                by=f"agent{i}@caresolutions.be",
                now=NOW + timedelta(seconds=i),
                changes={"status": "in_progress", "assignee_email": f"agent{i}@caresolutions.be"},
                expected_status="new",
                outbox=msgs(f"taken-by-{i}"),
            )
            return f"agent{i}@caresolutions.be"
        except StaleTicketError:
            return None

    results = await asyncio.gather(*(move(s, i) for i, s in enumerate([store, other] * 3)))
    winners = [r for r in results if r is not None]
    assert len(winners) == 1 and results.count(None) == 5
    winner = winners[0]
    current = await store.get_ticket(ticket.number)
    assert current is not None and (current.status, current.assignee_email) == (TicketStatus.IN_PROGRESS, winner)
    events = await store.list_ticket_events(ticket.number)
    assert [(e.field, e.actor) for e in events] == [("status", winner), ("assignee_email", winner)]
    assert await outbox_keys(store) == [f"taken-by-{results.index(winner)}"]


# ---- escalation climbing -----------------------------------------------------------------------------


async def test_escalation_pinged_climbs_while_open(store: SqlStore) -> None:
    await store.create_ticket(new_ticket(), NOW, FMT)
    esc = await store.create_escalation("CS-2026-00001", 1, EscalationReason.SOLUTION, "still broken", "jan@acme.be", NOW)
    assert esc.last_ping_at is None
    assert await store.get_escalation(esc.id) == esc
    assert await store.get_escalation(esc.id + 100) is None

    t1 = NOW + timedelta(minutes=30)
    pinged = await store.escalation_pinged(esc.id, 1, t1, msgs("esc:l1:ping1"))
    assert (pinged.level, pinged.level_since, pinged.last_ping_at) == (1, NOW, t1)  # same level: since unchanged
    t2 = NOW + timedelta(hours=1)
    climbed = await store.escalation_pinged(esc.id, 2, t2, msgs("esc:l2", "esc:l1:ping1"))
    assert (climbed.level, climbed.level_since, climbed.last_ping_at, climbed.status) == (2, t2, t2, EscalationStatus.OPEN)
    assert await store.get_escalation(esc.id) == climbed
    assert await outbox_keys(store) == ["esc:l1:ping1", "esc:l2"]

    t3 = NOW + timedelta(hours=2)
    acked, now_acked = await store.acknowledge_escalation(esc.id, "boss2@caresolutions.be", t3, msgs("esc:ack"))
    assert now_acked is True
    assert (acked.status, acked.acknowledged_by, acked.acknowledged_at) == (
        EscalationStatus.ACKNOWLEDGED, "boss2@caresolutions.be", t3,
    )
    assert (acked.level, acked.level_since, acked.last_ping_at) == (2, t2, t2)

    # acknowledged: a late ping changes nothing and queues nothing, nor does a second acknowledgement
    late = await store.escalation_pinged(esc.id, 3, t3 + timedelta(minutes=1), msgs("esc:l3"))
    assert late == acked
    again, again_acked = await store.acknowledge_escalation(esc.id, "naida@caresolutions.be", t3, msgs("esc:ack2"))
    assert (again, again_acked) == (acked, False)
    assert await outbox_keys(store) == ["esc:l1:ping1", "esc:l2", "esc:ack"]

    with pytest.raises(LookupError):
        await store.escalation_pinged(esc.id + 100, 2, t3, msgs("nothing"))
    with pytest.raises(LookupError):
        await store.acknowledge_escalation(esc.id + 100, "x@y.be", t3, msgs("nothing"))
    assert await outbox_keys(store) == ["esc:l1:ping1", "esc:l2", "esc:ack"]


async def test_two_managers_acknowledging_at_once(store: SqlStore, store_factory) -> None:  # type: ignore[no-untyped-def]
    await store.create_ticket(new_ticket(), NOW, FMT)
    esc = await store.create_escalation("CS-2026-00001", 1, EscalationReason.ATTITUDE, "rude", "jan@acme.be", NOW)
    other = await store_factory()
    managers = [f"manager{i}@caresolutions.be" for i in range(6)]
    results = await asyncio.gather(
        *(
            s.acknowledge_escalation(esc.id, by, NOW + timedelta(minutes=1), msgs(f"ack-by-{by}"))
            for s, by in zip([store, other] * 3, managers)
        )
    )
    flags = [acknowledged for _, acknowledged in results]
    assert flags.count(True) == 1 and flags.count(False) == 5
    winner = managers[flags.index(True)]
    assert all(e.acknowledged_by == winner and e.status is EscalationStatus.ACKNOWLEDGED for e, _ in results)
    assert (await store.get_escalation(esc.id)).acknowledged_by == winner  # type: ignore[union-attr]
    assert await outbox_keys(store) == [f"ack-by-{winner}"]
