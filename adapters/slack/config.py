"""Slack's settings and secrets, read from the core's `Settings` (one place that knows which of
them Slack needs)."""

from __future__ import annotations

from dataclasses import dataclass

from bot.domain.config import Settings

DEFAULT_API_URL = "https://slack.com/api/"


@dataclass(frozen=True)
class SlackConfig:
    bot_token: str | None
    signing_secret: str | None
    app_token: str | None
    api_url: str
    default_language: str
    # Unsigned requests are accepted only in the developer mode (loopback only), and only when
    # no secret is configured at all: a configured secret is always checked.
    insecure_dev_mode: bool
    # Worker processes beside the server do the inbox's work: the server itself then does none.
    worker_processes: int

    @classmethod
    def from_settings(cls, settings: Settings) -> "SlackConfig":
        secrets = settings.secrets
        base = settings.slack_api_url or DEFAULT_API_URL
        return cls(
            bot_token=secrets.slack_bot_token,
            signing_secret=secrets.slack_signing_secret,
            app_token=secrets.slack_app_token,
            api_url=base if base.endswith("/") else base + "/",
            default_language=settings.default_language,
            insecure_dev_mode=settings.server.insecure_dev_mode,
            worker_processes=settings.server.workers,
        )

    @property
    def http_problem(self) -> str | None:
        """Why `POST /slack/events` cannot serve (None when it can)."""
        if not self.bot_token:
            return "SLACK_BOT_TOKEN is not set"
        if not self.signing_secret and not self.insecure_dev_mode:
            return "SLACK_SIGNING_SECRET is not set"
        return None
