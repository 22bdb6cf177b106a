"""The portal chat's tokens, all HS256 (PyJWT):

* the **portal token**, made by the customer portal, which has logged its user in, and signed
  with `PORTAL_SIGNING_SECRET`: `sub` (the person's e-mail), `name`, `aud` = "caredesk",
  `iat`, `exp` (at most 15 minutes after `iat`), optional `lang`. It proves who the person is;
* the **session token**, CareDesk's own, in an HttpOnly cookie: the person stays in after the
  first load (a reload, the next visit within the session) without a new portal token;
* the **Direct Line token**, CareDesk's own, that Web Chat carries in its `Authorization`
  header and WebSocket URL, bound to the person's conversation once it is started.

CareDesk's own tokens are signed with keys derived from the secret, one per purpose, and carry
an audience of their own: none of them is accepted where another is expected.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from dataclasses import dataclass
from typing import Any

import jwt

from adapters.portal.config import MAX_TOKEN_SECONDS

PORTAL_AUDIENCE = "caredesk"
SESSION_AUDIENCE = "caredesk-portal-session"
DIRECTLINE_AUDIENCE = "caredesk-directline"
DIRECTLINE_TOKEN_SECONDS = 30 * 60  # Web Chat refreshes it every 15 minutes
LEEWAY_SECONDS = 30  # clocks of the portal and CareDesk differ a little
MAX_CLAIM_LENGTH = 254


class BadToken(Exception):
    """The token is missing, forged, expired or not meant for this use (the reason is for the log)."""

    def __init__(self, reason: str, *, expired: bool = False) -> None:
        super().__init__(reason)
        self.expired = expired


@dataclass(frozen=True)
class PortalUser:
    email: str
    name: str
    lang: str | None = None


def _key(secret: str, purpose: str) -> bytes:
    return hmac.new(secret.encode("utf-8"), purpose.encode("ascii"), hashlib.sha256).digest()


def _text(claims: dict[str, Any], name: str, *, required: bool) -> str | None:
    value = claims.get(name)
    if value is None and not required:
        return None
    if not isinstance(value, str) or not value.strip() or len(value) > MAX_CLAIM_LENGTH:
        raise BadToken(f"claim {name} is missing or not a short text")
    return value.strip()


def _decode(token: str, key: str | bytes, audience: str, *, verify_exp: bool = True) -> dict[str, Any]:
    try:
        return jwt.decode(token, key, algorithms=["HS256"], audience=audience, leeway=LEEWAY_SECONDS,
                          options={"require": ["exp", "iat", "sub", "aud"], "verify_exp": verify_exp})
    except jwt.ExpiredSignatureError as exc:
        raise BadToken("expired", expired=True) from exc
    except jwt.PyJWTError as exc:
        raise BadToken(f"{type(exc).__name__}: {exc}") from exc


def _user(claims: dict[str, Any]) -> PortalUser:
    email = _text(claims, "sub", required=True) or ""
    if "@" not in email or any(c.isspace() for c in email):
        raise BadToken("sub is not an e-mail address")
    name = _text(claims, "name", required=False) or email
    lang = _text(claims, "lang", required=False)
    return PortalUser(email, name, lang)


def read_portal_token(token: str, secret: str) -> PortalUser:
    """The person a portal token names; `BadToken` for a forged, expired, wrong-audience or
    too-long-lived one."""
    claims = _decode(token, secret, PORTAL_AUDIENCE)
    issued, expires = claims.get("iat"), claims.get("exp")
    if not isinstance(issued, (int, float)) or not isinstance(expires, (int, float)):
        raise BadToken("iat and exp must be numbers")
    if expires - issued > MAX_TOKEN_SECONDS:
        raise BadToken(f"the token lives {int(expires - issued)} s, more than {MAX_TOKEN_SECONDS} s")
    if issued > time.time() + LEEWAY_SECONDS:
        raise BadToken("issued in the future")
    return _user(claims)


def _mint(secret: str, purpose: str, audience: str, user: PortalUser, seconds: int, **extra: Any) -> str:
    now = int(time.time())
    claims: dict[str, Any] = {"sub": user.email, "name": user.name, "aud": audience, "iat": now,
                              "exp": now + seconds, **extra}
    if user.lang:
        claims["lang"] = user.lang
    return jwt.encode(claims, _key(secret, purpose), algorithm="HS256")


def session_token(secret: str, user: PortalUser, minutes: int) -> str:
    return _mint(secret, "session", SESSION_AUDIENCE, user, minutes * 60)


def read_session_token(token: str, secret: str) -> PortalUser:
    return _user(_decode(token, _key(secret, "session"), SESSION_AUDIENCE))


def directline_token(secret: str, user: PortalUser, conversation: str | None = None) -> str:
    extra = {"conv": conversation} if conversation else {}
    return _mint(secret, "directline", DIRECTLINE_AUDIENCE, user, DIRECTLINE_TOKEN_SECONDS, **extra)


def read_directline_token(token: str, secret: str) -> tuple[PortalUser, str | None]:
    """The person and the conversation (None before it is started) a Direct Line token is for."""
    claims = _decode(token, _key(secret, "directline"), DIRECTLINE_AUDIENCE)
    conversation = claims.get("conv")
    if conversation is not None and not isinstance(conversation, str):
        raise BadToken("conv is not a text")
    return _user(claims), conversation
