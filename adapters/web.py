"""The one aiohttp application every channel is mounted in.

Routes: GET /healthz (the process is up), GET /readyz (the database answers). The Slack
adapter adds POST /slack/events and the Teams adapter POST /api/messages (see `build_app`).
"""

from __future__ import annotations

import ipaddress
import logging
from typing import Awaitable, Callable

from aiohttp import web

from bot.desk import Desk
from bot.store.port import StoreUnavailableError

log = logging.getLogger("caredesk.web")

DESK_KEY: web.AppKey[Desk] = web.AppKey("desk", Desk)
# A mounted channel registers its routes on the app; the Slack and Teams adapters provide one each.
ChannelMount = Callable[[web.Application, Desk], None]
MAX_BODY_BYTES = 1024 * 1024


async def healthz(request: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})


async def readyz(request: web.Request) -> web.Response:
    desk = request.app[DESK_KEY]
    try:
        await desk.store.ping()
    except StoreUnavailableError:
        log.warning("readiness check failed: database unavailable")
        return web.json_response({"status": "unavailable", "database": "unreachable"}, status=503)
    return web.json_response({"status": "ok", "database": "ok"})


def build_app(desk: Desk, channels: tuple[ChannelMount, ...] = ()) -> web.Application:
    app = web.Application(client_max_size=MAX_BODY_BYTES)
    app[DESK_KEY] = desk
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    for mount in channels:
        mount(app, desk)
    return app


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_insecure_mode(host: str, insecure: bool) -> None:
    """Verification may be off only when a developer asked for it and nobody else can connect."""
    if insecure and not is_loopback(host):
        raise SystemExit(
            f"refusing to start: insecure developer mode (no request verification) is only allowed "
            f"on a loopback address, not on {host}"
        )


async def serve(desk: Desk, host: str, port: int, on_started: Callable[[], Awaitable[None]] | None = None) -> None:
    check_insecure_mode(host, desk.settings.server.insecure_dev_mode)
    app = build_app(desk)
    runner = web.AppRunner(app, access_log=log)
    await runner.setup()
    site = web.TCPSite(runner, host, port)
    await site.start()
    log.info("CareDesk listening on http://%s:%s", host, port)
    if on_started:
        await on_started()
    try:
        import asyncio

        await asyncio.Event().wait()
    finally:
        await runner.cleanup()
