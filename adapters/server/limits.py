"""What a stranger may cost the server: how many connections it keeps, how long a request's head
and body may take to arrive, and how big a body may be (refused on its Content-Length, before a
byte of it is read).

Why a piece of our own around aiohttp:

* aiohttp has no cap on open connections: each one holds a file descriptor until the peer goes,
  so a thousand idle connections starve `/healthz` and Slack's signed requests (and past the
  process's descriptor limit, asyncio's accept loop logs "out of system resource" thousands of
  times a second). `ConnectionGate` admits at most `max_connections`; a new one over the cap
  takes the place of the connection idle the longest (no request in hand: waiting for a request,
  or still trickling its head in), as nginx reuses its idle keep-alive connections, and is
  refused with a 503 only when every connection has a request in hand.
* aiohttp has no header-read timeout as such, but its keep-alive timer is armed when a
  connection opens and after each response, and fires while no complete request head has
  arrived: `keepalive_timeout` (our `idle_timeout`) is therefore also the time a client has to
  send a head (its default, 3630 s, lets a trickler hold a connection for an hour).
* aiohttp has no body-read timeout: `client_max_size` bounds a body's size, not its pace.
  `guard_requests` cuts a connection whose body has not fully arrived `body_timeout` seconds
  after its head (a request that arrived is never cut, however long its handler works).
* A body over `client_max_size` is read up to that size before aiohttp refuses it, and what the
  client still sends is read and thrown away for `lingering_time` (10 s): 50 MB POSTs in a row
  made the process grow for good (docs/faults.md). A Content-Length over the limit is refused
  here before anything is read, and the server runs with `lingering_time=0`: the connection of a
  request whose body was not read is closed after the answer instead.

Behind a reverse proxy (docs/deployment.md) the proxy holds the same limits at the edge; these
hold for a server reached directly, and for what passes the proxy.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from typing import Any, Awaitable, Callable

from aiohttp import web

log = logging.getLogger("caredesk.web")

# One JSON answer for a connection refused because every admitted one has a request in hand.
_BUSY_BODY = b'{"error": "busy", "message": "the server has too many connections; retry shortly"}'
_BUSY_RESPONSE = (b"HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\nRetry-After: 1\r\n"
                  b"Connection: close\r\nContent-Length: " + str(len(_BUSY_BODY)).encode() + b"\r\n\r\n" + _BUSY_BODY)


@dataclass(frozen=True)
class ConnectionLimits:
    """Set by `[server] max_connections`, `idle_timeout`, `body_timeout` (`ServerConfig`;
    docs/operations.md says which limit lives where)."""

    # Below a usual descriptor limit (1024) with room for the database pool, the Web API
    # sessions and the worker pipes; a flood of idle connections only cycles through it.
    max_connections: int = 512
    # A client has this long after connecting (or after its last answer) to send a request head.
    idle_timeout: float = 15.0
    # ... and this long after its head for the whole body (at most 1 MiB).
    body_timeout: float = 20.0


class _Admitted(asyncio.Protocol):
    """aiohttp's protocol for one connection, behind the gate: every event is passed on, once
    the gate admitted the connection."""

    def __init__(self, gate: ConnectionGate, inner: web.RequestHandler) -> None:
        self.gate = gate
        self.inner = inner
        self.transport: asyncio.Transport | None = None
        self.admitted = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        self.admitted = self.gate.admit(self)
        if self.admitted:
            self.inner.connection_made(transport)
        else:
            transport.write(_BUSY_RESPONSE)
            transport.close()

    def data_received(self, data: bytes) -> None:
        if self.admitted:
            self.inner.data_received(data)

    def eof_received(self) -> None:  # (None: the transport closes itself, as aiohttp's does)
        if self.admitted:
            self.inner.eof_received()

    def pause_writing(self) -> None:
        if self.admitted:
            self.inner.pause_writing()

    def resume_writing(self) -> None:
        if self.admitted:
            self.inner.resume_writing()

    def connection_lost(self, exc: Exception | None) -> None:
        self.gate.release(self)
        if self.admitted:
            self.inner.connection_lost(exc)

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()


class ConnectionGate:
    """At most `max_connections` open; the idle ones make room for new ones (see the module)."""

    def __init__(self, max_connections: int) -> None:
        if max_connections < 1:
            raise ValueError("max_connections must be at least 1")
        self.max_connections = max_connections
        self.open: dict[_Admitted, None] = {}  # in order of admission: the first idle is the oldest
        self.busy: dict[web.RequestHandler, int] = {}  # connection -> requests in hand (see guard_requests)
        self.evicted = 0
        self.refused = 0

    def protocol_factory(self, make: Callable[[], web.RequestHandler]) -> Callable[[], asyncio.Protocol]:
        return lambda: _Admitted(self, make())

    def admit(self, connection: _Admitted) -> bool:
        if len(self.open) >= self.max_connections:
            idle = next((c for c in self.open if c.inner not in self.busy), None)
            if idle is None:
                self.refused += 1
                if self.refused == 1 or self.refused % 1000 == 0:  # a flood is one line, not a thousand
                    log.warning("refused a connection: all %d have a request in hand (%d refused so far)",
                                self.max_connections, self.refused)
                return False
            self.evicted += 1
            if self.evicted == 1 or self.evicted % 1000 == 0:
                log.warning("at %d connections: closing the idle ones to make room (%d closed so far)",
                            self.max_connections, self.evicted)
            del self.open[idle]
            idle.close()
        self.open[connection] = None
        return True

    def release(self, connection: _Admitted) -> None:
        self.open.pop(connection, None)

    def started(self, handler: web.RequestHandler) -> None:
        self.busy[handler] = self.busy.get(handler, 0) + 1

    def finished(self, handler: web.RequestHandler) -> None:
        left = self.busy.get(handler, 0) - 1
        if left > 0:
            self.busy[handler] = left
        else:
            self.busy.pop(handler, None)


Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def too_large(request: web.Request) -> web.Response:
    return web.json_response({"error": "payload_too_large",
                              "message": f"the body is larger than {request.client_max_size} bytes"},
                             status=413, headers={"Connection": "close"})


def guard_requests(body_timeout: float, gate: ConnectionGate | None = None) -> Any:
    """The middleware of the limits a request meets once its head has arrived: a Content-Length
    over the app's `client_max_size` is a 413 before anything is read; a body that has not fully
    arrived within `body_timeout` seconds has its connection closed; the request is in hand for
    `gate` (its connection is not idle) while it is handled."""

    @web.middleware
    async def guard(request: web.Request, handler: Handler) -> web.StreamResponse:
        if request.content_length is not None and request.content_length > request.client_max_size:
            return too_large(request)
        protocol = request.protocol
        cut: list[bool] = []

        def cut_off() -> None:
            if not request.content.is_eof():
                cut.append(True)
                log.warning("closed a connection whose request body took longer than %.0f s", body_timeout)
                protocol.force_close()

        timer = (asyncio.get_running_loop().call_later(body_timeout, cut_off)
                 if request.body_exists and not request.content.is_eof() else None)
        if gate is not None:
            gate.started(protocol)
        try:
            return await handler(request)
        except Exception:
            if cut:  # the handler's read failed because we closed the connection: nobody to answer
                return web.Response(status=408)
            raise
        finally:
            if timer is not None:
                timer.cancel()
            if gate is not None:
                gate.finished(protocol)

    return guard


class LimitedSite(web.TCPSite):
    """`web.TCPSite` whose connections go through a `ConnectionGate`."""

    def __init__(self, runner: web.BaseRunner, host: str, port: int, gate: ConnectionGate, **kwargs: Any) -> None:
        super().__init__(runner, host, port, **kwargs)
        self.gate = gate

    async def start(self) -> None:
        # TCPSite.start, with the gate around aiohttp's protocol factory (the runner's server).
        await web.BaseSite.start(self)
        server = self._runner.server
        assert server is not None
        self._server = await asyncio.get_running_loop().create_server(
            self.gate.protocol_factory(server), self._host, self._port, ssl=self._ssl_context,
            backlog=self._backlog, reuse_address=self._reuse_address, reuse_port=self._reuse_port)
        self._bound_port = self._server.sockets[0].getsockname()[1] if self._server.sockets else self._port


def runner_options(limits: ConnectionLimits) -> dict[str, Any]:
    """`web.AppRunner` keyword arguments for these limits (see the module for why)."""
    return {"keepalive_timeout": limits.idle_timeout, "lingering_time": 0}


async def start_server(app: web.Application, host: str, port: int, limits: ConnectionLimits,
                       **runner_kwargs: Any) -> tuple[web.AppRunner, LimitedSite]:
    """The app served on host:port within `limits` (port 0: a free port, `site.port`). The app
    must have been built with `guard_requests` for the body limits (`build_app(limits=…)`)."""
    runner = web.AppRunner(app, **runner_options(limits), **runner_kwargs)
    await runner.setup()
    site = LimitedSite(runner, host, port, app[GATE_KEY], backlog=BACKLOG)
    await site.start()
    return runner, site


# Connections the kernel queues before they are accepted (aiohttp's default); asyncio accepts
# up to this many at a time.
BACKLOG = 128

GATE_KEY: web.AppKey[ConnectionGate] = web.AppKey("connection_gate", ConnectionGate)
