"""Slack's settings and secrets: the file's `[slack]` table (carried unread by the core's
`Settings`) and the SLACK_* environment variables, parsed and checked here, by the channel that
uses them.

| setting | environment | file | default |
|---|---|---|---|
| bot token | `SLACK_BOT_TOKEN` | never | none: `POST /slack/events` answers 503 |
| signing secret | `SLACK_SIGNING_SECRET` | never | none: 503 (unless the developer mode) |
| app token (Socket Mode) | `SLACK_APP_TOKEN` | never | none: no Socket Mode |
| Web API base URL | `SLACK_API_URL` | `[slack] api_url` | https://slack.com/api/ |
| OAuth client id (multi-workspace) | `SLACK_CLIENT_ID` | `[slack] client_id` | none: one workspace (`SLACK_BOT_TOKEN`) |
| OAuth client secret | `SLACK_CLIENT_SECRET` | never | none |
| OAuth authorize URL | `SLACK_AUTHORIZE_URL` | `[slack] authorize_url` | https://slack.com/oauth/v2/authorize |
| public URL (OAuth redirect) | `CAREDESK_PUBLIC_URL` | `[slack] public_url` | none: the app's redirect URL |

With `SLACK_CLIENT_ID` and `SLACK_CLIENT_SECRET` CareDesk is distributed: customers install it in
their own workspaces by OAuth v2 (`GET /slack/install`), and each request is answered with its
own workspace's token; `SLACK_BOT_TOKEN` is then not used.

The environment wins over the file.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from bot.domain.config import SECRETS_MESSAGE, ConfigError, Settings, reject_unknown_keys

DEFAULT_API_URL = "https://slack.com/api/"
DEFAULT_AUTHORIZE_URL = "https://slack.com/oauth/v2/authorize"
FILE_KEYS = ("api_url", "client_id", "authorize_url", "public_url")
# Keys someone might write in `[slack]` for a secret: refused with the variable to use instead.
SECRET_FILE_KEYS = {
    "bot_token": "SLACK_BOT_TOKEN",
    "signing_secret": "SLACK_SIGNING_SECRET",
    "app_token": "SLACK_APP_TOKEN",
    "slack_bot_token": "SLACK_BOT_TOKEN",
    "slack_signing_secret": "SLACK_SIGNING_SECRET",
    "slack_app_token": "SLACK_APP_TOKEN",
    "client_secret": "SLACK_CLIENT_SECRET",
    "slack_client_secret": "SLACK_CLIENT_SECRET",
}


@dataclass(frozen=True)
class SlackConfig:
    # Secrets: repr hides them, so a logged config never shows one.
    bot_token: str | None = field(default=None, repr=False)
    signing_secret: str | None = field(default=None, repr=False)
    app_token: str | None = field(default=None, repr=False)
    api_url: str = DEFAULT_API_URL
    # Multi-workspace (OAuth v2): both set. The secret is hidden from repr like the tokens.
    client_id: str | None = None
    client_secret: str | None = field(default=None, repr=False)
    authorize_url: str = DEFAULT_AUTHORIZE_URL
    # The server's public https://HOST: the OAuth redirect URL sent to Slack is on it (Slack
    # then checks it against the app's). None: the app's only redirect URL is used.
    public_url: str | None = None
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
        client_id = env.get("SLACK_CLIENT_ID") or (_text("slack.client_id", table["client_id"])
                                                   if "client_id" in table else None)
        authorize_url = env.get("SLACK_AUTHORIZE_URL") or (_text("slack.authorize_url", table["authorize_url"])
                                                           if "authorize_url" in table else DEFAULT_AUTHORIZE_URL)
        client_secret = env.get("SLACK_CLIENT_SECRET") or None
        public_url = env.get("CAREDESK_PUBLIC_URL") or (_text("slack.public_url", table["public_url"])
                                                        if "public_url" in table else None)
        if bool(client_id) != bool(client_secret):
            raise ConfigError("SLACK_CLIENT_SECRET" if client_id else "SLACK_CLIENT_ID",
                              "multi-workspace mode needs both SLACK_CLIENT_ID and SLACK_CLIENT_SECRET")
        return cls(
            client_id=client_id,
            client_secret=client_secret,
            authorize_url=authorize_url,
            public_url=public_url,
            bot_token=env.get("SLACK_BOT_TOKEN") or None,
            signing_secret=env.get("SLACK_SIGNING_SECRET") or None,
            app_token=env.get("SLACK_APP_TOKEN") or None,
            api_url=api_url,
            default_language=settings.default_language,
            insecure_dev_mode=insecure_dev_mode,
            worker_processes=worker_processes,
        )

    @property
    def multi_workspace(self) -> bool:
        """Installed by OAuth in any number of workspaces (each request with its own token)."""
        return bool(self.client_id and self.client_secret)

    @property
    def serves(self) -> bool:
        """Whether a Bolt app can be built: a bot token, or the OAuth client."""
        return self.multi_workspace or bool(self.bot_token)

    @property
    def http_problem(self) -> str | None:
        """Why `POST /slack/events` cannot serve (None when it can)."""
        if not self.serves:
            return "SLACK_BOT_TOKEN (or SLACK_CLIENT_ID and SLACK_CLIENT_SECRET) is not set"
        if not self.signing_secret and not self.insecure_dev_mode:
            return "SLACK_SIGNING_SECRET is not set"
        return None


def _text(key: str, value: Any) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ConfigError(key, f"expected a non-empty text, got {value!r}")
    return value
