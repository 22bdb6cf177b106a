"""The server's settings: the file's `[server]` table (carried unread by the core's `Settings`)
and the CAREDESK_HOST, CAREDESK_PORT, CAREDESK_WORKERS and CAREDESK_INSECURE_DEV_MODE variables,
parsed and checked here, by the server that uses them. The environment wins over the file, and
`caredesk serve --host/--port/--workers` win over both.

The channels never read this: the composition root (`adapters.server.channels.Channels`) gives
them what they need of it (the developer mode, the worker processes).
"""

from __future__ import annotations

import ipaddress
import os
from collections.abc import Mapping
from dataclasses import dataclass

from adapters.server.limits import ConnectionLimits
from adapters.shared.network import is_loopback
from bot.domain.config import ConfigError, Settings, parse_bool, parse_int, parse_text, reject_unknown_keys

FILE_KEYS = ("host", "port", "insecure_dev_mode", "workers", "max_connections", "idle_timeout", "body_timeout",
             "trusted_proxies")
MAX_PORT = 65535
MAX_WORKERS = 64
MAX_CONNECTIONS = 100_000
MAX_TIMEOUT_S = 3600.0


def _addresses(key: str, value: object) -> frozenset[str]:
    """IP addresses, written as the server will compare them."""
    if not isinstance(value, (list, tuple)):  # the file's lists are frozen into tuples
        raise ConfigError(key, f"expected a list of IP addresses, got {value!r}")
    try:
        return frozenset(str(ipaddress.ip_address(v)) for v in value)
    except (ValueError, TypeError):
        raise ConfigError(key, f"expected a list of IP addresses, got {value!r}") from None


def _seconds(key: str, value: object) -> float:
    """A positive number of seconds, at most an hour."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value <= MAX_TIMEOUT_S:
        raise ConfigError(key, f"must be a number of seconds above 0 and at most {MAX_TIMEOUT_S:.0f}, got {value!r}")
    return float(value)


@dataclass(frozen=True)
class ServerConfig:
    host: str = "127.0.0.1"
    port: int = 3978
    # Developer flag: accept unsigned Slack requests / unauthenticated Teams activities.
    # Refused unless the server listens on a loopback address.
    insecure_dev_mode: bool = False
    # Worker processes `caredesk serve` starts beside itself for the work behind the acks (and
    # the outbox); 0: the server does that work itself.
    workers: int = 0
    # What a stranger may cost (adapters/server/limits.py, docs/operations.md): connections open
    # at once, seconds to send a request head (and to stay idle), seconds for a body.
    max_connections: int = ConnectionLimits.max_connections
    idle_timeout: float = ConnectionLimits.idle_timeout
    body_timeout: float = ConnectionLimits.body_timeout
    # The reverse proxies (their addresses as the server sees them) whose X-Forwarded-For names
    # the client; from anyone else the header is ignored (adapters/server/clients.py).
    trusted_proxies: frozenset[str] = frozenset()

    @classmethod
    def load(cls, settings: Settings, env: Mapping[str, str] | None = None) -> ServerConfig:
        """The server's config from the file's `[server]` table and the environment (which
        wins); `ConfigError` names the key or variable that is wrong."""
        env = os.environ if env is None else env
        table = settings.adapter_table("server")
        reject_unknown_keys("server.", table, FILE_KEYS)
        defaults = cls()
        host = parse_text("server.host", table.get("host", defaults.host))
        port = parse_int("server.port", table.get("port", defaults.port), minimum=0, maximum=MAX_PORT)
        insecure = parse_bool("server.insecure_dev_mode", table.get("insecure_dev_mode", defaults.insecure_dev_mode))
        workers = parse_int("server.workers", table.get("workers", defaults.workers), minimum=0, maximum=MAX_WORKERS)
        max_connections = parse_int("server.max_connections",
                                    table.get("max_connections", defaults.max_connections),
                                    minimum=1, maximum=MAX_CONNECTIONS)
        idle_timeout = _seconds("server.idle_timeout", table.get("idle_timeout", defaults.idle_timeout))
        body_timeout = _seconds("server.body_timeout", table.get("body_timeout", defaults.body_timeout))
        proxies = _addresses("server.trusted_proxies", table.get("trusted_proxies", []))
        if env.get("CAREDESK_HOST"):
            host = env["CAREDESK_HOST"]
        if env.get("CAREDESK_PORT"):
            port = parse_int("CAREDESK_PORT", env["CAREDESK_PORT"], minimum=0, maximum=MAX_PORT)
        if env.get("CAREDESK_INSECURE_DEV_MODE"):
            insecure = parse_bool("CAREDESK_INSECURE_DEV_MODE", env["CAREDESK_INSECURE_DEV_MODE"])
        if env.get("CAREDESK_WORKERS"):
            workers = parse_int("CAREDESK_WORKERS", env["CAREDESK_WORKERS"], minimum=0, maximum=MAX_WORKERS)
        return cls(host, port, insecure, workers, max_connections, idle_timeout, body_timeout, proxies)

    @property
    def limits(self) -> ConnectionLimits:
        return ConnectionLimits(self.max_connections, self.idle_timeout, self.body_timeout)

    @property
    def developer_mode(self) -> bool:
        """Verification off: only when a developer asked for it and nobody else can connect."""
        return self.insecure_dev_mode and is_loopback(self.host)


@dataclass(frozen=True)
class MetricsConfig:
    """Where GET /metrics is served (the file's `[metrics]` table; docs/operations.md).

    `port = 0` (the default): on the server's own port, only while the server listens on a
    loopback address; a server listening publicly serves it only on a port of its own
    (`port`, on `host`, loopback by default), since the metrics must not be public."""

    port: int = 0
    host: str = "127.0.0.1"
    enabled: bool = True

    @classmethod
    def load(cls, settings: Settings) -> MetricsConfig:
        table = settings.adapter_table("metrics")
        reject_unknown_keys("metrics.", table, ("port", "host", "enabled"))
        defaults = cls()
        return cls(parse_int("metrics.port", table.get("port", defaults.port), minimum=0, maximum=MAX_PORT),
                   parse_text("metrics.host", table.get("host", defaults.host)),
                   parse_bool("metrics.enabled", table.get("enabled", defaults.enabled)))

    def on_server_port(self, server_host: str) -> bool:
        return self.enabled and self.port == 0 and is_loopback(server_host)
