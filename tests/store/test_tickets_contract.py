"""Contract of `TicketStore` (numbering, comments, the ticket workflow), run against every back end
(SQLite and PostgreSQL).
"""

from __future__ import annotations

import asyncio
from datetime import date, datetime, timedelta

import pytest

import bot.store.sql.tickets as sql_tickets
from bot.domain.model import TicketEvent, TicketKind, TicketStatus, Urgency
from bot.store.ports import StaleTicketError, UnknownTicketError
from bot.store.sql import SqlStore
from tests.store.helpers import (
    AGENT,
    BRUSSELS,
    FMT,
    NOW,
    UTC,
    assert_utc,
    msgs,
    new_ticket,
    numbers,
    outbox_keys,
    set_ticket_status,
)


# ---- tickets --------------------------------------------------------------------------------------


async def test_create_and_get_ticket(store: SqlStore) -> None:
    t1 = await store.create_ticket(new_ticket(requester_phone="+32 470", created_by="bot"), NOW, FMT)
    assert t1.number == "CS-2026-00001"
    assert t1.kind is TicketKind.INCIDENT and t1.status is TicketStatus.NEW
    assert t1.requester_email == "Jan.Peeters@Acme.be"
    assert t1.requester_phone == "+32 470" and t1.created_by == "bot"
    assert t1.urgency is Urgency.NORMAL and t1.channel == "console" and t1.out_of_hours_emergency is False
    assert t1.created_at == NOW and t1.updated_at == NOW
    assert_utc(t1.created_at)
    assert t1.solution_date is None and t1.assignee_email is None

    t2 = await store.create_ticket(
        new_ticket(kind=TicketKind.CHANGE_REQUEST, urgency=Urgency.HIGH, out_of_hours_emergency=True),
        NOW + timedelta(minutes=1),
        FMT,
    )
    assert t2.number == "CS-2026-00002"
    assert t2.status is TicketStatus.SUBMITTED and t2.urgency is Urgency.HIGH and t2.out_of_hours_emergency
    t3 = await store.create_ticket(new_ticket(kind=TicketKind.SERVICE_REQUEST), NOW, FMT)
    assert (t3.number, t3.status) == ("CS-2026-00003", TicketStatus.NEW)

    got = await store.get_ticket("  cs-2026-00001 ")
    assert got == t1
    assert_utc(got.created_at)  # type: ignore[union-attr]
    assert await store.get_ticket("CS-2026-00099") is None


async def test_custom_number_format(store: SqlStore) -> None:
    t = await store.create_ticket(new_ticket(), NOW, "T{year}/{seq}")
    assert t.number == "T2026/1"
    assert (await store.get_ticket("t2026/1")).id == t.id  # type: ignore[union-attr]


async def test_list_tickets_newest_first_and_filters(store: SqlStore) -> None:
    a = await store.create_ticket(new_ticket(), NOW, FMT)
    b = await store.create_ticket(
        new_ticket(requester_email="marie@globex.be", requester_name="Marie", company="Globex BV"),
        NOW + timedelta(hours=1),
        FMT,
    )
    c = await store.create_ticket(new_ticket(requester_email="JAN.PEETERS@ACME.BE"), NOW + timedelta(hours=2), FMT)
    d = await store.create_ticket(new_ticket(company=None), NOW + timedelta(hours=2), FMT)  # same time as c

    assert [t.number for t in await store.list_tickets()] == [d.number, c.number, b.number, a.number]
    assert [t.number for t in await store.list_tickets(limit=2)] == [d.number, c.number]
    assert [t.number for t in await store.list_tickets(requester_email=" jan.peeters@acme.be")] == [
        d.number,
        c.number,
        a.number,
    ]
    assert [t.number for t in await store.list_tickets(company="globex bv")] == [b.number]
    assert [t.number for t in await store.list_tickets(company="ACME NV")] == [c.number, a.number]

    await set_ticket_status(store, c.number, TicketStatus.CLOSED)
    await set_ticket_status(store, a.number, TicketStatus.RESOLVED)
    await set_ticket_status(store, b.number, TicketStatus.WAITING_FOR_CUSTOMER)
    assert [t.number for t in await store.list_tickets(open_only=True)] == [d.number, b.number]
    assert [t.number for t in await store.list_tickets(open_only=True, requester_email="jan.peeters@acme.be")] == [
        d.number
    ]
    assert await store.list_tickets(requester_email="nobody@acme.be") == []


async def test_numbers_restart_each_brussels_year(store: SqlStore) -> None:
    late_2026 = datetime(2026, 12, 31, 12, 0, tzinfo=UTC)
    assert (await store.create_ticket(new_ticket(), late_2026, FMT)).number == "CS-2026-00001"
    assert (await store.create_ticket(new_ticket(), late_2026, FMT)).number == "CS-2026-00002"

    # 00:30 on New Year's Day in Brussels is still 2026-12-31 23:30 in UTC: Brussels wins.
    new_year = datetime(2027, 1, 1, 0, 30, tzinfo=BRUSSELS)
    assert new_year.astimezone(UTC).year == 2026
    first_2027 = await store.create_ticket(new_ticket(), new_year, FMT)
    assert first_2027.number == "CS-2027-00001"
    assert first_2027.created_at == datetime(2026, 12, 31, 23, 30, tzinfo=UTC)
    assert_utc(first_2027.created_at)
    assert (await store.create_ticket(new_ticket(), new_year, FMT)).number == "CS-2027-00002"
    # the old year's counter is untouched
    assert (await store.create_ticket(new_ticket(), late_2026, FMT)).number == "CS-2026-00003"


async def test_idempotency_key_returns_the_same_ticket(store: SqlStore) -> None:
    first = await store.create_ticket(new_ticket(), NOW, FMT, idempotency_key="slack:evt-1")
    again = await store.create_ticket(new_ticket(description="different"), NOW + timedelta(minutes=5), FMT, "slack:evt-1")
    assert again == first
    other = await store.create_ticket(new_ticket(), NOW, FMT, idempotency_key="slack:evt-2")
    assert other.number == "CS-2026-00002"
    plain = await store.create_ticket(new_ticket(), NOW, FMT)
    assert plain.number == "CS-2026-00003"
    assert len(await store.list_tickets()) == 3


async def test_concurrent_creations_with_the_same_idempotency_key(store: SqlStore, store_factory) -> None:  # type: ignore[no-untyped-def]
    other = await store_factory()
    results = await asyncio.gather(
        *(s.create_ticket(new_ticket(), NOW, FMT, idempotency_key="teams:act-9") for s in [store, other] * 5)
    )
    assert {t.number for t in results} == {"CS-2026-00001"}
    assert len({t.id for t in results}) == 1
    # the losers' numbers were rolled back: no gap
    assert (await store.create_ticket(new_ticket(), NOW, FMT)).number == "CS-2026-00002"
    assert len(await store.list_tickets()) == 2


async def test_fifty_concurrent_creations_are_unique_and_gap_free(store: SqlStore) -> None:
    created = await asyncio.gather(*(store.create_ticket(new_ticket(), NOW, FMT) for _ in range(50)))
    assert sorted(t.number for t in created) == numbers(2026, 50)
    assert len({t.id for t in created}) == 50
    listed = await store.list_tickets(limit=100)
    assert sorted(t.number for t in listed) == numbers(2026, 50)


async def test_two_store_instances_create_concurrently(store: SqlStore, store_factory) -> None:  # type: ignore[no-untyped-def]
    other = await store_factory()
    assert other.engine is not store.engine
    # with idempotency keys: every transaction reads before it writes
    jobs = [
        s.create_ticket(new_ticket(), NOW, FMT, idempotency_key=f"evt-{i}-{j}")
        for i in range(25)
        for j, s in enumerate((store, other))
    ]
    created = await asyncio.gather(*jobs)
    assert sorted(t.number for t in created) == numbers(2026, 50)
    assert len({t.id for t in created}) == 50
    assert sorted(t.number for t in await other.list_tickets(limit=100)) == numbers(2026, 50)


async def test_invalid_kind_fails_after_numbering_without_gap(store: SqlStore) -> None:
    assert (await store.create_ticket(new_ticket(), NOW, FMT)).number == "CS-2026-00001"
    with pytest.raises(ValueError):
        await store.create_ticket(new_ticket(kind="not-a-kind"), NOW, FMT)  # refused by the database
    assert (await store.create_ticket(new_ticket(), NOW, FMT)).number == "CS-2026-00002"
    assert len(await store.list_tickets()) == 2


async def test_failure_after_numbering_rolls_the_number_back(
    store: SqlStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert (await store.create_ticket(new_ticket(), NOW, FMT)).number == "CS-2026-00001"
    drawn: list[str] = []

    def boom(new, *, number, **kwargs):  # type: ignore[no-untyped-def]
        drawn.append(number)
        raise RuntimeError("crash between numbering and insert")

    monkeypatch.setattr(sql_tickets, "_ticket_row", boom)
    with pytest.raises(RuntimeError):
        await store.create_ticket(new_ticket(), NOW, FMT, idempotency_key="k1")
    assert drawn == ["CS-2026-00002"]
    monkeypatch.undo()

    again = await store.create_ticket(new_ticket(), NOW, FMT, idempotency_key="k1")
    assert again.number == "CS-2026-00002"
    assert sorted(t.number for t in await store.list_tickets()) == numbers(2026, 2)


async def test_naive_datetime_is_refused(store: SqlStore) -> None:
    with pytest.raises(ValueError, match="timezone"):
        await store.create_ticket(new_ticket(), datetime(2026, 3, 2, 9, 30), FMT)
    assert await store.list_tickets() == []


# ---- comments -------------------------------------------------------------------------------------


async def test_ticket_comments(store: SqlStore) -> None:
    ticket = await store.create_ticket(new_ticket(), NOW, FMT)
    await store.add_ticket_comment(ticket.number, "agent.one@caresolutions.be", "Looking into it", NOW, False)
    later = NOW + timedelta(minutes=10)
    await store.add_ticket_comment("cs-2026-00001", "agent.one@caresolutions.be", "Customer DB is old", later, True)

    all_comments = await store.list_ticket_comments(ticket.number, include_internal=True)
    assert [dict(c) for c in all_comments] == [
        {"author": "agent.one@caresolutions.be", "text": "Looking into it", "internal": False, "created_at": NOW},
        {"author": "agent.one@caresolutions.be", "text": "Customer DB is old", "internal": True, "created_at": later},
    ]
    for c in all_comments:
        assert_utc(c["created_at"])
    public = await store.list_ticket_comments(" CS-2026-00001", include_internal=False)
    assert [c["text"] for c in public] == ["Looking into it"]

    with pytest.raises(UnknownTicketError):
        await store.add_ticket_comment("CS-2026-00404", "x@y.be", "hello", NOW, False)
    with pytest.raises(UnknownTicketError):
        await store.list_ticket_comments("CS-2026-00404", include_internal=True)


async def test_comment_idempotency_key(store: SqlStore) -> None:
    await store.create_ticket(new_ticket(), NOW, FMT)
    for _ in range(3):
        await store.add_ticket_comment("CS-2026-00001", "jan@acme.be", "More info", NOW, False, idempotency_key="d:1")
    await store.add_ticket_comment("CS-2026-00001", "jan@acme.be", "Other", NOW, False, idempotency_key="d:2")
    await store.add_ticket_comment("CS-2026-00001", "jan@acme.be", "No key", NOW, False)
    await store.add_ticket_comment("CS-2026-00001", "jan@acme.be", "No key", NOW, False)
    texts = [c["text"] for c in await store.list_ticket_comments("CS-2026-00001", include_internal=True)]
    assert texts == ["More info", "Other", "No key", "No key"]


# ---- ticket workflow ------------------------------------------------------------------------------


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


async def test_update_ticket_sets_the_company_of_a_ticket_from_outside_the_directory(store: SqlStore) -> None:
    ticket = await store.create_ticket(new_ticket(company=None, requester_email="jan@example.be"), NOW, FMT)
    assert await store.list_tickets(company="Atelier Lumière") == []
    later = NOW + timedelta(minutes=1)
    updated = await store.update_ticket(ticket.number, by=AGENT, now=later, changes={"company": " Atelier Lumière "})
    assert updated.company == "Atelier Lumière" and updated.updated_at == later
    assert [t.number for t in await store.list_tickets(company="atelier lumière")] == [ticket.number]
    [event] = await store.list_ticket_events(ticket.number)
    assert (event.actor, event.field, event.before, event.after) == (AGENT, "company", None, "Atelier Lumière")
    # The same company again records nothing; None takes it out of every company's lists again.
    await store.update_ticket(ticket.number, by=AGENT, now=later, changes={"company": "Atelier Lumière"})
    assert len(await store.list_ticket_events(ticket.number)) == 1
    cleared = await store.update_ticket(ticket.number, by=AGENT, now=later, changes={"company": None})
    assert cleared.company is None and await store.list_tickets(company="Atelier Lumière") == []


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
        ({"company": ["Atelier Lumière"]}, None, ValueError),
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
