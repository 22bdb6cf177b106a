"""The portal page's door: who gets in (the portal's signed token, then the session cookie) and
what everybody else sees (a plain 401 page, nothing else), the 503 without a secret, and the
headers that keep the page in the portals allowed to frame it."""

from __future__ import annotations

import time

import pytest

from adapters.portal.config import PortalConfig
from bot.domain.config import ConfigError, Settings
from tests.portal.conftest import EMMA, SECRET, portal_token


async def get_page(server, token: str | None = None, **headers: str):
    params = {"token": token} if token is not None else {}
    async with server.http.get(server.url("/portal/chat"), params=params, headers=headers,
                               allow_redirects=False) as response:
        return response.status, dict(response.headers), await response.text(), response.cookies


BAD_TOKENS = {
    "forged": lambda: portal_token(secret="another-secret-of-enough-length-000000"),
    "expired": lambda: portal_token(issued=time.time() - 3600),
    "wrong audience": lambda: portal_token(aud="someone-else"),
    "lives over 15 minutes": lambda: portal_token(lifetime=16 * 60),
    "not an e-mail": lambda: portal_token(sub="emma"),
    "not a token": lambda: "not.a.token",
    "unsigned": lambda: portal_token().rsplit(".", 1)[0] + ".",
}


@pytest.mark.parametrize("kind", sorted(BAD_TOKENS))
async def test_a_bad_token_gets_a_plain_401_page_and_nothing_else(sqlite_store, serve_portal, kind):
    server = await serve_portal(sqlite_store)
    status, headers, page, cookies = await get_page(server, BAD_TOKENS[kind](), **{"Accept-Language": "fr-BE,fr;q=0.9"})
    assert status == 401
    assert "Veuillez vous reconnecter" in page and "portail client" in page  # the browser's language
    assert "<script" not in page and "data-token" not in page and "webchat" not in page
    assert "caredesk_portal" not in cookies
    assert "frame-ancestors 'self'" in headers["Content-Security-Policy"]


async def test_no_token_and_no_session_is_a_401(sqlite_store, serve_portal):
    server = await serve_portal(sqlite_store)
    status, _, page, _ = await get_page(server, **{"Accept-Language": "nl"})
    assert status == 401 and "Deze chatlink is niet geldig" in page


async def test_a_valid_token_opens_the_page_and_a_session(sqlite_store, serve_portal):
    server = await serve_portal(sqlite_store)
    status, headers, page, cookies = await get_page(server, portal_token(lang="fr"))
    assert status == 200
    assert '<script src="/portal/static/webchat.js"></script>' in page
    assert 'data-locale="fr-FR"' in page and "<html lang=\"fr\">" in page
    policy = headers["Content-Security-Policy"]
    assert "script-src 'self';" in policy and "frame-ancestors 'self'" in policy and "unsafe-eval" not in policy
    cookie = cookies["caredesk_portal"]
    assert cookie["httponly"] and cookie["secure"] and cookie["samesite"] == "Lax" and cookie["path"] == "/portal/"
    # The session alone opens the page again (a reload, another tab), as the same person.
    server.http.cookie_jar.clear()
    async with server.http.get(server.url("/portal/chat"), cookies={"caredesk_portal": cookie.value}) as again:
        assert again.status == 200
        assert 'data-user-id="emma.wilson@atelier-lumiere.be"' in await again.text()


async def test_an_expired_token_with_the_same_persons_session_still_opens(sqlite_store, serve_portal):
    server = await serve_portal(sqlite_store)
    _, _, _, cookies = await get_page(server, portal_token())
    session = cookies["caredesk_portal"].value
    server.http.cookie_jar.clear()
    expired = portal_token(issued=time.time() - 3600)
    async with server.http.get(server.url("/portal/chat"), params={"token": expired},
                               cookies={"caredesk_portal": session}) as response:
        assert response.status == 200
    someone_else = portal_token("lotte.peeters@brasseriedeklok.be", issued=time.time() - 3600)
    async with server.http.get(server.url("/portal/chat"), params={"token": someone_else},
                               cookies={"caredesk_portal": session}) as response:
        assert response.status == 401
    forged = portal_token(secret="another-secret-of-enough-length-000000")
    async with server.http.get(server.url("/portal/chat"), params={"token": forged},
                               cookies={"caredesk_portal": session}) as response:
        assert response.status == 401


async def test_a_forged_session_cookie_is_refused(sqlite_store, serve_portal):
    server = await serve_portal(sqlite_store)
    forged = portal_token(aud="caredesk-portal-session")  # signed with the portal's key, not CareDesk's
    async with server.http.get(server.url("/portal/chat"), cookies={"caredesk_portal": forged}) as response:
        assert response.status == 401


async def test_the_allowed_origins_may_frame_the_page(sqlite_store, serve_portal):
    settings = Settings(adapter_tables={"portal": {"allowed_origins": ["https://portal.caresolutions.be"]}})
    server = await serve_portal(sqlite_store, settings=settings)
    status, headers, _, cookies = await get_page(server, portal_token())
    assert status == 200
    assert headers["Content-Security-Policy"].endswith("frame-ancestors 'self' https://portal.caresolutions.be")
    assert cookies["caredesk_portal"]["samesite"] == "None"
    assert "Partitioned" in headers["Set-Cookie"]


async def test_without_a_secret_the_portal_answers_503_and_the_rest_runs_on(sqlite_store, serve_portal):
    server = await serve_portal(sqlite_store, env={})
    status, _, page, _ = await get_page(server, portal_token())
    assert status == 503 and "not available" in page
    async with server.http.post(server.url("/portal/v3/directline/conversations"),
                                headers={"Authorization": "Bearer " + portal_token()}) as response:
        assert response.status == 503
    async with server.http.get(server.url("/healthz")) as response:
        assert response.status == 200


async def test_the_bundle_is_served_compressed(sqlite_store, serve_portal):
    server = await serve_portal(sqlite_store)
    async with server.http.get(server.url("/portal/static/webchat.js"), headers={"Accept-Encoding": "gzip"}) as r:
        body = await r.read()
        assert r.status == 200 and r.headers["Content-Encoding"] == "gzip"
        assert r.headers["Content-Type"].startswith("application/javascript")
        assert b"renderWebChat" in body and int(r.headers["Content-Length"]) < 1_200_000
    async with server.http.get(server.url("/portal/static/..%2Fconfig.py")) as r:
        assert r.status == 404


def test_settings_are_checked():
    assert PortalConfig.from_settings(Settings(), {}).enabled is False
    assert PortalConfig.from_settings(Settings(), {"PORTAL_SIGNING_SECRET": SECRET}).enabled is True
    with pytest.raises(ConfigError, match="PORTAL_SIGNING_SECRET"):
        PortalConfig.from_settings(Settings(), {"PORTAL_SIGNING_SECRET": "short"})
    with pytest.raises(ConfigError, match="portal.signing_secret"):
        PortalConfig.from_settings(Settings(adapter_tables={"portal": {"signing_secret": "x"}}), {})
    with pytest.raises(ConfigError, match="portal.allowed_origins"):
        PortalConfig.from_settings(Settings(adapter_tables={"portal": {"allowed_origins": ["https://a.be/path"]}}), {})
    with pytest.raises(ConfigError, match="portal.allowed_origins"):
        PortalConfig.from_settings(Settings(adapter_tables={"portal": {"allowed_origins": ["* 'unsafe-inline'"]}}), {})
    env = {"PORTAL_ALLOWED_ORIGINS": "https://a.example https://b.example:8443"}
    assert PortalConfig.from_settings(Settings(), env).allowed_origins == ("https://a.example", "https://b.example:8443")
    assert EMMA
