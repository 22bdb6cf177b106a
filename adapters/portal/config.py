"""The customer portal's settings: the shared signing secret (environment only) and the file's
`[portal]` table (carried unread by the core's `Settings`). The environment wins over the file.

| setting | environment | file | default |
|---|---|---|---|
| signing secret | `PORTAL_SIGNING_SECRET` | never (a secret) | none: `/portal/…` answers 503 |
| pages allowed to embed the chat | `PORTAL_ALLOWED_ORIGINS` (space-separated) | `[portal] allowed_origins` | none: only CareDesk's own pages |
| how long a person stays signed in | | `[portal] session_minutes` | 480 (a working day) |
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from bot.domain.config import SECRETS_MESSAGE, ConfigError, Settings, reject_unknown_keys

FILE_KEYS = ("allowed_origins", "session_minutes")
SECRET_FILE_KEYS = ("signing_secret", "portal_signing_secret", "secret")
# The portal's token may live at most this long (issue 19: "at most 15 minutes").
MAX_TOKEN_SECONDS = 15 * 60
# Below this a secret is guessable offline from one token (HS256 keys should have 256 bits).
MIN_SECRET_BYTES = 32


@dataclass(frozen=True)
class PortalConfig:
    signing_secret: str | None = field(default=None, repr=False)
    # Origins (scheme://host[:port]) whose pages may frame the chat (`frame-ancestors`).
    allowed_origins: tuple[str, ...] = ()
    session_minutes: int = 480

    @property
    def enabled(self) -> bool:
        return bool(self.signing_secret)

    @classmethod
    def from_settings(cls, settings: Settings, env: Mapping[str, str] | None = None) -> PortalConfig:
        env = os.environ if env is None else env
        table = settings.adapter_table("portal")
        for key in table:
            if key.lower() in SECRET_FILE_KEYS:
                raise ConfigError(f"portal.{key}", f"{SECRETS_MESSAGE}: set PORTAL_SIGNING_SECRET")
        reject_unknown_keys("portal.", table, FILE_KEYS)
        origins: tuple[str, ...] = ()
        if "allowed_origins" in table:
            raw = table["allowed_origins"]
            if not isinstance(raw, (list, tuple)) or not all(isinstance(o, str) for o in raw):
                raise ConfigError("portal.allowed_origins", f"expected a list of origins, got {raw!r}")
            origins = tuple(_origin("portal.allowed_origins", o) for o in raw)
        if (env.get("PORTAL_ALLOWED_ORIGINS") or "").strip():
            origins = tuple(_origin("PORTAL_ALLOWED_ORIGINS", o) for o in env["PORTAL_ALLOWED_ORIGINS"].split())
        minutes = table.get("session_minutes", 480)
        if isinstance(minutes, bool) or not isinstance(minutes, int) or not 5 <= minutes <= 7 * 24 * 60:
            raise ConfigError("portal.session_minutes", f"expected whole minutes from 5 to 10080, got {minutes!r}")
        secret = (env.get("PORTAL_SIGNING_SECRET") or "").strip() or None
        if secret is not None and len(secret.encode("utf-8")) < MIN_SECRET_BYTES:
            raise ConfigError("PORTAL_SIGNING_SECRET", f"must be at least {MIN_SECRET_BYTES} bytes long")
        return cls(secret, origins, minutes)


def _origin(key: str, value: Any) -> str:
    """`https://portal.example.com` (a scheme and a host, nothing after them)."""
    text = str(value).strip().rstrip("/")
    parts = urlsplit(text)
    if parts.scheme not in ("https", "http") or not parts.netloc or parts.path or parts.query or parts.fragment \
            or any(c in text for c in " ;,'\""):
        raise ConfigError(key, f"expected an origin such as https://portal.example.com, got {value!r}")
    return text
