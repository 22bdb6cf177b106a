"""Teams settings: the bot's identity (from CareDesk's settings) and every Bot Framework endpoint
(from the environment, so the bot runs in sovereign clouds and the tests run offline).

| variable | default (public cloud) |
|---|---|
| `BOTFRAMEWORK_OPENID_METADATA_URL` | https://login.botframework.com/v1/.well-known/openidconfiguration |
| `BOTFRAMEWORK_TOKEN_ISSUER` | https://api.botframework.com |
| `BOTFRAMEWORK_EMULATOR_OPENID_METADATA_URL` | https://login.microsoftonline.com/common/v2.0/.well-known/openid-configuration |
| `BOTFRAMEWORK_LOGIN_URL` | https://login.microsoftonline.com/botframework.com (SingleTenant: …/TENANT_ID) |
| `BOTFRAMEWORK_TOKEN_URL` | `BOTFRAMEWORK_LOGIN_URL` + /oauth2/v2.0/token |
| `BOTFRAMEWORK_OAUTH_SCOPE` | https://api.botframework.com |
| `BOTFRAMEWORK_OAUTH_URL` | https://api.botframework.com (user token service) |
| `TEAMS_RESPONSE_DEADLINE_SECONDS` | 10 (Teams gives up after 15 s) |
| `TEAMS_MEMBER_CACHE_SECONDS` | 3600 |

bot/domain/config.py owns the CareDesk settings and is not edited by the Teams adapter: these are read
here, from the environment only.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field

from bot.domain.config import Settings

PUBLIC_OPENID_METADATA_URL = "https://login.botframework.com/v1/.well-known/openidconfiguration"
PUBLIC_TOKEN_ISSUER = "https://api.botframework.com"
PUBLIC_EMULATOR_OPENID_METADATA_URL = (
    "https://login.microsoftonline.com/common/v2.0/.well-known/openid-configuration"
)
PUBLIC_LOGIN_PREFIX = "https://login.microsoftonline.com/"
PUBLIC_OAUTH_SCOPE = "https://api.botframework.com"
PUBLIC_OAUTH_URL = "https://api.botframework.com"

ENV_KEYS = (
    "BOTFRAMEWORK_OPENID_METADATA_URL",
    "BOTFRAMEWORK_TOKEN_ISSUER",
    "BOTFRAMEWORK_EMULATOR_OPENID_METADATA_URL",
    "BOTFRAMEWORK_LOGIN_URL",
    "BOTFRAMEWORK_TOKEN_URL",
    "BOTFRAMEWORK_OAUTH_SCOPE",
    "BOTFRAMEWORK_OAUTH_URL",
    "TEAMS_RESPONSE_DEADLINE_SECONDS",
    "TEAMS_MEMBER_CACHE_SECONDS",
)


@dataclass(frozen=True)
class TeamsConfig:
    app_id: str | None
    app_password: str | None = field(default=None, repr=False)
    tenant_id: str | None = None
    app_type: str = "MultiTenant"
    openid_metadata_url: str = PUBLIC_OPENID_METADATA_URL
    token_issuer: str = PUBLIC_TOKEN_ISSUER
    emulator_openid_metadata_url: str = PUBLIC_EMULATOR_OPENID_METADATA_URL
    login_url: str = PUBLIC_LOGIN_PREFIX + "botframework.com"
    token_url: str = PUBLIC_LOGIN_PREFIX + "botframework.com/oauth2/v2.0/token"
    oauth_scope: str = PUBLIC_OAUTH_SCOPE
    oauth_url: str = PUBLIC_OAUTH_URL
    response_deadline: float = 10.0
    member_cache_seconds: float = 3600.0
    # Developer mode (Bot Framework Emulator): no app id, no authentication, loopback only.
    insecure_dev_mode: bool = False

    @property
    def auth_enabled(self) -> bool:
        return bool(self.app_id)

    @classmethod
    def from_settings(cls, settings: Settings, env: Mapping[str, str] | None = None) -> TeamsConfig:
        env = os.environ if env is None else env

        def get(key: str, default: str) -> str:
            value = (env.get(key) or "").strip()
            return value or default

        tenant = settings.microsoft_app_tenant_id
        authority_tenant = tenant if settings.microsoft_app_type == "SingleTenant" and tenant else "botframework.com"
        login_url = get("BOTFRAMEWORK_LOGIN_URL", PUBLIC_LOGIN_PREFIX + authority_tenant).rstrip("/")
        return cls(
            app_id=(settings.microsoft_app_id or "").strip() or None,
            app_password=settings.secrets.microsoft_app_password,
            tenant_id=tenant,
            app_type=settings.microsoft_app_type,
            openid_metadata_url=get("BOTFRAMEWORK_OPENID_METADATA_URL", PUBLIC_OPENID_METADATA_URL),
            token_issuer=get("BOTFRAMEWORK_TOKEN_ISSUER", PUBLIC_TOKEN_ISSUER),
            emulator_openid_metadata_url=get("BOTFRAMEWORK_EMULATOR_OPENID_METADATA_URL",
                                             PUBLIC_EMULATOR_OPENID_METADATA_URL),
            login_url=login_url,
            token_url=get("BOTFRAMEWORK_TOKEN_URL", login_url + "/oauth2/v2.0/token"),
            oauth_scope=get("BOTFRAMEWORK_OAUTH_SCOPE", PUBLIC_OAUTH_SCOPE),
            oauth_url=get("BOTFRAMEWORK_OAUTH_URL", PUBLIC_OAUTH_URL),
            response_deadline=_positive(env, "TEAMS_RESPONSE_DEADLINE_SECONDS", 10.0),
            member_cache_seconds=_positive(env, "TEAMS_MEMBER_CACHE_SECONDS", 3600.0),
            insecure_dev_mode=settings.server.insecure_dev_mode,
        )


def _positive(env: Mapping[str, str], key: str, default: float) -> float:
    raw = (env.get(key) or "").strip()
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        raise ValueError(f"environment variable {key}: expected a number of seconds, got {raw!r}") from None
    if value <= 0:
        raise ValueError(f"environment variable {key}: must be positive, got {raw!r}")
    return value
