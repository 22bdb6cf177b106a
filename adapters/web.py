"""The one aiohttp application every channel is mounted in.

Routes: GET /healthz (the process is up), GET /readyz (the database answers). The Slack
adapter adds POST /slack/events and the Teams adapter POST /api/messages (see `build_app`).
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import signal
from typing import TYPE_CHECKING, Any, Callable

from aiohttp import web

from bot.desk import Desk
from bot.store.port import StoreUnavailableError

log = logging.getLogger("caredesk.web")

if TYPE_CHECKING:
    from adapters.delivery import Sender

DESK_KEY: web.AppKey[Desk] = web.AppKey("desk", Desk)
DISPATCHER_KEY: web.AppKey["asyncio.Task[Any]"] = web.AppKey("dispatcher")
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


def default_channels() -> tuple[ChannelMount, ...]:
    """Every channel the server offers; each answers 503 by itself when it is not configured."""
    from adapters.slack import mount as slack
    from adapters.teams import mount as teams

    return (slack, teams)


def default_senders() -> dict[str, "Sender"]:
    from adapters.delivery import teams_sender
    from adapters.slack import send_to_person as slack_sender

    return {"msteams": teams_sender, "slack": slack_sender}


def start_dispatcher(app: web.Application, desk: Desk) -> None:
    """Run the outbox dispatcher (and the escalation climb) inside the server."""
    from adapters.delivery import ChannelDelivery
    from bot.outbox import Dispatcher

    stop = asyncio.Event()

    async def on_startup(app: web.Application) -> None:
        dispatcher = Dispatcher(desk, ChannelDelivery(desk, default_senders()))
        app[DISPATCHER_KEY] = asyncio.create_task(dispatcher.run(stop), name="caredesk-outbox")

    async def on_cleanup(app: web.Application) -> None:
        stop.set()
        task = app.get(DISPATCHER_KEY)
        if task is not None:
            await asyncio.wait_for(task, timeout=10)

    app.on_startup.append(on_startup)
    app.on_cleanup.append(on_cleanup)


async def serve(desk: Desk, host: str, port: int, *, dispatcher: bool = True) -> None:
    check_insecure_mode(host, desk.settings.server.insecure_dev_mode)
    app = build_app(desk, default_channels())
    if dispatcher:
        start_dispatcher(app, desk)
    runner = web.AppRunner(app, access_log=log)
    await runner.setup()
    site = web.TCPSite(runner, host, port)
    await site.start()
    log.info("CareDesk listening on http://%s:%s", host, port)
    socket_mode = None
    if desk.settings.secrets.slack_app_token:
        from adapters.slack import start_socket_mode

        # Socket Mode: Slack connects out from here, no public URL needed.
        socket_mode = await start_socket_mode(desk)
        log.info("Slack Socket Mode connected")
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        # A process manager stops the server with SIGTERM: finish the work in hand, then exit.
        loop.add_signal_handler(sig, stop.set)
    try:
        await stop.wait()
        log.info("CareDesk stopping")
    finally:
        if socket_mode is not None:
            await socket_mode.close()
        await runner.cleanup()
