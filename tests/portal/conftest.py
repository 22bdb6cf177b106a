"""Fixtures of the portal tests: CareDesk's server with the portal channel mounted (a real
listening socket on 127.0.0.1, so a browser can reach it), portal tokens signed as a portal
would sign them, and Chromium driven by Playwright.

Chromium is Debian's (`/usr/bin/chromium`, installed by .ci/run under CI=true): without it the
browser tests are skipped with the reason, and under CI=true they fail instead."""

from __future__ import annotations

import json
import os
import shutil
import time
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import jsonschema
import jwt
import pytest
import pytest_asyncio
import regex
from aiohttp import ClientSession, web

from adapters.portal import Portal, PortalChannel, PortalConfig, mount
from adapters.server.limits import ConnectionLimits, start_server
from adapters.server.web import build_app
from bot.app.desk import Desk
from bot.domain.clock import ManualClock
from bot.domain.config import Settings
from bot.domain.directory import read_directory_file

ROOT = Path(__file__).resolve().parents[2]
PLATFORM = ROOT / ".." / "shared" / "reference" / "platform"
BXL = ZoneInfo("Europe/Brussels")
SECRET = "portal-test-secret-0123456789-abcdefghij"
CHROMIUM = os.environ.get("CAREDESK_CHROMIUM", "/usr/bin/chromium")
CARD_TYPE = "application/vnd.microsoft.card.adaptive"
LOTTE = "lotte.peeters@brasseriedeklok.be"
EMMA = "emma.wilson@atelier-lumiere.be"


def portal_token(sub: str = EMMA, *, name: str = "Emma Wilson", secret: str = SECRET, aud: str = "caredesk",
                 lifetime: int = 600, issued: float | None = None, lang: str | None = None,
                 **extra: Any) -> str:
    """A token as the customer portal makes it (HS256, PORTAL_SIGNING_SECRET)."""
    now = int(time.time() if issued is None else issued)
    claims: dict[str, Any] = {"sub": sub, "name": name, "aud": aud, "iat": now, "exp": now + lifetime, **extra}
    if lang:
        claims["lang"] = lang
    return jwt.encode(claims, secret, algorithm="HS256")


# ---- the Adaptive Card 1.5 schema (patterns with the `regex` module, as in the Teams tests) ------------


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


_validator: Any = None


def card_errors(card: Mapping[str, Any]) -> list[str]:
    global _validator
    if _validator is None:
        path = PLATFORM / "adaptive-cards" / "adaptive-card.1.5.0.json"
        if not path.exists():
            pytest.skip(f"platform reference material missing: {path} (shared/ must sit beside the repo)")
        schema = json.loads(path.read_text(encoding="utf-8"))
        base = jsonschema.validators.validator_for(schema)
        cls = jsonschema.validators.extend(base, {"pattern": _pattern, "patternProperties": _pattern_properties})
        _validator = cls(schema, format_checker=base.FORMAT_CHECKER)
    return [f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in _validator.iter_errors(card)]


# ---- the server ----------------------------------------------------------------------------------------


@dataclass
class PortalServer:
    base: str
    desk: Desk
    portal: Portal
    http: ClientSession

    def url(self, path: str) -> str:
        return self.base + path

    async def start(self, token: str | None = None) -> dict[str, Any]:
        """POST /conversations as Web Chat does, with the page's Direct Line token (or `token`)."""
        if token is None:
            token = await self.page_token(portal_token())
        async with self.http.post(self.url("/portal/v3/directline/conversations"),
                                  headers={"Authorization": f"Bearer {token}"}, json={}) as response:
            assert response.status == 201, await response.text()
            return await response.json()

    async def page_token(self, token: str) -> str:
        """The Direct Line token the page carries (read from the page the portal token opens)."""
        async with self.http.get(self.url("/portal/chat"), params={"token": token}) as response:
            assert response.status == 200, await response.text()
            page = await response.text()
        found = regex.search(r'data-token="([^"]+)"', page)
        assert found
        return found.group(1)

    async def post(self, conversation: str, token: str, activity: Mapping[str, Any]) -> tuple[int, Any]:
        async with self.http.post(self.url(f"/portal/v3/directline/conversations/{conversation}/activities"),
                                  headers={"Authorization": f"Bearer {token}"}, json=dict(activity)) as response:
            return response.status, await response.json(content_type=None) if response.status != 500 else None

    async def transcript(self, conversation: str, token: str, watermark: int = 0) -> dict[str, Any]:
        async with self.http.get(self.url(f"/portal/v3/directline/conversations/{conversation}/activities"),
                                 params={"watermark": str(watermark)},
                                 headers={"Authorization": f"Bearer {token}"}) as response:
            assert response.status == 200, await response.text()
            return await response.json()


async def make_desk(store: Any, settings: Settings | None = None) -> Desk:
    await store.replace_directory(read_directory_file(ROOT / "examples" / "directory.yaml"))
    return Desk(settings or Settings(), store, ManualClock(datetime(2026, 11, 26, 10, 0, tzinfo=BXL)))


@pytest_asyncio.fixture
async def serve_portal() -> AsyncIterator[Any]:
    """`await serve_portal(store, env=…)`: the server with the portal channel, on a free port."""
    started: list[tuple[web.AppRunner, ClientSession]] = []

    async def serve(store: Any, *, env: Mapping[str, str] | None = None, settings: Settings | None = None
                    ) -> PortalServer:
        desk = await make_desk(store, settings)
        config = PortalConfig.from_settings(desk.settings, {"PORTAL_SIGNING_SECRET": SECRET} if env is None else env)
        portal = Portal(PortalChannel(desk), config)
        app = build_app(desk, (lambda app: mount(app, portal),), ConnectionLimits())
        runner, site = await start_server(app, "127.0.0.1", 0, ConnectionLimits())
        http = ClientSession()
        started.append((runner, http))
        return PortalServer(f"http://127.0.0.1:{site.port}", desk, portal, http)

    yield serve
    for runner, http in started:
        await http.close()
        await runner.cleanup()


@pytest.fixture
async def sqlite_store(tmp_path):
    from bot.store.sql import SqlStore

    s = SqlStore(f"sqlite+aiosqlite:///{tmp_path / 'caredesk.db'}")
    await s.initialize()
    yield s
    await s.close()


# ---- the browser -----------------------------------------------------------------------------------------


def chromium_or_skip() -> str:
    found = CHROMIUM if os.access(CHROMIUM, os.X_OK) else shutil.which("chromium")
    if found:
        return found
    reason = (f"Debian's Chromium is not installed ({CHROMIUM}): `apt-get install chromium` "
              "(.ci/run installs it under CI=true)")
    if os.environ.get("CI") == "true":
        pytest.fail(reason + " — under CI=true the browser tests must run")
    pytest.skip(reason)


@pytest_asyncio.fixture
async def browser() -> AsyncIterator[Any]:
    executable = chromium_or_skip()
    try:
        from playwright.async_api import async_playwright
    except ImportError:
        if os.environ.get("CI") == "true":
            pytest.fail("playwright is not installed (pip install -e '.[test]')")
        pytest.skip("playwright is not installed (pip install -e '.[test]')")
    async with async_playwright() as playwright:
        launched = await playwright.chromium.launch(executable_path=executable, headless=True,
                                                    args=["--no-sandbox", "--disable-gpu"])
        try:
            yield launched
        finally:
            await launched.close()
