"""`[metrics]`: where GET /metrics is served, checked at start-up like every adapter's section."""

from __future__ import annotations

from pathlib import Path

import pytest

from adapters.server.config import MetricsConfig
from adapters.server.observability import request_kind
from bot.domain.config import ConfigError, load_settings, settings_from_mapping

ROOT = Path(__file__).resolve().parents[1]


def test_defaults_and_the_example_file():
    assert MetricsConfig.load(settings_from_mapping({})) == MetricsConfig(0, "127.0.0.1", True)
    assert MetricsConfig.load(load_settings(ROOT / "examples" / "caredesk.example.toml", environ={})).port == 0


@pytest.mark.parametrize("host,port,enabled,on_server", [
    ("127.0.0.1", 0, True, True), ("::1", 0, True, True), ("0.0.0.0", 0, True, False),
    ("127.0.0.1", 9100, True, False), ("127.0.0.1", 0, False, False)])
def test_metrics_are_on_the_servers_port_only_when_it_is_loopback(host, port, enabled, on_server):
    assert MetricsConfig(port=port, enabled=enabled).on_server_port(host) is on_server


@pytest.mark.parametrize("table,key", [({"port": 70000}, "metrics.port"), ({"enabled": "perhaps"}, "metrics.enabled"),
                                      ({"path": "/m"}, "metrics.path")])
def test_a_wrong_metrics_key_is_named(table, key):
    with pytest.raises(ConfigError, match=key.replace(".", r"\.")):
        MetricsConfig.load(settings_from_mapping({"metrics": table}))


@pytest.mark.parametrize("body,content_type,kind", [
    (b'{"type": "event_callback", "event": {"type": "app_mention"}}', "application/json", "app_mention"),
    (b"command=%2Fticket&text=", "application/x-www-form-urlencoded", "command"),
    (b"payload=%7B%22type%22%3A%22view_submission%22%7D", "application/x-www-form-urlencoded", "view_submission"),
    (b'{"type": "message", "text": "hi"}', "application/json", "message"),
    (b"payload=%5B1%5D", "application/x-www-form-urlencoded", "interaction"),
    (b'{"type": 7}', "application/json", "other"),
    (b"not json", "application/json", "other"), (b"[1]", "application/json", "other")])
def test_the_kind_of_a_platform_request(body, content_type, kind):
    assert request_kind(body, content_type) == kind
