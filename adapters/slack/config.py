"""Slack's settings and secrets: the file's `[slack]` table (carried unread by the core's
`Settings`) and the SLACK_* environment variables, parsed and checked here, by the channel that
uses them.

| setting | environment | file | default |
|---|---|---|---|
| bot token | `SLACK_BOT_TOKEN` | never | none: `POST /slack/events` answers 503 |
| signing secret | `SLACK_SIGNING_SECRET` | never | none: 503 (unless the developer mode) |
| app token (Socket Mode) | `SLACK_APP_TOKEN` | never | none: no Socket Mode |
| Web API base URL | `SLACK_API_URL` | `[slack] api_url` | https://slack.com/api/ |

The environment wins over the file.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from bot.domain.config import SECRETS_MESSAGE, ConfigError, Settings, reject_unknown_keys

DEFAULT_API_URL = "https://slack.com/api/"
FILE_KEYS = ("api_url",)
# Keys someone might write in `[slack]` for a secret: refused with the variable to use instead.
SECRET_FILE_KEYS = {
    "bot_token": "SLACK_BOT_TOKEN",
    "signing_secret": "SLACK_SIGNING_SECRET",
    "app_token": "SLACK_APP_TOKEN",
    "slack_bot_token": "SLACK_BOT_TOKEN",
    "slack_signing_secret": "SLACK_SIGNING_SECRET",
    "slack_app_token": "SLACK_APP_TOKEN",
}


@dataclass(frozen=True)
class SlackConfig:
    # Secrets: repr hides them, so a logged config never shows one.
    bot_token: str | None = field(default=None, repr=False)
    signing_secret: str | None = field(default=None, repr=False)
    app_token: str | None = field(default=None, repr=False)
    api_url: str = DEFAULT_API_URL
    default_language: str = "en"
    # Unsigned requests are accepted only in the developer mode (loopback only), and only when
    # no secret is configured at all: a configured secret is always checked.
    insecure_dev_mode: bool = False
    # Worker processes beside the server do the inbox's work: the server itself then does none.
    worker_processes: int = 0

    def __post_init__(self) -> None:
        # slack_sdk joins method names to the base URL: without the slash "…/apichat.postMessage".
        if not self.api_url.endswith("/"):
            object.__setattr__(self, "api_url", self.api_url + "/")

    @classmethod
    def load(cls, settings: Settings, env: Mapping[str, str] | None = None, *,
             insecure_dev_mode: bool = False, worker_processes: int = 0) -> SlackConfig:
        """Slack's config from the file's `[slack]` table and the environment (which wins);
        `ConfigError` names the key or variable that is wrong. The server's part (the developer
        mode, its worker processes) is the composition root's to give."""
        env = os.environ if env is None else env
        table = settings.adapter_table("slack")
        for key in table:
            if key.lower() in SECRET_FILE_KEYS:
                raise ConfigError(f"slack.{key}", f"{SECRETS_MESSAGE}: set {SECRET_FILE_KEYS[key.lower()]}")
        reject_unknown_keys("slack.", table, FILE_KEYS)
        api_url = _text("slack.api_url", table["api_url"]) if "api_url" in table else DEFAULT_API_URL
        if env.get("SLACK_API_URL"):
            api_url = env["SLACK_API_URL"]
        return cls(
            bot_token=env.get("SLACK_BOT_TOKEN") or None,
            signing_secret=env.get("SLACK_SIGNING_SECRET") or None,
            app_token=env.get("SLACK_APP_TOKEN") or None,
            api_url=api_url,
            default_language=settings.default_language,
            insecure_dev_mode=insecure_dev_mode,
            worker_processes=worker_processes,
        )

    @property
    def http_problem(self) -> str | None:
        """Why `POST /slack/events` cannot serve (None when it can)."""
        if not self.bot_token:
            return "SLACK_BOT_TOKEN is not set"
        if not self.signing_secret and not self.insecure_dev_mode:
            return "SLACK_SIGNING_SECRET is not set"
        return None


def _text(key: str, value: Any) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ConfigError(key, f"expected a non-empty text, got {value!r}")
    return value
