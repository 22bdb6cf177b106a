"""A local fake of Slack's Web API (aiohttp, records every call), CareDesk's server with the
Slack channel mounted on it, and helpers that send real, correctly signed Slack payloads.

The fake answers the methods the channel uses; `fake.fail(method, status, times)` makes one of
them fail (429 with Retry-After, 500, …). Every Block Kit payload it receives is validated with
`slack_sdk.models` when the test ends.
"""

from __future__ import annotations

import copy
import hashlib
import hmac
import itertools
import json
import time
import urllib.parse
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Mapping
from zoneinfo import ZoneInfo

import pytest
import pytest_asyncio
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from bot.domain.clock import ManualClock
from adapters.slack.config import SlackConfig
from bot.domain.config import Settings
from bot.app.desk import Desk
from bot.domain.directory import read_directory_file

ROOT = Path(__file__).resolve().parents[2]
PLATFORM = ROOT / ".." / "shared" / "reference" / "platform"
SLACK_REF = PLATFORM / "slack"
BXL = ZoneInfo("Europe/Brussels")
SIGNING_SECRET = "test-signing-secret-0123456789abcdef"
BOT_TOKEN = "xoxb-test-token"
TEAM = "T111"
BOT_USER = "UBOT"
LOTTE, CAMILLE, STRANGER, SOFIE, NAIDA, PIETER = "W111", "W222", "W999", "W333", "W444", "W555"
USERS = {
    LOTTE: {"email": "lotte.peeters@brasseriedeklok.be", "real_name": "Lotte Peeters", "locale": "en-US",
            "phone": "+32 3 555 12 34"},
    CAMILLE: {"email": "camille.dubois@atelier-lumiere.be", "real_name": "Camille Dubois", "locale": "fr-FR",
              "phone": ""},
    STRANGER: {"email": "someone@elsewhere.example", "real_name": "Some One", "locale": "en-GB", "phone": ""},
    SOFIE: {"email": "sofie.janssens@caresolutions.be", "real_name": "Sofie Janssens", "locale": "en-GB", "phone": ""},
    NAIDA: {"email": "Naida.jelacic@caresolutions.be", "real_name": "Naïda Jelacic", "locale": "fr-BE", "phone": ""},
    PIETER: {"email": "pieter.vandenbroeck@caresolutions.be", "real_name": "Pieter Van den Broeck", "locale": "nl-BE",
             "phone": ""},
}
# Office hours on a Thursday.
NOW = datetime(2026, 11, 26, 10, 0, tzinfo=BXL)


def reference(name: str) -> Path:
    path = SLACK_REF / name
    if not path.exists():
        pytest.skip(f"the shared platform reference {path} is missing (CI puts shared/ beside the repo)")
    return path


def load_json(name: str) -> dict[str, Any]:
    return json.loads(reference(name).read_text(encoding="utf-8"))


# ---- the fake Slack Web API ------------------------------------------------------------------------


@dataclass
class Call:
    method: str
    params: dict[str, Any]
    status: int = 200
    peer: Any = None  # the caller's (host, port): the same for calls on one kept-alive connection

    def json_param(self, name: str) -> Any:
        value = self.params.get(name)
        return json.loads(value) if isinstance(value, str) else value


@dataclass
class Failure:
    status: int
    times: int | None  # None: forever
    headers: Mapping[str, str] = field(default_factory=dict)


class FakeSlack:
    """Slack's Web API on 127.0.0.1, in the style of bolt-python's mock server."""

    def __init__(self) -> None:
        self.calls: list[Call] = []
        self.failures: dict[str, Failure] = {}
        self.users: dict[str, dict[str, Any]] = copy.deepcopy(USERS)
        self.ts = itertools.count(1)
        self.views = itertools.count(1)
        self.server: TestServer | None = None
        self.socket_envelopes: list[dict[str, Any]] = []
        self.socket_acks: list[dict[str, Any]] = []

    @property
    def url(self) -> str:
        assert self.server is not None
        return str(self.server.make_url("/api/"))

    def response_url(self, name: str = "commands/T111/111/xxxxx") -> str:
        assert self.server is not None
        return str(self.server.make_url(f"/{name}"))

    def fail(self, method: str, status: int, times: int | None = None, headers: Mapping[str, str] | None = None) -> None:
        self.failures[method] = Failure(status, times, dict(headers or {}))

    def heal(self) -> None:
        self.failures.clear()

    def of(self, method: str, ok_only: bool = True) -> list[Call]:
        return [c for c in self.calls if c.method == method and (c.status == 200 or not ok_only)]

    def messages(self) -> list[Call]:
        return self.of("chat.postMessage")

    def last_message(self) -> Call:
        messages = self.messages()
        assert messages, f"no message was posted; calls: {[c.method for c in self.calls]}"
        return messages[-1]

    async def start(self) -> None:
        app = web.Application()
        app.router.add_route("*", "/api/{method}", self._api)
        app.router.add_post("/commands/{rest:.*}", self._response_url)
        app.router.add_post("/actions/{rest:.*}", self._response_url)
        app.router.add_get("/socket", self._socket)
        self.server = TestServer(app, host="127.0.0.1")
        await self.server.start_server()

    async def close(self) -> None:
        if self.server is not None:
            await self.server.close()

    async def _params(self, request: web.Request) -> dict[str, Any]:
        params: dict[str, Any] = dict(request.query)
        if request.can_read_body:
            if request.content_type == "application/json":
                params.update(await request.json())
            else:
                params.update(dict(await request.post()))
        return params

    async def _response_url(self, request: web.Request) -> web.Response:
        body = await request.json()
        failure = self.failures.get("response_url")
        status = self._consume("response_url", failure)
        self.calls.append(Call("response_url", body, status))
        return web.Response(status=status, text="ok" if status == 200 else "error")

    def _consume(self, method: str, failure: Failure | None) -> int:
        if failure is None:
            return 200
        if failure.times is not None:
            failure.times -= 1
            if failure.times <= 0:
                del self.failures[method]
        return failure.status

    async def _api(self, request: web.Request) -> web.Response:
        method = request.match_info["method"]
        params = await self._params(request)
        failure = self.failures.get(method)
        status = self._consume(method, failure)
        self.calls.append(Call(method, params, status, request.transport.get_extra_info("peername")
                               if request.transport is not None else None))
        if status != 200:
            assert failure is not None
            return web.json_response({"ok": False, "error": "ratelimited" if status == 429 else "fatal_error"},
                                     status=status, headers=failure.headers)
        return web.json_response(self._answer(method, params, request))

    def _answer(self, method: str, params: dict[str, Any], request: web.Request) -> dict[str, Any]:
        if method == "auth.test":
            return {"ok": True, "url": "https://caredesk-test.slack.com/", "team": "Test", "user": "caredesk",
                    "team_id": TEAM, "user_id": BOT_USER, "bot_id": "B111", "is_enterprise_install": False}
        if method == "users.info":
            user_id = params.get("user")
            user = self.users.get(user_id)
            if user is None:
                return {"ok": False, "error": "user_not_found"}
            return {"ok": True, "user": {
                "id": user_id, "team_id": TEAM, "name": user["real_name"].split()[0].lower(),
                "real_name": user["real_name"], "locale": user["locale"], "is_bot": False, "tz": "Europe/Brussels",
                "profile": {"real_name": user["real_name"], "display_name": user["real_name"].split()[0],
                            "email": user["email"], "phone": user["phone"]},
            }}
        if method == "users.lookupByEmail":
            wanted = str(params.get("email", "")).lower()
            for user_id, user in self.users.items():
                if user["email"].lower() == wanted:
                    return {"ok": True, "user": {"id": user_id, "team_id": TEAM, "real_name": user["real_name"],
                                                 "profile": {"email": user["email"]}}}
            return {"ok": False, "error": "users_not_found"}
        if method == "conversations.open":
            return {"ok": True, "channel": {"id": f"D{params.get('users')}"}}
        if method in ("chat.postMessage", "chat.postEphemeral", "chat.update"):
            ts = f"1700000000.{next(self.ts):06d}"
            return {"ok": True, "channel": params.get("channel"), "ts": ts, "message_ts": ts,
                    "message": {"text": params.get("text"), "ts": ts}}
        if method in ("views.open", "views.update", "views.publish", "views.push"):
            view = params.get("view")
            view = json.loads(view) if isinstance(view, str) else view
            view_id = params.get("view_id") or f"V{next(self.views):04d}"
            return {"ok": True, "view": {**view, "id": view_id, "hash": f"hash-{view_id}", "team_id": TEAM}}
        if method == "apps.connections.open":
            assert self.server is not None
            return {"ok": True, "url": str(self.server.make_url("/socket")).replace("http://", "ws://")}
        return {"ok": False, "error": "unknown_method"}

    async def _socket(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        await ws.send_json({"type": "hello", "num_connections": 1, "debug_info": {"host": "fake"},
                            "connection_info": {"app_id": "A111"}})
        for envelope in self.socket_envelopes:
            await ws.send_json(envelope)
        async for message in ws:
            if message.type.name == "TEXT":
                self.socket_acks.append(json.loads(message.data))
        return ws


# ---- Block Kit validation ------------------------------------------------------------------------------


def validate_blocks(blocks: list[dict[str, Any]], limit: int) -> None:
    from slack_sdk.models.blocks import Block

    assert len(blocks) <= limit, f"{len(blocks)} blocks (at most {limit})"
    action_ids = []
    for raw in blocks:
        block = Block.parse(raw)
        assert block is not None, raw
        block.validate_json()
        assert block.to_dict() == raw, (block.to_dict(), raw)
        for element in raw.get("elements", ()) if raw["type"] == "actions" else ():
            action_ids.append(element["action_id"])
        if raw["type"] == "input":
            action_ids.append(raw["element"]["action_id"])
    assert len(action_ids) == len(set(action_ids)), f"duplicate action ids: {action_ids}"


def validate_view(view: dict[str, Any]) -> None:
    from slack_sdk.models.views import View

    parsed = View(**view)
    parsed.validate_json()
    validate_blocks(view["blocks"], 100)


def validate_call(call: Call) -> None:
    if call.method in ("chat.postMessage", "chat.postEphemeral", "chat.update", "response_url"):
        blocks = call.json_param("blocks")
        if blocks is not None:
            validate_blocks(blocks, 50)
    if call.method.startswith("views."):
        validate_view(call.json_param("view"))


# ---- signing and payloads --------------------------------------------------------------------------------


def sign(body: str, timestamp: int | None = None, secret: str = SIGNING_SECRET) -> dict[str, str]:
    ts = str(int(time.time()) if timestamp is None else timestamp)
    digest = hmac.new(secret.encode(), f"v0:{ts}:{body}".encode(), hashlib.sha256).hexdigest()
    return {"X-Slack-Request-Timestamp": ts, "X-Slack-Signature": f"v0={digest}"}


def form_body(payload: Mapping[str, Any]) -> str:
    """Interactivity payloads are sent as `payload=<json>` form bodies."""
    return "payload=" + urllib.parse.quote(json.dumps(payload))


class SlackEnv:
    """The server under test, the fake, and helpers to talk to the server as Slack does."""

    def __init__(self, client: TestClient, fake: FakeSlack, desk: Desk, channel: Any) -> None:
        self.client = client
        self.fake = fake
        self.desk = desk
        self.channel = channel
        self.event_ids = itertools.count(1)

    async def post(self, body: str, content_type: str, headers: Mapping[str, str] | None = None,
                   signed: bool = True, drain: bool = True):
        all_headers = {"Content-Type": content_type, **(sign(body) if signed else {}), **(headers or {})}
        response = await self.client.post("/slack/events", data=body.encode(), headers=all_headers)
        await response.read()
        if drain:
            await self.channel.drain()
        return response

    async def command(self, command: str, text: str = "", user: str = LOTTE, channel: str = "C111", **kw):
        fields = dict(urllib.parse.parse_qsl(reference("payloads/slash_command.form.txt").read_text(),
                                             keep_blank_values=True))
        fields.update(command=command, text=text, user_id=user, channel_id=channel,
                      response_url=self.fake.response_url(), trigger_id=f"111.{next(self.event_ids)}.xxx")
        return await self.post(urllib.parse.urlencode(fields), "application/x-www-form-urlencoded", **kw)

    async def event(self, event: Mapping[str, Any], event_id: str | None = None, headers=None, **kw):
        body = load_json("payloads/event_callback.app_mention.bolt.json")
        body.update(team_id=TEAM, api_app_id="A111", event=dict(event),
                    event_id=event_id or f"Ev{next(self.event_ids):06d}", event_time=int(time.time()))
        body.pop("enterprise_id", None)
        return await self.post(json.dumps(body), "application/json", headers=headers, **kw)

    async def dm(self, text: str, user: str = LOTTE, **kw):
        sample = load_json("payloads/event_callback.message_im.docs.json")["event"]
        event = {**sample, "user": user, "channel": f"D{user}", "text": text,
                 "ts": f"{time.time():.6f}", "event_ts": f"{time.time():.6f}"}
        return await self.event(event, **kw)

    async def block_action(self, action_id: str, value: str, *, user: str = LOTTE, container: Mapping[str, Any] | None = None,
                           message: Mapping[str, Any] | None = None, view: Mapping[str, Any] | None = None,
                           action_type: str = "button", **kw):
        body = load_json("payloads/block_actions.json")
        body["user"]["id"] = user
        body["team"].pop("enterprise_id", None)
        body["team"].pop("enterprise_name", None)
        body["trigger_id"] = f"222.{next(self.event_ids)}.valid"
        body["response_url"] = self.fake.response_url("actions/T111/111/random-value")
        body["container"] = dict(container or {"type": "message", "message_ts": "111.222", "channel_id": f"D{user}",
                                                "is_ephemeral": False})
        if body["container"].get("channel_id"):
            body["channel"] = {"id": body["container"]["channel_id"], "name": "directmessage"}
        else:
            body.pop("channel", None)
        if message is not None:
            body["message"] = dict(message)
        if view is not None:
            body["view"] = dict(view)
        action = {**body["actions"][0], "action_id": action_id, "block_id": "b", "type": action_type}
        if action_type == "static_select":
            action.pop("value", None)
            action.pop("text", None)
            action["selected_option"] = {"text": {"type": "plain_text", "text": value}, "value": value}
        else:
            action["value"] = value
        body["actions"] = [action]
        return await self.post(form_body(body), "application/x-www-form-urlencoded", **kw)

    async def click(self, value: str, *, user: str = LOTTE, call: Call | None = None, **kw):
        """Click the button with this value in the last message posted (as Slack would send it)."""
        call = call or self.fake.last_message()
        action_id = button_action_id(call.json_param("blocks"), value)
        channel = call.params["channel"]
        container = {"type": "message", "message_ts": "1700000000.000001", "channel_id": channel, "is_ephemeral": False}
        message = {"type": "message", "ts": "1700000000.000001", "text": call.params.get("text")}
        if call.params.get("thread_ts"):
            message["thread_ts"] = call.params["thread_ts"]
            container["thread_ts"] = call.params["thread_ts"]
        return await self.block_action(action_id, value, user=user, container=container, message=message, **kw)

    async def submit(self, view: Mapping[str, Any], values: Mapping[str, str], *, user: str = LOTTE, **kw):
        """Submit a modal as Slack does: the view as it was opened, with the state of each input."""
        body = load_json("payloads/view_submission.json")
        body["user"]["id"] = user
        body["team"].pop("enterprise_id", None)
        body["team"].pop("enterprise_name", None)
        state: dict[str, Any] = {}
        for block in view["blocks"]:
            if block["type"] != "input":
                continue
            element = block["element"]
            value = values.get(block["block_id"])
            entry: dict[str, Any] = {"type": element["type"]}
            if element["type"] == "static_select":
                entry["selected_option"] = (
                    next(o for o in element["options"] if o["value"] == value) if value else None)
            elif element["type"] == "datepicker":
                entry["selected_date"] = value
            elif element["type"] == "timepicker":
                entry["selected_time"] = value
            else:
                entry["value"] = value
            state[block["block_id"]] = {element["action_id"]: entry}
        body["view"] = {**body["view"], **{k: v for k, v in view.items() if k != "id"}, "id": view.get("id", "V0001"),
                        "state": {"values": state}}
        return await self.post(form_body(body), "application/x-www-form-urlencoded", **kw)


def button_action_id(blocks: list[dict[str, Any]], value: str) -> str:
    for block in blocks:
        for element in block.get("elements", ()) if block["type"] == "actions" else ():
            if element.get("value") == value:
                return element["action_id"]
    raise AssertionError(f"no button with value {value!r} in {json.dumps(blocks)[:2000]}")


def block_text(blocks: list[dict[str, Any]]) -> str:
    """Everything a person reads in these blocks, one string."""
    parts = []
    for block in blocks:
        if "text" in block and isinstance(block["text"], dict):
            parts.append(block["text"]["text"])
        for f in block.get("fields", ()):
            parts.append(f["text"])
        for element in block.get("elements", ()):
            if isinstance(element.get("text"), dict):
                parts.append(element["text"]["text"])
            elif isinstance(element.get("text"), str):
                parts.append(element["text"])
        if block["type"] == "input":
            parts.append(block["label"]["text"])
    return "\n".join(parts)


# ---- fixtures ----------------------------------------------------------------------------------------------


@pytest_asyncio.fixture
async def fake_slack():
    fake = FakeSlack()
    await fake.start()
    try:
        yield fake
    finally:
        await fake.close()
    for call in fake.calls:
        validate_call(call)


@pytest_asyncio.fixture
async def sqlite_store(tmp_path):
    from bot.store.sql import SqlStore

    store = SqlStore(f"sqlite+aiosqlite:///{tmp_path / 'slack.db'}")
    await store.initialize()
    try:
        yield store
    finally:
        await store.close()


def fast_retries():
    from adapters.slack.web_api import default_retry_handlers

    return default_retry_handlers(backoff_factor=0.01)


def slack_config(fake: FakeSlack | None, **fields: Any) -> SlackConfig:
    """Slack's config for a test, given outright: the fake's secrets and Web API, and `fields`."""
    values: dict[str, Any] = {"bot_token": BOT_TOKEN, "signing_secret": SIGNING_SECRET, **fields}
    if fake is not None:
        values.setdefault("api_url", fake.url)
    return SlackConfig(**values)


async def make_desk(store, settings: Settings | None = None) -> Desk:
    await store.replace_directory(read_directory_file(ROOT / "examples" / "directory.yaml"))
    return Desk(settings or Settings(), store, ManualClock(NOW))


async def start_env(store, fake: FakeSlack, config: SlackConfig | None = None, **options: Any):
    from adapters.slack import SLACK_KEY, mount
    from adapters.server.web import build_app

    desk = await make_desk(store)
    options.setdefault("retry_handlers", fast_retries())
    options["config"] = config or slack_config(fake)
    app = build_app(desk, channels=(lambda a: mount(a, desk, **options),))
    client = TestClient(TestServer(app, host="127.0.0.1"))
    await client.start_server()
    return SlackEnv(client, fake, desk, app[SLACK_KEY])


@pytest_asyncio.fixture
async def env(sqlite_store, fake_slack):
    slack = await start_env(sqlite_store, fake_slack)
    try:
        yield slack
    finally:
        await slack.client.close()


@pytest_asyncio.fixture
async def env_all(store, fake_slack):
    """The same, on every store back end (SQLite and PostgreSQL)."""
    slack = await start_env(store, fake_slack)
    try:
        yield slack
    finally:
        await slack.client.close()
