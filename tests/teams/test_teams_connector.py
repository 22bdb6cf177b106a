"""The Bot Connector calls of a turn (its answers) go over the event loop on both transports: no
`requests` session in a worker thread per turn (botbuilder's default, with a user-token client
built for every turn, a third of its CPU per Teams message in the benchmark). botbuilder's
answers share one kept-alive connection; the Agents SDK opens a session per turn (its own design)."""

from __future__ import annotations

import pytest
import requests

from tests.teams.conftest import OUTBOUND_TOKEN, transport_module


async def test_answers_go_over_the_event_loop_on_a_kept_connection(bot, monkeypatch):
    # The first message fetches the signing keys (botbuilder does it with requests, in a thread).
    assert (await bot.post(bot.activity("29:lotte", "help")))[0] == 200
    first = len(bot.fake.sent("POST"))

    def refuse(*args, **kwargs):
        raise AssertionError("a connector call went through requests")

    monkeypatch.setattr(requests.Session, "request", refuse)
    for text in ("tickets", "help", "quote"):
        status, body = await bot.post(bot.activity("29:lotte", text))
        assert status == 200, body
    posts = bot.fake.sent("POST")[first:]
    assert len(posts) >= 3
    assert all(p["authorization"] == f"Bearer {OUTBOUND_TOKEN}" for p in posts)
    if bot.fake.transport == "botbuilder":
        peers = {p["peer"] for p in posts}
        assert len(peers) == 1, f"each answer opened a connection of its own: {peers}"


async def test_the_user_token_client_is_built_only_when_used(bot, monkeypatch):
    if bot.fake.transport != "botbuilder":
        pytest.skip("a botbuilder matter: the Agents SDK builds its user-token client once, from its settings")
    from botframework.connector.auth import _user_token_client_impl

    built = []
    original = _user_token_client_impl._UserTokenClientImpl.__init__
    monkeypatch.setattr(_user_token_client_impl._UserTokenClientImpl, "__init__",
                        lambda self, *a, **k: built.append(a) or original(self, *a, **k))
    for text in ("help", "tickets"):
        assert (await bot.post(bot.activity("29:lotte", text)))[0] == 200
    assert built == []


async def test_closing_the_transport_closes_its_connections(bot):
    assert (await bot.post(bot.activity("29:lotte", "help")))[0] == 200
    await bot.teams.transport.close()
    # A turn after a close (a restarted worker loop) opens what it needs again.
    assert (await bot.post(bot.activity("29:lotte", "help")))[0] == 200
    assert len(bot.fake.sent("POST")) >= 2


async def test_a_connector_answer_streams_its_body_in_chunks():
    """msrest may ask the response for its body as a stream (downloads): the body read whole is
    handed out in chunks, each to the callback, in order."""
    from types import SimpleNamespace

    _AiohttpResponse = transport_module("botbuilder")._AiohttpResponse  # a skip without botbuilder (not on CI)
    from msrest.universal_http import ClientRequest

    raw = SimpleNamespace(status=200, headers={"Content-Type": "application/octet-stream"}, reason="OK")
    body = bytes(range(256)) * 100
    response = _AiohttpResponse(ClientRequest("GET", "http://127.0.0.1/x"), raw, body)
    seen = []
    chunks = [c async for c in response.stream_download(1000, lambda chunk, resp: seen.append((len(chunk), resp)))]
    assert b"".join(chunks) == body and [len(c) for c in chunks] == [1000] * 25 + [600]
    assert seen == [(len(c), raw) for c in chunks]
    assert b"".join([c async for c in response.stream_download()]) == body
