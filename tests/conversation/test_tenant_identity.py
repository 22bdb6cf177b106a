"""A person is a directory contact only when their workspace or tenant is bound to their company,
staff only from the service desk's own (issue 17): the runner's check, which every channel's
turns pass, on SQLite and PostgreSQL. The channels' own tests (tests/slack/test_oauth.py,
tests/teams/test_teams_tenants.py) send real payloads through it."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from bot.app.desk import Desk
from bot.app.runner import TurnRunner
from bot.domain.clock import ManualClock
from bot.domain.config import Settings
from bot.domain.directory import read_directory_file
from bot.domain.model import Binding, NewTicket, TicketKind
from bot.protocol.turn import Turn, UserIdentity
from cards.text import render_all

ROOT = Path(__file__).resolve().parents[2]
BXL = ZoneInfo("Europe/Brussels")
NOW = datetime(2026, 11, 26, 10, 0, tzinfo=BXL)
LOTTE = "lotte.peeters@brasseriedeklok.be"  # Brasserie De Klok
CAMILLE = "camille.dubois@atelier-lumiere.be"  # Atelier Lumière
SOFIE = "sofie.janssens@caresolutions.be"  # an agent of the service desk
KLOK_TEAM, LUMIERE_TEAM, DESK_TEAM = "TKLOK", "TLUMIERE", "TDESK"
FMT = "CS-{year}-{seq:05d}"


@pytest.fixture
async def desk(store):
    directory = read_directory_file(ROOT / "examples" / "directory.yaml")
    # Each company its own workspace, the desk its own (not the example's shared demo ids).
    bindings = (Binding("slack", KLOK_TEAM, "Brasserie De Klok"), Binding("slack", LUMIERE_TEAM, "Atelier Lumière"),
                Binding("slack", DESK_TEAM, None), Binding("msteams", "tenant-lumiere", "Atelier Lumière"))
    await store.replace_directory(replace(directory, bindings=bindings))
    desk = Desk(Settings(), store, ManualClock(NOW))
    # An Atelier Lumière ticket, which nobody of another company may see.
    await store.create_ticket(NewTicket(kind=TicketKind.INCIDENT, requester_email=CAMILLE, requester_name="Camille Dubois",
                                        company="Atelier Lumière",
                                        module="Stock", description="The stock report shows yesterday's figures"),
                              NOW, FMT)
    return desk


def turn(email: str, team: str | None, text: str, channel: str = "slack") -> Turn:
    return Turn(channel, team or "local", f"D-{email}", UserIdentity(id=f"U-{email}", email=email, locale="en"),
                text=text, home_tenant=team)


async def say(runner: TurnRunner, email: str, team: str | None, text: str, channel: str = "slack") -> str:
    return render_all((await runner.handle(turn(email, team, text, channel))).replies)


async def test_a_contact_is_trusted_only_from_a_workspace_of_their_own_company(desk) -> None:
    runner = TurnRunner(desk)
    # From her company's workspace: Camille sees her company's ticket.
    assert "CS-2026-00001" in await say(runner, CAMILLE, LUMIERE_TEAM, "tickets")
    # Someone of Brasserie De Klok's workspace whose profile shows Camille's e-mail: nothing of hers.
    out = await say(runner, CAMILLE, KLOK_TEAM, "tickets")
    # Served as a person outside the directory (issue 15 §4): no ticket shown, and told why.
    assert "CS-2026-00001" not in out and "cannot show or escalate tickets" in out
    ctx = await runner.context(turn(CAMILLE, KLOK_TEAM, "hello"))
    assert ctx.contact is None and ctx.company is None and ctx.user.email is None
    # A workspace bound to nobody proves nothing either, nor does the right id on another channel.
    assert "CS-2026-00001" not in await say(runner, CAMILLE, "TSTRANGER", "tickets")
    assert "CS-2026-00001" not in await say(runner, CAMILLE, LUMIERE_TEAM, "tickets", channel="msteams")
    assert "CS-2026-00001" in await say(runner, CAMILLE, "tenant-lumiere", "tickets", channel="msteams")
    # The console (the operator's own machine) needs no binding.
    assert "CS-2026-00001" in await say(runner, CAMILLE, None, "tickets", channel="console")


async def test_staff_only_from_the_service_desks_own_workspace(desk) -> None:
    runner = TurnRunner(desk)
    ctx = await runner.context(turn(SOFIE, DESK_TEAM, "hello"))
    assert ctx.staff is not None and ctx.staff.email == SOFIE
    assert "CS-2026-00001" in await say(runner, SOFIE, DESK_TEAM, "tickets")
    # A customer's workspace admin who gives someone the agent's address gets no staff rights.
    ctx = await runner.context(turn(SOFIE, KLOK_TEAM, "hello"))
    assert ctx.staff is None and ctx.user.email is None
    out = await say(runner, SOFIE, KLOK_TEAM, "assign CS-2026-00001 me")
    assert "CS-2026-00001" not in out or "found no ticket" in out
    assert (await desk.store.get_ticket("CS-2026-00001")).assignee_email is None  # type: ignore[union-attr]


async def test_an_unknown_person_can_still_open_a_first_contact_but_not_as_someone_else(desk) -> None:
    runner = TurnRunner(desk)
    # From a workspace bound to nobody, the profile says Lotte: not recognised, she is asked who
    # she is, and Lotte's address is refused; an address that is nobody's is taken.
    for text in ("ticket", "1"):
        await say(runner, LOTTE, "TSTRANGER", text)
    assert "e-mail address can we reach you at" in await say(runner, LOTTE, "TSTRANGER", "Lotte P.")
    assert "belongs to someone in our directory" in await say(runner, LOTTE, "TSTRANGER", LOTTE)
    assert "phone number" in await say(runner, LOTTE, "TSTRANGER", "someone.new@example.org")
    # From her company's workspace the same person is Lotte: the form is filled in from the directory.
    ctx = await runner.context(turn(LOTTE, KLOK_TEAM, "hello"))
    assert ctx.contact is not None and ctx.contact.company == "Brasserie De Klok"


async def test_a_binding_made_later_takes_effect(desk) -> None:
    runner = TurnRunner(desk)
    assert "CS-2026-00001" not in await say(runner, CAMILLE, "TNEW", "tickets")
    await desk.store.bind_tenant(Binding("slack", "TNEW", "atelier lumière"), NOW)
    runner.trust.forget()  # other processes: within identity.BINDINGS_TTL_S
    assert "CS-2026-00001" in await say(runner, CAMILLE, "TNEW", "tickets")


def test_the_directory_file_binds_workspaces_and_tenants_and_refuses_bad_ids() -> None:
    from bot.domain.directory import DirectoryError, parse_directory

    example = read_directory_file(ROOT / "examples" / "directory.yaml")
    assert Binding("slack", "T111", "Brasserie De Klok") in example.bindings
    assert Binding("msteams", "tenant-1", None) in example.bindings  # the service desk's
    data = {"companies": [{"name": "Acme", "slack_teams": ["TACME"], "teams_tenants": ["7c1b-acme"]}],
            "service_desk": {"slack_teams": ["TDESK"]}}
    assert parse_directory(data).bindings == (Binding("slack", "TACME", "Acme"), Binding("msteams", "7c1b-acme", "Acme"),
                                              Binding("slack", "TDESK", None))
    with pytest.raises(DirectoryError, match=r"companies\[0\]\.slack_teams: not a Slack team id"):
        parse_directory({"companies": [{"name": "Acme", "slack_teams": ["acme workspace"]}]})
    with pytest.raises(DirectoryError, match="service_desk: unknown field"):
        parse_directory({"service_desk": {"slack_team": ["TDESK"]}})
