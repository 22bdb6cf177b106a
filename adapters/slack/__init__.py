"""The Slack channel (slack-bolt `AsyncApp`), mounted in CareDesk's aiohttp server.

Entry points:
* `mount(app, desk)` adds `POST /slack/events` (events, slash commands, interactivity, options);
  the channel object is `app[SLACK_KEY]` (its `pending` tasks, `drain()`), and its background
  work is finished or cancelled when the app shuts down.
* `render_manifest(url)` returns `manifest/slack/manifest.yaml` with the request URLs on `url`.
* `start_socket_mode(desk)` connects over Socket Mode (`SLACK_APP_TOKEN`): no public URL needed;
  `await handle.close()` disconnects.
"""

from __future__ import annotations

import weakref
from typing import Any

from aiohttp import web

from bot.app.desk import Desk

from adapters.slack.channel import EVENTS_PATH, SlackChannel
from adapters.slack.manifest import render_manifest
from adapters.server.pressure import counted
from adapters.server.web import PRESSURE_KEY

SLACK_KEY: web.AppKey[SlackChannel] = web.AppKey("slack", SlackChannel)

__all__ = ["EVENTS_PATH", "SLACK_KEY", "SlackChannel", "SocketModeHandle", "mount", "render_manifest",
           "send_to_person", "slack_channel_for", "start_socket_mode"]


_CHANNELS: "weakref.WeakKeyDictionary[Desk, SlackChannel]" = weakref.WeakKeyDictionary()


def slack_channel_for(desk: Desk, **options: Any) -> SlackChannel:
    """The one Slack channel of a desk (the server's route, Socket Mode and the outbox share it:
    one profile cache, one Web API client). `options` only count when it is created."""
    channel = _CHANNELS.get(desk)
    if channel is None:
        channel = _CHANNELS[desk] = SlackChannel(desk, **options)
    return channel


def mount(app: web.Application, desk: Desk, **options: Any) -> None:
    """Add `POST /slack/events`. Without Slack settings the route answers 503 and the rest of the
    server runs on. `options` go to `SlackChannel` (tests: `signature_clock`, `retry_handlers`).

    The requests written to the inbox are worked on in this process too, unless worker processes
    do it (`[server] workers` > 0)."""
    channel = slack_channel_for(desk, **options)
    app[SLACK_KEY] = channel
    pressure = app.get(PRESSURE_KEY)
    if pressure is None:
        app.router.add_post(EVENTS_PATH, channel.handle_http)
    else:
        # Slack's requests are acknowledged now and worked on later: under a flood the work
        # (this process's worker, and the worker processes) makes room for the acks.
        app.router.add_post(EVENTS_PATH, counted(pressure, channel.handle_http))
        channel.inbox_worker.yield_to(pressure)

    async def start_worker(_: web.Application) -> None:
        channel.start_worker()

    async def finish_background_work(_: web.Application) -> None:
        await channel.close()

    app.on_startup.append(start_worker)
    app.on_cleanup.append(finish_background_work)


class SocketModeHandle:
    """A live Socket Mode connection; `await close()` ends it and the work it started."""

    def __init__(self, channel: SlackChannel, handler: Any) -> None:
        self.channel = channel
        self.handler = handler

    async def close(self) -> None:
        await self.handler.close_async()
        await self.channel.close()


async def start_socket_mode(desk: Desk, **options: Any) -> SocketModeHandle:
    """Connect to Slack over Socket Mode (needs SLACK_BOT_TOKEN and SLACK_APP_TOKEN)."""
    from slack_bolt.adapter.socket_mode.async_handler import AsyncSocketModeHandler

    channel = slack_channel_for(desk, **options)
    if channel.app is None or not channel.app_token:
        raise RuntimeError("Socket Mode needs SLACK_BOT_TOKEN and SLACK_APP_TOKEN")
    handler = AsyncSocketModeHandler(channel.app, channel.app_token)
    await handler.connect_async()
    channel.start_worker()
    return SocketModeHandle(channel, handler)


async def send_to_person(desk: Desk, email: str, response: Any) -> bool:
    """Reach a person by e-mail in their Slack DM (for the outbox). True once sent; False when
    Slack is not configured or knows no such person; `DeliveryFailed` when Slack fails for now."""
    channel = slack_channel_for(desk)
    return await channel.send_to_email(email, response)
