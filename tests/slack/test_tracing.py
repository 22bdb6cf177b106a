"""Traces: one trace per turn, from Slack's signed request through the inbox and the worker to
the SQL and the Slack Web API call, caught by an in-process exporter."""

from __future__ import annotations

# The `otel` extra is installed with `test`: these run, never skip.
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

from adapters.server.observability import configure_tracing, stop_tracing
from tests.slack.conftest import start_env


async def test_one_trace_runs_from_the_request_through_the_inbox_to_sql_and_slack(sqlite_store, fake_slack):
    exporter = InMemorySpanExporter()
    configure_tracing("caredesk-test", sqlite_store.engine, exporter=exporter, set_global=False)
    env = await start_env(sqlite_store, fake_slack)
    try:
        exporter.clear()
        await env.dm("help")
        assert env.fake.messages(), "the bot answered"
    finally:
        await env.client.close()
        stop_tracing()
    spans = exporter.get_finished_spans()
    [request] = [s for s in spans if s.kind == SpanKind.SERVER and s.attributes.get("http.route", s.name)
                 and "/slack/events" in str(s.attributes.get("http.target", s.attributes.get("url.path", s.name)))]
    trace_id = request.context.trace_id
    in_trace = [s for s in spans if s.context.trace_id == trace_id]
    [work] = [s for s in in_trace if s.name.startswith("inbox slack ")]
    assert work.kind == SpanKind.CONSUMER and work.parent is not None
    # The worker's span hangs under the request's trace; the turn's SQL and the call to Slack under it.
    by_id = {s.context.span_id: s for s in in_trace}

    def under_work(span) -> bool:
        while span.parent is not None:
            if span.parent.span_id == work.context.span_id:
                return True
            span = by_id.get(span.parent.span_id)
            if span is None:
                return False
        return False

    sql = [s.attributes.get("db.statement", "") for s in in_trace if under_work(s)]
    assert any("dialog_states" in statement for statement in sql), sql  # the turn's read
    assert any("INSERT INTO inbox" in s.attributes.get("db.statement", "") and s.parent.span_id == request.context.span_id
               for s in in_trace)  # the ack's write, under the request
    calls = [s for s in in_trace if s.kind == SpanKind.CLIENT and "chat.postMessage" in str(dict(s.attributes))]
    assert calls and all(under_work(s) for s in calls), [(s.name, dict(s.attributes)) for s in in_trace]
    # Without the hooks (traces off) nothing is carried: the payload the channel sees is the platform's.
    from bot.app import inbox

    assert inbox.carry_context is None and inbox.resume_context is None
