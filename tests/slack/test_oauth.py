"""Multi-workspace Slack (issue 17): customers install CareDesk by OAuth v2 against a fake Slack
(`oauth.v2.access`, `auth.test` and the Web API, each token its own workspace's), the service desk
binds the workspace, and each workspace is answered with its own token; a profile e-mail of
another company gives nothing of it; bad states, replayed codes and unknown workspaces change
nothing; uninstalling forgets the token. On SQLite and PostgreSQL (`store`)."""

from __future__ import annotations

import argparse
import base64
import json
import re
import time
import urllib.parse
from dataclasses import replace
from typing import Any

import pytest
import pytest_asyncio
from aiohttp import web
from slack_sdk.oauth.installation_store.sqlalchemy import SQLAlchemyInstallationStore
from slack_sdk.oauth.state_store.sqlalchemy import SQLAlchemyOAuthStateStore
from sqlalchemy import MetaData, func, select

from bot.domain.directory import read_directory_file
from bot.domain.model import Binding, NewTicket, TicketKind
from bot.store import models
from tests.slack.conftest import (NOW, ROOT, SIGNING_SECRET, Call, FakeSlack, block_text, load_json, slack_config,
                                  start_env)

CLIENT_ID, CLIENT_SECRET = "1111.2222", "client-s3cret-for-tests"
KLOK, LUMIERE, NOBODY = "TKLOK", "TLUMIERE", "TNOBODY"
KLOK_TOKEN, LUMIERE_TOKEN = "xoxb-klok-0001", "xoxb-lumiere-0002"
LOTTE, CAMILLE, IMPOSTOR, CONNECTED = "UKLOK1", "ULUM1", "ULUM2", "UKLOK1X"
WORKSPACES: dict[str, dict[str, Any]] = {
    KLOK: {"name": "Brasserie De Klok", "token": KLOK_TOKEN, "code": "code-klok", "users": {
        LOTTE: {"email": "lotte.peeters@brasseriedeklok.be", "real_name": "Lotte Peeters", "locale": "en-US"}}},
    LUMIERE: {"name": "Atelier Lumière", "token": LUMIERE_TOKEN, "code": "code-lumiere", "users": {
        CAMILLE: {"email": "camille.dubois@atelier-lumiere.be", "real_name": "Camille Dubois", "locale": "en-GB"},
        # Atelier Lumière's admin gave someone Lotte's address (of another company).
        IMPOSTOR: {"email": "lotte.peeters@brasseriedeklok.be", "real_name": "Not Lotte", "locale": "en-GB"},
        # Lotte herself, in a channel Atelier Lumière shares with Brasserie De Klok (Slack Connect):
        # users.info gives her own team.
        CONNECTED: {"email": "lotte.peeters@brasseriedeklok.be", "real_name": "Lotte Peeters", "locale": "en-GB",
                    "home": KLOK}}},
}


class WorkspacesFakeSlack(FakeSlack):
    """Slack's OAuth and Web API for several workspaces: each bot token is one workspace's, and a
    code is exchanged once."""

    def __init__(self) -> None:
        super().__init__()
        self.used_codes: set[str] = set()
        self.tokens: list[tuple[str, str | None]] = []  # (method, the bearer token it was called with)

    def token_of(self, request: web.Request) -> str | None:
        auth = request.headers.get("Authorization", "")
        return auth[len("Bearer "):] if auth.startswith("Bearer ") else None

    async def _api(self, request: web.Request) -> web.Response:
        method = request.match_info["method"]
        params = await self._params(request)
        token = self.token_of(request) or params.get("token")
        auth = request.headers.get("Authorization", "")
        if auth.startswith("Basic "):  # oauth.v2.access: the client id and secret
            client_id, _, client_secret = base64.b64decode(auth[len("Basic "):]).decode().partition(":")
            params.update(client_id=client_id, client_secret=client_secret)
        self.tokens.append((method, token))
        self.calls.append(Call(method, params))
        return web.json_response(self._answer_for(method, params, token))

    def _answer_for(self, method: str, params: dict[str, Any], token: str | None) -> dict[str, Any]:
        if method == "oauth.v2.access":
            if (params.get("client_id"), params.get("client_secret")) != (CLIENT_ID, CLIENT_SECRET):
                return {"ok": False, "error": "invalid_client_id"}
            code = params.get("code")
            team = next((t for t, w in WORKSPACES.items() if w["code"] == code), None)
            if team is None or code in self.used_codes:
                return {"ok": False, "error": "invalid_code"}
            self.used_codes.add(str(code))
            w = WORKSPACES[team]
            return {"ok": True, "app_id": "A111", "authed_user": {"id": "UADMIN"}, "scope": "chat:write,commands",
                    "token_type": "bot", "access_token": w["token"], "bot_user_id": "UBOT" + team,
                    "team": {"id": team, "name": w["name"]}, "enterprise": None, "is_enterprise_install": False}
        team = next((t for t, w in WORKSPACES.items() if w["token"] == token), None)
        if team is None:
            return {"ok": False, "error": "invalid_auth"}
        if method == "auth.test":
            return {"ok": True, "url": f"https://{team.lower()}.slack.com/", "team": WORKSPACES[team]["name"],
                    "user": "caredesk", "team_id": team, "user_id": "UBOT" + team, "bot_id": "B" + team,
                    "is_enterprise_install": False}
        if method == "users.info":
            user = WORKSPACES[team]["users"].get(params.get("user"))
            if user is None:
                return {"ok": False, "error": "user_not_found"}
            return {"ok": True, "user": {"id": params["user"], "team_id": user.get("home", team), "name": "x", "real_name": user["real_name"],
                                         "locale": user["locale"], "is_bot": False,
                                         "profile": {"real_name": user["real_name"], "email": user["email"]}}}
        return self._answer(method, params, None)  # type: ignore[arg-type]

    def used(self, token: str) -> set[str]:
        return {method for method, t in self.tokens if t == token}


@pytest_asyncio.fixture
async def multi(store):
    fake = WorkspacesFakeSlack()
    await fake.start()
    config = slack_config(fake, bot_token=None, client_id=CLIENT_ID, client_secret=CLIENT_SECRET)
    env = await start_env(store, fake, config)
    # Each company its own workspace (none of the example's demo ids); the desk binds them later.
    directory = read_directory_file(ROOT / "examples" / "directory.yaml")
    await store.replace_directory(replace(directory, bindings=()))
    await store.create_ticket(NewTicket(kind=TicketKind.INCIDENT, requester_email=WORKSPACES[KLOK]["users"][LOTTE]["email"],
                                        requester_name="Lotte Peeters", company="Brasserie De Klok", module="Kassa",
                                        description="De kassa print geen bonnetjes meer"), NOW, "CS-{year}-{seq:05d}")
    try:
        yield env
    finally:
        await env.client.close()
        await fake.close()


async def install(env, team: str, lang: str = "en") -> tuple[int, str]:
    """An admin of `team` opens the install page, clicks "Add to Slack", allows, and Slack sends
    the browser back with a code: the status and the page they see."""
    page = await env.client.get("/slack/install", headers={"Accept-Language": lang})
    assert page.status == 200
    text = await page.text()
    state, cookie = _state(text, page)
    back = await env.client.get(f"/slack/oauth_redirect?code={WORKSPACES[team]['code']}&state={state}",
                                headers={"Cookie": cookie, "Accept-Language": lang})
    return back.status, await back.text()


def _state(page_html: str, response: Any) -> tuple[str, str]:
    link = re.search(r'href="([^"]+)"', page_html)
    assert link is not None, page_html
    query = urllib.parse.parse_qs(urllib.parse.urlsplit(link.group(1).replace("&amp;", "&")).query)
    cookie = response.headers["Set-Cookie"].split(";")[0]
    return query["state"][0], cookie


async def dm(env, team: str, user: str, text: str) -> Any:
    sample = load_json("payloads/event_callback.message_im.docs.json")["event"]
    event = {**sample, "user": user, "channel": f"D{user}", "text": text, "team": team,
             "ts": f"{time.time():.6f}", "event_ts": f"{time.time():.6f}"}
    body = load_json("payloads/event_callback.app_mention.bolt.json")
    body.update(team_id=team, api_app_id="A111", event=event, event_id=f"Ev{next(env.event_ids):06d}",
                event_time=int(time.time()))
    body.pop("enterprise_id", None)
    return await env.post(json.dumps(body), "application/json")


def posted_to(fake: WorkspacesFakeSlack, channel: str) -> list[str]:
    return [block_text(c.json_param("blocks") or []) + (c.params.get("text") or "")
            for c in fake.messages() if c.params.get("channel") == channel]


async def count(store, table: str) -> int:
    async with store.engine.connect() as conn:
        return int((await conn.execute(select(func.count()).select_from(models.metadata.tables[table]))).scalar_one())


# ---- the tables are slack_sdk's ------------------------------------------------------------------


def test_the_migrated_slack_tables_are_slack_sdks_own() -> None:
    theirs = MetaData()
    SQLAlchemyInstallationStore.build_installations_table(theirs, "slack_installations")
    SQLAlchemyInstallationStore.build_bots_table(theirs, "slack_bots")
    SQLAlchemyOAuthStateStore.build_oauth_states_table(theirs, "slack_oauth_states")
    for name, table in theirs.tables.items():
        ours = models.metadata.tables[name]
        assert [(c.name, repr(c.type), c.nullable, c.primary_key) for c in ours.columns] == [
            (c.name, repr(c.type), c.nullable, c.primary_key) for c in table.columns], name
        assert {(i.name, tuple(c.name for c in i.columns)) for i in ours.indexes} == {
            (i.name, tuple(c.name for c in i.columns)) for i in table.indexes}, name


# ---- install, bind, serve -------------------------------------------------------------------------


async def test_two_workspaces_installed_bound_and_each_answered_with_its_own_token(multi, store) -> None:
    env, fake = multi, multi.fake
    # The install page, in the visitor's language, links to Slack's v2 authorize URL with the
    # client id, the manifest's scopes and a state.
    page = await env.client.get("/slack/install", headers={"Accept-Language": "nl-BE,nl;q=0.9"})
    text = await page.text()
    assert "Toevoegen aan Slack" in text and 'lang="nl"' in text
    link = urllib.parse.urlsplit(re.search(r'href="([^"]+)"', text).group(1).replace("&amp;", "&"))  # type: ignore[union-attr]
    query = urllib.parse.parse_qs(link.query)
    assert f"{link.scheme}://{link.netloc}{link.path}" == "https://slack.com/oauth/v2/authorize"
    assert query["client_id"] == [CLIENT_ID] and query["state"][0]
    assert set(query["scope"][0].split(",")) == {"app_mentions:read", "chat:write", "commands", "im:history",
                                                 "im:write", "users:read", "users:read.email"}

    status, done = await install(env, KLOK, "fr-BE")
    assert status == 200 and "CareDesk est installé" in done and "Brasserie De Klok" in done
    status, done = await install(env, LUMIERE)
    assert status == 200 and "CareDesk is installed" in done
    # Each state used once: only the first page's (never followed) is left.
    assert await count(store, "slack_bots") == 2 and await count(store, "slack_oauth_states") == 1

    # Installed but bound to nobody: listed for staff, and its people are served as unknown.
    from adapters.server.cli import cmd_companies_pending
    from bot.domain.config import Settings

    settings = replace(Settings(), database_url=store.url)
    from adapters.slack.installations import installed_workspaces

    pending = [w.team_id for w in await installed_workspaces(store.engine, store) if not w.companies]
    assert pending == [KLOK, LUMIERE]
    assert await cmd_companies_pending(settings, argparse.Namespace(json=False)) == 0

    await dm(env, KLOK, LOTTE, "tickets")
    assert "CS-2026-00001" not in "\n".join(posted_to(fake, f"D{LOTTE}"))
    assert {"users.info", "chat.postMessage"} <= fake.used(KLOK_TOKEN)

    # The service desk binds each workspace to its company.
    await store.bind_tenant(Binding("slack", KLOK, "Brasserie De Klok"), NOW)
    await store.bind_tenant(Binding("slack", LUMIERE, "Atelier Lumière"), NOW)
    env.channel.conversation.trust.forget()
    assert [w.team_id for w in await installed_workspaces(store.engine, store) if not w.companies] == []

    fake.tokens.clear()
    await dm(env, KLOK, LOTTE, "tickets")
    assert "CS-2026-00001" in posted_to(fake, f"D{LOTTE}")[-1]
    # Everything for Brasserie De Klok's workspace went out with its token, nothing with the other.
    assert "chat.postMessage" in fake.used(KLOK_TOKEN)
    assert fake.used(LUMIERE_TOKEN) == set()

    fake.tokens.clear()
    await dm(env, LUMIERE, CAMILLE, "hello")
    assert posted_to(fake, f"D{CAMILLE}")
    assert {"users.info", "chat.postMessage"} <= fake.used(LUMIERE_TOKEN) and fake.used(KLOK_TOKEN) == set()
    assert all(token is not None for method, token in fake.tokens if method != "oauth.v2.access")


async def test_a_profile_email_of_another_company_gives_nothing_of_it(multi, store) -> None:
    env, fake = multi, multi.fake
    await install(env, KLOK)
    await install(env, LUMIERE)
    await store.bind_tenant(Binding("slack", KLOK, "Brasserie De Klok"), NOW)
    await store.bind_tenant(Binding("slack", LUMIERE, "Atelier Lumière"), NOW)
    # Someone of Atelier Lumière's workspace whose profile shows Lotte's (Brasserie De Klok) e-mail.
    await dm(env, LUMIERE, IMPOSTOR, "tickets")
    seen = "\n".join(posted_to(fake, f"D{IMPOSTOR}"))
    assert seen and "CS-2026-00001" not in seen and "cannot show or escalate tickets" in seen
    await dm(env, LUMIERE, IMPOSTOR, "CS-2026-00001")
    seen = "\n".join(posted_to(fake, f"D{IMPOSTOR}"))
    assert "De kassa print" not in seen
    # Slack Connect: the real Lotte writing through Atelier Lumière's workspace is recognised by
    # her own team id, bound to her company.
    await dm(env, LUMIERE, CONNECTED, "tickets")
    assert "CS-2026-00001" in "\n".join(posted_to(fake, f"D{CONNECTED}"))


async def test_bad_states_and_replayed_codes_get_clear_errors_and_change_nothing(multi, store) -> None:
    env = multi
    page = await env.client.get("/slack/install")
    state, cookie = _state(await page.text(), page)
    # No cookie (another browser): refused.
    r = await env.client.get(f"/slack/oauth_redirect?code=code-klok&state={state}", headers={"Accept-Language": "fr"})
    assert r.status == 400 and "expiré ou a déjà été utilisé" in await r.text()
    # A made-up state with a matching cookie: not issued by CareDesk.
    r = await env.client.get("/slack/oauth_redirect?code=code-klok&state=forged",
                             headers={"Cookie": "slack-app-oauth-state=forged"})
    assert r.status == 401 and "expired or was already used" in await r.text()
    # Cancelled on Slack's consent page.
    r = await env.client.get("/slack/oauth_redirect?error=access_denied&state=" + state, headers={"Cookie": cookie})
    assert "cancelled" in await r.text()
    assert await count(store, "slack_bots") == 0

    status, _ = await install(env, KLOK)
    assert status == 200 and await count(store, "slack_bots") == 1
    # The same redirect again (a reload, a replay): its state was used up.
    r = await env.client.get(f"/slack/oauth_redirect?code=code-klok&state={state}", headers={"Cookie": cookie})
    assert r.status in (400, 401)
    # A fresh state with a code Slack already exchanged: Slack refuses, nothing is saved.
    status, text = await install(env, KLOK)
    assert status == 401 and "Slack did not accept the installation (invalid_code)" in text
    assert await count(store, "slack_bots") == 1 and await count(store, "slack_installations") == 1


async def test_an_unknown_workspace_is_answered_politely_and_never_with_another_token(multi, store) -> None:
    env, fake = multi, multi.fake
    await install(env, KLOK)
    fake.tokens.clear()
    r = await dm(env, NOBODY, "UX1", "hello")
    assert r.status == 200
    assert await count(store, "inbox") == 0  # nothing written down, nothing worked on
    assert [t for m, t in fake.tokens if m != "auth.test"] == []


async def test_uninstalling_forgets_the_token(multi, store) -> None:
    env, fake = multi, multi.fake
    await install(env, KLOK)
    await install(env, LUMIERE)
    body = {"token": "x", "team_id": LUMIERE, "api_app_id": "A111", "type": "event_callback",
            "event": {"type": "app_uninstalled", "event_ts": f"{time.time():.6f}"},
            "event_id": "EvUNINSTALL", "event_time": int(time.time())}
    r = await env.post(json.dumps(body), "application/json")
    assert r.status == 200
    async with store.engine.connect() as conn:
        teams = (await conn.execute(select(models.slack_bots.c.team_id))).scalars().all()
        assert teams == [KLOK]
        assert (await conn.execute(select(models.slack_installations.c.team_id))).scalars().all() == [KLOK]
    fake.tokens.clear()
    await dm(env, LUMIERE, CAMILLE, "hello")
    assert fake.used(LUMIERE_TOKEN) == set() and posted_to(fake, f"D{CAMILLE}") == []
    assert await env.channel.workspace_token(LUMIERE) is None
    assert await env.channel.workspace_token(KLOK) == KLOK_TOKEN


def test_the_secret_stays_out_of_the_config_repr() -> None:
    config = slack_config(None, bot_token=None, client_id=CLIENT_ID, client_secret=CLIENT_SECRET)
    assert CLIENT_SECRET not in repr(config) and config.multi_workspace and config.http_problem is None
    assert SIGNING_SECRET not in repr(config)


@pytest.mark.parametrize("env_vars", [{"SLACK_CLIENT_ID": CLIENT_ID}, {"SLACK_CLIENT_SECRET": CLIENT_SECRET}])
def test_half_an_oauth_client_is_refused(env_vars) -> None:
    from adapters.slack.config import SlackConfig
    from bot.domain.config import ConfigError, Settings

    with pytest.raises(ConfigError, match="needs both SLACK_CLIENT_ID and SLACK_CLIENT_SECRET"):
        SlackConfig.load(Settings(), env_vars)
