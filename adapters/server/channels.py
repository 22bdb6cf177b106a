"""The composition root's channels: each process (`caredesk serve`, `caredesk worker`) builds its
Slack and Teams channels once, here, and hands them to what needs them: the HTTP routes, Socket
Mode, the inbox worker and the outbox's senders. Nothing is looked up by `Desk` in a module-level
registry, so two desks in one process (the tests) never share a channel by accident."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from adapters.server.config import ServerConfig
from adapters.portal import Portal, PortalChannel, PortalConfig
from adapters.portal import mount as mount_portal
from adapters.server.delivery import Replier, Sender
from adapters.slack import SlackChannel, SlackConfig
from adapters.slack import mount as mount_slack
from adapters.teams import TeamsApp, TeamsConfig, configure
from adapters.teams import mount as mount_teams
from bot.app.desk import Desk
from bot.app.inbox import Handler


@dataclass(frozen=True)
class Channels:
    slack: SlackChannel
    teams: TeamsApp
    portal: Portal

    @classmethod
    def of(cls, desk: Desk, env: Mapping[str, str], server: ServerConfig, *,
           slack_options: Mapping[str, Any] | None = None, teams: TeamsApp | None = None) -> Channels:
        """Every channel of `desk`, configured from its settings' tables and `env` (the process's
        environment: the secrets), with what they need of the `server`'s settings; each answers
        503 by itself when it is not configured."""
        slack_config = SlackConfig.load(desk.settings, env, insecure_dev_mode=server.developer_mode,
                                        worker_processes=server.workers)
        slack = SlackChannel(desk, config=slack_config, **dict(slack_options or {}))
        if teams is None:
            teams_config = TeamsConfig.from_settings(desk.settings, env, insecure_dev_mode=server.developer_mode)
            teams = configure(desk, config=teams_config)
        portal = Portal(PortalChannel(desk), PortalConfig.from_settings(desk.settings, env))
        return cls(slack, teams, portal)

    def mount(self, app: web.Application) -> None:
        """Add every channel's route to the server."""
        mount_slack(app, self.slack.desk, self.slack)
        mount_teams(app, self.teams)
        mount_portal(app, self.portal)

    def senders(self) -> dict[str, Sender]:
        """The outbox's way to each channel (the channel the customer used first, then the others)."""
        senders: dict[str, Sender] = {"msteams": self.teams.send_to_person, "slack": self.slack.send_to_person}
        if self.portal.config.enabled:
            senders["portal"] = self.portal.channel.send_to_person
        return senders

    def repliers(self) -> dict[str, Replier]:
        """The outbox's way to post a turn's durable reply, per channel (Slack's: Teams answers
        within its request; the portal's, that its process did not get to show)."""
        repliers: dict[str, Replier] = {"slack": self.slack.post_reply}
        if self.portal.config.enabled:
            repliers["portal"] = self.portal.channel.post_reply
        return repliers

    def inbox_handlers(self) -> dict[str, Handler]:
        """What a worker does with the items each channel wrote to the inbox (Teams answers within
        its request and writes none)."""
        return {"slack": self.slack.work} if self.slack.app is not None else {}

    def inbox_unreadable(self) -> dict[str, Handler]:
        """How each channel tells a person that what they sent could not be read (an inbox item
        given up at once)."""
        return {"slack": self.slack.tell_unreadable} if self.slack.app is not None else {}
