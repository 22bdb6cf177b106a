"""Slack's own settings: the file's `[slack]` table and the SLACK_* variables, parsed and checked
by the channel (adapters/slack/config.py), never by the core."""

from __future__ import annotations

import pytest

from adapters.slack.config import DEFAULT_API_URL, SlackConfig
from bot.domain.config import ConfigError, Settings, settings_from_mapping

ENVIRONMENT = {
    "SLACK_BOT_TOKEN": "xoxb-s3cr3t-bot",
    "SLACK_SIGNING_SECRET": "s3cr3t-signing",
    "SLACK_APP_TOKEN": "xapp-s3cr3t-app",
}


def test_secrets_come_from_the_environment_and_never_show():
    config = SlackConfig.load(Settings(), ENVIRONMENT)
    assert (config.bot_token, config.signing_secret, config.app_token) == (
        "xoxb-s3cr3t-bot", "s3cr3t-signing", "xapp-s3cr3t-app")
    for secret in ENVIRONMENT.values():
        assert secret not in repr(config) and secret not in str(config)


def test_defaults_without_file_or_environment():
    config = SlackConfig.load(Settings(), {})
    assert (config.bot_token, config.signing_secret, config.app_token) == (None, None, None)
    assert config.api_url == DEFAULT_API_URL
    assert config.http_problem == "SLACK_BOT_TOKEN (or SLACK_CLIENT_ID and SLACK_CLIENT_SECRET) is not set"


def test_the_environment_beats_the_file():
    settings = settings_from_mapping({"slack": {"api_url": "http://file.example/api"}})
    assert SlackConfig.load(settings, {}).api_url == "http://file.example/api/"  # the slash slack_sdk needs
    assert SlackConfig.load(settings, {"SLACK_API_URL": "http://env.example/api/"}).api_url == "http://env.example/api/"


def test_the_server_and_language_settings_reach_slack():
    settings = Settings(default_language="nl")
    config = SlackConfig.load(settings, {"SLACK_BOT_TOKEN": "xoxb-1"}, insecure_dev_mode=True, worker_processes=2)
    assert (config.insecure_dev_mode, config.worker_processes, config.default_language) == (True, 2, "nl")
    assert config.http_problem is None  # the developer mode needs no signing secret


def test_an_unknown_key_in_slack_is_refused_by_slack_with_its_name():
    settings = settings_from_mapping({"slack": {"api_ulr": "http://x/api/"}})
    with pytest.raises(ConfigError) as err:
        SlackConfig.load(settings, {})
    assert err.value.key == "slack.api_ulr"
    assert "'slack.api_ulr'" in str(err.value) and "api_url" in str(err.value)


@pytest.mark.parametrize("key,variable", [("bot_token", "SLACK_BOT_TOKEN"), ("signing_secret", "SLACK_SIGNING_SECRET"),
                                          ("app_token", "SLACK_APP_TOKEN"), ("SLACK_BOT_TOKEN", "SLACK_BOT_TOKEN")])
def test_a_secret_in_slack_is_refused_with_the_variable_to_use(key, variable):
    settings = settings_from_mapping({"slack": {key: "s3cr3t"}})
    with pytest.raises(ConfigError) as err:
        SlackConfig.load(settings, {})
    assert err.value.key == f"slack.{key}"
    assert variable in str(err.value) and "environment" in str(err.value) and "s3cr3t" not in str(err.value)


def test_a_bad_api_url_in_the_file_names_the_key():
    with pytest.raises(ConfigError) as err:
        SlackConfig.load(settings_from_mapping({"slack": {"api_url": 42}}), {})
    assert err.value.key == "slack.api_url"
