"""CareDesk's Prometheus metrics (docs/operations.md lists every series).

Counters and histograms are counted where things happen (a request, a turn, a dead letter) in
whichever process they happen; the scrape (`render`) adds what the database knows (queue depths
and ages, open escalations and pages) at that moment. With several processes (`serve --workers
N`, `caredesk worker` beside the server) PROMETHEUS_MULTIPROC_DIR names a directory they share,
and the scrape adds up every process's files (prometheus_client's multiprocess mode); the
variable must be set before this module is first imported (`caredesk serve --workers` does it).
"""

from __future__ import annotations

import os
import time
from contextlib import contextmanager
from datetime import datetime
from typing import Iterator

from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.multiprocess import MultiProcessCollector

from bot.store.ports import OperationsStore, StoreUnavailableError

__all__ = ["CONTENT_TYPE_LATEST", "render"]

# Acks are due within 3 s (Slack) and 15 s (Teams): buckets around those.
ACK_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 3.0, 5.0, 10.0, 15.0)
TURN_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)

REQUESTS = Counter("caredesk_http_requests", "HTTP requests answered, by channel, kind and status",
                   ["channel", "kind", "status"])
ACK_SECONDS = Histogram("caredesk_ack_seconds", "Time to answer a platform's request (the acknowledgement)",
                        ["channel"], buckets=ACK_BUCKETS)
TURN_SECONDS = Histogram("caredesk_turn_seconds", "Time to work one turn of a conversation (read, decide, save)",
                         ["channel"], buckets=TURN_BUCKETS)
TURNS = Counter("caredesk_turns", "Conversation turns worked", ["channel"])
TICKETS_CREATED = Counter("caredesk_tickets_created", "Tickets created in a conversation", ["channel"])
DEAD_LETTERS = Counter("caredesk_dead_letters", "Inbox items and outbox messages given up (dead-lettered)", ["queue"])
for _queue in ("inbox", "outbox"):  # shown at 0 from the start, so that rate() and alerts see them
    DEAD_LETTERS.labels(_queue)
KEPT = Counter("caredesk_kept_for_next_visit",
               "Outbox messages no channel could push, kept for the person's next turn ('While you were away')")


@contextmanager
def timed_turn(channel: str) -> Iterator[None]:
    started = time.perf_counter()
    try:
        yield
    finally:
        TURN_SECONDS.labels(channel).observe(time.perf_counter() - started)
        TURNS.labels(channel).inc()


def dead_letter(queue: str) -> None:
    DEAD_LETTERS.labels(queue).inc()


def kept_for_next_visit() -> None:
    KEPT.inc()


class _Snapshot:
    """The database's part of a scrape, as a collector of one registry made per scrape."""

    def __init__(self, families: list[GaugeMetricFamily]) -> None:
        self.families = families

    def collect(self) -> list[GaugeMetricFamily]:
        return self.families


async def _database_families(store: OperationsStore, now: datetime) -> list[GaugeMetricFamily]:
    up = GaugeMetricFamily("caredesk_database_up", "1 when the database answered this scrape")
    try:
        snapshot = await store.operations_snapshot(now)
    except StoreUnavailableError:
        up.add_metric([], 0)
        return [up]
    up.add_metric([], 1)
    depth = GaugeMetricFamily("caredesk_queue_items", "Inbox items and outbox messages by status",
                              labels=["queue", "status"])
    age = GaugeMetricFamily("caredesk_queue_oldest_age_seconds",
                            "Age of the oldest unfinished inbox item / outbox message (0: none)", labels=["queue"])
    for queue, state, statuses in (("inbox", snapshot.inbox, ("pending", "working", "done", "failed")),
                                   ("outbox", snapshot.outbox, ("pending", "sending", "sent", "failed"))):
        for status in statuses:
            depth.add_metric([queue, status], state.by_status.get(status, 0))
        age.add_metric([queue], state.oldest_waiting_seconds or 0.0)
    escalations = GaugeMetricFamily("caredesk_escalations", "Escalations not closed, by status", labels=["status"])
    pages = GaugeMetricFamily("caredesk_oncall_pages", "Out-of-hours on-call pages not closed, by status",
                              labels=["status"])
    for family, counts in ((escalations, snapshot.escalations), (pages, snapshot.pages)):
        for status in ("open", "acknowledged"):
            family.add_metric([status], counts.get(status, 0))
    return [up, depth, age, escalations, pages]


async def render(store: OperationsStore, now: datetime) -> bytes:
    """The text a Prometheus scrape gets: this process's (or every process's) counters and
    histograms, then the database's gauges."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry = CollectorRegistry()
        MultiProcessCollector(registry)
        counted = generate_latest(registry)
    else:
        counted = generate_latest(REGISTRY)
    database = CollectorRegistry()
    database.register(_Snapshot(await _database_families(store, now)))
    return counted + generate_latest(database)
