"""What operators watch (docs/operations.md): the request metrics middleware and GET /metrics,
JSON log lines (`CAREDESK_LOG_FORMAT=json`), and OpenTelemetry traces (with
OTEL_EXPORTER_OTLP_ENDPOINT set).
"""

from __future__ import annotations

import json
import logging
import os
import sys
import time
import uuid
from typing import TYPE_CHECKING, Any, Awaitable, Callable, Mapping
from urllib.parse import parse_qs

from aiohttp import web

from adapters.server.clients import REQUEST_LOG_KEY
from bot.app import log_context, metrics
from bot.domain.clock import SystemClock

if TYPE_CHECKING:
    from bot.app.desk import Desk

log = logging.getLogger("caredesk.observability")

# The channel each platform's endpoint serves (a channel mounted elsewhere adds its path).
CHANNEL_PATHS: dict[str, str] = {"/slack/events": "slack", "/api/messages": "teams"}
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
# The portal's Direct Line posts (a person's message or click); its other paths (the page, the
# WebSocket stream that stays open for minutes) are no platform waiting for an acknowledgement.
PORTAL_POSTS = ("/portal/v3/directline/conversations/", "/activities")


def channel_of(request: web.Request) -> str | None:
    """The channel a request comes from, for the metrics and the log lines (None: no channel's)."""
    channel = CHANNEL_PATHS.get(request.path)
    if channel is None and request.method == "POST" and request.path.startswith(PORTAL_POSTS[0]) \
            and request.path.endswith(PORTAL_POSTS[1]):
        return "portal"
    return channel


def request_kind(body: bytes, content_type: str) -> str:
    """What a platform's request is, from its body: Slack's event type, slash command or
    interaction type; Teams' activity type; "other" when it says nothing readable."""
    try:
        if content_type == "application/x-www-form-urlencoded":
            form = parse_qs(body.decode("utf-8", "replace"))
            if "command" in form:
                return "command"
            if "payload" in form:
                payload = json.loads(form["payload"][0])
                kind = payload.get("type") if isinstance(payload, dict) else None
                return kind[:40] if isinstance(kind, str) else "interaction"
            return "other"
        data = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        return "other"
    if not isinstance(data, dict):
        return "other"
    event = data.get("event")
    if isinstance(event, dict) and isinstance(event.get("type"), str):
        return event["type"][:40]
    kind = data.get("type")
    return kind[:40] if isinstance(kind, str) else "other"


@web.middleware
async def count_requests(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Requests by channel, kind and status, and how long a platform waited for its answer
    (the acknowledgement); a request id for the log lines of the request."""
    channel = channel_of(request)
    request_id = request.headers.get("X-Request-Id", "")[:64] or uuid.uuid4().hex[:16]
    request[REQUEST_LOG_KEY] = {"request_id": request_id, **({"channel": channel} if channel else {})}
    started = time.perf_counter()
    status = 500
    try:
        with log_context.bound(request_id=request_id, channel=channel):
            response = await handler(request)
        status = response.status
        return response
    except web.HTTPException as exc:
        status = exc.status
        raise
    finally:
        if channel is not None:
            metrics.ACK_SECONDS.labels(channel).observe(time.perf_counter() - started)
            kind = "other"
            # The body the handler read (aiohttp keeps it): never read here what it did not.
            body = getattr(request, "_read_bytes", None)
            if body:
                try:
                    kind = request_kind(body, request.content_type)
                except Exception:  # a hostile body: counting it must never fail the request
                    log.debug("could not tell the kind of a request", exc_info=True)
            metrics.REQUESTS.labels(channel, kind, str(status)).inc()


def metrics_handler(desk: "Desk") -> Handler:
    clock = SystemClock()

    async def serve_metrics(request: web.Request) -> web.StreamResponse:
        body = await metrics.render(desk.store, clock.now())
        return web.Response(body=body, headers={"Content-Type": metrics.CONTENT_TYPE_LATEST})

    return serve_metrics


# ---- metrics across processes ------------------------------------------------------------------


def share_metrics_between_processes(workers: int) -> None:
    """`serve --workers N`: the worker processes count in files the server's /metrics adds up
    (prometheus_client's multiprocess mode), in PROMETHEUS_MULTIPROC_DIR or a fresh directory.
    Must run before prometheus_client is imported."""
    if workers <= 0 or os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        return
    import atexit
    import shutil
    import tempfile

    directory = tempfile.mkdtemp(prefix="caredesk-metrics-")
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = directory  # the worker processes inherit it
    atexit.register(shutil.rmtree, directory, ignore_errors=True)


# ---- logs ----------------------------------------------------------------------------------------


class _ContextFilter(logging.Filter):
    """Adds the request id, channel, conversation and ticket known for the line's context."""

    def filter(self, record: logging.LogRecord) -> bool:
        for key, value in log_context.current().items():
            if not hasattr(record, key):
                setattr(record, key, value)
        return True


def configure_logging(level: str, env: Mapping[str, str]) -> None:
    """Plain lines on stderr, or with CAREDESK_LOG_FORMAT=json one JSON object a line (time,
    level, logger, message, and request_id / channel / conversation / ticket where known)."""
    fmt = env.get("CAREDESK_LOG_FORMAT", "text").strip().lower()
    handler = logging.StreamHandler(sys.stderr)
    if fmt == "json":
        from pythonjsonlogger.json import JsonFormatter

        handler.setFormatter(JsonFormatter(
            "%(asctime)s %(levelname)s %(name)s %(message)s",
            rename_fields={"asctime": "time", "levelname": "level", "name": "logger"},
            timestamp=False))
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    handler.addFilter(_ContextFilter())
    logging.basicConfig(level=level, handlers=[handler], force=True)


# ---- traces --------------------------------------------------------------------------------------


def tracing_wanted(env: Mapping[str, str]) -> bool:
    return bool(env.get("OTEL_EXPORTER_OTLP_ENDPOINT") or env.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"))


def configure_tracing(service: str, engine: Any = None, exporter: Any = None, *, set_global: bool = True) -> Any:
    """OpenTelemetry with the maintained instrumentations: aiohttp's server (the request) and
    client (the platform call, Slack's Web API), SQLAlchemy (the SQL); the inbox carries the
    request's trace to the worker (`bot.app.inbox.carry_context`). `exporter`: the OTLP one from
    the OTEL_* variables unless given (tests pass an in-memory one, and `set_global=False`).
    Returns the provider; `stop_tracing` undoes it all."""
    from opentelemetry import trace
    from opentelemetry.instrumentation.aiohttp_client import AioHttpClientInstrumentor
    from opentelemetry.instrumentation.aiohttp_server import AioHttpServerInstrumentor
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor

    provider = TracerProvider(resource=Resource.create({"service.name": os.environ.get("OTEL_SERVICE_NAME", service)}))
    if exporter is None:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    else:
        provider.add_span_processor(SimpleSpanProcessor(exporter))
    if set_global:
        trace.set_tracer_provider(provider)
    AioHttpServerInstrumentor().instrument(tracer_provider=provider)
    AioHttpClientInstrumentor().instrument(tracer_provider=provider)
    if engine is not None:
        instrument_engine(engine, provider)
    _trace_the_inbox(provider)
    return provider


def _trace_the_inbox(provider: Any) -> None:
    from opentelemetry import propagate, trace

    from bot.app import inbox

    tracer = provider.get_tracer("caredesk.inbox")

    def carry() -> Mapping[str, str]:
        carrier: dict[str, str] = {}
        propagate.inject(carrier)
        return carrier

    def resume(item: Any, carrier: Mapping[str, str]) -> Any:
        return tracer.start_as_current_span(
            f"inbox {item.channel} {item.kind}", context=propagate.extract(dict(carrier)),
            kind=trace.SpanKind.CONSUMER,
            attributes={"caredesk.channel": item.channel, "caredesk.inbox.kind": item.kind,
                        "caredesk.inbox.item": item.id, "caredesk.inbox.attempt": item.attempts})

    inbox.carry_context = carry
    inbox.resume_context = resume


def stop_tracing() -> None:
    """Undo `configure_tracing` (tests)."""
    from opentelemetry.instrumentation.aiohttp_client import AioHttpClientInstrumentor
    from opentelemetry.instrumentation.aiohttp_server import AioHttpServerInstrumentor
    from opentelemetry.instrumentation.sqlalchemy import SQLAlchemyInstrumentor

    from bot.app import inbox

    inbox.carry_context = inbox.resume_context = None
    for instrumentor in (AioHttpServerInstrumentor(), AioHttpClientInstrumentor(), SQLAlchemyInstrumentor()):
        if instrumentor.is_instrumented_by_opentelemetry:
            instrumentor.uninstrument()


def instrument_engine(engine: Any, provider: Any = None) -> None:
    from opentelemetry.instrumentation.sqlalchemy import SQLAlchemyInstrumentor

    # skip_dep_check: the instrumentation declares "sqlalchemy < 2.1" but its engine events work
    # the same on 2.1 (tests/slack/test_tracing.py checks the SQL spans).
    SQLAlchemyInstrumentor().instrument(engine=engine.sync_engine, tracer_provider=provider, skip_dep_check=True)
