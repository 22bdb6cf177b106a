"""manifest/slack/manifest.yaml: valid against Slack's own manifest schema (its $refs served from
the local copies, never the network), complete, and asking for no scope CareDesk does not use."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import yaml
from jsonschema import Draft7Validator
from referencing import Registry, Resource
from referencing.exceptions import NoSuchResource

from adapters.slack import render_manifest
from adapters.slack.manifest import MANIFEST_PATH, PLACEHOLDER
from tests.slack.conftest import SLACK_REF

SCHEMA_DIR = SLACK_REF / "manifest-schema"
REMOTE = "https://raw.githubusercontent.com/slackapi/manifest-schema/v0.5.0/schemas/"
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def validator() -> Draft7Validator:
    if not SCHEMA_DIR.exists():
        pytest.skip(f"Slack's manifest schema is missing at {SCHEMA_DIR} (CI puts shared/ beside the repo)")
    local = {REMOTE + p.name: json.loads(p.read_text()) for p in (SCHEMA_DIR / "schemas").glob("*.json")}

    def retrieve(uri: str) -> Resource:
        if uri not in local:
            raise NoSuchResource(uri)  # never fetched from the network
        return Resource.from_contents(local[uri])

    registry = Registry(retrieve=retrieve).with_resources(
        (uri, Resource.from_contents(contents)) for uri, contents in local.items())
    return Draft7Validator(json.loads((SCHEMA_DIR / "manifest.schema.json").read_text()), registry=registry)


def manifest(url: str = "https://caredesk.example.org") -> dict:
    return yaml.safe_load(render_manifest(url))


def test_the_schema_check_accepts_slacks_valid_example_and_refuses_the_invalid_one(validator):
    for version in ("v1", "v2"):
        folder = SCHEMA_DIR / "tests" / "manifests" / version
        assert not list(validator.iter_errors(json.loads((folder / "manifest.valid.json").read_text())))
        assert list(validator.iter_errors(json.loads((folder / "manifest.invalid.json").read_text())))


def test_the_manifest_file_and_the_rendered_one_are_valid(validator):
    raw = yaml.safe_load(MANIFEST_PATH.read_text())
    for candidate in (raw, manifest(), yaml.safe_load(render_manifest("https://h.example.com", socket_mode=True))):
        errors = [f"{list(e.absolute_path)}: {e.message}" for e in validator.iter_errors(candidate)]
        assert errors == []


def test_a_broken_manifest_is_refused(validator):
    broken = manifest()
    broken["features"]["shortcuts"][0]["name"] = "Create ticket from message"  # 26 > 24 characters
    assert list(validator.iter_errors(broken))


def test_every_request_url_goes_to_the_events_endpoint_of_the_given_host():
    text = render_manifest("https://bot.example.org/caredesk/")
    assert PLACEHOLDER not in text
    settings_lines = "\n".join(line for line in text.splitlines() if not line.lstrip().startswith("#"))
    urls = set(re.findall(r"https://\S+", settings_lines))
    assert urls == {"https://bot.example.org/caredesk/slack/events", "https://bot.example.org/caredesk/slack/oauth_redirect"}
    assert yaml.safe_load(text)["oauth_config"]["redirect_urls"] == ["https://bot.example.org/caredesk/slack/oauth_redirect"]
    data = yaml.safe_load(text)
    assert data["settings"]["event_subscriptions"]["request_url"] == "https://bot.example.org/caredesk/slack/events"
    assert data["settings"]["interactivity"]["request_url"] == "https://bot.example.org/caredesk/slack/events"
    assert all(c["url"] == "https://bot.example.org/caredesk/slack/events" for c in data["features"]["slash_commands"])
    assert data["settings"]["socket_mode_enabled"] is False
    assert yaml.safe_load(render_manifest("https://h.example.com", socket_mode=True))["settings"]["socket_mode_enabled"]


@pytest.mark.parametrize("bad", ["http://h.example.com", "h.example.com", "https://", "ftp://h", "https://h/?x=1"])
def test_a_url_that_slack_would_refuse_is_refused(bad):
    with pytest.raises(ValueError):
        render_manifest(bad)


def test_the_manifest_declares_what_the_channel_handles_and_no_more():
    data = manifest()
    features = data["features"]
    assert features["app_home"] == {"home_tab_enabled": True, "messages_tab_enabled": True,
                                    "messages_tab_read_only_enabled": False}
    assert {c["command"] for c in features["slash_commands"]} == {"/ticket", "/tickets", "/quote", "/escalate",
                                                                  "/logtime", "/caredesk"}
    assert features["shortcuts"] == [{"name": "Create ticket", "type": "message",
                                      "callback_id": "create_ticket_from_message",
                                      "description": features["shortcuts"][0]["description"]}]
    # app_uninstalled and tokens_revoked: Bolt's token revocation listeners (multi-workspace mode).
    assert set(data["settings"]["event_subscriptions"]["bot_events"]) == {"app_home_opened", "app_mention", "message.im",
                                                                          "app_uninstalled", "tokens_revoked"}
    assert data["settings"]["interactivity"]["is_enabled"] is True
    # Scopes: exactly those of the Web API methods and events the channel uses.
    used = {
        "chat:write": "chat_postMessage", "im:write": "conversations_open", "users:read": "users_info",
        "users:read.email": "users_info", "commands": "app.command(", "app_mentions:read": '"app_mention"',
        "im:history": '"message"',
    }
    source = "".join(path.read_text() for path in sorted((ROOT / "adapters" / "slack").glob("*.py")))
    for scope, evidence in used.items():
        assert evidence in source, (scope, evidence)
    assert set(data["oauth_config"]["scopes"]["bot"]) == set(used)
    from adapters.slack.listeners import SHORTCUT_CREATE_TICKET

    assert features["shortcuts"][0]["callback_id"] == SHORTCUT_CREATE_TICKET
