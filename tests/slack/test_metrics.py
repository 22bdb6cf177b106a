"""GET /metrics as Prometheus scrapes it: the series move as people's turns happen (real signed
Slack requests to the server, worked through the inbox)."""

from __future__ import annotations

from prometheus_client.parser import text_string_to_metric_families

from tests.slack.conftest import LOTTE
from tests.slack.test_dm import guided_incident_until_summary


async def scrape(env) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    response = await env.client.get("/metrics")
    assert response.status == 200
    assert response.headers["Content-Type"].startswith("text/plain; version=")
    text = await response.text()
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def value(samples, name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


async def test_metrics_move_as_turns_happen(env):
    before = await scrape(env)
    summary = await guided_incident_until_summary(env)
    assert summary is not None
    await env.click("confirm")
    await env.command("/ticket")
    after = await scrape(env)

    def moved(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    assert moved("caredesk_tickets_created_total", channel="slack") == 1
    turns = moved("caredesk_turns_total", channel="slack")
    assert turns >= 8  # the guided dialog's questions, the confirmation
    assert moved("caredesk_turn_seconds_count", channel="slack") == turns
    assert moved("caredesk_turn_seconds_sum", channel="slack") > 0
    # Requests by channel, kind and status, and the acknowledgement's latency.
    assert moved("caredesk_http_requests_total", channel="slack", kind="message", status="200") >= 1
    assert moved("caredesk_http_requests_total", channel="slack", kind="block_actions", status="200") >= 1
    assert moved("caredesk_http_requests_total", channel="slack", kind="command", status="200") == 1
    acks = sum(v for (n, labels), v in after.items() if n == "caredesk_http_requests_total"
               and ("channel", "slack") in labels) - sum(
        v for (n, labels), v in before.items() if n == "caredesk_http_requests_total" and ("channel", "slack") in labels)
    assert moved("caredesk_ack_seconds_count", channel="slack") == acks
    assert value(after, "caredesk_ack_seconds_bucket", channel="slack", le="3.0") >= acks
    # The database's part: the inbox worked through (done items kept a while), nothing waiting.
    assert value(after, "caredesk_database_up") == 1
    assert value(after, "caredesk_queue_items", queue="inbox", status="done") >= turns
    assert value(after, "caredesk_queue_items", queue="inbox", status="pending") == 0
    assert value(after, "caredesk_queue_oldest_age_seconds", queue="inbox") == 0
    assert value(after, "caredesk_escalations", status="open") == 0


async def test_unsigned_requests_are_counted_with_their_status(env):
    before = await scrape(env)
    await env.dm("hello", user=LOTTE, signed=False)
    after = await scrape(env)
    key = ("caredesk_http_requests_total", (("channel", "slack"), ("kind", "message"), ("status", "401")))
    assert after.get(key, 0) - before.get(key, 0) == 1
