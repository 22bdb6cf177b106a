"""Who is on the other end of a request: the peer, or, behind one of our reverse proxies
(`[server] trusted_proxies`), the client the proxy names in X-Forwarded-For. From anyone else,
X-Forwarded-* headers are ignored: a stranger cannot choose the address CareDesk logs.

aiohttp's own `request.remote` is always the peer, and its access log reads the request before
any middleware could change it: so the middleware writes the client's address into the request
(`CLIENT_KEY`) and the access log here prints that."""

from __future__ import annotations

import logging
from typing import Any, Awaitable, Callable

from aiohttp import web
from aiohttp.abc import AbstractAccessLogger

from adapters.shared.network import CLIENT_KEY, forwarded_client

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def know_the_client(trusted_proxies: frozenset[str]) -> Any:
    @web.middleware
    async def client(request: web.Request, handler: Handler) -> web.StreamResponse:
        request[CLIENT_KEY] = forwarded_client(request.remote, request.headers.get("X-Forwarded-For"),
                                               trusted_proxies)
        return await handler(request)

    return client


# Where a request keeps the fields its log lines carry (request id, channel).
REQUEST_LOG_KEY = "caredesk.log_fields"


class ClientAccessLogger(AbstractAccessLogger):
    """One line per request: the client (as above), the request line, the status, the time."""

    def log(self, request: web.BaseRequest, response: web.StreamResponse, time: float) -> None:
        client = request.get(CLIENT_KEY) or request.remote or "unknown"
        # The request's id and channel (adapters/server/observability.py), for JSON log lines.
        fields = request.get(REQUEST_LOG_KEY) or {}
        self.logger.info('%s "%s %s" %s %.3fs', client, request.method, request.path, response.status, time,
                         extra=dict(fields))

    @property
    def enabled(self) -> bool:
        return self.logger.isEnabledFor(logging.INFO)
