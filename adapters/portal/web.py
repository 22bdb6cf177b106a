"""The portal's HTTP side: the chat page and the part of Direct Line 3.0 that Web Chat's
`createDirectLine({domain, token})` (botframework-directlinejs) calls, under
`/portal/v3/directline`:

| request | what it does |
|---|---|
| `GET /portal/chat?token=JWT` | the page (portal token, or the session cookie it set) |
| `GET /portal/static/{file}` | Web Chat's bundle, the page's script and style |
| `POST …/conversations` | start (or continue: one per person) the conversation |
| `GET …/conversations/{id}?watermark=W` | reconnect: a fresh token and stream URL |
| `POST …/tokens/refresh` | a fresh token (Web Chat asks every 15 minutes) |
| `POST …/conversations/{id}/activities` | the person's message or card action, answered |
| `GET …/conversations/{id}/activities?watermark=W` | the transcript after W (polling) |
| `GET …/conversations/{id}/stream?watermark=W&t=TOKEN` | the WebSocket: activity groups with watermarks |

Without `PORTAL_SIGNING_SECRET` every route answers 503 and the rest of CareDesk runs on.
"""

from __future__ import annotations

import asyncio
import functools
import gzip
import html
import json
import logging
from pathlib import Path
from typing import Any
from urllib.parse import quote

from aiohttp import WSMsgType, web

from adapters.portal.channel import BadActivity, PortalChannel
from adapters.portal.config import PortalConfig
from adapters.portal.tokens import (
    DIRECTLINE_TOKEN_SECONDS,
    BadToken,
    PortalUser,
    directline_token,
    read_directline_token,
    read_portal_token,
    read_session_token,
    session_token,
)
from bot.i18n import LANGUAGES, normalize_language, translate
from bot.store.ports import StoreUnavailableError

log = logging.getLogger("caredesk.portal")

STATIC = Path(__file__).resolve().parent / "static"
STATIC_FILES = {
    "webchat.js": "application/javascript",
    "webchat.js.LICENSE.txt": "text/plain",
    "chat.js": "application/javascript",
    "chat.css": "text/css",
}
DIRECTLINE = "/portal/v3/directline"
COOKIE = "caredesk_portal"
# A stream reads the store this often besides being woken (what another process wrote).
POLL_SECONDS = 1.0
WEBCHAT_LOCALES = {"en": "en-US", "fr": "fr-FR", "nl": "nl-NL"}


class Portal:
    """The portal channel of a process and its settings (built once by the composition root)."""

    def __init__(self, channel: PortalChannel, config: PortalConfig) -> None:
        self.channel = channel
        self.config = config
        self.streams: set[web.WebSocketResponse] = set()

    @property
    def secret(self) -> str:
        assert self.config.signing_secret is not None
        return self.config.signing_secret

    async def close_streams(self) -> None:
        """Close every open WebSocket (at shutdown; Web Chat reconnects to another process)."""
        for ws in list(self.streams):
            await ws.close(code=1001, message=b"going away")


PORTAL_KEY: web.AppKey[Portal] = web.AppKey("portal", Portal)


# ---- plain pages ------------------------------------------------------------------------------------


def browser_language(request: web.Request) -> str | None:
    """The first of the browser's languages that CareDesk speaks (Accept-Language, in order)."""
    weighted = []
    for index, part in enumerate((request.headers.get("Accept-Language") or "").split(",")):
        tag, _, params = part.strip().partition(";")
        quality = 1.0
        if params.strip().startswith("q="):
            try:
                quality = float(params.strip()[2:])
            except ValueError:
                quality = 0.0
        weighted.append((-quality, index, tag.strip()))
    for _, _, tag in sorted(weighted):
        lang = normalize_language(tag, "")
        if lang in LANGUAGES:
            return lang
    return None


def security_headers(config: PortalConfig) -> dict[str, str]:
    """No script but CareDesk's own files; styles may be inline: Web Chat and the Adaptive Cards
    renderer write style elements and attributes of their own at run time (a nonce would cover
    only some of them), and a style cannot run code."""
    ancestors = " ".join(("'self'", *config.allowed_origins))
    policy = ("default-src 'none'; script-src 'self'; "
              f"style-src 'self' 'unsafe-inline'; img-src 'self' data: blob:; font-src 'self' data:; "
              f"connect-src 'self'; media-src 'self' blob:; base-uri 'none'; form-action 'none'; "
              f"frame-ancestors {ancestors}")
    return {"Content-Security-Policy": policy, "X-Content-Type-Options": "nosniff",
            "Referrer-Policy": "no-referrer", "Cache-Control": "no-store"}


def plain_page(request: web.Request, config: PortalConfig, status: int, key: str, lang: str | None = None
               ) -> web.Response:
    """A short page that says what is wrong, in the browser's language; nothing else."""
    lang = lang or browser_language(request) or "en"
    title = html.escape(translate(lang, f"{key}_title"))
    body = html.escape(translate(lang, key))
    page = (f'<!doctype html><html lang="{lang}"><head><meta charset="utf-8">'
            f'<meta name="viewport" content="width=device-width, initial-scale=1"><title>{title}</title></head>'
            f'<body><main><h1>{title}</h1><p>{body}</p></main></body></html>')
    return web.Response(status=status, text=page, content_type="text/html", charset="utf-8",
                        headers=security_headers(config))


def _portal(request: web.Request) -> Portal | None:
    portal = request.app[PORTAL_KEY]
    return portal if portal.config.enabled else None


def _unavailable(request: web.Request) -> web.Response:
    return plain_page(request, request.app[PORTAL_KEY].config, 503, "portal.unavailable")


# ---- the page -----------------------------------------------------------------------------------------


async def chat_page(request: web.Request) -> web.StreamResponse:
    portal = _portal(request)
    if portal is None:
        return _unavailable(request)
    token = request.query.get("token")
    session = request.cookies.get(COOKIE)
    user: PortalUser | None = None
    fresh = False
    if token:
        try:
            user = read_portal_token(token, portal.secret)
            fresh = True
        except BadToken as exc:
            # A token that only ran out (a reload after 15 minutes) is fine while the session
            # the first load started lasts, for the same person; any other fault is a 401.
            if exc.expired and session:
                user = _session_user(session, portal.secret)
                if user is not None and user.email.lower() != _expired_subject(token).lower():
                    user = None
            if user is None:
                log.info("portal page refused: %s", exc)
    elif session:
        user = _session_user(session, portal.secret)
    if user is None:
        return plain_page(request, portal.config, 401, "portal.unauthorized")
    lang = normalize_language(user.lang or browser_language(request), portal.channel.desk.settings.default_language)
    attrs = {
        "data-token": directline_token(portal.secret, user),
        "data-domain": DIRECTLINE,
        "data-locale": WEBCHAT_LOCALES[lang],
        "data-user-id": user.email.lower(),
        "data-user-name": user.name,
        "data-placeholder": translate(lang, "portal.placeholder"),
    }
    attributes = " ".join(f'{name}="{html.escape(value, quote=True)}"' for name, value in attrs.items())
    title = html.escape(translate(lang, "portal.title"))
    page = (f'<!doctype html><html lang="{lang}"><head><meta charset="utf-8">'
            f'<meta name="viewport" content="width=device-width, initial-scale=1">'
            f'<title>{title}</title><link rel="stylesheet" href="/portal/static/chat.css"></head>'
            f'<body><header class="caredesk-header"><h1>{title}</h1></header>'
            f'<main id="caredesk-chat" aria-label="{title}" {attributes}>'
            f'<noscript>{html.escape(translate(lang, "portal.noscript"))}</noscript></main>'
            f'<script src="/portal/static/webchat.js"></script>'
            f'<script src="/portal/static/chat.js"></script></body></html>')
    response = web.Response(text=page, content_type="text/html", charset="utf-8",
                            headers=security_headers(portal.config))
    if fresh:
        # Framed by a portal of another site, the cookie is a third party's: SameSite=None, and
        # Partitioned (CHIPS) so that browsers that block third-party cookies keep it for this
        # portal alone. Opened as a link, Lax.
        # (Written by hand: Python's http.cookies knows Partitioned only from 3.14 on.)
        embedded = bool(portal.config.allowed_origins)
        value = session_token(portal.secret, user, portal.config.session_minutes)
        response.headers.add("Set-Cookie", f"{COOKIE}={value}; Max-Age={portal.config.session_minutes * 60}; "
                             f"Path=/portal/; Secure; HttpOnly; SameSite={'None; Partitioned' if embedded else 'Lax'}")
    return response


def _session_user(cookie: str, secret: str) -> PortalUser | None:
    try:
        return read_session_token(cookie, secret)
    except BadToken:
        return None


def _expired_subject(token: str) -> str:
    """The subject of a token whose signature was checked and only whose time ran out."""
    import jwt

    try:
        return str(jwt.decode(token, options={"verify_signature": False}).get("sub") or "")
    except jwt.PyJWTError:
        return ""


@functools.lru_cache(maxsize=len(STATIC_FILES))
def _static_bytes(name: str) -> tuple[bytes, bytes]:
    """A static file as it is and gzipped (read and compressed once per process: Web Chat's
    bundle is 3.9 MB, under 1 MB gzipped)."""
    body = (STATIC / name).read_bytes()
    return body, gzip.compress(body, compresslevel=9, mtime=0)


async def static_file(request: web.Request) -> web.StreamResponse:
    name = request.match_info["name"]
    kind = STATIC_FILES.get(name)
    if kind is None or not (STATIC / name).is_file():
        raise web.HTTPNotFound()
    plain, packed = await asyncio.to_thread(_static_bytes, name)
    headers = {"Cache-Control": "public, max-age=3600", "X-Content-Type-Options": "nosniff",
               "Vary": "Accept-Encoding"}
    if "gzip" in (request.headers.get("Accept-Encoding") or "").lower():
        headers["Content-Encoding"] = "gzip"
        return web.Response(body=packed, content_type=kind, headers=headers)
    return web.Response(body=plain, content_type=kind, headers=headers)


# ---- Direct Line ----------------------------------------------------------------------------------------


def _error(status: int, code: str, message: str) -> web.Response:
    return web.json_response({"error": {"code": code, "message": message}}, status=status)


def _bearer(request: web.Request) -> str:
    scheme, _, token = (request.headers.get("Authorization") or "").strip().partition(" ")
    return token.strip() if scheme.lower() == "bearer" else ""


def _caller(request: web.Request, portal: Portal, *, conversation: str | None,
            portal_token_allowed: bool = False) -> tuple[PortalUser, str | None]:
    """Who calls, from the Direct Line token (or, to start, the portal's own token)."""
    token = _bearer(request) or (request.query.get("t") or "")
    if not token:
        raise BadToken("no token")
    try:
        user, bound = read_directline_token(token, portal.secret)
    except BadToken:
        if not portal_token_allowed:
            raise
        return read_portal_token(token, portal.secret), None
    if conversation is not None and bound != conversation:
        raise BadToken("the token is for another conversation")
    return user, bound


def _stream_url(request: web.Request, conversation: str, token: str, watermark: str | None) -> str:
    forwarded = (request.headers.get("X-Forwarded-Proto") or "").split(",")[0].strip().lower()
    scheme = "wss" if request.secure or forwarded == "https" else "ws"
    url = f"{scheme}://{request.host}{DIRECTLINE}/conversations/{quote(conversation)}/stream?t={quote(token)}"
    return url + (f"&watermark={quote(watermark)}" if watermark else "")


def _conversation_answer(request: web.Request, portal: Portal, user: PortalUser, conversation: str,
                         watermark: str | None) -> dict[str, Any]:
    token = directline_token(portal.secret, user, conversation)
    return {"conversationId": conversation, "token": token, "expires_in": DIRECTLINE_TOKEN_SECONDS,
            "streamUrl": _stream_url(request, conversation, token, watermark)}


def _watermark(request: web.Request) -> int:
    raw = request.query.get("watermark") or ""
    return int(raw) if raw.isdigit() and len(raw) < 10 else 0


async def start_conversation(request: web.Request) -> web.StreamResponse:
    portal = _portal(request)
    if portal is None:
        return _error(503, "ServiceUnavailable", "the portal chat is not configured")
    try:
        user, _ = _caller(request, portal, conversation=None, portal_token_allowed=True)
    except BadToken as exc:
        log.info("portal conversation refused: %s", exc)
        return _error(403, "TokenInvalid", "the token is missing, invalid or expired")
    conversation = await portal.channel.open(user)
    return web.json_response(_conversation_answer(request, portal, user, conversation, None), status=201)


async def reconnect(request: web.Request) -> web.StreamResponse:
    portal = _portal(request)
    if portal is None:
        return _error(503, "ServiceUnavailable", "the portal chat is not configured")
    conversation = request.match_info["conversation"]
    try:
        user, _ = _caller(request, portal, conversation=conversation)
    except BadToken:
        return _error(403, "TokenInvalid", "the token is missing, invalid or expired")
    watermark = request.query.get("watermark")
    return web.json_response(_conversation_answer(
        request, portal, user, conversation, watermark if watermark and watermark.isdigit() else None))


async def refresh_token(request: web.Request) -> web.StreamResponse:
    portal = _portal(request)
    if portal is None:
        return _error(503, "ServiceUnavailable", "the portal chat is not configured")
    try:
        user, conversation = _caller(request, portal, conversation=None)
    except BadToken:
        return _error(403, "TokenInvalid", "the token is missing, invalid or expired")
    return web.json_response({"conversationId": conversation, "token": directline_token(portal.secret, user, conversation),
                              "expires_in": DIRECTLINE_TOKEN_SECONDS})


async def post_activity(request: web.Request) -> web.StreamResponse:
    portal = _portal(request)
    if portal is None:
        return _error(503, "ServiceUnavailable", "the portal chat is not configured")
    conversation = request.match_info["conversation"]
    try:
        user, _ = _caller(request, portal, conversation=conversation)
    except BadToken:
        return _error(403, "TokenInvalid", "the token is missing, invalid or expired")
    try:
        activity = await request.json(loads=_strict_json)
        posted_id = await portal.channel.post(conversation, user, activity)
    except (ValueError, BadActivity) as exc:
        log.info("portal activity refused in %s: %s", conversation, exc)
        return _error(400, "BadArgument", "the activity cannot be read")
    except StoreUnavailableError:
        log.warning("portal activity in %s: the database is unavailable", conversation)
        return _error(503, "ServiceUnavailable", "try again in a moment")
    return web.json_response({"id": posted_id})


def _strict_json(text: str) -> Any:
    return json.loads(text, parse_constant=_no_constant)


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


async def get_activities(request: web.Request) -> web.StreamResponse:
    portal = _portal(request)
    if portal is None:
        return _error(503, "ServiceUnavailable", "the portal chat is not configured")
    conversation = request.match_info["conversation"]
    try:
        _caller(request, portal, conversation=conversation)
    except BadToken:
        return _error(403, "TokenInvalid", "the token is missing, invalid or expired")
    activities, watermark = await portal.channel.activities(conversation, _watermark(request))
    return web.json_response({"activities": activities, "watermark": str(watermark)})


async def stream(request: web.Request) -> web.StreamResponse:
    portal = _portal(request)
    if portal is None:
        return _error(503, "ServiceUnavailable", "the portal chat is not configured")
    conversation = request.match_info["conversation"]
    try:
        _caller(request, portal, conversation=conversation)
    except BadToken:
        return _error(403, "TokenInvalid", "the token is missing, invalid or expired")
    ws = web.WebSocketResponse(heartbeat=30.0, max_msg_size=4096)
    await ws.prepare(request)
    portal.streams.add(ws)
    listener = portal.channel.hub.listen(conversation)
    sender = asyncio.create_task(_send_news(portal, ws, listener, _watermark(request)))
    try:
        async for message in ws:  # Web Chat sends "" now and then to keep the socket open
            if message.type in (WSMsgType.ERROR, WSMsgType.CLOSE):
                break
    finally:
        sender.cancel()
        portal.channel.hub.forget(listener)
        portal.streams.discard(ws)
    return ws


async def _send_news(portal: Portal, ws: web.WebSocketResponse, listener: Any, watermark: int) -> None:
    """Send what the conversation has after `watermark`, then whatever comes, as activity groups."""
    channel = portal.channel
    try:
        await _pump(channel, ws, listener, watermark)
    except asyncio.CancelledError:
        raise
    except ConnectionResetError:
        pass
    except Exception:
        log.exception("the portal stream of %s failed", listener.conversation)
        await ws.close(code=1011)


async def _pump(channel: PortalChannel, ws: web.WebSocketResponse, listener: Any, watermark: int) -> None:
    while not ws.closed:
        listener.wake.clear()
        if listener.ephemeral:
            ephemeral, listener.ephemeral = listener.ephemeral, []
            await ws.send_str(json.dumps({"activities": ephemeral}))
        try:
            activities, watermark = await channel.activities(listener.conversation, watermark)
        except StoreUnavailableError:
            activities = []
        if activities:
            await ws.send_str(json.dumps({"activities": activities, "watermark": str(watermark)}))
        try:
            await asyncio.wait_for(listener.wake.wait(), POLL_SECONDS)
        except asyncio.TimeoutError:
            pass


def mount(app: web.Application, portal: Portal) -> None:
    app[PORTAL_KEY] = portal
    app.router.add_get("/portal/chat", chat_page)
    app.router.add_get("/portal/static/{name}", static_file)
    app.router.add_post(f"{DIRECTLINE}/conversations", start_conversation)
    app.router.add_get(f"{DIRECTLINE}/conversations/{{conversation}}", reconnect)
    app.router.add_post(f"{DIRECTLINE}/tokens/refresh", refresh_token)
    app.router.add_post(f"{DIRECTLINE}/conversations/{{conversation}}/activities", post_activity)
    app.router.add_get(f"{DIRECTLINE}/conversations/{{conversation}}/activities", get_activities)
    app.router.add_get(f"{DIRECTLINE}/conversations/{{conversation}}/stream", stream)

    async def close_streams(_: web.Application) -> None:
        await portal.close_streams()

    app.on_shutdown.append(close_streams)
    if portal.config.enabled:
        log.info("portal chat on /portal/chat")
    else:
        log.warning("portal chat disabled: PORTAL_SIGNING_SECRET is not set; /portal/ answers 503")
