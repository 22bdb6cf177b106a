"""Contract of `DirectoryStore` (companies, contacts, staff, conversation references), run against
every back end (SQLite and PostgreSQL).
"""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta
from decimal import Decimal

import pytest

from bot.domain.model import Company, CustomerContact, Directory, StaffMember, StaffRole
from bot.store.ports import DirectoryCounts
from bot.store.sql import SqlStore
from tests.store.helpers import DIRECTORY, NOW


# ---- directory ------------------------------------------------------------------------------------


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


# ---- conversation references ----------------------------------------------------------------------


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


# ---- the on-call rota -------------------------------------------------------------------------------


async def test_rota_is_stored_with_the_directory_in_order_and_replaced(store: SqlStore) -> None:
    from bot.domain.oncall import Shift

    rota = (
        Shift(0, "17:00", "09:00", "Agent.One@CareSolutions.be", "naida.jelacic@caresolutions.be"),
        Shift(5, "00:00", "24:00", "naida.jelacic@caresolutions.be", None),
        Shift(None, "2026-12-24T17:00", "2026-12-28T09:00", "Agent.One@CareSolutions.be", None),
    )
    assert await store.get_rota() == ()
    await store.replace_directory(replace(DIRECTORY, rota=rota))
    assert await store.get_rota() == rota
    await store.replace_directory(replace(DIRECTORY, rota=rota[1:]))
    assert await store.get_rota() == rota[1:]
    await store.replace_directory(DIRECTORY)
    assert await store.get_rota() == ()


async def test_rota_naming_someone_outside_the_staff_is_refused_and_changes_nothing(store: SqlStore) -> None:
    from bot.domain.oncall import Shift

    good = (Shift(0, "17:00", "09:00", "Agent.One@CareSolutions.be", None),)
    await store.replace_directory(replace(DIRECTORY, rota=good))
    with pytest.raises(ValueError, match="not staff"):
        await store.replace_directory(replace(DIRECTORY, rota=(Shift(1, "17:00", "09:00", "jan.peeters@acme.be"),)))
    assert await store.get_rota() == good


# ---- workspaces and tenants bound to companies (issue 17) ----------------------------------------


async def test_bindings_from_the_file_and_by_command_survive_as_they_should(store: SqlStore) -> None:
    from bot.domain.model import Binding

    acme_slack, desk_teams = Binding("slack", "TACME1", "Acme NV"), Binding("msteams", "tenant-desk", None)
    await store.replace_directory(replace(DIRECTORY, bindings=(acme_slack, desk_teams)))
    assert await store.tenant_parties("slack", "TACME1") == frozenset({"acme nv"})
    assert await store.tenant_parties("msteams", "tenant-desk") == frozenset({""})
    assert await store.tenant_parties("msteams", "TACME1") == frozenset()  # another channel's id
    assert await store.tenant_parties("slack", "TOTHER") == frozenset()

    # Bound by command: kept when the file (without it) is loaded again; the file's go with the file.
    globex = Binding("slack", "TGLOBEX", "globex bv")
    assert await store.bind_tenant(globex, NOW) is True
    assert await store.bind_tenant(globex, NOW) is False  # already
    await store.replace_directory(replace(DIRECTORY, bindings=(acme_slack,)))
    assert await store.tenant_parties("slack", "TGLOBEX") == frozenset({"globex bv"})
    assert await store.tenant_parties("msteams", "tenant-desk") == frozenset()
    assert [(b.channel, b.tenant, b.company) for b in await store.list_bindings("ACME nv")] == [
        ("slack", "TACME1", "Acme NV")]
    assert {b.tenant for b in await store.list_bindings()} == {"TACME1", "TGLOBEX"}

    # The file's binding bound by command too becomes the command's: a later load keeps it.
    assert await store.bind_tenant(acme_slack, NOW) is True
    await store.replace_directory(DIRECTORY)
    assert await store.tenant_parties("slack", "TACME1") == frozenset({"acme nv"})

    assert await store.unbind_tenant(acme_slack) is True
    assert await store.unbind_tenant(acme_slack) is False
    assert await store.tenant_parties("slack", "TACME1") == frozenset()
    await store.bind_tenant(desk_teams, NOW)
    assert await store.list_bindings(service_desk=True) == [desk_teams]
