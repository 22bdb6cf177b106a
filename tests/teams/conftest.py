"""Fixtures of the Teams tests: a fake Bot Framework (OpenID metadata + JWKS, token endpoint,
connector service) on 127.0.0.1, RSA-signed channel tokens, and CareDesk's aiohttp server with
the Teams channel mounted and authentication ON.

Every Adaptive Card the fake connector receives is validated against the official 1.5 schema
when the test ends.

Every test that uses the fake (`fake_bf`) runs once per Teams transport (`TRANSPORTS`: the
Microsoft 365 Agents SDK and botbuilder), chosen as a deployment chooses it, with
`CAREDESK_TEAMS_TRANSPORT` in `teams_env`. A transport whose SDK is not installed is skipped
(failed under CI=true).
"""

from __future__ import annotations

import asyncio
import base64
import importlib
import os
import copy
import itertools
import json
import time
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import jsonschema
import jwt
import pytest
import regex
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from cryptography.hazmat.primitives.asymmetric import rsa

from adapters.teams import configure, mount
from adapters.teams.config import TeamsConfig
from adapters.server.web import build_app
from bot.domain.clock import ManualClock
from bot.domain.config import Settings
from bot.app.desk import Desk
from bot.domain.directory import read_directory_file

ROOT = Path(__file__).resolve().parents[2]
PLATFORM = ROOT / ".." / "shared" / "reference" / "platform"
BXL = ZoneInfo("Europe/Brussels")
APP_ID = "6f1a2b3c-4d5e-4f60-8a7b-9c0d1e2f3a4b"
APP_PASSWORD = "test-client-secret"
ISSUER = "https://api.botframework.com"
BOT_ID = "28:" + APP_ID
KID = "test-key-1"
OUTBOUND_TOKEN = "outbound-access-token"
CARD_TYPE = "application/vnd.microsoft.card.adaptive"

USERS = {
    "29:lotte": {"email": "lotte.peeters@brasseriedeklok.be", "name": "Lotte Peeters", "aad": "aad-lotte"},
    "29:camille": {"email": "camille.dubois@atelier-lumiere.be", "name": "Camille Dubois", "aad": "aad-camille"},
    "29:emma": {"email": "emma.wilson@atelier-lumiere.be", "name": "Emma Wilson", "aad": "aad-emma"},
    "29:sofie": {"email": "sofie.janssens@caresolutions.be", "name": "Sofie Janssens", "aad": "aad-sofie"},
    # the escalation managers of examples/directory.yaml (levels 1 and 2)
    "29:naida": {"email": "naida.jelacic@caresolutions.be", "name": "Naïda Jelacic", "aad": "aad-naida"},
    "29:pieter": {"email": "pieter.vandenbroeck@caresolutions.be", "name": "Pieter Van den Broeck", "aad": "aad-pieter"},
}


def platform_file(*parts: str) -> Path:
    path = PLATFORM.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"platform reference material missing: {path} (shared/ must sit beside the repo)")
    return path


def load_activity(name: str) -> dict[str, Any]:
    return json.loads(platform_file("teams", "activities", name).read_text(encoding="utf-8"))


# ---- schema validation (patterns with the `regex` module) -----------------------------------------------


def _pattern(validator, pattern, instance, schema):
    if validator.is_type(instance, "string") and not regex.search(pattern, instance):
        yield jsonschema.ValidationError(f"{instance!r} does not match {pattern!r}")


def _pattern_properties(validator, patterns, instance, schema):
    if not validator.is_type(instance, "object"):
        return
    for pattern, subschema in patterns.items():
        for key, value in instance.items():
            if regex.search(pattern, key):
                yield from validator.descend(value, subschema, path=key, schema_path=pattern)


def regex_validator(schema: dict[str, Any]) -> jsonschema.protocols.Validator:
    base = jsonschema.validators.validator_for(schema)
    cls = jsonschema.validators.extend(base, {"pattern": _pattern, "patternProperties": _pattern_properties})
    return cls(schema, format_checker=base.FORMAT_CHECKER)


_card_validator = None


def card_errors(card: dict[str, Any]) -> list[str]:
    global _card_validator
    if _card_validator is None:
        schema = json.loads(platform_file("adaptive-cards", "adaptive-card.1.5.0.json").read_text(encoding="utf-8"))
        _card_validator = regex_validator(schema)
    return [f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in _card_validator.iter_errors(card)]


# ---- the fake Bot Framework ------------------------------------------------------------------------------


@dataclass
class FakeBotFramework:
    private_key: Any
    jwks: list[dict[str, Any]]
    members: dict[str, dict[str, Any]] = field(default_factory=dict)
    requests: list[dict[str, Any]] = field(default_factory=list)
    token_requests: list[dict[str, str]] = field(default_factory=list)
    key_fetches: int = 0
    key_delay: float = 0.0
    fail_sends: bool = False
    fail_members: bool = False
    base_url: str = ""
    transport: str = "agents"  # the Teams transport under test (CAREDESK_TEAMS_TRANSPORT)
    _ids: Any = field(default_factory=lambda: itertools.count(1))

    @property
    def service_url(self) -> str:
        return self.base_url + "/connector/"

    # what the bot sent
    def sent(self, method: str | None = None) -> list[dict[str, Any]]:
        return [r for r in self.requests if r["kind"] == "activity" and (method is None or r["method"] == method)]

    def cards(self, method: str | None = None) -> list[dict[str, Any]]:
        return [a["content"] for r in self.sent(method) for a in (r["body"].get("attachments") or [])
                if a.get("contentType") == CARD_TYPE]

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_get("/openid", self.openid)
        app.router.add_get("/keys", self.keys)
        app.router.add_post("/token", self.token)
        app.router.add_post("/connector/v3/conversations/{cid}/activities", self.post_activity)
        app.router.add_post("/connector/v3/conversations/{cid}/activities/{aid}", self.post_activity)
        app.router.add_put("/connector/v3/conversations/{cid}/activities/{aid}", self.put_activity)
        app.router.add_get("/connector/v3/conversations/{cid}/members/{mid}", self.member)
        return app

    async def openid(self, request: web.Request) -> web.Response:
        return web.json_response({"issuer": ISSUER, "jwks_uri": self.base_url + "/keys",
                                  "id_token_signing_alg_values_supported": ["RS256"]})

    async def keys(self, request: web.Request) -> web.Response:
        self.key_fetches += 1
        if self.key_delay:
            await asyncio.sleep(self.key_delay)
        return web.json_response({"keys": self.jwks})

    async def token(self, request: web.Request) -> web.Response:
        form = dict(await request.post())
        self.token_requests.append(form)
        if form.get("client_id") != APP_ID or form.get("client_secret") != APP_PASSWORD:
            return web.json_response({"error": "invalid_client"}, status=401)
        return web.json_response({"token_type": "Bearer", "expires_in": 3600, "access_token": OUTBOUND_TOKEN})

    def _record(self, request: web.Request, method: str, body: Any, response_id: str) -> None:
        self.requests.append({
            "kind": "activity", "method": method, "conversation": request.match_info["cid"],
            "activity_id": request.match_info.get("aid"), "body": body, "response_id": response_id,
            "authorization": request.headers.get("Authorization"),
            "peer": request.transport.get_extra_info("peername") if request.transport else None,
        })

    async def post_activity(self, request: web.Request) -> web.Response:
        body = await request.json()
        if self.fail_sends:
            self.requests.append({"kind": "failed", "method": "POST", "body": body})
            return web.json_response({"error": {"code": "ServiceError", "message": "boom"}}, status=500)
        response_id = f"bot-msg-{next(self._ids)}"
        self._record(request, "POST", body, response_id)
        return web.json_response({"id": response_id})

    async def put_activity(self, request: web.Request) -> web.Response:
        body = await request.json()
        if self.fail_sends:
            self.requests.append({"kind": "failed", "method": "PUT", "body": body})
            return web.json_response({"error": {"code": "ServiceError", "message": "boom"}}, status=500)
        self._record(request, "PUT", body, request.match_info["aid"])
        return web.json_response({"id": request.match_info["aid"]})

    async def member(self, request: web.Request) -> web.Response:
        self.requests.append({"kind": "member", "member": request.match_info["mid"],
                              "authorization": request.headers.get("Authorization")})
        member = self.members.get(request.match_info["mid"])
        if self.fail_members or member is None:
            return web.json_response({"error": {"code": "NotFound", "message": "no such member"}}, status=404)
        return web.json_response(member)


def _jwk(private_key, kid: str) -> dict[str, Any]:
    data = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(private_key.public_key()))
    return {**data, "kid": kid, "use": "sig", "alg": "RS256", "endorsements": ["msteams"]}


@pytest.fixture(scope="session")
def rsa_key():
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture(scope="session")
def other_rsa_key():
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


TRANSPORTS = ("agents", "botbuilder")
TRANSPORT_MODULES = {"agents": "adapters.teams.agents_transport", "botbuilder": "adapters.teams.botbuilder_transport"}


# For a test that stands up a server with both channels (the hostile suite) but speaks Slack only:
# the Teams transport cannot change its outcome, so it runs on one (the default, `agents`) instead
# of once per transport. Every test that speaks Teams (the Teams suite, the hostile and fault
# tests of /api/messages) keeps running on both.
ONE_TRANSPORT = pytest.mark.parametrize("fake_bf", TRANSPORTS[:1], indirect=True)


def transport_module(transport: str) -> Any:
    """The transport's module, or a skip when its SDK is not installed (a failure under CI=true,
    where both must run)."""
    try:
        return importlib.import_module(TRANSPORT_MODULES[transport])
    except ImportError as exc:
        if os.environ.get("CI", "").lower() == "true":
            raise
        pytest.skip(f"the {transport} transport's SDK is not installed: {exc}")


def clear_key_cache(transport: str) -> None:
    """botbuilder keeps the signing keys on a class, shared by the whole process (the Agents SDK
    transport keeps them per transport)."""
    if transport == "botbuilder":
        transport_module(transport).clear_key_cache()


@pytest.fixture(params=TRANSPORTS)
async def fake_bf(rsa_key, request):
    transport_module(request.param)
    fake = FakeBotFramework(private_key=rsa_key, jwks=[_jwk(rsa_key, KID)], transport=request.param)
    for user_id, user in USERS.items():
        fake.members[user_id] = {"id": user_id, "name": user["name"], "aadObjectId": user["aad"],
                                 "email": user["email"], "userPrincipalName": user["email"]}
    server = TestServer(fake.app(), host="127.0.0.1")
    await server.start_server()
    fake.base_url = str(server.make_url("")).rstrip("/")
    clear_key_cache(fake.transport)
    yield fake
    await server.close()
    clear_key_cache(fake.transport)
    problems = {i: card_errors(c) for i, c in enumerate(fake.cards())}
    assert not {i: p for i, p in problems.items() if p}, f"cards the bot sent fail the Adaptive Card 1.5 schema: {problems}"


def sign(claims: dict[str, Any], key, kid: str = KID, alg: str = "RS256") -> str:
    return jwt.encode(claims, key, algorithm=alg, headers={"kid": kid})


def channel_claims(service_url: str, **overrides: Any) -> dict[str, Any]:
    now = int(time.time())
    claims = {"iss": ISSUER, "aud": APP_ID, "serviceurl": service_url, "nbf": now - 10, "exp": now + 3600,
              "iat": now - 10}
    claims.update(overrides)
    return {k: v for k, v in claims.items() if v is not None}


def unsigned_token(claims: dict[str, Any]) -> str:
    def b64(data: dict[str, Any]) -> str:
        return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()

    return f"{b64({'alg': 'none', 'typ': 'JWT', 'kid': KID})}.{b64(claims)}."


# ---- CareDesk with the Teams channel ----------------------------------------------------------------------


def teams_env(fake: FakeBotFramework, **extra: str) -> dict[str, str]:
    """The environment of a process that talks to the fake Bot Framework (the bot's identity
    comes with `teams_config`, or as MICROSOFT_APP_* in `extra`)."""
    return {
        "BOTFRAMEWORK_OPENID_METADATA_URL": fake.base_url + "/openid",
        "BOTFRAMEWORK_TOKEN_ISSUER": ISSUER,
        "BOTFRAMEWORK_EMULATOR_OPENID_METADATA_URL": fake.base_url + "/openid",
        "BOTFRAMEWORK_TOKEN_URL": fake.base_url + "/token",
        "BOTFRAMEWORK_OAUTH_SCOPE": "https://api.botframework.com",
        "CAREDESK_TEAMS_TRANSPORT": fake.transport,
        **extra,
    }


@dataclass
class Bot:
    client: TestClient
    desk: Desk
    fake: FakeBotFramework
    teams: Any
    _ids: Any = field(default_factory=lambda: itertools.count(1))

    def activity(self, user: str = "29:lotte", text: str | None = None, *, value: Any = None,
                 conversation: str | None = None, locale: str = "en-US", reply_to: str | None = None,
                 activity_id: str | None = None, kind: str = "message", name: str | None = None) -> dict[str, Any]:
        base = copy.deepcopy(load_activity("message.personal.docs.json"))
        base.update({
            "type": kind,
            "id": activity_id or f"act-{next(self._ids)}",
            "serviceUrl": self.fake.service_url,
            "from": {"id": user, "name": USERS.get(user, {}).get("name", "Someone"),
                     "aadObjectId": USERS.get(user, {}).get("aad", "aad-unknown")},
            "recipient": {"id": BOT_ID, "name": "CareDesk"},
            "conversation": {"conversationType": "personal", "id": conversation or f"a:personal-{user}",
                             "tenantId": "tenant-1"},
            "channelData": {"tenant": {"id": "tenant-1"}},
            "locale": locale,
        })
        if text is None:
            base.pop("text", None)
        else:
            base["text"] = text
        if value is not None:
            base["value"] = value
        if reply_to:
            base["replyToId"] = reply_to
        if name:
            base["name"] = name
        return base

    def token(self, **overrides: Any) -> str:
        return sign(channel_claims(self.fake.service_url, **overrides), self.fake.private_key)

    async def post(self, activity: dict[str, Any], token: str | None = "valid", headers: dict[str, str] | None = None):
        hdrs = {"Content-Type": "application/json", **(headers or {})}
        if token == "valid":
            token = self.token()
        if token is not None:
            hdrs["Authorization"] = f"Bearer {token}"
        response = await self.client.post("/api/messages", data=json.dumps(activity), headers=hdrs)
        body = await response.read()
        return response.status, (json.loads(body) if body else None)

    async def say(self, text: str, user: str = "29:lotte", **kw: Any) -> dict[str, Any]:
        """Send a message; return the last card the bot posted."""
        before = len(self.fake.sent("POST"))
        status, _ = await self.post(self.activity(user, text, **kw))
        assert status == 200
        posted = self.fake.sent("POST")[before:]
        assert posted, f"no answer to {text!r}"
        return posted[-1]

    async def click(self, posted: dict[str, Any], action: dict[str, Any], user: str = "29:lotte",
                    inputs: dict[str, str] | None = None) -> dict[str, Any] | None:
        """Action.Submit of a button of a card the bot posted (a message with value)."""
        data = {**action["data"], **(inputs or {})}
        before = len(self.fake.sent("POST"))
        status, _ = await self.post(self.activity(user, None, value=data, reply_to=posted["response_id"]))
        assert status == 200
        new = self.fake.sent("POST")[before:]
        return new[-1] if new else None


def buttons(card: dict[str, Any]) -> list[dict[str, Any]]:
    found = []

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            if node.get("type") in ("Action.Execute", "Action.Submit") and "data" in node:
                found.append(node)
                return  # not the Action.Submit fallback inside an Action.Execute
            for v in node.values():
                walk(v)
        elif isinstance(node, list):
            for v in node:
                walk(v)

    walk(card.get("body", []))
    walk(card.get("actions", []))
    return found


def card_of(posted: dict[str, Any]) -> dict[str, Any]:
    return posted["body"]["attachments"][0]["content"]


def card_text(card: dict[str, Any]) -> str:
    texts = []

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            for key in ("text", "title", "value", "label"):
                if isinstance(node.get(key), str):
                    texts.append(node[key])
            for v in node.values():
                walk(v)
        elif isinstance(node, list):
            for v in node:
                walk(v)

    walk(card)
    return "\n".join(texts)


def teams_config(fake: FakeBotFramework, *, env: Mapping[str, str] | None = None, **fields: Any) -> TeamsConfig:
    """Teams' config for a test: the bot's identity given outright (`fields` override it),
    every Bot Framework endpoint on the fake (`env` adds to `teams_env`)."""
    config = TeamsConfig.from_settings(Settings(), {**teams_env(fake), **(env or {})})
    return replace(config, **{"app_id": APP_ID, "app_password": APP_PASSWORD, **fields})


async def start_bot(store, fake: FakeBotFramework, *, settings: Settings | None = None,
                    config: TeamsConfig | None = None) -> Bot:
    await store.replace_directory(read_directory_file(ROOT / "examples" / "directory.yaml"))
    settings = settings or Settings()
    desk = Desk(settings, store, ManualClock(datetime(2026, 11, 26, 10, 0, tzinfo=BXL)))
    teams = configure(desk, config=config or teams_config(fake))
    app = build_app(desk, channels=(lambda a: mount(a, teams),))
    client = TestClient(TestServer(app, host="127.0.0.1"))
    await client.start_server()
    return Bot(client, desk, fake, teams)


@pytest.fixture
async def sqlite_store(tmp_path):
    from bot.store.sql import SqlStore

    s = SqlStore(f"sqlite+aiosqlite:///{tmp_path / 'caredesk.db'}")
    await s.initialize()
    yield s
    await s.close()


@pytest.fixture
async def bot(sqlite_store, fake_bf):
    b = await start_bot(sqlite_store, fake_bf)
    yield b
    await b.client.close()


@pytest.fixture
async def bot_on_both(store, fake_bf):
    """The bot on SQLite and on PostgreSQL (the shared `store` fixture)."""
    b = await start_bot(store, fake_bf)
    yield b
    await b.client.close()

