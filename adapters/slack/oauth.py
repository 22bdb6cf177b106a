"""Distribution by OAuth v2 (multi-workspace mode: `SLACK_CLIENT_ID` and `SLACK_CLIENT_SECRET`),
on Bolt's own OAuth flow and slack_sdk's stores:

* `GET /slack/install`: the install page, in the visitor's language (Accept-Language), with the
  "Add to Slack" link to Slack's v2 authorize URL (client id, the manifest's bot scopes, a state
  issued into `slack_oauth_states` and set in a cookie);
* `GET /slack/oauth_redirect`: the state checked (the browser's cookie and the store, used once),
  `oauth.v2.access` called on the configured Web API URL, the installation saved
  (`slack_installations`, `slack_bots`), and a success or failure page in the installer's language;
* `authorize`: each request's token from its workspace's installation (refreshed before it
  expires when token rotation is on), auth.test once per token and process;
* `app_uninstalled` / `tokens_revoked`: Bolt's built-in listeners delete what they must.
"""

from __future__ import annotations

import html
import logging
from pathlib import Path
from typing import Sequence

import yaml
from slack_bolt.authorization.async_authorize import AsyncInstallationStoreAuthorize
from slack_bolt.oauth.async_callback_options import AsyncCallbackOptions, AsyncFailureArgs, AsyncSuccessArgs
from slack_bolt.oauth.async_oauth_flow import AsyncOAuthFlow
from slack_bolt.oauth.async_oauth_settings import AsyncOAuthSettings
from slack_bolt.request.async_request import AsyncBoltRequest
from slack_bolt.response import BoltResponse
from slack_sdk.web.async_client import AsyncWebClient
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.i18n import normalize_language, translate

from adapters.slack.config import SlackConfig
from adapters.slack.installations import STATE_EXPIRATION_S, installation_store, oauth_state_store
from adapters.slack.manifest import MANIFEST_PATH

log = logging.getLogger("caredesk.slack")

INSTALL_PATH = "/slack/install"
REDIRECT_PATH = "/slack/oauth_redirect"
# Refresh a rotating token this long before it expires (Slack's tokens live 12 hours).
TOKEN_ROTATION_MINUTES = 120
# Why an install failed (Bolt's reasons), as the installer is told.
EXPIRED_REASONS = frozenset({"invalid_browser", "invalid_state"})


def manifest_bot_scopes(path: Path = MANIFEST_PATH) -> tuple[str, ...]:
    """The bot scopes the manifest asks for: the install link asks for the same."""
    manifest = yaml.safe_load(path.read_text(encoding="utf-8"))
    return tuple(manifest["oauth_config"]["scopes"]["bot"])


def manifest_redirect_url(base_url: str) -> str:
    return base_url.rstrip("/") + REDIRECT_PATH


def installer_language(request: AsyncBoltRequest, default: str) -> str:
    """The first language of the browser's Accept-Language that CareDesk speaks."""
    header = (request.headers.get("accept-language") or [""])[0]
    for part in header.split(","):
        tag = part.split(";")[0].strip()
        if tag and normalize_language(tag, "") != "":
            return normalize_language(tag, default)
    return default


def page(lang: str, title: str, paragraphs: Sequence[str], link: tuple[str, str] | None = None) -> str:
    """A small self-contained HTML page (no script, nothing fetched from elsewhere)."""
    body = "".join(f"<p>{html.escape(p)}</p>" for p in paragraphs)
    if link is not None:
        body += f'<p><a class="button" href="{html.escape(link[0], quote=True)}">{html.escape(link[1])}</a></p>'
    return (f'<!DOCTYPE html><html lang="{lang}"><head><meta charset="utf-8">'
            f'<meta name="viewport" content="width=device-width, initial-scale=1">'
            f"<title>{html.escape(title)}</title><style>body{{font-family:system-ui,sans-serif;max-width:40em;"
            f"margin:3em auto;padding:0 1em;line-height:1.5}}a.button{{display:inline-block;padding:.6em 1.2em;"
            f"background:#4A154B;color:#fff;border-radius:4px;text-decoration:none;font-weight:600}}</style>"
            f"</head><body><h1>{html.escape(title)}</h1>{body}</body></html>")


def html_response(status: int, text: str) -> BoltResponse:
    return BoltResponse(status=status, body=text, headers={"Content-Type": "text/html; charset=utf-8"})


class CareDeskOAuthFlow(AsyncOAuthFlow):
    """Bolt's OAuth flow, with CareDesk's install page in the visitor's language."""

    default_language = "en"
    contact_email = ""

    async def build_install_page_html(self, url: str, request: AsyncBoltRequest) -> str:
        lang = installer_language(request, self.default_language)
        return page(lang, translate(lang, "slack_install.title"),
                    [translate(lang, "slack_install.intro"), translate(lang, "slack_install.admin_note")],
                    (url, translate(lang, "slack_install.button")))


def build_oauth_flow(config: SlackConfig, client: AsyncWebClient, engine: AsyncEngine, *,
                     contact_email: str, base_url: str | None = None) -> CareDeskOAuthFlow:
    """The OAuth flow of multi-workspace mode, its installations and states in CareDesk's database."""
    assert config.client_id and config.client_secret
    installations = installation_store(config.client_id, engine)
    default_language = config.default_language

    async def succeeded(args: AsyncSuccessArgs) -> BoltResponse:
        lang = installer_language(args.request, default_language)
        team = args.installation.team_name or args.installation.team_id or ""
        # The team id, never a token: what staff need to bind it (`caredesk companies pending`).
        log.info("CareDesk was installed in Slack workspace %s (%s)", args.installation.team_id, team)
        return html_response(200, page(lang, translate(lang, "slack_install.done_title"),
                                       [translate(lang, "slack_install.done", workspace=team)]))

    async def failed(args: AsyncFailureArgs) -> BoltResponse:
        lang = installer_language(args.request, default_language)
        if args.reason == "access_denied":
            text = translate(lang, "slack_install.cancelled")
        elif args.reason in EXPIRED_REASONS:
            text = translate(lang, "slack_install.expired")
        else:
            text = translate(lang, "slack_install.failed", reason=args.reason, email=contact_email)
        log.warning("a Slack installation failed: %s", args.reason)
        return html_response(args.suggested_status_code,
                             page(lang, translate(lang, "slack_install.failed_title"), [text],
                                  (INSTALL_PATH, translate(lang, "slack_install.again"))))

    settings = AsyncOAuthSettings(
        client_id=config.client_id,
        client_secret=config.client_secret,
        scopes=list(manifest_bot_scopes()),
        redirect_uri=manifest_redirect_url(base_url) if base_url else None,
        install_path=INSTALL_PATH,
        redirect_uri_path=REDIRECT_PATH,
        authorization_url=config.authorize_url,
        installation_store=installations,
        installation_store_bot_only=True,
        token_rotation_expiration_minutes=TOKEN_ROTATION_MINUTES,
        state_store=oauth_state_store(engine),
        state_expiration_seconds=STATE_EXPIRATION_S,
        callback_options=AsyncCallbackOptions(success=succeeded, failure=failed),
        logger=log,
    )
    # Bolt's default authorize would refresh rotating tokens on slack.com whatever SLACK_API_URL
    # says, and call auth.test on every request: this one refreshes on the configured Web API and
    # calls auth.test once per token.
    settings.authorize = AsyncInstallationStoreAuthorize(
        logger=log, installation_store=installations, client_id=config.client_id,
        client_secret=config.client_secret, token_rotation_expiration_minutes=TOKEN_ROTATION_MINUTES,
        bot_only=True, cache_enabled=True, client=client)
    flow = CareDeskOAuthFlow(client=client, settings=settings, logger=log)
    flow.default_language = default_language
    flow.contact_email = contact_email
    return flow


def not_installed_message() -> str:
    """What a person of a workspace without an installation is told (their language is unknown
    then: all three)."""
    return "\n".join(translate(lang, "slack_install.not_installed") for lang in ("en", "fr", "nl"))
