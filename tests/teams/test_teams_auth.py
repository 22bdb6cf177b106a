"""Every request to /api/messages carries a Bot Framework JWT: whatever is wrong with it, the
answer is 401 (never 500) and nothing happens."""

from __future__ import annotations

import time

import pytest

from tests.teams.conftest import KID, channel_claims, sign, unsigned_token


def _token(bot, case: str, other_rsa_key) -> str | None:
    url = bot.fake.service_url
    key = bot.fake.private_key
    now = int(time.time())
    if case == "missing":
        return None
    if case == "expired":
        return sign(channel_claims(url, exp=now - 3600, nbf=now - 7200, iat=now - 7200), key)
    if case == "wrong_audience":
        return sign(channel_claims(url, aud="11111111-2222-3333-4444-555555555555"), key)
    if case == "wrong_issuer":
        return sign(channel_claims(url, iss="https://login.evil.example"), key)
    if case == "unknown_kid":
        return sign(channel_claims(url), other_rsa_key, kid="not-a-published-key")
    if case == "alg_none":
        return unsigned_token(channel_claims(url))
    if case == "bad_signature":
        return sign(channel_claims(url), other_rsa_key, kid=KID)
    if case == "wrong_service_url":
        return sign(channel_claims("https://smba.trafficmanager.net/elsewhere/"), key)
    if case == "garbage":
        return "not.a.jwt"
    raise AssertionError(case)


CASES = ["missing", "expired", "wrong_audience", "wrong_issuer", "unknown_kid", "alg_none", "bad_signature",
         "wrong_service_url", "garbage"]


@pytest.mark.parametrize("case", CASES)
async def test_bad_tokens_get_401_and_nothing_happens(bot, other_rsa_key, case):
    activity = bot.activity("29:lotte", "ticket")
    status, body = await bot.post(activity, token=_token(bot, case, other_rsa_key))
    assert status == 401, (case, body)
    assert body["error"] == "unauthorized"
    assert bot.fake.sent() == [] and [r for r in bot.fake.requests if r["kind"] == "member"] == []
    assert await bot.desk.store.get_conversation_ref("msteams", "aad-lotte") is None
    assert await bot.desk.store.is_event_processed("msteams", activity["id"]) is False


async def test_bad_scheme_and_store_untouched_on_both_backends(bot_on_both):
    bot = bot_on_both
    status, _ = await bot.post(bot.activity("29:lotte", "help"), token=None,
                               headers={"Authorization": f"Basic {bot.token()}"})
    assert status == 401
    assert await bot.desk.store.get_conversation_ref("msteams", "aad-lotte") is None
    status, _ = await bot.post(bot.activity("29:lotte", "help"))
    assert status == 200
    assert await bot.desk.store.get_conversation_ref("msteams", "aad-lotte") is not None


async def test_signing_keys_are_fetched_once_and_off_the_event_loop(bot):
    import asyncio

    # The fake key server runs on the same event loop as CareDesk: a key fetch that blocked the
    # loop could never be answered. Make it slow and check the server keeps serving meanwhile.
    bot.fake.key_delay = 0.5
    request = asyncio.ensure_future(bot.post(bot.activity("29:lotte", "help")))
    await asyncio.sleep(0.1)
    started = asyncio.get_running_loop().time()
    health = await bot.client.get("/healthz")
    assert health.status == 200 and asyncio.get_running_loop().time() - started < 0.3
    assert not request.done()
    assert (await request)[0] == 200
    for _ in range(2):
        assert (await bot.post(bot.activity("29:lotte", "help")))[0] == 200
    assert bot.fake.key_fetches == 1  # cached


async def test_unreachable_key_server_is_503_not_500(sqlite_store, fake_bf):
    from tests.teams.conftest import start_bot, teams_config

    config = teams_config(fake_bf, openid_metadata_url="http://127.0.0.1:9/openid")
    bot = await start_bot(sqlite_store, fake_bf, config=config)
    try:
        status, body = await bot.post(bot.activity("29:lotte", "help"))
        assert status == 503 and body["error"] == "auth_unavailable"
        assert bot.fake.sent() == []
    finally:
        await bot.client.close()


async def test_the_key_check_runs_on_the_loop_once_the_sdk_caches_the_keys(bot, monkeypatch):
    """botbuilder's token check goes to a thread (with a loop of its own) only while it may fetch
    the keys: once they are cached, fresh, it runs on the server's loop (a thread per request
    cost the botbuilder transport a third of its Teams throughput in the benchmark)."""
    if bot.fake.transport != "botbuilder":
        pytest.skip("a botbuilder matter: the Agents SDK transport fetches keys with aiohttp")
    from adapters.teams import botbuilder_transport

    threaded = []
    original = botbuilder_transport._isolated
    monkeypatch.setattr(botbuilder_transport, "_isolated", lambda *a: threaded.append(a) or original(*a))
    assert (await bot.post(bot.activity("29:lotte", "help")))[0] == 200
    assert threaded  # the first check fetched the keys, in a thread
    threaded.clear()
    for _ in range(3):
        assert (await bot.post(bot.activity("29:lotte", "help")))[0] == 200
    assert threaded == [] and bot.fake.key_fetches == 1
    # A token naming a key it does not hold goes to the thread again (botbuilder may re-fetch).
    status, _ = await bot.post(bot.activity("29:lotte", "help"), token=sign(
        channel_claims(bot.fake.service_url), bot.fake.private_key, kid="rolled-over-key"))
    assert status == 401 and threaded


async def test_a_machine_up_for_less_than_five_minutes_accepts_teams(bot, monkeypatch):
    """The monotonic clock starts at the machine's boot: on a container or VM booted a minute ago
    it reads about 60. A key cache that took "never fetched" for "fetched at 0" refused every
    Teams message with 401 for the first five minutes after boot (found by the benchmark)."""
    import time as time_module

    base = time_module.monotonic()
    monkeypatch.setattr(time_module, "monotonic", lambda: time_module.perf_counter() - base + 42.0)
    assert time_module.monotonic() < 300
    status, body = await bot.post(bot.activity("29:lotte", "help"))
    assert status == 200, body
    assert bot.fake.key_fetches == 1
