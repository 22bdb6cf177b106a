"""The Slack channel (slack-bolt `AsyncApp`), mounted in CareDesk's aiohttp server.

Entry points:
* `SlackChannel(desk, config=SlackConfig.load(settings, env))`: the one Slack channel of a
  process; the server builds it and passes it to the route, Socket Mode, the inbox worker and
  the outbox (`channel.send_to_person`).
* `mount(app, desk, channel=...)` adds `POST /slack/events` (events, slash commands,
  interactivity), and in multi-workspace mode (OAuth v2) `GET /slack/install` and
  `GET /slack/oauth_redirect`; the channel object is `app[SLACK_KEY]` (its `pending` tasks, `drain()`), and
  its background work is finished or cancelled when the app shuts down.
* `render_manifest(url)` returns `manifest/slack/manifest.yaml` with the request URLs on `url`.
* `start_socket_mode(channel)` connects over Socket Mode (`SLACK_APP_TOKEN`): no public URL
  needed; `await handle.close()` disconnects.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from aiohttp import web
from slack_bolt.adapter.aiohttp import to_aiohttp_response
from slack_bolt.request.async_request import AsyncBoltRequest

from bot.app.desk import Desk

from adapters.shared.pressure import PRESSURE_KEY
from adapters.slack.channel import SlackChannel
from adapters.slack.config import SlackConfig
from adapters.slack.http import EVENTS_PATH
from adapters.slack.manifest import render_manifest
from adapters.slack.oauth import INSTALL_PATH, REDIRECT_PATH

SLACK_KEY: web.AppKey[SlackChannel] = web.AppKey("slack", SlackChannel)

__all__ = ["EVENTS_PATH", "SLACK_KEY", "SlackChannel", "SlackConfig", "SocketModeHandle", "mount", "render_manifest",
           "start_socket_mode"]


def mount(app: web.Application, desk: Desk, channel: SlackChannel | None = None, **options: Any) -> None:
    """Add `POST /slack/events` for `channel` (one is built for `desk` when none is given, with
    `options`: `config`, tests' `signature_clock`, `retry_handlers`). Without Slack settings the route
    answers 503 and the rest of the server runs on.

    The requests written to the inbox are worked on in this process too, unless worker processes
    do it (`[server] workers` > 0)."""
    slack = channel if channel is not None else SlackChannel(desk, **options)
    app[SLACK_KEY] = slack
    pressure = app.get(PRESSURE_KEY)
    # Slack's requests are acknowledged now and worked on later: under a flood the work (this
    # process's worker, and the worker processes) makes room for the acks. Counted once verified
    # only (`SlackRoute.pressure`): strangers never slow the work down.
    route = replace(slack.route, pressure=pressure)

    async def events(request: web.Request) -> web.StreamResponse:  # aiohttp wants a coroutine function
        return await route(request)

    app.router.add_post(EVENTS_PATH, events)
    if slack.oauth_flow is not None:
        flow = slack.oauth_flow

        async def install(request: web.Request) -> web.StreamResponse:
            return await to_aiohttp_response(await flow.handle_installation(_bolt_get(request)))

        async def oauth_redirect(request: web.Request) -> web.StreamResponse:
            return await to_aiohttp_response(await flow.handle_callback(_bolt_get(request)))

        app.router.add_get(INSTALL_PATH, install)
        app.router.add_get(REDIRECT_PATH, oauth_redirect)
    if pressure is not None:
        slack.inbox_worker.yield_to(pressure)

    async def start_worker(_: web.Application) -> None:
        slack.open_session()
        slack.start_worker()

    async def finish_background_work(_: web.Application) -> None:
        await slack.close()

    app.on_startup.append(start_worker)
    app.on_cleanup.append(finish_background_work)


def _bolt_get(request: web.Request) -> AsyncBoltRequest:
    """A browser's GET (the install page, Slack's redirect back) as Bolt's OAuth flow reads it."""
    return AsyncBoltRequest(body="", query=request.query_string, headers={k: v for k, v in request.headers.items()})


class SocketModeHandle:
    """A live Socket Mode connection; `await close()` ends it and the work it started."""

    def __init__(self, channel: SlackChannel, handler: Any) -> None:
        self.channel = channel
        self.handler = handler

    async def close(self) -> None:
        await self.handler.close_async()
        await self.channel.close()


async def start_socket_mode(channel: SlackChannel) -> SocketModeHandle:
    """Connect `channel`'s Bolt app to Slack over Socket Mode (needs SLACK_BOT_TOKEN and
    SLACK_APP_TOKEN): the same listeners, the same inbox."""
    from slack_bolt.adapter.socket_mode.async_handler import AsyncSocketModeHandler

    if channel.app is None or not channel.config.app_token:
        raise RuntimeError("Socket Mode needs SLACK_BOT_TOKEN and SLACK_APP_TOKEN")
    handler = AsyncSocketModeHandler(channel.app, channel.config.app_token)
    await handler.connect_async()
    channel.open_session()
    channel.start_worker()
    return SocketModeHandle(channel, handler)
