"""Request verification on POST /slack/events: every request signed with SLACK_SIGNING_SECRET,
a timestamp at most five minutes old; anything else is 401 and nothing happens. Slack's own
2018 signing example is stale now, and reproduces exactly with a frozen clock."""

from __future__ import annotations

import json
import time

import pytest
from slack_sdk.signature import SignatureVerifier

from tests.slack.conftest import (
    LOTTE,
    SIGNING_SECRET,
    load_json,
    reference,
    sign,
    slack_config,
    start_env,
)


class FrozenClock:
    def __init__(self, now: float) -> None:
        self.value = now

    def now(self) -> float:
        return self.value


def nothing_happened(env) -> bool:
    return env.fake.calls == [] and not env.channel.pending


async def test_url_verification_is_answered(env):
    body = json.dumps(load_json("payloads/url_verification.json"))
    response = await env.post(body, "application/json")
    assert response.status == 200
    assert await response.json() == {"challenge": "3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P"}


@pytest.mark.parametrize("case", ["bad", "missing", "missing_timestamp", "stale", "future", "not_a_number", "wrong_secret"])
async def test_unsigned_or_badly_signed_requests_get_401_and_nothing_happens(env, case):
    body = json.dumps({**load_json("payloads/event_callback.message_im.docs.json")})
    headers = sign(body)
    if case == "bad":
        headers["X-Slack-Signature"] = "v0=" + "0" * 64
    elif case == "missing":
        del headers["X-Slack-Signature"]
    elif case == "missing_timestamp":
        del headers["X-Slack-Request-Timestamp"]
    elif case == "stale":
        headers = sign(body, int(time.time()) - 6 * 60)
    elif case == "future":
        headers = sign(body, int(time.time()) + 6 * 60)
    elif case == "not_a_number":
        headers["X-Slack-Request-Timestamp"] = "yesterday"
    elif case == "wrong_secret":
        headers = sign(body, secret="not-the-secret")
    response = await env.post(body, "application/json", headers=headers, signed=False)
    assert response.status == 401
    assert (await response.json())["error"] == "invalid_signature"
    assert nothing_happened(env)


async def test_a_body_changed_after_signing_is_rejected(env):
    body = json.dumps(load_json("payloads/url_verification.json"))
    headers = sign(body)
    response = await env.post(body.replace("3eZb", "XXXX"), "application/json", headers=headers, signed=False)
    assert response.status == 401


async def test_a_timestamp_just_inside_five_minutes_is_accepted(env):
    body = json.dumps(load_json("payloads/url_verification.json"))
    response = await env.post(body, "application/json", headers=sign(body, int(time.time()) - 4 * 60), signed=False)
    assert response.status == 200


def test_slacks_documented_example_reproduces_with_a_frozen_clock():
    vector = load_json("signing/slack_signing_vector.json")
    body = reference("signing/slash_command_body_from_signing_vector.txt").read_text()
    assert body == vector["body"]
    frozen = SignatureVerifier(vector["signing_secret"], clock=FrozenClock(int(vector["timestamp"])))
    assert frozen.generate_signature(timestamp=vector["timestamp"], body=body) == vector["expected_signature"]
    assert frozen.is_valid_request(body, vector["headers"])
    # With the real clock the same request is five minutes too old, many times over.
    assert not SignatureVerifier(vector["signing_secret"]).is_valid_request(body, vector["headers"])


async def _vector_env(sqlite_store, fake_slack, clock=None):
    vector = load_json("signing/slack_signing_vector.json")
    config = slack_config(fake_slack, signing_secret=vector["signing_secret"])
    options = {"signature_clock": clock} if clock else {}
    return vector, await start_env(sqlite_store, fake_slack, config, **options)


async def test_the_2018_example_is_rejected_as_stale_by_the_server(sqlite_store, fake_slack):
    vector, env = await _vector_env(sqlite_store, fake_slack)
    try:
        response = await env.post(vector["body"], "application/x-www-form-urlencoded", headers=vector["headers"],
                                  signed=False)
        assert response.status == 401
        assert nothing_happened(env)
    finally:
        await env.client.close()


async def test_the_2018_example_is_accepted_when_the_clock_is_frozen_at_its_time(sqlite_store, fake_slack):
    vector, env = await _vector_env(sqlite_store, fake_slack, FrozenClock(int(vector_timestamp())))
    answered: list[tuple[str, tuple]] = []

    async def respond(response_url, replies):
        # The example's response_url is Slack's real one: record instead of calling it.
        answered.append((response_url, tuple(replies)))
        return True

    env.channel.messenger.respond = respond
    try:
        response = await env.post(vector["body"], "application/x-www-form-urlencoded", headers=vector["headers"],
                                  signed=False)
        # Verified: the command (one CareDesk does not know) is acknowledged and answered with help.
        assert response.status == 200
        assert [c.params.get("user") for c in env.fake.of("users.info")] == ["U2CERLKJA"]
        assert len(answered) == 1
        url, replies = answered[0]
        assert url.startswith("https://hooks.slack.com/commands/T1DC2JH3J/")
        assert any("/ticket" in getattr(r, "text", "") for r in replies)
    finally:
        await env.client.close()


def vector_timestamp() -> str:
    return load_json("signing/slack_signing_vector.json")["timestamp"]


async def test_not_configured_answers_503_and_the_server_runs_on(sqlite_store, fake_slack):
    env = await start_env(sqlite_store, fake_slack, slack_config(fake_slack, signing_secret=None))
    try:
        body = json.dumps(load_json("payloads/url_verification.json"))
        response = await env.post(body, "application/json")
        assert response.status == 503
        payload = await response.json()
        assert payload["error"] == "slack_not_configured" and "SLACK_SIGNING_SECRET" in payload["message"]
        assert (await env.client.get("/healthz")).status == 200
        assert fake_slack.calls == []
    finally:
        await env.client.close()


async def test_no_bot_token_answers_503(sqlite_store, fake_slack):
    env = await start_env(sqlite_store, fake_slack, slack_config(fake_slack, bot_token=None))
    try:
        response = await env.post("{}", "application/json")
        assert response.status == 503
        assert "SLACK_BOT_TOKEN" in (await response.json())["message"]
    finally:
        await env.client.close()


async def test_insecure_dev_mode_without_a_secret_accepts_unsigned_requests(sqlite_store, fake_slack):
    config = slack_config(fake_slack, signing_secret=None, insecure_dev_mode=True)
    env = await start_env(sqlite_store, fake_slack, config)
    try:
        response = await env.dm("hello", signed=False)
        assert response.status == 200
        assert env.fake.last_message().params["channel"] == f"D{LOTTE}"
    finally:
        await env.client.close()


async def test_insecure_dev_mode_still_checks_a_configured_secret(sqlite_store, fake_slack):
    config = slack_config(fake_slack, insecure_dev_mode=True)
    env = await start_env(sqlite_store, fake_slack, config)
    try:
        response = await env.dm("hello", signed=False)
        assert response.status == 401
    finally:
        await env.client.close()


def test_the_secret_in_these_tests_is_not_slacks_example():
    assert SIGNING_SECRET != load_json("signing/slack_signing_vector.json")["signing_secret"]
