"""The platforms, faked on 127.0.0.1 inside the benchmark process (modelled on the fakes of
tests/slack/conftest.py and tests/teams/conftest.py, but counting instead of recording every
call, so that 10,000 conversations stay cheap):

* Slack's Web API (`/api/<method>`: auth.test, users.info, conversations.open, chat.postMessage,
  chat.postEphemeral, chat.update, views.open/update/publish, users.lookupByEmail) and the
  slash commands' response_url (`/response/<user>/<n>`);
* the Bot Framework: OpenID metadata and JWKS whose key signs the benchmark's Teams tokens, the
  token endpoint for the bot's outbound token, and the connector (`/connector/v3/...`).

Load generators wait on `Counters` for the bot's answers (a reply in a DM, a modal update).
"""

from __future__ import annotations

import asyncio
import itertools
import json
import time
from collections import defaultdict
from typing import Any

import jwt
from aiohttp import web
from cryptography.hazmat.primitives.asymmetric import rsa

from bench.common import APP_ID, APP_PASSWORD, BOT_USER, ISSUER, KID, LOOPBACK, TEAM


class Counters:
    """Per-key counters that can be awaited until they reach a target."""

    def __init__(self) -> None:
        self.counts: dict[str, int] = defaultdict(int)
        self.waiters: dict[str, list[tuple[int, asyncio.Future[None]]]] = defaultdict(list)
        self.total = 0

    def bump(self, key: str) -> None:
        self.counts[key] += 1
        self.total += 1
        waiting = self.waiters.get(key)
        if waiting:
            still = []
            for target, future in waiting:
                if self.counts[key] >= target:
                    if not future.done():
                        future.set_result(None)
                else:
                    still.append((target, future))
            self.waiters[key] = still

    async def wait(self, key: str, target: int, timeout: float) -> bool:
        if self.counts[key] >= target:
            return True
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.waiters[key].append((target, future))
        try:
            await asyncio.wait_for(future, timeout)
            return True
        except asyncio.TimeoutError:
            return False


def user_email(user: str) -> str:
    return f"{user.lower().replace(':', '-')}@bench.example"


class FakePlatforms:
    def __init__(self) -> None:
        self.methods: dict[str, int] = defaultdict(int)
        self.posts = Counters()  # chat.postMessage by channel
        self.responses = Counters()  # response_url posts by user
        self.view_updates = Counters()  # views.update by user
        self.forms: dict[str, dict[str, Any]] = {}  # the last form view opened for a user
        self.teams_posts = Counters()  # connector POST by conversation id
        self.teams_puts = 0
        self.token_requests = 0
        self._views = itertools.count(1)
        self._activities = itertools.count(1)
        self.runner: web.AppRunner | None = None
        self.port = 0
        self.private_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        jwk = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(self.private_key.public_key()))
        self.jwks = [{**jwk, "kid": KID, "use": "sig", "alg": "RS256", "endorsements": ["msteams"]}]

    @property
    def base_url(self) -> str:
        return f"http://{LOOPBACK}:{self.port}"

    @property
    def slack_api_url(self) -> str:
        return self.base_url + "/api/"

    @property
    def service_url(self) -> str:
        return self.base_url + "/connector/"

    def response_url(self, user: str, n: int) -> str:
        return f"{self.base_url}/response/{user}/{n}"

    def teams_token(self) -> str:
        now = int(time.time())
        claims = {"iss": ISSUER, "aud": APP_ID, "serviceurl": self.service_url, "nbf": now - 10,
                  "exp": now + 3600, "iat": now - 10}
        return jwt.encode(claims, self.private_key, algorithm="RS256", headers={"kid": KID})

    async def start(self) -> None:
        app = web.Application(client_max_size=4 * 1024 * 1024)
        app.router.add_route("*", "/api/{method}", self._api)
        app.router.add_post("/response/{user}/{n}", self._response_url)
        app.router.add_get("/openid", self._openid)
        app.router.add_get("/keys", self._keys)
        app.router.add_post("/token", self._token)
        app.router.add_post("/connector/v3/conversations/{cid}/activities", self._post_activity)
        app.router.add_post("/connector/v3/conversations/{cid}/activities/{aid}", self._post_activity)
        app.router.add_put("/connector/v3/conversations/{cid}/activities/{aid}", self._put_activity)
        app.router.add_get("/connector/v3/conversations/{cid}/members/{mid}", self._member)
        self.runner = web.AppRunner(app, access_log=None)
        await self.runner.setup()
        site = web.TCPSite(self.runner, LOOPBACK, 0, backlog=2048)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]

    async def close(self) -> None:
        if self.runner is not None:
            await self.runner.cleanup()

    def summary(self) -> dict[str, Any]:
        return {"slack_methods": dict(self.methods), "response_url_posts": self.responses.total,
                "teams_posts": self.teams_posts.total, "teams_puts": self.teams_puts,
                "token_requests": self.token_requests}

    # ---- Slack ---------------------------------------------------------------------------------
    @staticmethod
    async def _params(request: web.Request) -> dict[str, Any]:
        params: dict[str, Any] = dict(request.query)
        if request.can_read_body:
            if request.content_type == "application/json":
                params.update(await request.json())
            else:
                params.update(dict(await request.post()))
        return params

    async def _api(self, request: web.Request) -> web.Response:
        method = request.match_info["method"]
        params = await self._params(request)
        self.methods[method] += 1
        if method == "auth.test":
            return web.json_response({"ok": True, "url": "https://bench.slack.com/", "team": "Bench",
                                      "user": "caredesk", "team_id": TEAM, "user_id": BOT_USER, "bot_id": "BBENCH",
                                      "is_enterprise_install": False})
        if method == "users.info":
            user = str(params.get("user"))
            return web.json_response({"ok": True, "user": {
                "id": user, "team_id": TEAM, "name": user.lower(), "real_name": f"Bench {user}", "locale": "en-US",
                "is_bot": False, "tz": "Europe/Brussels",
                "profile": {"real_name": f"Bench {user}", "display_name": user, "email": user_email(user),
                            "phone": "+32 3 555 00 00"}}})
        if method == "conversations.open":
            return web.json_response({"ok": True, "channel": {"id": f"D{params.get('users')}"}})
        if method in ("chat.postMessage", "chat.postEphemeral", "chat.update"):
            channel = str(params.get("channel"))
            ts = f"{time.time():.6f}"
            if method == "chat.postMessage":
                self.posts.bump(channel)
            return web.json_response({"ok": True, "channel": channel, "ts": ts, "message_ts": ts,
                                      "message": {"text": params.get("text"), "ts": ts}})
        if method in ("views.open", "views.update", "views.publish", "views.push"):
            view = params.get("view")
            view = json.loads(view) if isinstance(view, str) else (view or {})
            if method == "views.open":
                # trigger ids are "<user>.<n>.bench": the view id names its user
                user = str(params.get("trigger_id", "")).split(".")[0]
                view_id = f"V{user}.{next(self._views)}"
            else:
                view_id = str(params.get("view_id") or f"V{next(self._views)}")
            if method == "views.update":
                user = view_id[1:].split(".")[0]
                if str(view.get("callback_id", "")).startswith("form:"):
                    self.forms[user] = {**view, "id": view_id, "hash": f"h-{view_id}"}
                self.view_updates.bump(user)
            return web.json_response({"ok": True, "view": {**view, "id": view_id, "hash": f"h-{view_id}",
                                                           "team_id": TEAM}})
        if method == "users.lookupByEmail":
            return web.json_response({"ok": False, "error": "users_not_found"})
        return web.json_response({"ok": False, "error": "unknown_method"})

    async def _response_url(self, request: web.Request) -> web.Response:
        await request.read()
        self.responses.bump(request.match_info["user"])
        return web.Response(text="ok")

    # ---- Bot Framework ---------------------------------------------------------------------------
    async def _openid(self, request: web.Request) -> web.Response:
        return web.json_response({"issuer": ISSUER, "jwks_uri": self.base_url + "/keys",
                                  "id_token_signing_alg_values_supported": ["RS256"]})

    async def _keys(self, request: web.Request) -> web.Response:
        return web.json_response({"keys": self.jwks})

    async def _token(self, request: web.Request) -> web.Response:
        form = dict(await request.post())
        self.token_requests += 1
        if form.get("client_id") != APP_ID or form.get("client_secret") != APP_PASSWORD:
            return web.json_response({"error": "invalid_client"}, status=401)
        return web.json_response({"token_type": "Bearer", "expires_in": 3600, "access_token": "bench-outbound"})

    async def _post_activity(self, request: web.Request) -> web.Response:
        await request.read()
        self.teams_posts.bump(request.match_info["cid"])
        return web.json_response({"id": f"bot-msg-{next(self._activities)}"})

    async def _put_activity(self, request: web.Request) -> web.Response:
        await request.read()
        self.teams_puts += 1
        return web.json_response({"id": request.match_info["aid"]})

    async def _member(self, request: web.Request) -> web.Response:
        member = request.match_info["mid"]
        return web.json_response({"id": member, "name": f"Bench {member}", "aadObjectId": f"aad-{member}",
                                  "email": user_email(member), "userPrincipalName": user_email(member)})
