"""The Teams transport on the Bot Framework Python SDK (botbuilder 4.x, CloudAdapter).

The only module of CareDesk that imports botbuilder / botframework. It fixes the SDK's rough
edges measured on this project (see ../shared/reference/platform/NOTES.md):

* every authentication failure becomes `AuthError` (401), where a stock `CloudAdapter.process`
  answers 500 for a missing or expired token, an unknown key id or `alg: none`;
* the token check runs in a worker thread whenever botbuilder might fetch the signing keys (it
  does so with a blocking `requests.get`, and caches them on a class: `clear_key_cache()`); with
  the token's key in its cache, fresh, it runs on the event loop (no thread, no second loop);
* outbound tokens come from a configurable OAuth token endpoint (client-credentials grant),
  fetched asynchronously and cached, instead of MSAL (which blocks the event loop and refuses
  any authority that is not https);
* the connector's HTTP calls go over one aiohttp session per transport (keep-alive), through the
  pipeline msrest lets a client replace, instead of a new `requests` session per turn run in a
  thread; the user-token client (OAuth sign-in, which CareDesk never uses) is built only if used.
  Together these were a third of botbuilder's CPU per Teams message in the benchmark (issue 18).
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import time
from datetime import datetime, timedelta
from collections.abc import AsyncIterator, Mapping, Sequence
from types import SimpleNamespace
from typing import Any

import aiohttp
import requests
from multidict import CIMultiDict
from msrest.pipeline import AsyncPipeline, Request, Response, SansIOHTTPPolicy
from msrest.pipeline.async_abc import AsyncHTTPSender
from msrest.pipeline.universal import RawDeserializer
from msrest.universal_http import ClientRequest
from msrest.universal_http.async_abc import AsyncClientResponse
from msrest.universal_http.requests import ClientRetryPolicy
from botbuilder.core import InvokeResponse, TurnContext
from botbuilder.core.teams import TeamsInfo
from botbuilder.integration.aiohttp import (
    CloudAdapter,
    ConfigurationBotFrameworkAuthentication,
)
from botbuilder.schema import Activity, ActivityTypes, ChannelAccount, ConversationReference
from botframework.connector.aio import ConnectorClient
from botframework.connector.auth import (
    AppCredentials,
    ClaimsIdentity,
    ConnectorFactory,
    JwtTokenExtractor,
    ManagedIdentityServiceClientCredentialsFactory,
    MicrosoftAppCredentials,
    ServiceClientCredentialsFactory,
    UserTokenClient,
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

# msrest (botbuilder's HTTP layer) builds a retry policy for every connector client, two per turn,
# testing 999 status codes against a 500-item *list* of "safe" codes each time: 13 ms of CPU per
# client, half of botbuilder's CPU per Teams message in the benchmark. The same codes as a
# frozenset: the same policy, in microseconds (msrest reads `safe_codes` only for that membership).
ClientRetryPolicy.safe_codes = frozenset(ClientRetryPolicy.safe_codes)  # type: ignore[assignment]

TOKEN_REFRESH_MARGIN = 300  # seconds before expiry a cached outbound token is renewed
# botbuilder re-reads its keys (blocking) once they are a day old: well before that, a check needs no fetch.
KEYS_FRESH_FOR = timedelta(hours=23)


def clear_key_cache() -> None:
    """Forget the signing keys botbuilder cached (class-level, shared by the whole process)."""
    JwtTokenExtractor.metadataCache.clear()


# ---- outbound credentials -----------------------------------------------------------------------


class _BearerCredentials(AppCredentials):
    """Credentials holding a token obtained beforehand (msrest signs requests synchronously)."""

    def __init__(self, app_id: str, token: str, scope: str):
        super().__init__(app_id=app_id, oauth_scope=scope)
        self._token = token

    def get_access_token(self, force_refresh: bool = False) -> str:
        return self._token


class TokenEndpointCredentialsFactory(ServiceClientCredentialsFactory):
    """App id + client secret → bearer tokens from the configured OAuth 2.0 token endpoint
    (client-credentials grant, as MSAL does it), cached per scope until shortly before expiry."""

    def __init__(self, app_id: str | None, password: str | None, token_url: str, default_scope: str,
                 timeout: float = 10.0):
        self.app_id = app_id or None
        self._password = password
        self.token_url = token_url
        self.default_scope = default_scope
        self.timeout = timeout
        self._tokens: dict[str, tuple[str, float]] = {}
        self._locks: dict[str, asyncio.Lock] = {}

    async def is_valid_app_id(self, app_id: str) -> bool:
        return bool(self.app_id) and app_id == self.app_id

    async def is_authentication_disabled(self) -> bool:
        return not self.app_id

    async def create_credentials(self, app_id: str, oauth_scope: str, login_endpoint: str,
                                 validate_authority: bool) -> AppCredentials:
        if not self.app_id:
            return MicrosoftAppCredentials.empty()
        if app_id != self.app_id:
            raise PermissionError("credentials requested for another app id")
        scope = (oauth_scope or self.default_scope).rstrip("/")
        if not scope.endswith("/.default"):
            scope += "/.default"
        return _BearerCredentials(self.app_id, await self._token(scope), scope)

    async def _token(self, scope: str) -> str:
        cached = self._tokens.get(scope)
        if cached and cached[1] > time.monotonic():
            return cached[0]
        lock = self._locks.setdefault(scope, asyncio.Lock())
        async with lock:
            cached = self._tokens.get(scope)
            if cached and cached[1] > time.monotonic():
                return cached[0]
            if not self._password:
                raise DeliveryError("MICROSOFT_APP_PASSWORD is not set: cannot obtain a token to answer Teams")
            form = {"grant_type": "client_credentials", "client_id": self.app_id,
                    "client_secret": self._password, "scope": scope}
            try:
                async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=self.timeout)) as session:
                    async with session.post(self.token_url, data=form) as response:
                        body = await response.json(content_type=None)
                        if response.status != 200 or "access_token" not in body:
                            raise DeliveryError(
                                f"token endpoint answered {response.status}: {body.get('error', '')} "
                                f"{body.get('error_description', '')}".strip()
                            )
            except (TimeoutError, aiohttp.ClientError, ValueError) as exc:
                raise DeliveryError(f"token endpoint {self.token_url} unreachable: {exc!r}") from exc
            lifetime = float(body.get("expires_in") or 3600)
            self._tokens[scope] = (body["access_token"], time.monotonic() + max(lifetime - TOKEN_REFRESH_MARGIN, 30))
            log.info("obtained a Bot Framework token for %s (valid %d s)", scope, lifetime)
            return body["access_token"]


def make_credentials_factory(config: TeamsConfig) -> ServiceClientCredentialsFactory:
    if config.app_type == "UserAssignedMSI" and config.app_id:
        return ManagedIdentityServiceClientCredentialsFactory(config.app_id)
    return TokenEndpointCredentialsFactory(config.app_id, config.app_password, config.token_url, config.oauth_scope)


# ---- the connector's HTTP: aiohttp, one session per transport --------------------------------------

CONNECTOR_TIMEOUT = aiohttp.ClientTimeout(total=30, connect=10)  # Teams waits 15 s for a turn's answer
STREAM_CHUNK_SIZE = 10 * 1024  # msrest's own chunk size for downloads


class _Sessions:
    """One aiohttp session for the transport's connector calls (keep-alive to the channel), made
    on first use on the running loop, and made again on another loop (a session is loop-bound)."""

    def __init__(self) -> None:
        self._session: aiohttp.ClientSession | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    def get(self) -> aiohttp.ClientSession:
        loop = asyncio.get_running_loop()
        if self._session is None or self._session.closed or self._loop is not loop:
            self._session, self._loop = aiohttp.ClientSession(timeout=CONNECTOR_TIMEOUT), loop
        return self._session

    async def close(self) -> None:
        if self._session is not None and not self._session.closed and self._loop is asyncio.get_running_loop():
            await self._session.close()
        self._session = self._loop = None


class _AiohttpResponse(AsyncClientResponse):
    def __init__(self, request: ClientRequest, response: aiohttp.ClientResponse, body: bytes) -> None:
        super().__init__(request, response)
        self.status_code = response.status
        self.headers = CIMultiDict(response.headers)
        self.reason = response.reason
        self._body = body

    def body(self) -> bytes:
        return self._body

    def raise_for_status(self) -> None:
        self.internal_response.raise_for_status()

    def stream_download(self, chunk_size: int | None = None, callback: Any = None) -> AsyncIterator[bytes]:
        """The body, already read whole (the Bot Connector's answers are small), in chunks, each
        handed to `callback(chunk, response)` as msrest's own aiohttp response does."""
        size = chunk_size or STREAM_CHUNK_SIZE

        async def chunks() -> AsyncIterator[bytes]:
            for at in range(0, len(self._body), size):
                chunk = self._body[at:at + size]
                if callback is not None:
                    callback(chunk, self.internal_response)
                yield chunk

        return chunks()


class _AiohttpSender(AsyncHTTPSender):
    """msrest's sender seam on the transport's aiohttp session (msrest's own aiohttp sender sends
    neither the headers nor the body of a request)."""

    def __init__(self, sessions: _Sessions) -> None:
        self.sessions = sessions

    async def __aenter__(self) -> "_AiohttpSender":
        return self

    async def __aexit__(self, *exc_details: Any) -> None:
        return None  # the session is the transport's, closed with it

    def build_context(self) -> Any:
        return None

    async def send(self, request: Request, **config: Any) -> Response:
        http: ClientRequest = request.http_request
        async with self.sessions.get().request(http.method, http.url, headers=dict(http.headers),
                                               data=http.data) as response:
            body = await response.read()
        return Response(request, _AiohttpResponse(http, response, body))


class _SignedHeader(SansIOHTTPPolicy):
    """The credentials' Authorization header, as their `signed_session` sets it on a requests
    session (none for anonymous credentials)."""

    def __init__(self, credentials: AppCredentials) -> None:
        self.credentials = credentials

    def on_request(self, request: Any, **kwargs: Any) -> None:
        self.credentials.signed_session(SimpleNamespace(headers=request.http_request.headers))


def _on_aiohttp(client: ConnectorClient, sessions: _Sessions) -> ConnectorClient:
    """The client's pipeline rebuilt as msrest builds it, with the aiohttp sender."""
    config = client.config
    policies: list[Any] = [config.user_agent_policy, RawDeserializer(), config.http_logger_policy]
    if config.credentials is not None:
        policies.insert(1, _SignedHeader(config.credentials))
    config.pipeline = AsyncPipeline(policies, _AiohttpSender(sessions))
    return client


class _AiohttpConnectorFactory(ConnectorFactory):
    """botbuilder's connector factory, its clients sending through the transport's session."""

    def __init__(self, inner: ConnectorFactory, sessions: _Sessions) -> None:
        self.inner = inner
        self.sessions = sessions

    async def create(self, service_url: str, audience: str | None = None) -> ConnectorClient:
        return _on_aiohttp(await self.inner.create(service_url, audience), self.sessions)


class _UserTokenClientOnUse(UserTokenClient):
    """botbuilder builds a user-token client (a whole msrest client and its credentials) for every
    turn, for OAuth sign-in prompts; CareDesk signs nobody in, so it is built only if used."""

    def __init__(self, make: Any) -> None:
        self._make = make
        self._client: UserTokenClient | None = None

    async def _real(self) -> UserTokenClient:
        if self._client is None:
            self._client = await self._make()
        return self._client

    async def get_user_token(self, *args: Any, **kwargs: Any) -> Any:
        return await (await self._real()).get_user_token(*args, **kwargs)

    async def get_sign_in_resource(self, *args: Any, **kwargs: Any) -> Any:
        return await (await self._real()).get_sign_in_resource(*args, **kwargs)

    async def sign_out_user(self, *args: Any, **kwargs: Any) -> Any:
        return await (await self._real()).sign_out_user(*args, **kwargs)

    async def get_token_status(self, *args: Any, **kwargs: Any) -> Any:
        return await (await self._real()).get_token_status(*args, **kwargs)

    async def get_aad_tokens(self, *args: Any, **kwargs: Any) -> Any:
        return await (await self._real()).get_aad_tokens(*args, **kwargs)

    async def exchange_token(self, *args: Any, **kwargs: Any) -> Any:
        return await (await self._real()).exchange_token(*args, **kwargs)


class _Authentication(ConfigurationBotFrameworkAuthentication):
    """botbuilder's configuration-driven authentication, its connectors on aiohttp and its
    user-token client built on use."""

    def __init__(self, configuration: Any, *, credentials_factory: ServiceClientCredentialsFactory,
                 sessions: _Sessions) -> None:
        super().__init__(configuration, credentials_factory=credentials_factory)
        self.sessions = sessions

    def create_connector_factory(self, claims_identity: ClaimsIdentity) -> ConnectorFactory:
        return _AiohttpConnectorFactory(super().create_connector_factory(claims_identity), self.sessions)

    async def create_user_token_client(self, claims_identity: ClaimsIdentity) -> UserTokenClient:
        make = super().create_user_token_client
        return _UserTokenClientOnUse(lambda: make(claims_identity))

    async def authenticate_request(self, activity: Activity, auth_header: str | None) -> Any:
        result = await super().authenticate_request(activity, auth_header)
        if result.connector_factory is not None:
            result.connector_factory = _AiohttpConnectorFactory(result.connector_factory, self.sessions)
        return result


# ---- one turn -------------------------------------------------------------------------------------


def _activity(data: Mapping[str, Any]) -> Activity:
    return Activity().deserialize(dict(data))


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def _for_authentication(data: Mapping[str, Any]) -> Activity:
    """The few fields botbuilder's token check reads, taken as strings (anything else: absent,
    and the check fails on it as it would on a missing field)."""
    recipient = data.get("recipient")
    role = _text(recipient.get("role")) if isinstance(recipient, Mapping) else None
    return Activity(channel_id=_text(data.get("channelId")), service_url=_text(data.get("serviceUrl")),
                    recipient=ChannelAccount(role=role))


class _BotbuilderTurnIO(TurnIO):
    def __init__(self, context: TurnContext, activity: Mapping[str, Any]):
        self.context = context
        self.activity = activity

    async def send(self, activities: Sequence[Mapping[str, Any]]) -> list[str | None]:
        try:
            responses = await self.context.send_activities([_activity(a) for a in activities])
        except Exception as exc:  # msrest raises its own error types for HTTP failures
            raise DeliveryError(f"sending to the conversation failed: {exc}") from exc
        return [getattr(r, "id", None) for r in responses or []]

    async def update(self, activity_id: str, activity: Mapping[str, Any]) -> None:
        updated = _activity(activity)
        updated.id = activity_id
        try:
            await self.context.update_activity(updated)
        except Exception as exc:
            raise DeliveryError(f"updating activity {activity_id} failed: {exc}") from exc

    async def member(self, user_id: str) -> Mapping[str, Any]:
        try:
            account = await TeamsInfo.get_member(self.context, user_id)
        except Exception as exc:
            raise DeliveryError(f"member lookup failed: {exc}") from exc
        return account.serialize() if account is not None else {}


def _unverified(token: str) -> tuple[dict[str, Any], dict[str, Any]] | None:
    """A compact JWS's header and claims, read without any check (only to choose how to check it:
    botbuilder checks everything after). PyJWT's own unverified decode validates the base64
    alphabet character by character, and botbuilder decodes each token many times over."""
    segments = token.split(".")
    if len(segments) != 3:
        return None
    try:
        head, claims = (json.loads(base64.urlsafe_b64decode(s + "=" * (-len(s) % 4))) for s in segments[:2])
    except (ValueError, TypeError):
        return None
    if not isinstance(head, dict) or not isinstance(claims, dict):
        return None
    return head, claims


def _isolated(coroutine_function, *args):
    """Run a coroutine on a private event loop (in a worker thread): botbuilder's key fetch blocks."""
    return asyncio.run(coroutine_function(*args))


class BotbuilderTransport(TeamsTransport):
    def __init__(self, config: TeamsConfig, credentials_factory: ServiceClientCredentialsFactory | None = None):
        self.config = config
        self.credentials_factory = credentials_factory or make_credentials_factory(config)
        # Every endpoint is set explicitly: botbuilder then uses its "parameterized" authentication
        # with exactly these values (public cloud defaults, or a sovereign cloud, or a test fake).
        configuration = SimpleNamespace(
            APP_ID=config.app_id,
            APP_TYPE=config.app_type,
            APP_TENANTID=config.tenant_id,
            CHANNEL_SERVICE=None,
            VALIDATE_AUTHORITY=True,
            TO_BOT_FROM_CHANNEL_OPENID_METADATA_URL=config.openid_metadata_url,
            TO_BOT_FROM_CHANNEL_TOKEN_ISSUER=config.token_issuer,
            TO_BOT_FROM_EMULATOR_OPENID_METADATA_URL=config.emulator_openid_metadata_url,
            TO_CHANNEL_FROM_BOT_LOGIN_URL=config.login_url,
            TO_CHANNEL_FROM_BOT_OAUTH_SCOPE=config.oauth_scope,
            OAUTH_URL=config.oauth_url,
            CALLER_ID=None,
        )
        self.sessions = _Sessions()
        self.authentication = _Authentication(configuration, credentials_factory=self.credentials_factory,
                                              sessions=self.sessions)
        self.adapter = CloudAdapter(self.authentication)

    async def close(self) -> None:
        await self.sessions.close()

    async def authenticate(self, auth_header: str | None, activity: Mapping[str, Any]) -> Any:
        # Only what the token check reads (the channel and service URL it must name, the
        # recipient's role in the emulator's case), never the whole activity: an activity is
        # deserialized only once its sender is known (`readable`).
        inbound = _for_authentication(activity)
        header = (auth_header or "").strip()
        if not self.config.auth_enabled:
            if not self.config.insecure_dev_mode:
                raise AuthError("no Microsoft app id configured")
            # Emulator-style developer mode: anonymous claims (botbuilder wants None, not "").
            return await self.authentication.authenticate_request(inbound, None)
        if not header:
            raise AuthError("no Authorization header")
        try:
            if self._keys_at_hand(header):
                # botbuilder will not fetch: the check runs here, without a thread and a loop of its own.
                return await self.authentication.authenticate_request(inbound, header)
            return await asyncio.to_thread(_isolated, self.authentication.authenticate_request, inbound, header)
        except requests.RequestException as exc:
            raise AuthUnavailable(f"could not fetch the Bot Framework signing keys: {exc!r}") from exc
        except Exception as exc:  # PermissionError, jwt errors, IndexError (unknown kid), …
            raise AuthError(f"{type(exc).__name__}: {exc}") from exc

    def _keys_at_hand(self, header: str) -> bool:
        """Whether botbuilder holds, fresh, the channel's signing key this token names (a token of
        the channel's issuer: botbuilder then reads the channel's metadata, and fetches nothing)."""
        metadata = JwtTokenExtractor.metadataCache.get(self.config.openid_metadata_url)
        if metadata is None or datetime.now() - metadata.last_updated > KEYS_FRESH_FOR:
            return False
        parts = _unverified(header.partition(" ")[2].strip())
        if parts is None:
            return False
        head, claims = parts
        kid = head.get("kid")
        return claims.get("iss") == self.config.token_issuer and any(k.get("kid") == kid for k in metadata.keys)

    async def vouch(self, auth_header: str | None) -> None:
        if not self.config.auth_enabled:
            return  # the developer mode: `authenticate` decides
        header = (auth_header or "").strip()
        if not header:
            raise AuthError("no Authorization header")
        # The token names the service URL it was issued for: checked against itself here (the
        # signature and the claims), against the activity's once the body is read.
        parts = _unverified(header.partition(" ")[2].strip())
        if parts is None:
            raise AuthError("not a JWT")
        claims = parts[1]
        service_url = claims.get("serviceurl") if isinstance(claims.get("serviceurl"), str) else None
        await self.authenticate(header, {"serviceUrl": service_url})

    def readable(self, activity: Mapping[str, Any]) -> None:
        try:
            _activity(activity)
        except Exception as exc:  # msrest's DeserializationError, or a TypeError/AttributeError inside it
            raise MalformedActivity(f"botbuilder cannot read the activity: {type(exc).__name__}") from exc

    async def run(self, ticket: Any, activity: Mapping[str, Any], handler: TurnHandler) -> InvokeReply | None:
        started = False

        async def logic(context: TurnContext) -> None:
            nonlocal started
            started = True
            reply = await handler(_BotbuilderTurnIO(context, activity))
            if reply is not None:
                await context.send_activity(Activity(
                    type=ActivityTypes.invoke_response,
                    value=InvokeResponse(status=reply.status, body=reply.body),
                ))

        try:
            result = await self.adapter.process_activity(ticket, _activity(activity), logic)
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
        ref = ConversationReference().deserialize(dict(reference))

        async def logic(context: TurnContext) -> None:
            await handler(_BotbuilderTurnIO(context, context.activity.serialize()))

        try:
            await self.adapter.continue_conversation(ref, logic, bot_app_id=self.config.app_id or "")
        except DeliveryError:
            raise
        except Exception as exc:
            raise DeliveryError(f"proactive message failed: {exc!r}") from exc
