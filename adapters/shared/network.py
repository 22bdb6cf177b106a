"""Addresses: whether a host is only reachable from this machine."""

from __future__ import annotations

import ipaddress
from typing import Any

from aiohttp import web


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


# Where the server keeps the address of the client a request came from (`client_of`).
CLIENT_KEY: web.RequestKey[str] = web.RequestKey("client", str)


def forwarded_client(peer: str | None, forwarded_for: str | None, trusted_proxies: frozenset[str]) -> str:
    """The client's address: the connection's peer, unless that peer is one of our own reverse
    proxies, which tell the client's address in X-Forwarded-For (the last entry: the one our
    proxy wrote; anything before it came from the client, who can write anything there)."""
    peer = peer or "unknown"
    if peer not in trusted_proxies or not forwarded_for:
        return peer
    last = forwarded_for.split(",")[-1].strip()
    try:
        return str(ipaddress.ip_address(last))
    except ValueError:
        return peer


def client_of(request: Any) -> str:
    """The client's address the server found for an aiohttp request (for log lines)."""
    return str(request.get(CLIENT_KEY) or request.remote or "unknown")
