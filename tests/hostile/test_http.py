"""Hostile requests against both endpoints of the running server (POST /slack/events and
POST /api/messages): bad, stale and replayed Slack signatures, expired, forged and none-algorithm
JWTs, oversized bodies, malformed JSON and form bodies, unknown payload types.

Each gets a clear refusal (a 4xx with nothing done, or an acknowledgement that does nothing),
never a 5xx, and the store is exactly as it was (every table, processed events included)."""

from __future__ import annotations

import base64
import json
import time
import urllib.parse

import jwt
import pytest

from adapters.server.web import MAX_BODY_BYTES
from bot.protocol.ids import FormModal
from tests.hostile.conftest import ALL_TABLES, snapshot
from tests.slack.conftest import LOTTE, SIGNING_SECRET, TEAM, form_body, load_json, sign
from tests.teams.conftest import KID, ONE_TRANSPORT, channel_claims, unsigned_token
from tests.teams.conftest import sign as sign_jwt


def dm_event_body(text: str = "ticket", event_id: str = "EvHOSTILE1") -> str:
    body = load_json("payloads/event_callback.app_mention.bolt.json")
    sample = load_json("payloads/event_callback.message_im.docs.json")["event"]
    body.update(team_id=TEAM, api_app_id="A111", event_id=event_id, event_time=int(time.time()),
                event={**sample, "user": LOTTE, "channel": f"D{LOTTE}", "text": text,
                       "ts": f"{time.time():.6f}", "event_ts": f"{time.time():.6f}"})
    body.pop("enterprise_id", None)
    return json.dumps(body)


def _tampered_headers(body: str) -> dict[str, str]:
    return sign(body.replace("ticket", "tickez"))


def _v1_headers(body: str) -> dict[str, str]:
    headers = sign(body)
    headers["X-Slack-Signature"] = "v1=" + headers["X-Slack-Signature"][3:]
    return headers


def _ts_text_headers(body: str) -> dict[str, str]:
    headers = sign(body)
    headers["X-Slack-Request-Timestamp"] = "yesterday"
    return headers


# name -> headers for the body of a signed DM event that would start a ticket dialog
BAD_SIGNATURES = {
    "missing": lambda body: {},
    "wrong_secret": lambda body: sign(body, secret="not-the-signing-secret"),
    "stale_timestamp": lambda body: sign(body, timestamp=int(time.time()) - 6 * 60),
    "future_timestamp": lambda body: sign(body, timestamp=int(time.time()) + 6 * 60),
    "timestamp_not_a_number": _ts_text_headers,
    "signature_of_another_body": _tampered_headers,
    "unknown_version": _v1_headers,
    "empty_signature": lambda body: {**sign(body), "X-Slack-Signature": ""},
}


@ONE_TRANSPORT
@pytest.mark.parametrize("case", sorted(BAD_SIGNATURES))
async def test_slack_bad_signatures_get_401_and_change_nothing(both, case):
    before = await snapshot(both.store)
    body = dm_event_body()
    response = await both.slack.post(body, "application/json", headers=BAD_SIGNATURES[case](body), signed=False)
    assert response.status == 401, case
    assert (await response.json())["error"] == "invalid_signature"
    assert both.slack.fake.calls == []
    assert await snapshot(both.store) == before


@ONE_TRANSPORT
async def test_a_replayed_slack_event_has_one_effect(both):
    """The same body and signature sent again within five minutes (a replay, or Slack's retry)."""
    body = dm_event_body("ticket", "EvREPLAY1")
    headers = sign(body)
    first = await both.slack.post(body, "application/json", headers=headers, signed=False)
    after_first = await snapshot(both.store)
    assert first.status == 200 and len(both.slack.fake.messages()) == 1
    for extra in ({}, {"X-Slack-Retry-Num": "1", "X-Slack-Retry-Reason": "http_timeout"}):
        again = await both.slack.post(body, "application/json", headers={**headers, **extra}, signed=False)
        assert again.status == 200
    assert len(both.slack.fake.messages()) == 1, "the replay was answered a second time"
    assert await snapshot(both.store) == after_first


@ONE_TRANSPORT
async def test_a_replayed_slash_command_logs_time_once(both):
    """Slash commands carry no event id: a replay of the same signed request must not log the
    same time twice."""
    from tests.hostile.conftest import seed_tickets
    from tests.slack.conftest import SOFIE, reference

    numbers = await seed_tickets(both.desk)
    fields = dict(urllib.parse.parse_qsl(reference("payloads/slash_command.form.txt").read_text(), keep_blank_values=True))
    fields.update(command="/logtime", text=f"{numbers['lotte']} 1h teamviewer at 2026-11-25 10:00 confirm", user_id=SOFIE,
                  channel_id="C111", response_url=both.slack.fake.response_url(), trigger_id="111.42.replay")
    body = urllib.parse.urlencode(fields)
    headers = sign(body)
    for _ in range(3):
        response = await both.slack.post(body, "application/x-www-form-urlencoded", headers=headers, signed=False)
        assert response.status == 200
    assert len(await both.desk.store.list_time_entries()) == 1


@ONE_TRANSPORT
async def test_a_replayed_modal_submission_creates_one_ticket(both):
    from tests.slack.test_commands import TICKET_VALUES, opened_form

    await both.slack.command("/ticket")
    view = opened_form(both.slack)
    original = both.slack.post
    sent: list[int] = []

    async def twice(body, content_type, headers=None, signed=True, drain=True):
        fixed = {**sign(body), **(headers or {})}
        for _ in range(2):
            response = await original(body, content_type, headers=fixed, signed=False, drain=drain)
            sent.append(response.status)
        return response

    both.slack.post = twice
    try:
        await both.slack.submit(view, TICKET_VALUES)
    finally:
        both.slack.post = original
    assert sent == [200, 200]
    assert len(await both.desk.store.list_tickets()) == 1


# ---- bodies -----------------------------------------------------------------------------------------


def _oversized_json() -> str:
    return json.dumps({"type": "event_callback", "padding": "x" * (MAX_BODY_BYTES + 10)})


SLACK_BAD_BODIES = {
    # name: (body, content type, sign it)
    "malformed_json": ('{"type": "event_callback", "event": ', "application/json"),
    "json_array": ("[1, 2, 3]", "application/json"),
    "json_string": ('"event_callback"', "application/json"),
    "empty_body": ("", "application/json"),
    "unknown_top_level_type": ('{"type": "definitely_not_slack", "token": "x"}', "application/json"),
    "event_without_event": (json.dumps({"type": "event_callback", "team_id": TEAM, "event_id": "EvX1"}),
                            "application/json"),
    "unknown_event_type": (json.dumps({"type": "event_callback", "team_id": TEAM, "event_id": "EvX2",
                                       "event": {"type": "reaction_added", "user": LOTTE}}), "application/json"),
    "malformed_form_payload": ("payload=%7Bnot%20json", "application/x-www-form-urlencoded"),
    "form_without_payload": ("foo=bar&baz=", "application/x-www-form-urlencoded"),
    "form_payload_array": ("payload=" + urllib.parse.quote("[]"), "application/x-www-form-urlencoded"),
    "unknown_interactive_type": (form_body({"type": "weird_type", "team": {"id": TEAM}, "user": {"id": LOTTE}}),
                                 "application/x-www-form-urlencoded"),
    "block_actions_without_actions": (form_body({"type": "block_actions", "team": {"id": TEAM},
                                                 "user": {"id": LOTTE}, "actions": []}),
                                      "application/x-www-form-urlencoded"),
    "block_action_unknown_action_id": (form_body({"type": "block_actions", "team": {"id": TEAM},
                                                  "user": {"id": LOTTE}, "trigger_id": "1.2.3",
                                                  "container": {"type": "message", "channel_id": "DW111"},
                                                  "actions": [{"action_id": "not-ours", "type": "button",
                                                               "value": "x", "block_id": "b"}]}),
                                       "application/x-www-form-urlencoded"),
    "command_without_fields": ("command=%2Fticket", "application/x-www-form-urlencoded"),
    "binary_garbage": ("\x00\x01\x02\xff\xfe", "application/octet-stream"),
}


@ONE_TRANSPORT
@pytest.mark.parametrize("case", sorted(SLACK_BAD_BODIES))
async def test_slack_malformed_and_unknown_payloads_are_refused_without_5xx(both, case):
    body, content_type = SLACK_BAD_BODIES[case]
    before = await snapshot(both.store)
    response = await both.slack.post(body, content_type)
    assert response.status < 500, (case, response.status, await response.text())
    assert both.slack.fake.messages() == []
    after = await snapshot(both.store)
    if case == "block_action_unknown_action_id":
        # A well-formed, signed click is written to the inbox (its signature guards against a
        # replay) and done without effect.
        clicks = await both.store.list_inbound()
        assert [(i.kind, i.status, (i.dedup_key or "")[:11]) for i in clicks] == [("run_action", "done", "request:v0=")]
        assert len(after.pop("inbox")) == 1
        before.pop("inbox")
    assert after == before


@ONE_TRANSPORT
async def test_slack_invalid_utf8_is_a_400(both):
    raw = b'{"type": "event_callback", "x": "\xff\xfe"}'
    headers = {"Content-Type": "application/json", **sign(raw.decode("latin-1"))}
    # the signature is computed over the bytes Slack would send
    import hashlib
    import hmac

    ts = headers["X-Slack-Request-Timestamp"]
    headers["X-Slack-Signature"] = "v0=" + hmac.new(SIGNING_SECRET.encode(), f"v0:{ts}:".encode() + raw,
                                                    hashlib.sha256).hexdigest()
    response = await both.client.post("/slack/events", data=raw, headers=headers)
    assert response.status in (400, 401)  # slack_sdk's verifier refuses a body that is not UTF-8
    assert both.slack.fake.calls == []


@ONE_TRANSPORT
@pytest.mark.parametrize("signed", [True, False])
async def test_slack_oversized_body_is_413(both, signed):
    before = await snapshot(both.store)
    response = await both.slack.post(_oversized_json(), "application/json", signed=signed)
    assert response.status == 413
    assert await snapshot(both.store) == before


@ONE_TRANSPORT
async def test_slack_oversized_chunked_body_is_413(both):
    async def chunks():
        for _ in range(MAX_BODY_BYTES // 65536 + 2):
            yield b"x" * 65536

    response = await both.client.post("/slack/events", data=chunks(), headers={"Content-Type": "application/json"})
    assert response.status == 413


async def test_teams_oversized_body_is_413(both):
    before = await snapshot(both.store)
    activity = both.teams.activity("29:lotte", "x" * (MAX_BODY_BYTES + 10))
    response = await both.client.post("/api/messages", data=json.dumps(activity), headers={
        "Content-Type": "application/json", "Authorization": f"Bearer {both.teams.token()}"})
    assert response.status == 413
    assert both.teams.fake.sent() == []
    assert await snapshot(both.store) == before


# ---- JWTs -----------------------------------------------------------------------------------------------


def _hs256_with_public_key(bot) -> str:
    """Algorithm confusion: HS256 "signed" with the public key's PEM as the HMAC secret."""
    header = {"alg": "HS256", "typ": "JWT", "kid": KID}
    claims = channel_claims(bot.fake.service_url)
    from cryptography.hazmat.primitives import serialization

    pem = bot.fake.private_key.public_key().public_bytes(serialization.Encoding.PEM,
                                                         serialization.PublicFormat.SubjectPublicKeyInfo)

    def b64(data: bytes) -> str:
        return base64.urlsafe_b64encode(data).rstrip(b"=").decode()

    import hashlib
    import hmac

    signing_input = f"{b64(json.dumps(header).encode())}.{b64(json.dumps(claims).encode())}"
    signature = hmac.new(pem, signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{b64(signature)}"


def bad_token(bot, case: str, other_key) -> str | None:
    url, key, now = bot.fake.service_url, bot.fake.private_key, int(time.time())
    return {
        "expired": lambda: sign_jwt(channel_claims(url, exp=now - 600, nbf=now - 4000, iat=now - 4000), key),
        "not_yet_valid": lambda: sign_jwt(channel_claims(url, nbf=now + 3600, iat=now + 3600, exp=now + 7200), key),
        "forged_other_key": lambda: sign_jwt(channel_claims(url), other_key, kid=KID),
        "alg_none": lambda: unsigned_token(channel_claims(url)),
        "alg_none_no_signature_part": lambda: unsigned_token(channel_claims(url)).rstrip("."),
        "hs256_with_public_key": lambda: _hs256_with_public_key(bot),
        "wrong_audience": lambda: sign_jwt(channel_claims(url, aud="someone-else"), key),
        "empty": lambda: "",
        "garbage": lambda: "a.b.c",
        "missing": lambda: None,
    }[case]()


JWT_CASES = ["expired", "not_yet_valid", "forged_other_key", "alg_none", "alg_none_no_signature_part",
             "hs256_with_public_key", "wrong_audience", "empty", "garbage", "missing"]


@pytest.mark.parametrize("case", JWT_CASES)
async def test_teams_bad_jwts_get_401_and_change_nothing(both, other_rsa_key, case):
    before = await snapshot(both.store)
    activity = both.teams.activity("29:lotte", "ticket")
    token = bad_token(both.teams, case, other_rsa_key)
    status, body = await both.teams.post(activity, token=token if token else None,
                                         headers={"Authorization": "Bearer "} if token == "" else None)
    assert status == 401, (case, status, body)
    assert both.teams.fake.sent() == []
    assert await snapshot(both.store) == before


def test_the_forged_tokens_are_really_what_they_claim(rsa_key, other_rsa_key):
    """Guard the corpus itself: alg none has no signature, HS256 is HS256, the forged one fails."""
    assert jwt.get_unverified_header(unsigned_token({"a": 1}))["alg"] == "none"
    token = jwt.encode({"a": 1}, other_rsa_key, algorithm="RS256")
    with pytest.raises(jwt.InvalidSignatureError):
        jwt.decode(token, rsa_key.public_key(), algorithms=["RS256"])


TEAMS_BAD_BODIES = {
    "malformed_json": ('{"type": "message", "text": ', "application/json", 400),
    "json_array": ("[]", "application/json", 400),
    "json_without_type": ('{"text": "hello"}', "application/json", 400),
    "not_json_content_type": ("type=message", "application/x-www-form-urlencoded", 415),
    "empty_body": ("", "application/json", 400),
}


@pytest.mark.parametrize("case", sorted(TEAMS_BAD_BODIES))
async def test_teams_malformed_bodies_are_refused(both, case):
    body, content_type, expected = TEAMS_BAD_BODIES[case]
    before = await snapshot(both.store)
    response = await both.client.post("/api/messages", data=body.encode(), headers={
        "Content-Type": content_type, "Authorization": f"Bearer {both.teams.token()}"})
    assert response.status == expected, (case, response.status, await response.text())
    assert await snapshot(both.store) == before


def _unknown_activities(bot) -> dict[str, dict]:
    base = bot.activity("29:lotte", "hello")
    return {
        "unknown_type": {**base, "type": "somethingElse"},
        "typing": {**base, "type": "typing"},
        "invoke_unknown_name": {**bot.activity("29:lotte", None, kind="invoke", name="composeExtension/query"),
                                "value": {}},
        "invoke_card_action_without_action": {**bot.activity("29:lotte", None, kind="invoke",
                                                             name="adaptiveCard/action"), "value": {"action": {}}},
        "invoke_card_action_value_not_object": {**bot.activity("29:lotte", None, kind="invoke",
                                                               name="adaptiveCard/action"), "value": "nope"},
        "conversation_update_without_members": {**base, "type": "conversationUpdate"},
    }


@pytest.mark.parametrize("case", ["unknown_type", "typing", "invoke_unknown_name", "invoke_card_action_without_action",
                                  "invoke_card_action_value_not_object", "conversation_update_without_members"])
async def test_teams_unknown_activities_do_nothing(both, case):
    before = await snapshot(both.store, tuple(t for t in ALL_TABLES if t != "conversation_refs"))
    status, body = await both.teams.post(_unknown_activities(both.teams)[case])
    # botbuilder answers an invoke it has no handler for with 501 Not Implemented (the Bot
    # Framework's convention); nothing else may be a 5xx.
    assert status < 500 or (case == "invoke_unknown_name" and status == 501), (case, status, body)
    assert both.teams.fake.sent() == []
    assert await snapshot(both.store, tuple(t for t in ALL_TABLES if t != "conversation_refs")) == before


# ---- a stranger's malformed activity, deep JSON, malformed shapes after a valid signature/token ----------

DEEP = 100_000


def _deep_json(depth: int = DEEP) -> str:
    return "[" * depth + "]" * depth


def _tracebacks(caplog) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.exc_info]


STRANGER_ACTIVITIES = {
    # name: body (sent with no Authorization header)
    "conversation_a_string": lambda bot: json.dumps({**bot.activity("29:lotte", "ticket"), "conversation": "x"}),
    "deeply_nested": lambda bot: _deep_json(),
    "from_a_list": lambda bot: json.dumps({**bot.activity("29:lotte", "ticket"), "from": [1, 2]}),
}


STRANGER_BODIES = {**STRANGER_ACTIVITIES, "not_json": lambda bot: "{not json", "not_an_object": lambda bot: "[1]"}


@pytest.mark.parametrize("token", ["none", "forged", "expired", "alg_none"])
@pytest.mark.parametrize("case", sorted(STRANGER_BODIES))
async def test_teams_a_request_without_a_valid_token_is_401_before_its_body_is_parsed(both, caplog, other_rsa_key,
                                                                                       case, token):
    """No token or a bad one, whatever the body (even one that is not JSON: it is not read): a
    401 and one short log line, never a 400 that tells the body was parsed, never a 500."""
    before = await snapshot(both.store)
    headers = {"Content-Type": "application/json"}
    if token != "none":
        headers["Authorization"] = "Bearer " + bad_token(both.teams, {"forged": "forged_other_key"}.get(token, token),
                                                         other_rsa_key)
    response = await both.client.post("/api/messages", data=STRANGER_BODIES[case](both.teams).encode(),
                                      headers=headers)
    assert response.status == 401, (case, response.status, await response.text())
    assert _tracebacks(caplog) == []
    assert both.teams.fake.sent() == []
    assert await snapshot(both.store) == before


def _card_action(bot, value) -> dict:
    return {**bot.activity("29:lotte", None, kind="invoke", name="adaptiveCard/action"), "value": value}


MALFORMED_AFTER_TOKEN = {
    "deeply_nested": lambda bot: _deep_json(),
    "deeply_nested_inside_an_activity": lambda bot: json.dumps(bot.activity("29:lotte", "ticket"))[:-1]
    + ', "value": ' + _deep_json() + "}",
    "conversation_a_string": lambda bot: json.dumps({**bot.activity("29:lotte", "ticket"), "conversation": "x"}),
    "from_a_list": lambda bot: json.dumps({**bot.activity("29:lotte", "ticket"), "from": [1, 2]}),
    "text_an_object": lambda bot: json.dumps({**bot.activity("29:lotte", "ticket"), "text": {"a": 1}}),
    "execute_action_a_string": lambda bot: json.dumps(_card_action(bot, {"action": "Action.Execute"})),
    "execute_action_data_a_string": lambda bot: json.dumps(
        _card_action(bot, {"action": {"type": "Action.Execute", "verb": "x", "data": "nope"}})),
    "execute_verb_an_object": lambda bot: json.dumps(
        _card_action(bot, {"action": {"type": "Action.Execute", "verb": {"a": 1}}})),
    "service_url_a_number": lambda bot: json.dumps({**bot.activity("29:lotte", "ticket"), "serviceUrl": 42}),
    "service_url_missing": lambda bot: json.dumps({k: v for k, v in bot.activity("29:lotte", "ticket").items()
                                                   if k != "serviceUrl"}),
    "service_url_of_another_host": lambda bot: json.dumps({**bot.activity("29:lotte", "ticket"),
                                                           "serviceUrl": "https://evil.example/"}),
}


@pytest.mark.parametrize("case", sorted(MALFORMED_AFTER_TOKEN))
async def test_teams_malformed_activities_with_a_valid_token_are_400(both, caplog, case):
    before = await snapshot(both.store)
    response = await both.client.post("/api/messages", data=MALFORMED_AFTER_TOKEN[case](both.teams).encode(), headers={
        "Content-Type": "application/json", "Authorization": f"Bearer {both.teams.token()}"})
    # A service URL that is not the token's is not authenticated: 401; everything else is a 400.
    expected = 401 if case == "service_url_of_another_host" else 400
    assert response.status == expected, (case, response.status, await response.text())
    assert _tracebacks(caplog) == []
    assert both.teams.fake.sent() == []
    assert await snapshot(both.store) == before


def _view_submission(**view_fields) -> dict:
    body = load_json("payloads/view_submission.json")
    body["team"].pop("enterprise_id", None)
    body["team"].pop("enterprise_name", None)
    body["user"]["id"] = LOTTE
    # A CareDesk form (so that Bolt hands it to CareDesk's listener), its state malformed.
    body["view"].update(callback_id=FormModal("ticket").encode(), **view_fields)
    return body


SLACK_MALFORMED_SIGNED = {
    "deeply_nested_json": (_deep_json(), "application/json"),
    "deeply_nested_event": ('{"type": "event_callback", "event": ' + _deep_json() + "}", "application/json"),
    "deeply_nested_form_payload": ("payload=" + urllib.parse.quote(_deep_json()), "application/x-www-form-urlencoded"),
    "view_state_a_string": (form_body(_view_submission(state="x")), "application/x-www-form-urlencoded"),
    "view_state_values_a_list": (form_body(_view_submission(state={"values": [1]})),
                                 "application/x-www-form-urlencoded"),
    "view_state_block_a_string": (form_body(_view_submission(state={"values": {"module": "x"}})),
                                  "application/x-www-form-urlencoded"),
    "view_state_element_a_list": (form_body(_view_submission(state={"values": {"module": {"m": [1]}}})),
                                  "application/x-www-form-urlencoded"),
    "view_state_selected_option_a_string": (
        form_body(_view_submission(state={"values": {"kind": {"k": {"type": "static_select",
                                                                    "selected_option": "x"}}}})),
        "application/x-www-form-urlencoded"),
    "view_blocks_a_string": (form_body(_view_submission(blocks="x")), "application/x-www-form-urlencoded"),
    "view_private_metadata_an_object": (form_body(_view_submission(private_metadata={"a": 1})),
                                        "application/x-www-form-urlencoded"),
}


@ONE_TRANSPORT
@pytest.mark.parametrize("case", sorted(SLACK_MALFORMED_SIGNED))
async def test_slack_signed_malformed_bodies_are_400(both, caplog, case):
    body, content_type = SLACK_MALFORMED_SIGNED[case]
    before = await snapshot(both.store)
    response = await both.slack.post(body, content_type)
    assert response.status == 400, (case, response.status, await response.text())
    assert _tracebacks(caplog) == []
    assert both.slack.fake.calls == []
    assert await snapshot(both.store) == before
