"""The server's own settings: the file's `[server]` table and the CAREDESK_HOST, CAREDESK_PORT,
CAREDESK_WORKERS and CAREDESK_INSECURE_DEV_MODE variables, parsed and checked by the server
(adapters/server/config.py), never by the core."""

from __future__ import annotations

from pathlib import Path

import pytest

from adapters.server.config import ServerConfig
from adapters.server.limits import ConnectionLimits
from bot.domain.config import ConfigError, Settings, load_settings, settings_from_mapping

ROOT = Path(__file__).resolve().parents[1]


def test_defaults():
    assert ServerConfig.load(Settings(), {}) == ServerConfig("127.0.0.1", 3978, False, 0)


def test_the_file_gives_the_server_settings():
    settings = settings_from_mapping({"server": {"host": "0.0.0.0", "port": 8080, "workers": 2}})
    assert ServerConfig.load(settings, {}) == ServerConfig("0.0.0.0", 8080, False, 2)


def test_the_environment_beats_the_file():
    settings = settings_from_mapping({"server": {"host": "0.0.0.0", "port": 8080, "workers": 2,
                                                "insecure_dev_mode": False}})
    env = {"CAREDESK_HOST": "127.0.0.1", "CAREDESK_PORT": "4000", "CAREDESK_WORKERS": "0",
           "CAREDESK_INSECURE_DEV_MODE": "true"}
    assert ServerConfig.load(settings, env) == ServerConfig("127.0.0.1", 4000, True, 0)


def test_the_example_file_is_valid_for_the_server():
    example = load_settings(ROOT / "examples" / "caredesk.example.toml", environ={})
    assert ServerConfig.load(example, {}).port == 3978


@pytest.mark.parametrize("host,developer_mode", [("127.0.0.1", True), ("localhost", True), ("::1", True),
                                                 ("0.0.0.0", False), ("caredesk.example.com", False)])
def test_the_developer_mode_needs_a_loopback_address(host, developer_mode):
    assert ServerConfig(host=host, insecure_dev_mode=True).developer_mode is developer_mode
    assert not ServerConfig(host=host).developer_mode


@pytest.mark.parametrize("data,env,key", [
    ({"server": {"port": 70000}}, {}, "server.port"),
    ({"server": {"workers": 65}}, {}, "server.workers"),
    ({"server": {"insecure_dev_mode": "maybe"}}, {}, "server.insecure_dev_mode"),
    ({"server": {"host": ""}}, {}, "server.host"),
    ({"server": {"hots": "0.0.0.0"}}, {}, "server.hots"),
    ({}, {"CAREDESK_PORT": "http"}, "CAREDESK_PORT"),
    ({}, {"CAREDESK_WORKERS": "-1"}, "CAREDESK_WORKERS"),
    ({}, {"CAREDESK_INSECURE_DEV_MODE": "maybe"}, "CAREDESK_INSECURE_DEV_MODE"),
    ({"server": {"max_connections": 0}}, {}, "server.max_connections"),
    ({"server": {"idle_timeout": 0}}, {}, "server.idle_timeout"),
    ({"server": {"body_timeout": -1}}, {}, "server.body_timeout"),
    ({"server": {"body_timeout": "soon"}}, {}, "server.body_timeout"),
    ({"server": {"trusted_proxies": "127.0.0.1"}}, {}, "server.trusted_proxies"),
    ({"server": {"trusted_proxies": ["proxy.local"]}}, {}, "server.trusted_proxies"),
])
def test_a_bad_value_names_the_key_or_variable(data, env, key):
    with pytest.raises(ConfigError) as err:
        ServerConfig.load(settings_from_mapping(data), env)
    assert err.value.key == key
    assert f"'{key}'" in str(err.value)


def test_the_limits_on_strangers_are_settings():
    """adapters/server/limits.py: the connection cap and the head/idle and body timeouts."""
    settings = settings_from_mapping({"server": {"max_connections": 64, "idle_timeout": 5, "body_timeout": 7.5}})
    assert ServerConfig.load(settings, {}).limits == ConnectionLimits(64, 5.0, 7.5)
    assert ServerConfig().limits == ConnectionLimits() == ConnectionLimits(512, 15.0, 20.0)


def test_trusted_proxies_are_addresses():
    settings = settings_from_mapping({"server": {"trusted_proxies": ["127.0.0.1", "::1"]}})
    assert ServerConfig.load(settings, {}).trusted_proxies == frozenset({"127.0.0.1", "::1"})
    assert ServerConfig().trusted_proxies == frozenset()
