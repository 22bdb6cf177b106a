"""The Slack app manifest (`manifest/slack/manifest.yaml`) with this server's URLs filled in."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlsplit

MANIFEST_PATH = Path(__file__).resolve().parents[2] / "manifest" / "slack" / "manifest.yaml"
PLACEHOLDER = "https://caredesk.example.com"


def render_manifest(url: str, *, socket_mode: bool = False) -> str:
    """The manifest with every request URL on `url` (https://HOST, optionally with a path prefix):
    slash commands, events and interactivity all go to `<url>/slack/events`. With `socket_mode`,
    Socket Mode is switched on (Slack then ignores the URLs)."""
    parts = urlsplit(url.strip())
    if parts.scheme != "https" or not parts.hostname or parts.query or parts.fragment:
        raise ValueError(f"the Slack request URL must be https://HOST[/prefix], not {url!r}")
    base = f"https://{parts.netloc}{parts.path.rstrip('/')}"
    text = MANIFEST_PATH.read_text(encoding="utf-8").replace(PLACEHOLDER, base)
    if socket_mode:
        text = text.replace("socket_mode_enabled: false", "socket_mode_enabled: true")
    return text
