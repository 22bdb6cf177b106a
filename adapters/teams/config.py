"""Teams settings: the bot's identity (the file's `[teams]` table, carried unread by the core's
`Settings`, and the MICROSOFT_APP_* environment variables) and every Bot Framework endpoint (from
the environment, so the bot runs in sovereign clouds and the tests run offline), parsed and
checked here, by the channel that uses them. The environment wins over the file.

| setting | environment | file | default |
|---|---|---|---|
| app id | `MICROSOFT_APP_ID` | `[teams] app_id` | none: `POST /api/messages` answers 503 |
| app password | `MICROSOFT_APP_PASSWORD` | never (a secret) | none |
| tenant id | `MICROSOFT_APP_TENANT_ID` | `[teams] app_tenant_id` | none |
| app type | `MICROSOFT_APP_TYPE` | `[teams] app_type` | MultiTenant |

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

The transport (see `transport.py`) and the Agents SDK's own names for the identity:

| variable | meaning |
|---|---|
| `CAREDESK_TEAMS_TRANSPORT` | `agents` (Microsoft 365 Agents SDK, default) or `botbuilder` (Bot Framework SDK) |
| `CONNECTIONS__SERVICE_CONNECTION__SETTINGS__CLIENTID` | the app id, when `MICROSOFT_APP_ID` is not set |
| `CONNECTIONS__SERVICE_CONNECTION__SETTINGS__CLIENTSECRET` | the secret, when `MICROSOFT_APP_PASSWORD` is not set |
| `CONNECTIONS__SERVICE_CONNECTION__SETTINGS__TENANTID` | the tenant, when `MICROSOFT_APP_TENANT_ID` is not set |
| `CONNECTIONS__SERVICE_CONNECTION__SETTINGS__AUTHTYPE` | `ClientSecret` (default), `Certificate`, `UserManagedIdentity`, `SystemManagedIdentity` |
| `CONNECTIONS__SERVICE_CONNECTION__SETTINGS__CERTPFXFILE` | the certificate (PFX file) of `Certificate` |
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from bot.domain.config import SECRETS_MESSAGE, ConfigError, Settings, reject_unknown_keys

PUBLIC_OPENID_METADATA_URL = "https://login.botframework.com/v1/.well-known/openidconfiguration"
PUBLIC_TOKEN_ISSUER = "https://api.botframework.com"
PUBLIC_EMULATOR_OPENID_METADATA_URL = (
    "https://login.microsoftonline.com/common/v2.0/.well-known/openid-configuration"
)
PUBLIC_LOGIN_PREFIX = "https://login.microsoftonline.com/"
PUBLIC_OAUTH_SCOPE = "https://api.botframework.com"
PUBLIC_OAUTH_URL = "https://api.botframework.com"
APP_TYPES = ("MultiTenant", "SingleTenant", "UserAssignedMSI")
FILE_KEYS = ("app_id", "app_tenant_id", "app_type")
# Keys someone might write in `[teams]` for the secret: refused with the variable to use instead.
SECRET_FILE_KEYS = ("app_password", "microsoft_app_password", "password")

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
    "CAREDESK_TEAMS_TRANSPORT",
)

TRANSPORTS = ("agents", "botbuilder")
DEFAULT_TRANSPORT = "agents"
# The Agents SDK's configuration names (its `load_configuration_from_env` layout) for the one
# connection CareDesk has.
SDK_SETTINGS = "CONNECTIONS__SERVICE_CONNECTION__SETTINGS__"
AUTH_TYPES = ("ClientSecret", "Certificate", "UserManagedIdentity", "SystemManagedIdentity")


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
    # Developer mode (Bot Framework Emulator): no app id, no authentication. The composition
    # root sets it only for a server on a loopback address (`ServerConfig.developer_mode`).
    insecure_dev_mode: bool = False
    # Which SDK carries the Bot Framework protocol (`CAREDESK_TEAMS_TRANSPORT`).
    transport: str = DEFAULT_TRANSPORT
    # How the bot proves itself for outbound calls: a client secret, a certificate (Agents SDK
    # only) or a managed identity (`UserManagedIdentity` is MICROSOFT_APP_TYPE=UserAssignedMSI).
    auth_type: str = "ClientSecret"
    certificate_file: str | None = None

    @property
    def auth_enabled(self) -> bool:
        return bool(self.app_id)

    @classmethod
    def from_settings(cls, settings: Settings, env: Mapping[str, str] | None = None, *,
                      insecure_dev_mode: bool = False) -> TeamsConfig:
        """Teams' config from the file's `[teams]` table and the environment (which wins);
        `ConfigError` names the key or variable that is wrong. The developer mode is the
        composition root's to give (the server's setting, on a loopback address only)."""
        env = os.environ if env is None else env

        def get(key: str, default: str) -> str:
            value = (env.get(key) or "").strip()
            return value or default

        identity = TeamsIdentity.parse(settings.adapter_table("teams"), env)
        sdk = SdkSettings.parse(env, identity)
        identity = sdk.identity
        tenant = identity.tenant_id
        authority_tenant = tenant if identity.app_type == "SingleTenant" and tenant else "botframework.com"
        login_url = get("BOTFRAMEWORK_LOGIN_URL", PUBLIC_LOGIN_PREFIX + authority_tenant).rstrip("/")
        return cls(
            app_id=identity.app_id,
            app_password=env.get("MICROSOFT_APP_PASSWORD") or env.get(SDK_SETTINGS + "CLIENTSECRET") or None,
            tenant_id=tenant,
            app_type=identity.app_type,
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
            insecure_dev_mode=insecure_dev_mode,
            transport=sdk.transport,
            auth_type=sdk.auth_type,
            certificate_file=sdk.certificate_file,
        )


@dataclass(frozen=True)
class TeamsIdentity:
    """Who the bot is to Microsoft (no secret): the file's `[teams]` keys, overridden by the
    MICROSOFT_APP_* variables."""

    app_id: str | None = None
    tenant_id: str | None = None
    app_type: str = "MultiTenant"

    @classmethod
    def parse(cls, table: Mapping[str, Any], env: Mapping[str, str]) -> TeamsIdentity:
        for key in table:
            if key.lower() in SECRET_FILE_KEYS:
                raise ConfigError(f"teams.{key}", f"{SECRETS_MESSAGE}: set MICROSOFT_APP_PASSWORD")
        reject_unknown_keys("teams.", table, FILE_KEYS)
        app_id = _optional_text("teams.app_id", table["app_id"]) if "app_id" in table else None
        tenant_id = _optional_text("teams.app_tenant_id", table["app_tenant_id"]) if "app_tenant_id" in table else None
        app_type = _app_type("teams.app_type", table["app_type"]) if "app_type" in table else "MultiTenant"
        if env.get("MICROSOFT_APP_ID"):
            app_id = env["MICROSOFT_APP_ID"]
        if env.get("MICROSOFT_APP_TENANT_ID"):
            tenant_id = env["MICROSOFT_APP_TENANT_ID"]
        if env.get("MICROSOFT_APP_TYPE"):
            app_type = _app_type("MICROSOFT_APP_TYPE", env["MICROSOFT_APP_TYPE"])
        return cls((app_id or "").strip() or None, tenant_id, app_type)


def _optional_text(key: str, value: Any) -> str | None:
    """A text that may be left empty ("" in the example file means: not set)."""
    if not isinstance(value, str):
        raise ConfigError(key, f"expected a text, got {value!r}")
    return value or None


def _app_type(key: str, value: Any) -> str:
    if not isinstance(value, str) or value not in APP_TYPES:
        raise ConfigError(key, f"expected one of {', '.join(APP_TYPES)}, got {value!r}")
    return value


def _positive(env: Mapping[str, str], key: str, default: float) -> float:
    raw = (env.get(key) or "").strip()
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        raise ConfigError(key, f"expected a number of seconds, got {raw!r}") from None
    if value <= 0:
        raise ConfigError(key, f"must be positive, got {raw!r}")
    return value


@dataclass(frozen=True)
class SdkSettings:
    """The transport chosen and the Agents SDK's own variables (`CONNECTIONS__SERVICE_CONNECTION__
    SETTINGS__*`), read beside the MICROSOFT_APP_* ones: those win where both are set, so one
    deployment's settings mean the same on either transport."""

    identity: TeamsIdentity
    transport: str = DEFAULT_TRANSPORT
    auth_type: str = "ClientSecret"
    certificate_file: str | None = None

    @classmethod
    def parse(cls, env: Mapping[str, str], identity: TeamsIdentity) -> SdkSettings:
        def sdk(key: str) -> str | None:
            return (env.get(SDK_SETTINGS + key) or "").strip() or None

        transport = (env.get("CAREDESK_TEAMS_TRANSPORT") or "").strip().lower() or DEFAULT_TRANSPORT
        if transport not in TRANSPORTS:
            raise ConfigError("CAREDESK_TEAMS_TRANSPORT", f"expected one of {', '.join(TRANSPORTS)}, got {transport!r}")
        auth_type = sdk("AUTHTYPE") or "ClientSecret"
        matched = [t for t in AUTH_TYPES if t.lower() == auth_type.lower()]
        if not matched:
            raise ConfigError(SDK_SETTINGS + "AUTHTYPE", f"expected one of {', '.join(AUTH_TYPES)}, got {auth_type!r}")
        auth_type = matched[0]
        app_type = identity.app_type
        if app_type == "UserAssignedMSI":
            auth_type = "UserManagedIdentity"
        elif auth_type == "UserManagedIdentity" and not env.get("MICROSOFT_APP_TYPE"):
            app_type = "UserAssignedMSI"
        tenant_id = identity.tenant_id or sdk("TENANTID")
        if tenant_id and app_type == "MultiTenant" and not env.get("MICROSOFT_APP_TYPE") and sdk("TENANTID"):
            app_type = "SingleTenant"  # the Agents SDK's settings name a tenant: the bot is that tenant's
        certificate_file = sdk("CERTPFXFILE")
        if auth_type == "Certificate" and not certificate_file:
            raise ConfigError(SDK_SETTINGS + "CERTPFXFILE", "Certificate authentication needs the certificate file")
        if transport == "botbuilder" and auth_type in ("Certificate", "SystemManagedIdentity"):
            raise ConfigError(SDK_SETTINGS + "AUTHTYPE",
                              f"{auth_type} needs CAREDESK_TEAMS_TRANSPORT=agents (botbuilder does not offer it here)")
        return cls(
            TeamsIdentity(identity.app_id or sdk("CLIENTID"), tenant_id, app_type),
            transport, auth_type, certificate_file,
        )
