"""The one aiohttp application every channel is mounted in.

Routes: GET /healthz (the process is up), GET /readyz (the database answers), GET /metrics
(Prometheus; only while the server listens on loopback, else on `[metrics] port`). The Slack
adapter adds POST /slack/events and the Teams adapter POST /api/messages (see `build_app`).
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import sys
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

from aiohttp import web

from adapters.server.clients import ClientAccessLogger, know_the_client
from adapters.server.observability import count_requests, metrics_handler
from adapters.server.limits import BACKLOG, GATE_KEY, ConnectionGate, ConnectionLimits, guard_requests, start_server
from adapters.shared.pressure import PRESSURE_KEY, AckPressure
from adapters.shared.network import is_loopback
from bot.app.desk import Desk
from bot.store.ports import StoreUnavailableError

log = logging.getLogger("caredesk.web")

if TYPE_CHECKING:
    from adapters.server.channels import Channels
    from adapters.server.config import MetricsConfig, ServerConfig
    from adapters.server.delivery import Replier, Sender
    from bot.app.inbox import InboxWorker

DESK_KEY: web.AppKey[Desk] = web.AppKey("desk", Desk)
DISPATCHER_KEY: web.AppKey["asyncio.Task[Any]"] = web.AppKey("dispatcher")
# A mounted channel registers its routes on the app (`Channels.mount` does every channel's).
ChannelMount = Callable[[web.Application], None]
MAX_BODY_BYTES = 1024 * 1024


async def healthz(request: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})


async def readyz(request: web.Request) -> web.Response:
    desk = request.app[DESK_KEY]
    try:
        await desk.store.ping()
    except StoreUnavailableError:
        log.warning("readiness check failed: database unavailable")
        return web.json_response({"status": "unavailable", "database": "unreachable"}, status=503)
    return web.json_response({"status": "ok", "database": "ok"})


def build_app(desk: Desk, channels: tuple[ChannelMount, ...] = (),
              limits: ConnectionLimits | None = None,
              trusted_proxies: frozenset[str] = frozenset(), *, metrics: bool = True) -> web.Application:
    """The app; served by `limits.start_server` it also keeps to `limits`' connection cap.
    `trusted_proxies`: the reverse proxies whose X-Forwarded-For names the client; `metrics`:
    serve GET /metrics here (`serve` says no for a server listening publicly)."""
    limits = limits if limits is not None else ConnectionLimits()
    gate = ConnectionGate(limits.max_connections)
    app = web.Application(client_max_size=MAX_BODY_BYTES, middlewares=[
        know_the_client(trusted_proxies), guard_requests(limits.body_timeout, gate), count_requests])
    app[GATE_KEY] = gate
    app[DESK_KEY] = desk
    app[PRESSURE_KEY] = AckPressure()
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    if metrics:
        app.router.add_get("/metrics", metrics_handler(desk))
    for mount in channels:
        mount(app)
    return app


# Descriptors a process needs besides its HTTP connections: the database pool, the Web API
# sessions, the worker pipes, log files, the listening socket.
SPARE_DESCRIPTORS = 128


def make_room_for(max_connections: int) -> None:
    """Raise the soft limit on open files (up to the hard one) so that `max_connections`
    connections and the rest fit: past it, accept() fails and asyncio logs every failure."""
    import resource

    # A burst is accepted `BACKLOG` sockets at a time before any is admitted, and a connection
    # closed to make room gives its descriptor back one loop turn later: hence twice the backlog.
    needed = max_connections + 2 * BACKLOG + SPARE_DESCRIPTORS
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != resource.RLIM_INFINITY and soft < needed:
        target = needed if hard == resource.RLIM_INFINITY else min(needed, hard)
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
        if target < needed:
            log.warning("the limit on open files (%d) is too low for max_connections = %d: lower it "
                        "or raise the limit (ulimit -n)", target, max_connections)


def check_insecure_mode(host: str, insecure: bool) -> None:
    """Verification may be off only when a developer asked for it and nobody else can connect."""
    if insecure and not is_loopback(host):
        raise SystemExit(
            f"refusing to start: insecure developer mode (no request verification) is only allowed "
            f"on a loopback address, not on {host}"
        )


def inbox_worker(channels: "Channels", concurrency: int, pressure: AckPressure | None = None) -> "InboxWorker | None":
    """A worker for the requests the channels wrote to the inbox (None when no channel that
    writes there is configured); it makes room for its server's acks under `pressure`."""
    from bot.app.inbox import InboxWorker, wall_clock

    handlers = channels.inbox_handlers()
    if not handlers:
        return None
    return InboxWorker(channels.slack.store, wall_clock, handlers, concurrency=concurrency, pressure=pressure,
                       unreadable=channels.inbox_unreadable(),
                       retention=timedelta(minutes=channels.slack.desk.settings.retention.inbox_done_minutes))


# Worker processes run at a lower CPU priority than the server: on a busy machine the server's
# acknowledgements (due within 3 s) come first, and the work catches up as soon as there is room.
WORKER_NICENESS = 10


class WorkerProcesses:
    """`caredesk worker` processes started beside the server (`[server] workers`): restarted when
    one dies, stopped with the server (and they stop by themselves if the server is killed).

    Each hears the server's ack pressure through a pipe (a byte at each change: b"1" busy,
    b"0" not) and makes room for the acks while it lasts."""

    def __init__(self, count: int, config: str | None, pressure: AckPressure | None = None) -> None:
        self.count = count
        self.config = config
        self.processes: list[asyncio.subprocess.Process] = []
        self._watch: asyncio.Task[None] | None = None
        self._stopping = False
        self._pipes: dict[int, int] = {}  # worker pid -> the write end of its pressure pipe
        self.pressure = pressure
        if pressure is not None:
            pressure.subscribe(self._tell)

    def _command(self, pressure_fd: int | None) -> list[str]:
        config = ["--config", self.config] if self.config else []
        heard = ["--pressure-fd", str(pressure_fd)] if pressure_fd is not None else []
        return [sys.executable, "-m", "adapters.server.cli", *config, "worker", "--nice", str(WORKER_NICENESS),
                "--parent-pid", str(os.getpid()), *heard]

    async def _spawn(self) -> asyncio.subprocess.Process:
        root = Path(__file__).resolve().parents[2]  # noqa: ASYNC240 (one stat per worker spawn, not per request)
        read_end, write_end = os.pipe() if self.pressure is not None else (None, None)
        try:
            process = await asyncio.create_subprocess_exec(
                *self._command(read_end), cwd=os.getcwd(), env={**os.environ, "PYTHONPATH": _pythonpath(root)},
                pass_fds=() if read_end is None else (read_end,))
        except BaseException:
            for fd in (read_end, write_end):
                if fd is not None:
                    os.close(fd)
            raise
        if read_end is not None and write_end is not None:
            os.close(read_end)
            os.set_blocking(write_end, False)
            self._pipes[process.pid] = write_end
            if self.pressure is not None and self.pressure.busy:
                self._send(process.pid, b"1")
        return process

    def _tell(self, busy: bool) -> None:
        for pid in list(self._pipes):
            self._send(pid, b"1" if busy else b"0")

    def _send(self, pid: int, signal_byte: bytes) -> None:
        try:
            os.write(self._pipes[pid], signal_byte)
        except BlockingIOError:
            pass  # a worker that reads nothing (stuck): it misses a change, nothing else
        except OSError:  # the worker is gone
            self._close_pipe(pid)

    def _close_pipe(self, pid: int) -> None:
        fd = self._pipes.pop(pid, None)
        if fd is not None:
            os.close(fd)

    async def start(self) -> None:
        self.processes = [await self._spawn() for _ in range(self.count)]
        log.info("started %d worker process(es): %s", self.count, ", ".join(str(p.pid) for p in self.processes))
        self._watch = asyncio.create_task(self._keep_alive())

    async def _keep_alive(self) -> None:
        while not self._stopping:
            await asyncio.sleep(1.0)
            for i, process in enumerate(self.processes):
                if process.returncode is not None and not self._stopping:
                    log.error("worker process %s ended (exit %s): starting another", process.pid, process.returncode)
                    self._close_pipe(process.pid)
                    self.processes[i] = await self._spawn()

    async def stop(self, grace: float = 10.0) -> None:
        self._stopping = True
        if self._watch is not None:
            self._watch.cancel()
        for process in self.processes:
            if process.returncode is None:
                process.terminate()
        for process in self.processes:
            try:
                await asyncio.wait_for(process.wait(), timeout=grace)
            except asyncio.TimeoutError:
                process.kill()
                await process.wait()
        for pid in list(self._pipes):
            self._close_pipe(pid)


async def start_metrics_server(desk: Desk, metrics: "MetricsConfig") -> web.AppRunner:
    """GET /metrics alone, on `[metrics] host:port` (a server listening publicly)."""
    app = web.Application()
    app.router.add_get("/metrics", metrics_handler(desk))
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, metrics.host, metrics.port).start()
    log.info("metrics on http://%s:%s/metrics", metrics.host, metrics.port)
    return runner


def _pythonpath(root: Path) -> str:
    existing = os.environ.get("PYTHONPATH")
    return f"{root}{os.pathsep}{existing}" if existing else str(root)


def start_dispatcher(app: web.Application, desk: Desk, senders: dict[str, "Sender"],
                     repliers: dict[str, "Replier"] | None = None) -> None:
    """Run the outbox dispatcher (and the escalation climb) inside the server."""
    from adapters.server.delivery import ChannelDelivery
    from bot.app.outbox import Dispatcher

    stop = asyncio.Event()

    async def on_startup(app: web.Application) -> None:
        dispatcher = Dispatcher(desk, ChannelDelivery(desk, senders, repliers))
        app[DISPATCHER_KEY] = asyncio.create_task(dispatcher.run(stop), name="caredesk-outbox")

    async def on_cleanup(app: web.Application) -> None:
        stop.set()
        task = app.get(DISPATCHER_KEY)
        if task is not None:
            await asyncio.wait_for(task, timeout=10)

    app.on_startup.append(on_startup)
    app.on_cleanup.append(on_cleanup)


async def serve(desk: Desk, server: "ServerConfig", *, dispatcher: bool = True, config: str | None = None) -> None:
    from adapters.server.channels import Channels

    host, port = server.host, server.port
    check_insecure_mode(host, server.insecure_dev_mode)
    # The channels of this process, built once: the routes, Socket Mode and the outbox share them
    # (one profile cache, one Web API client, one Bot Framework transport).
    from adapters.server.config import MetricsConfig

    channels = Channels.of(desk, os.environ, server)
    metrics = MetricsConfig.load(desk.settings)
    app = build_app(desk, (channels.mount,), server.limits, server.trusted_proxies,
                    metrics=metrics.on_server_port(host))
    workers = WorkerProcesses(server.workers, config, app[PRESSURE_KEY]) if server.workers else None
    if workers is not None and getattr(desk.store, "dialect", None) == "sqlite":
        # A worker process and the server then wait on each other for SQLite's one write lock,
        # and the acknowledgements wait with them (docs/performance.md).
        log.warning("worker processes on SQLite share its one write lock with the server and slow its "
                    "acknowledgements down: use PostgreSQL with workers, or workers = 0")
    if dispatcher and workers is None:
        start_dispatcher(app, desk, channels.senders(), channels.repliers())  # with worker processes, they deliver the outbox
    make_room_for(server.limits.max_connections)
    runner, site = await start_server(app, host, port, server.limits, access_log=log,
                                      access_log_class=ClientAccessLogger)
    log.info("CareDesk listening on http://%s:%s (at most %d connections)", host, site.port,
             server.limits.max_connections)
    metrics_runner = await start_metrics_server(desk, metrics) if metrics.enabled and metrics.port else None
    if metrics.enabled and not metrics.port and not metrics.on_server_port(host):
        log.warning("GET /metrics is not served on the public address %s: set [metrics] port to serve it on a "
                    "port of its own", host)
    if workers is not None:
        await workers.start()
    socket_mode = None
    if channels.slack.config.app_token:
        from adapters.slack import start_socket_mode

        # Socket Mode: Slack connects out from here, no public URL needed.
        socket_mode = await start_socket_mode(channels.slack)
        log.info("Slack Socket Mode connected")
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        # A process manager stops the server with SIGTERM: finish the work in hand, then exit.
        loop.add_signal_handler(sig, stop.set)
    try:
        await stop.wait()
        log.info("CareDesk stopping")
    finally:
        if socket_mode is not None:
            await socket_mode.close()
        await runner.cleanup()
        if metrics_runner is not None:
            await metrics_runner.cleanup()
        if workers is not None:
            await workers.stop()
