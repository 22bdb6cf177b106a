"""Contract of the store port, run against every back end (SQLite and PostgreSQL).

Every test gets a fresh, empty, migrated database through the `store` fixture (tests/conftest.py).
"""

from __future__ import annotations

import asyncio
from dataclasses import replace
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import inspect, text, update

import bot.store.sql.tickets as sql_tickets
from bot.domain.model import (
    Company,
    CustomerContact,
    DialogKey,
    Directory,
    EscalationReason,
    EscalationStatus,
    NewTicket,
    StaffMember,
    StaffRole,
    TicketKind,
    TicketStatus,
    Urgency,
)
from bot.store import models
from bot.store.ports import (
    DirectoryCounts,
    NewOutboxMessage,
    StaleDialogError,
    StoreUnavailableError,
    UnknownTicketError,
)
from bot.store.sql import SqlStore, alembic_config

UTC = timezone.utc
BRUSSELS = ZoneInfo("Europe/Brussels")
FMT = "CS-{year}-{seq:05d}"
NOW = datetime(2026, 3, 2, 9, 30, tzinfo=UTC)


def numbers(year: int, count: int) -> list[str]:
    return [f"CS-{year}-{i:05d}" for i in range(1, count + 1)]


def new_ticket(**overrides: object) -> NewTicket:
    values: dict[str, object] = {
        "kind": TicketKind.INCIDENT,
        "requester_email": "Jan.Peeters@Acme.be",
        "requester_name": "Jan Peeters",
        "company": "Acme NV",
        "module": "invoicing",
        "description": "The invoice run stops halfway with an error",
    }
    values.update(overrides)
    return NewTicket(**values)  # type: ignore[arg-type]


def assert_utc(value: datetime) -> None:
    assert value.tzinfo is not None and value.utcoffset() == timedelta(0), value


DIRECTORY = Directory(
    companies=(
        Company("Acme NV", support_module=True, sla_plan="gold", multiplier_overrides={"sunday": Decimal("2.50")}),
        Company("Globex BV"),
    ),
    contacts=(
        CustomerContact("Jan.Peeters@Acme.be", "Jan Peeters", "acme nv", phone="+32 3 111 11 11", language="nl"),
        CustomerContact("marie@globex.be", "Marie Dubois", "Globex BV", language="fr", sla_named=True),
    ),
    staff=(
        StaffMember("Agent.One@CareSolutions.be", "Agent One", StaffRole.AGENT, language="en"),
        StaffMember("boss2@caresolutions.be", "Boss Two", StaffRole.MANAGER, phone="+32 2", level=2),
        StaffMember("Naida.jelacic@caresolutions.be", "Naïda Jelacic", StaffRole.MANAGER, level=1),
    ),
)


async def set_ticket_status(store: SqlStore, number: str, status: TicketStatus) -> None:
    async with store.engine.begin() as conn:
        await conn.execute(
            update(models.tickets).where(models.tickets.c.number == number).values(status=status.value)
        )


# ---- schema ----------------------------------------------------------------------------------------


async def test_migrated_schema_matches_models(store: SqlStore) -> None:
    def check(conn):  # type: ignore[no-untyped-def]
        ctx = MigrationContext.configure(conn, opts={"compare_type": True})
        diffs = compare_metadata(ctx, models.metadata)
        head = ScriptDirectory.from_config(alembic_config()).get_current_head()
        return diffs, ctx.get_current_revision(), head, set(inspect(conn).get_table_names())

    async with store.engine.connect() as conn:
        diffs, current, head, tables = await conn.run_sync(check)
    assert diffs == []
    assert current == head == "0004"
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
        assert revisions == ["0004"]
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


# ---- directory -------------------------------------------------------------------------------------


async def test_replace_directory_and_case_insensitive_lookups(store: SqlStore) -> None:
    counts = await store.replace_directory(DIRECTORY)
    assert counts == DirectoryCounts(companies=2, contacts=2, staff=3)

    contact = await store.find_contact("  JAN.PEETERS@acme.BE ")
    assert contact == CustomerContact(
        "Jan.Peeters@Acme.be", "Jan Peeters", "Acme NV", phone="+32 3 111 11 11", language="nl"
    )
    assert (await store.find_contact("marie@GLOBEX.be")).sla_named is True  # type: ignore[union-attr]
    assert await store.find_contact("nobody@acme.be") is None

    acme = await store.get_company("ACME nv")
    assert acme == Company("Acme NV", True, "gold", {"sunday": Decimal("2.50")})
    assert isinstance(acme.multiplier_overrides["sunday"], Decimal)
    assert await store.get_company("Initech") is None
    assert [c.name for c in await store.list_companies()] == ["Acme NV", "Globex BV"]

    naida = await store.find_staff("NAIDA.JELACIC@caresolutions.be")
    assert naida is not None and naida.email == "Naida.jelacic@caresolutions.be" and naida.level == 1
    assert naida.role is StaffRole.MANAGER
    managers = await store.list_staff(role=StaffRole.MANAGER)
    assert [(s.name, s.level) for s in managers] == [("Naïda Jelacic", 1), ("Boss Two", 2)]
    assert [s.email for s in await store.list_staff(role=StaffRole.AGENT)] == ["Agent.One@CareSolutions.be"]
    assert [s.name for s in await store.list_staff(level=2)] == ["Boss Two"]
    assert len(await store.list_staff()) == 3


async def test_find_person_reads_contact_staff_and_company_at_once(store: SqlStore) -> None:
    await store.replace_directory(DIRECTORY)
    contact, staff, company = await store.find_person(" JAN.PEETERS@acme.BE")
    assert contact == await store.find_contact("jan.peeters@acme.be") and contact is not None
    assert staff is None and company == await store.get_company("Acme NV") and company is not None
    contact, staff, company = await store.find_person("naida.jelacic@CARESOLUTIONS.be")
    assert contact is None and company is None and staff == await store.find_staff("naida.jelacic@caresolutions.be")
    assert staff is not None and staff.level == 1
    assert await store.find_person("nobody@acme.be") == (None, None, None)


async def test_replace_directory_is_idempotent_and_replaces(store: SqlStore) -> None:
    await store.replace_directory(DIRECTORY)
    first = (await store.list_companies(), await store.list_staff(), await store.find_contact("marie@globex.be"))
    assert await store.replace_directory(DIRECTORY) == DirectoryCounts(2, 2, 3)
    second = (await store.list_companies(), await store.list_staff(), await store.find_contact("marie@globex.be"))
    assert first == second

    smaller = Directory(
        companies=(Company("Globex BV", sla_plan="silver"),),
        contacts=(CustomerContact("MARIE@globex.be", "Marie D.", "Globex BV"),),
        staff=(),
    )
    assert await store.replace_directory(smaller) == DirectoryCounts(1, 1, 0)
    assert await store.get_company("Acme NV") is None
    assert await store.find_contact("jan.peeters@acme.be") is None
    assert (await store.find_contact("marie@globex.be")).name == "Marie D."  # type: ignore[union-attr]
    assert (await store.get_company("globex bv")).sla_plan == "silver"  # type: ignore[union-attr]
    assert await store.list_staff() == []


async def test_replace_directory_refuses_contact_of_unknown_company(store: SqlStore) -> None:
    await store.replace_directory(DIRECTORY)
    bad = replace(
        DIRECTORY,
        contacts=DIRECTORY.contacts + (CustomerContact("ghost@initech.be", "Ghost", "Initech"),),
    )
    with pytest.raises(ValueError, match="ghost@initech.be"):
        await store.replace_directory(bad)
    # nothing changed
    assert len(await store.list_companies()) == 2
    assert await store.find_contact("jan.peeters@acme.be") is not None
    assert await store.find_contact("ghost@initech.be") is None


async def test_replace_directory_refuses_duplicate_emails(store: SqlStore) -> None:
    dup = replace(DIRECTORY, staff=DIRECTORY.staff + (StaffMember("agent.one@caresolutions.BE", "Again", StaffRole.AGENT),))
    with pytest.raises(ValueError, match="agent.one@caresolutions.BE"):
        await store.replace_directory(dup)
    assert await store.list_staff() == []


# ---- tickets ---------------------------------------------------------------------------------------


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


# ---- comments --------------------------------------------------------------------------------------


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


# ---- dialogs ---------------------------------------------------------------------------------------

KEY = DialogKey("teams", "tenant-1", "conv-1", "user-1")


async def test_dialog_versions(store: SqlStore) -> None:
    assert await store.load_dialog(KEY) is None
    assert await store.save_dialog(KEY, {"step": "describe", "n": 1}, None, NOW) == 1
    with pytest.raises(StaleDialogError):
        await store.save_dialog(KEY, {"step": "other"}, None, NOW)

    later = NOW + timedelta(minutes=3)
    assert await store.save_dialog(KEY, {"step": "confirm", "items": [1, 2]}, 1, later) == 2
    with pytest.raises(StaleDialogError):
        await store.save_dialog(KEY, {"step": "late"}, 1, later)
    with pytest.raises(StaleDialogError):
        await store.save_dialog(DialogKey("teams", "tenant-1", "conv-1", "someone-else"), {}, 1, later)

    stored = await store.load_dialog(KEY)
    assert stored is not None
    assert stored.key == KEY and stored.version == 2
    assert stored.state == {"step": "confirm", "items": [1, 2]}
    assert stored.updated_at == later
    assert_utc(stored.updated_at)

    # other keys are independent
    other = DialogKey("slack", "T1", "C1", "user-1")
    assert await store.save_dialog(other, {"x": 1}, None, NOW) == 1

    with pytest.raises(StaleDialogError):
        await store.delete_dialog(KEY, 1)
    await store.delete_dialog(KEY, 2)
    assert await store.load_dialog(KEY) is None
    with pytest.raises(StaleDialogError):
        await store.delete_dialog(KEY, 2)
    assert (await store.load_dialog(other)).version == 1  # type: ignore[union-attr]
    assert await store.save_dialog(KEY, {"step": "again"}, None, NOW) == 1


async def test_dialog_state_json_values(store: SqlStore) -> None:
    state = {"amount": Decimal("12.50"), "day": date(2026, 3, 2), "at": NOW, "nested": {"ok": True, "none": None}}
    await store.save_dialog(KEY, state, None, NOW)
    stored = await store.load_dialog(KEY)
    assert stored is not None
    assert stored.state == {
        "amount": "12.50",
        "day": "2026-03-02",
        "at": "2026-03-02T09:30:00+00:00",
        "nested": {"ok": True, "none": None},
    }
    with pytest.raises(TypeError):
        await store.save_dialog(KEY, {"bad": object()}, 1, NOW)
    assert (await store.load_dialog(KEY)).version == 1  # type: ignore[union-attr]


async def test_concurrent_dialog_saves_only_one_wins(store: SqlStore, store_factory) -> None:  # type: ignore[no-untyped-def]
    other = await store_factory()
    await store.save_dialog(KEY, {"v": 0}, None, NOW)

    async def attempt(s: SqlStore, i: int) -> int | None:
        try:
            return await s.save_dialog(KEY, {"v": i}, 1, NOW)
        except StaleDialogError:
            return None

    results = await asyncio.gather(*(attempt(s, i) for i, s in enumerate([store, other] * 4)))
    assert sorted(r for r in results if r is not None) == [2]
    assert results.count(None) == 7
    winner = results.index(2)
    assert (await store.load_dialog(KEY)).state == {"v": winner}  # type: ignore[union-attr]


# ---- platform deliveries ---------------------------------------------------------------------------


async def test_claim_event_once(store: SqlStore) -> None:
    assert await store.claim_event("slack", "Ev01", NOW) is True
    assert await store.claim_event("slack", "Ev01", NOW + timedelta(seconds=3)) is False
    assert await store.claim_event("teams", "Ev01", NOW) is True
    assert await store.claim_event("slack", "Ev02", NOW) is True


async def test_claim_event_across_store_instances(store: SqlStore, store_factory) -> None:  # type: ignore[no-untyped-def]
    other = await store_factory()
    results = await asyncio.gather(*(s.claim_event("slack", "Ev99", NOW) for s in [store, other] * 5))
    assert results.count(True) == 1 and results.count(False) == 9
    assert await other.claim_event("slack", "Ev99", NOW) is False


# ---- conversation references -----------------------------------------------------------------------


async def test_conversation_refs_upsert_and_find_by_email(store: SqlStore) -> None:
    ref1 = {"conversation": {"id": "a:1"}, "serviceUrl": "https://smba.example/emea/"}
    await store.save_conversation_ref("teams", "29:user", ref1, NOW, email="Jan.Peeters@Acme.be")
    assert await store.get_conversation_ref("teams", "29:user") == ref1
    assert await store.get_conversation_ref("teams", "29:nobody") is None
    assert await store.get_conversation_ref("slack", "29:user") is None

    ref2 = {"conversation": {"id": "a:2"}, "serviceUrl": "https://smba.example/emea/"}
    await store.save_conversation_ref("teams", "29:user", ref2, NOW + timedelta(minutes=1))  # no e-mail: kept
    assert await store.get_conversation_ref("teams", "29:user") == ref2

    slack_ref = {"channel": "D123", "team": "T1"}
    await store.save_conversation_ref("slack", "U123", slack_ref, NOW + timedelta(minutes=2), email="JAN.PEETERS@acme.be")
    found = await store.find_conversation_refs_by_email(" jan.peeters@ACME.be")
    assert sorted((c, u, dict(r)) for c, u, r in found) == [
        ("slack", "U123", slack_ref),
        ("teams", "29:user", ref2),
    ]
    assert await store.find_conversation_refs_by_email("nobody@acme.be") == []

    with pytest.raises(TypeError):
        await store.save_conversation_ref("slack", "U9", {"bad": object()}, NOW)
    assert await store.get_conversation_ref("slack", "U9") is None


# ---- escalations and outbox ------------------------------------------------------------------------


def outbox_messages(suffix: str = "") -> list[NewOutboxMessage]:
    return [
        NewOutboxMessage(f"esc-1:l1{suffix}", "naida.jelacic@caresolutions.be", "escalation", {"ticket": "CS-2026-00001"}),
        NewOutboxMessage(f"esc-1:ack{suffix}", "jan.peeters@acme.be", "escalation_ack", {"level": 1}),
    ]


async def test_escalation_with_outbox(store: SqlStore) -> None:
    ticket = await store.create_ticket(new_ticket(), NOW, FMT)
    later = NOW + timedelta(hours=1)
    esc = await store.create_escalation(
        "cs-2026-00001", 1, EscalationReason.SOLUTION, "Still broken", "jan.peeters@acme.be", later, outbox_messages()
    )
    assert esc.ticket_number == ticket.number
    assert (esc.level, esc.reason, esc.status) == (1, EscalationReason.SOLUTION, EscalationStatus.OPEN)
    assert (esc.comment, esc.requested_by) == ("Still broken", "jan.peeters@acme.be")
    assert esc.created_at == later and esc.level_since == later
    assert_utc(esc.created_at)
    assert esc.acknowledged_by is None and esc.acknowledged_at is None

    queued = await store.list_outbox()
    assert [(q.idempotency_key, q.recipient, q.kind, dict(q.payload), q.status, q.attempts) for q in queued] == [
        ("esc-1:l1", "naida.jelacic@caresolutions.be", "escalation", {"ticket": "CS-2026-00001"}, "pending", 0),
        ("esc-1:ack", "jan.peeters@acme.be", "escalation_ack", {"level": 1}, "pending", 0),
    ]
    assert queued[0].next_attempt_at == later and queued[0].created_at == later
    assert_utc(queued[0].next_attempt_at)

    # a second escalation re-using the same message keys: recorded, duplicates ignored
    esc2 = await store.create_escalation(
        ticket.number, 2, EscalationReason.ATTITUDE, "", "jan.peeters@acme.be", later, outbox_messages()
    )
    assert esc2.id != esc.id and esc2.level == 2
    assert len(await store.list_outbox()) == 2
    assert [e.id for e in await store.list_escalations()] == [esc.id, esc2.id]
    assert [e.id for e in await store.list_escalations(ticket_number=" CS-2026-00001")] == [esc.id, esc2.id]
    assert await store.list_escalations(ticket_number="CS-2026-00404") == []

    async with store.engine.begin() as conn:
        await conn.execute(
            update(models.escalations).where(models.escalations.c.id == esc.id).values(status="closed")
        )
    assert [e.id for e in await store.list_escalations()] == [esc2.id]
    assert [e.id for e in await store.list_escalations(open_only=False)] == [esc.id, esc2.id]


async def test_escalation_of_unknown_ticket_queues_nothing(store: SqlStore) -> None:
    with pytest.raises(UnknownTicketError):
        await store.create_escalation(
            "CS-2026-00404", 1, EscalationReason.FEEDBACK, "?", "x@y.be", NOW, outbox_messages("-x")
        )
    assert await store.list_outbox() == []
    assert await store.list_escalations(open_only=False) == []


async def test_escalation_rolled_back_with_its_outbox(store: SqlStore) -> None:
    await store.create_ticket(new_ticket(), NOW, FMT)
    with pytest.raises(TypeError):
        await store.create_escalation(
            "CS-2026-00001",
            1,
            EscalationReason.FEEDBACK,
            "x",
            "x@y.be",
            NOW,
            [NewOutboxMessage("k", "a@b.be", "escalation", {"bad": object()})],
        )
    assert await store.list_escalations(open_only=False) == []
    assert await store.list_outbox() == []


async def test_enqueue_ignores_duplicates(store: SqlStore) -> None:
    msgs = [
        NewOutboxMessage("reminder:1", "a@acme.be", "reminder", {"amount": Decimal("102.21"), "day": date(2026, 3, 2)}),
        NewOutboxMessage("reminder:2", "b@acme.be", "reminder"),
    ]
    await store.enqueue(msgs, NOW)
    await store.enqueue([msgs[0], NewOutboxMessage("reminder:3", "c@acme.be", "reminder")], NOW + timedelta(minutes=1))
    await store.enqueue([], NOW)
    queued = await store.list_outbox()
    assert [q.idempotency_key for q in queued] == ["reminder:1", "reminder:2", "reminder:3"]
    assert dict(queued[0].payload) == {"amount": "102.21", "day": "2026-03-02"}
    assert dict(queued[1].payload) == {}
    assert queued[0].created_at == NOW and queued[2].created_at == NOW + timedelta(minutes=1)
    assert all(q.last_error is None and q.status == "pending" for q in queued)
    assert [q.idempotency_key for q in await store.list_outbox("pending")] == ["reminder:1", "reminder:2", "reminder:3"]
    assert await store.list_outbox("sent") == []


# ---- extensions of SqlStore beyond the port (used by bot.app.runner) -----------------------------


async def test_save_dialog_claims_the_event_in_the_same_transaction(store: SqlStore) -> None:
    assert await store.is_event_processed("slack", "Ev1") is False
    assert await store.save_dialog(KEY, {"step": 1}, None, NOW, event=("slack", "Ev1")) == 1
    assert await store.is_event_processed("slack", "Ev1") is True
    assert await store.is_event_processed("teams", "Ev1") is False

    # the same delivery again: refused, nothing saved
    with pytest.raises(StaleDialogError):
        await store.save_dialog(KEY, {"step": 2}, 1, NOW, event=("slack", "Ev1"))
    stored = await store.load_dialog(KEY)
    assert (stored.version, stored.state) == (1, {"step": 1})  # type: ignore[union-attr]

    # a stale dialog write does not consume the delivery
    with pytest.raises(StaleDialogError):
        await store.save_dialog(KEY, {"step": 2}, 7, NOW, event=("slack", "Ev2"))
    assert await store.is_event_processed("slack", "Ev2") is False
    assert await store.save_dialog(KEY, {"step": 2}, 1, NOW, event=("slack", "Ev2")) == 2
    assert await store.claim_event("slack", "Ev2", NOW) is False

    with pytest.raises(StaleDialogError):
        await store.delete_dialog(KEY, 2, event=("slack", "Ev2"))
    assert (await store.load_dialog(KEY)).version == 2  # type: ignore[union-attr]
    await store.delete_dialog(KEY, 2, event=("slack", "Ev3"), now=NOW)
    assert await store.load_dialog(KEY) is None
    assert await store.is_event_processed("slack", "Ev3") is True


async def test_escalation_idempotency_key(store: SqlStore, store_factory) -> None:  # type: ignore[no-untyped-def]
    await store.create_ticket(new_ticket(), NOW, FMT)
    other = await store_factory()
    results = await asyncio.gather(
        *(
            s.create_escalation(
                "CS-2026-00001", 1, EscalationReason.FEEDBACK, "no answer", "jan@acme.be", NOW,
                outbox_messages(), idempotency_key="dialog-7:escalate",
            )
            for s in [store, other] * 3
        )
    )
    assert len({e.id for e in results}) == 1
    assert len(await store.list_escalations(open_only=False)) == 1
    assert len(await store.list_outbox()) == 2
    again = await store.create_escalation(
        "CS-2026-00001", 1, EscalationReason.FEEDBACK, "no answer", "jan@acme.be", NOW,
        outbox_messages("-new"), idempotency_key="dialog-7:escalate",
    )
    assert again == results[0]
    assert len(await store.list_outbox()) == 2  # the repeat queued nothing
    second = await store.create_escalation(
        "CS-2026-00001", 2, EscalationReason.SOLUTION, "still", "jan@acme.be", NOW, idempotency_key="dialog-8"
    )
    assert second.id != again.id and second.level == 2


async def test_comment_idempotency_key(store: SqlStore) -> None:
    await store.create_ticket(new_ticket(), NOW, FMT)
    for _ in range(3):
        await store.add_ticket_comment("CS-2026-00001", "jan@acme.be", "More info", NOW, False, idempotency_key="d:1")
    await store.add_ticket_comment("CS-2026-00001", "jan@acme.be", "Other", NOW, False, idempotency_key="d:2")
    await store.add_ticket_comment("CS-2026-00001", "jan@acme.be", "No key", NOW, False)
    await store.add_ticket_comment("CS-2026-00001", "jan@acme.be", "No key", NOW, False)
    texts = [c["text"] for c in await store.list_ticket_comments("CS-2026-00001", include_internal=True)]
    assert texts == ["More info", "Other", "No key", "No key"]


async def test_read_turn_start_reads_delivery_dialog_and_person_at_once(store: SqlStore) -> None:
    await store.replace_directory(DIRECTORY)
    key = DialogKey("slack", "T1", "D1", "U1")
    empty = await store.read_turn_start(key, None, ("slack", "Ev1"))
    assert (empty.processed, empty.dialog, empty.contact, empty.staff, empty.company) == (False, None, None, None, None)
    now = datetime(2026, 3, 2, 9, 30, tzinfo=timezone.utc)
    await store.save_dialog(key, {"dialog": "new_ticket", "step": "module"}, None, now, event=("slack", "Ev1"))
    start = await store.read_turn_start(key, " Jan.Peeters@ACME.be", ("slack", "Ev1"))
    assert start.processed is True
    assert start.dialog is not None and start.dialog.state["step"] == "module" and start.dialog.version == 1
    assert (start.contact, start.staff, start.company) == await store.find_person("jan.peeters@acme.be")
    assert start.company is not None and start.company.name == "Acme NV"
    assert (await store.read_turn_start(key, "naida.jelacic@caresolutions.be", ("slack", "Ev2"))).processed is False
    assert (await store.read_turn_start(key, "naida.jelacic@caresolutions.be")).staff is not None
