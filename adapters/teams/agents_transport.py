"""The Teams transport on the Microsoft 365 Agents SDK (`microsoft-agents-hosting-core`,
`-hosting-aiohttp`, `-activity`, `-authentication-msal`), botbuilder's maintained successor.

The only module of CareDesk that imports `microsoft_agents`. What it takes from the SDK: the
`CloudAdapter` (turn pipeline, connector client, invoke responses, `continue_conversation`), its
`JwtTokenValidator` (signature, audience, issuer allow-list, expiry), `AgentAuthConfiguration`
and, for a certificate or a managed identity, `MsalAuth`. What it sets around them, as the
botbuilder transport does (../shared/reference/platform/NOTES.md):

* the signing keys come from the configured OpenID metadata (`BOTFRAMEWORK_OPENID_METADATA_URL`),
  fetched without blocking the event loop and cached here; the SDK's validator would fetch them
  from the public cloud's fixed address only. A key must endorse the activity's channel;
* the token's `serviceurl` must be the activity's, and every failure is `AuthError` (401), an
  unreachable key server `AuthUnavailable` (503);
* outbound tokens for a client secret come from the configured token endpoint
  (`BOTFRAMEWORK_TOKEN_URL`, client-credentials grant, the request MSAL makes): MSAL refuses an
  authority that is not https, and the tests and the benchmark point it at a loopback fake.
  Certificates and managed identities go through the SDK's `MsalAuth`;
* the SDK's default turn-error handler writes the exception's text into the user's chat: it is
  removed, the error reaches `app.py`, which answers 500 and logs it.

CareDesk's own route (`app.py`) reads the request, so `CloudAdapter.process_activity` runs the
turn rather than `start_agent_process` (which would parse the body before the token is checked).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Mapping, Sequence
from typing import Any
from urllib.parse import urlsplit

import aiohttp
import jwt
from microsoft_agents.activity import Activity, ActivityTypes, ConversationReference, InvokeResponse
from microsoft_agents.hosting.aiohttp import CloudAdapter
from microsoft_agents.hosting.core import (
    AccessTokenProviderBase,
    AgentAuthConfiguration,
    AuthTypes,
    ClaimsIdentity,
    ConnectorClientBase,
    JwtTokenValidator,
    RestChannelServiceClientFactory,
    TurnContext,
)

from adapters.teams.activities import MalformedActivity
from adapters.teams.config import TeamsConfig
from adapters.teams.transport import (
    AuthError,
    AuthUnavailable,
    DeliveryError,
    InvokeReply,
    TeamsTransport,
    TurnHandler,
    TurnIO,
)

log = logging.getLogger("caredesk.teams.transport")

TOKEN_REFRESH_MARGIN = 300  # seconds before expiry a cached outbound token is renewed
KEYS_LIFETIME = 24 * 3600  # the Bot Framework rolls its keys over days; re-read them daily
KEYS_REFETCH_AFTER = 300  # an unknown key id re-reads the keys, at most this often


# ---- inbound: the signing keys --------------------------------------------------------------------


class SigningKeys:
    """The Bot Framework's signing keys, from the configured OpenID metadata: fetched with
    aiohttp (never blocking the event loop), once for every request waiting on them, cached.

    Plays the part of the SDK validator's key source (`get_signing_key(jwks_uri, header)`): the
    validator asks for the public cloud's fixed JWKS address, this answers from the configured one."""

    def __init__(self, metadata_url: str, timeout: float = 10.0):
        self.metadata_url = metadata_url
        self.timeout = timeout
        self._keys: dict[str, dict[str, Any]] = {}
        # None until the first fetch: the monotonic clock starts at the machine's boot, so a zero
        # here would read as "fetched moments ago" on a machine up for less than five minutes.
        self._fetched_at: float | None = None
        self._lock = asyncio.Lock()

    def clear(self) -> None:
        self._keys, self._fetched_at = {}, None

    def _age(self, now: float) -> float:
        return float("inf") if self._fetched_at is None else now - self._fetched_at

    async def _fetch(self) -> None:
        try:
            async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=self.timeout)) as session:
                async with session.get(self.metadata_url) as response:
                    response.raise_for_status()
                    metadata = await response.json(content_type=None)
                async with session.get(metadata["jwks_uri"]) as response:
                    response.raise_for_status()
                    jwks = await response.json(content_type=None)
        except (TimeoutError, aiohttp.ClientError, ValueError, KeyError, TypeError) as exc:
            raise AuthUnavailable(f"could not fetch the Bot Framework signing keys: {exc!r}") from exc
        self._keys = {k["kid"]: k for k in jwks.get("keys", []) if isinstance(k, dict) and "kid" in k}
        self._fetched_at = time.monotonic()
        log.info("fetched %d Bot Framework signing keys", len(self._keys))

    async def jwk(self, kid: str) -> dict[str, Any]:
        """The key `kid` as published (with its `endorsements`); AuthError if none has that id."""
        now = time.monotonic()
        if kid not in self._keys or self._age(now) > KEYS_LIFETIME:
            async with self._lock:
                stale = self._age(now) > KEYS_LIFETIME
                unknown = kid not in self._keys and self._age(now) > KEYS_REFETCH_AFTER
                if stale or unknown:
                    await self._fetch()
        if kid not in self._keys:
            raise AuthError(f"no published signing key has the id {kid!r}")
        return self._keys[kid]

    async def get_signing_key(self, jwks_uri: str, header: dict[str, Any]) -> jwt.PyJWK:
        kid = header.get("kid")
        if not isinstance(kid, str):
            raise AuthError("the token names no key id")
        return jwt.PyJWK(await self.jwk(kid))


# ---- outbound: tokens ----------------------------------------------------------------------------------


class TokenEndpointProvider(AccessTokenProviderBase):
    """App id + client secret → bearer tokens from the configured OAuth 2.0 token endpoint
    (client-credentials grant), cached per scope until shortly before expiry."""

    def __init__(self, configuration: AgentAuthConfiguration, token_url: str, default_scope: str,
                 timeout: float = 10.0):
        self._configuration = configuration
        self.token_url = token_url
        self.default_scope = default_scope
        self.timeout = timeout
        self._tokens: dict[str, tuple[str, float]] = {}
        self._lock = asyncio.Lock()

    @property
    def configuration(self) -> AgentAuthConfiguration:
        return self._configuration

    def _scope(self, scopes: list[str] | None) -> str:
        # The SDK asks for the public cloud's scope; the configured one (a sovereign cloud) wins.
        scope = self.default_scope.rstrip("/")
        return scope if scope.endswith("/.default") else scope + "/.default"

    async def get_access_token(self, resource_url: str, scopes: list[str], force_refresh: bool = False) -> str:
        scope = self._scope(scopes)
        cached = self._tokens.get(scope)
        if cached and cached[1] > time.monotonic() and not force_refresh:
            return cached[0]
        async with self._lock:
            cached = self._tokens.get(scope)
            if cached and cached[1] > time.monotonic() and not force_refresh:
                return cached[0]
            if not self._configuration.CLIENT_SECRET:
                raise DeliveryError("MICROSOFT_APP_PASSWORD is not set: cannot obtain a token to answer Teams")
            form = {"grant_type": "client_credentials", "client_id": self._configuration.CLIENT_ID or "",
                    "client_secret": self._configuration.CLIENT_SECRET, "scope": scope}
            try:
                async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=self.timeout)) as session:
                    async with session.post(self.token_url, data=form) as response:
                        body = await response.json(content_type=None)
                        if response.status != 200 or "access_token" not in body:
                            raise DeliveryError(
                                f"token endpoint answered {response.status}: {body.get('error', '')} "
                                f"{body.get('error_description', '')}".strip()
                            )
            except (TimeoutError, aiohttp.ClientError, ValueError, AttributeError) as exc:
                raise DeliveryError(f"token endpoint {self.token_url} unreachable: {exc!r}") from exc
            lifetime = float(body.get("expires_in") or 3600)
            self._tokens[scope] = (body["access_token"], time.monotonic() + max(lifetime - TOKEN_REFRESH_MARGIN, 30))
            log.info("obtained a Bot Framework token for %s (valid %d s)", scope, lifetime)
            return str(body["access_token"])

    def get_token_credential(self) -> Any:
        """The same tokens as an Azure `AsyncTokenCredential` (what the SDK hands Graph clients)."""
        provider = self

        class _Credential:
            async def get_token(self, *scopes: str, **kwargs: Any) -> Any:
                from azure.core.credentials import AccessToken

                token = await provider.get_access_token("", list(scopes))
                return AccessToken(token, int(time.time()) + TOKEN_REFRESH_MARGIN)

            async def close(self) -> None:
                return None

        return _Credential()

    async def acquire_token_on_behalf_of(self, scopes: list[str], user_assertion: str) -> str:
        raise NotImplementedError("CareDesk signs no user in through Teams")

    # Agentic identities (agents acting as users) are not CareDesk's: a Teams bot registration.
    async def get_agentic_application_token(self, tenant_id: str, agent_app_instance_id: str) -> str | None:
        raise NotImplementedError("CareDesk has no agentic identity")

    async def get_agentic_instance_token(self, tenant_id: str, agent_app_instance_id: str) -> tuple[str, str]:
        raise NotImplementedError("CareDesk has no agentic identity")

    async def get_agentic_user_token(self, tenant_id: str, agent_app_instance_id: str, agentic_user_id: str,
                                     scopes: list[str]) -> str | None:
        raise NotImplementedError("CareDesk has no agentic identity")


class OneConnection:
    """The SDK's `Connections` for a bot with one identity: every outbound call uses it."""

    def __init__(self, provider: AccessTokenProviderBase):
        self.provider = provider

    def get_connection(self, connection_name: str) -> AccessTokenProviderBase:
        return self.provider

    def get_default_connection(self) -> AccessTokenProviderBase:
        return self.provider

    def get_token_provider(self, claims_identity: ClaimsIdentity, service_url: str) -> AccessTokenProviderBase:
        return self.provider

    def get_token_provider_from_activity(self, claims_identity: ClaimsIdentity, activity: Any) -> AccessTokenProviderBase:
        return self.provider

    def get_default_connection_configuration(self) -> AgentAuthConfiguration:
        return self.provider.configuration


def auth_configuration(config: TeamsConfig) -> AgentAuthConfiguration:
    """The SDK's settings of CareDesk's one connection (the validator's and MSAL's)."""
    auth_type = {
        "ClientSecret": AuthTypes.client_secret,
        "Certificate": AuthTypes.certificate,
        "UserManagedIdentity": AuthTypes.user_managed_identity,
        "SystemManagedIdentity": AuthTypes.system_managed_identity,
    }[config.auth_type]
    return AgentAuthConfiguration(
        auth_type=auth_type,
        client_id=config.app_id,
        tenant_id=config.tenant_id or "botframework.com",
        client_secret=config.app_password,
        cert_pfx_file=config.certificate_file,
        authority=config.login_url,
        scopes=[config.oauth_scope.rstrip("/") + "/.default"],
        anonymous_allowed=not config.auth_enabled and config.insecure_dev_mode,
        issuers=[config.token_issuer],
        validate_issuer=True,
    )


def make_token_provider(config: TeamsConfig) -> AccessTokenProviderBase:
    settings = auth_configuration(config)
    if config.auth_type == "ClientSecret":
        return TokenEndpointProvider(settings, config.token_url, config.oauth_scope)
    from microsoft_agents.authentication.msal import MsalAuth

    return MsalAuth(settings)


# ---- one turn -------------------------------------------------------------------------------------


def _activity(data: Mapping[str, Any]) -> Activity:
    return Activity.model_validate(dict(data))


def _json(model: Any) -> dict[str, Any]:
    return dict(model.model_dump(by_alias=True, exclude_none=True, mode="json"))


def _same_url(a: str, b: str) -> bool:
    pa, pb = urlsplit(a.strip()), urlsplit(b.strip())
    return (pa.scheme.lower(), pa.netloc.lower(), pa.path.rstrip("/")) == (
        pb.scheme.lower(), pb.netloc.lower(), pb.path.rstrip("/"))


class _AgentsTurnIO(TurnIO):
    def __init__(self, context: TurnContext, activity: Mapping[str, Any]):
        self.context = context
        self.activity = activity

    async def send(self, activities: Sequence[Mapping[str, Any]]) -> list[str | None]:
        try:
            responses = await self.context.send_activities([_activity(a) for a in activities])
        except Exception as exc:  # aiohttp's ClientResponseError and the SDK's own errors
            raise DeliveryError(f"sending to the conversation failed: {exc}") from exc
        return [getattr(r, "id", None) or None for r in responses or []]

    async def update(self, activity_id: str, activity: Mapping[str, Any]) -> None:
        updated = _activity(activity)
        updated.id = activity_id
        try:
            await self.context.update_activity(updated)
        except Exception as exc:
            raise DeliveryError(f"updating activity {activity_id} failed: {exc}") from exc

    async def member(self, user_id: str) -> Mapping[str, Any]:
        client = self.context.services.get(ConnectorClientBase)  # type: ignore[type-abstract]
        conversation = self.context.activity.conversation
        try:
            if client is None or conversation is None:
                raise RuntimeError("no connector in this turn")
            account = await client.conversations.get_conversation_member(conversation.id, user_id)
        except Exception as exc:
            raise DeliveryError(f"member lookup failed: {exc}") from exc
        return _json(account) if account is not None else {}


class AgentsTransport(TeamsTransport):
    def __init__(self, config: TeamsConfig, token_provider: AccessTokenProviderBase | None = None):
        self.config = config
        self.settings = auth_configuration(config)
        self.keys = SigningKeys(config.openid_metadata_url)
        self.validator = JwtTokenValidator(self.settings)
        # The validator's key source, per instance: the configured metadata, not the public cloud's.
        self.validator._jwk_client_manager = self.keys  # type: ignore[assignment]
        self.token_provider = token_provider or make_token_provider(config)
        factory = RestChannelServiceClientFactory(
            OneConnection(self.token_provider),
            token_service_endpoint=config.oauth_url,
            token_service_audience=config.oauth_scope,
        )
        self.adapter = CloudAdapter(channel_service_client_factory=factory)
        self.adapter.on_turn_error = None  # errors reach app.py (500, logged), never the user's chat

    def clear_key_cache(self) -> None:
        self.keys.clear()

    async def _claims(self, header: str) -> ClaimsIdentity:
        scheme, _, token = header.strip().partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise AuthError("not a bearer token")
        try:
            unverified = jwt.get_unverified_header(token.strip())
        except jwt.PyJWTError as exc:
            raise AuthError(f"not a JWT: {exc}") from exc
        if unverified.get("alg") != "RS256":
            raise AuthError(f"algorithm {unverified.get('alg')!r} refused")
        try:
            return await self.validator.validate_token(token.strip())
        except (AuthError, AuthUnavailable):
            raise
        except Exception as exc:  # PyJWTError, ValueError (audience, issuer), …
            raise AuthError(f"{type(exc).__name__}: {exc}") from exc

    async def vouch(self, auth_header: str | None) -> None:
        if not self.config.auth_enabled:
            return  # the developer mode: `authenticate` decides
        header = (auth_header or "").strip()
        if not header:
            raise AuthError("no Authorization header")
        await self._claims(header)

    async def authenticate(self, auth_header: str | None, activity: Mapping[str, Any]) -> Any:
        header = (auth_header or "").strip()
        if not self.config.auth_enabled:
            if not self.config.insecure_dev_mode:
                raise AuthError("no Microsoft app id configured")
            return ClaimsIdentity()  # anonymous: the Emulator's developer mode
        if not header:
            raise AuthError("no Authorization header")
        identity = await self._claims(header)
        # The key must endorse the channel the activity comes from (a Teams key for Teams).
        channel = activity.get("channelId")
        kid = jwt.get_unverified_header(header.partition(" ")[2].strip()).get("kid")
        endorsements = (await self.keys.jwk(str(kid))).get("endorsements")
        if isinstance(channel, str) and channel and isinstance(endorsements, list) and channel not in endorsements:
            raise AuthError(f"the signing key does not endorse the channel {channel!r}")
        # The token was issued for one service URL: the activity's.
        claimed, named = identity.get_claim_value("serviceurl"), activity.get("serviceUrl")
        if isinstance(named, str) and named and (not isinstance(claimed, str) or not _same_url(claimed, named)):
            raise AuthError("the token's service URL is not the activity's")
        return identity

    def readable(self, activity: Mapping[str, Any]) -> None:
        try:
            _activity(activity)
        except Exception as exc:  # pydantic's ValidationError
            raise MalformedActivity(f"the Agents SDK cannot read the activity: {type(exc).__name__}") from exc

    async def run(self, ticket: Any, activity: Mapping[str, Any], handler: TurnHandler) -> InvokeReply | None:
        started = False

        async def logic(context: TurnContext) -> None:
            nonlocal started
            started = True
            reply = await handler(_AgentsTurnIO(context, activity))
            if reply is not None:
                await context.send_activity(Activity(
                    type=ActivityTypes.invoke_response,
                    value=InvokeResponse(status=reply.status, body=reply.body),
                ))

        inbound = _activity(activity)
        try:
            result = await self.adapter.process_activity(ticket, inbound, logic)
        except DeliveryError:
            raise
        except Exception as exc:
            if started:
                raise
            # Before the turn ran: no connector (e.g. no outbound token). Nothing was done.
            raise DeliveryError(f"could not set up the turn: {exc!r}") from exc
        if result is None:
            return None
        return InvokeReply(int(result.status), result.body)

    async def continue_conversation(self, reference: Mapping[str, Any], handler: TurnHandler) -> None:
        try:
            continuation = ConversationReference.model_validate(dict(reference)).get_continuation_activity()
        except Exception as exc:
            raise DeliveryError(f"the stored conversation reference is unreadable: {exc!r}") from exc

        async def logic(context: TurnContext) -> None:
            await handler(_AgentsTurnIO(context, _json(context.activity)))

        try:
            if self.config.auth_enabled:
                await self.adapter.continue_conversation(self.config.app_id or "", continuation, logic)
            else:  # developer mode: no token on the way out either
                await self.adapter.continue_conversation_with_claims(ClaimsIdentity(), continuation, logic)
        except DeliveryError:
            raise
        except Exception as exc:
            raise DeliveryError(f"proactive message failed: {exc!r}") from exc
