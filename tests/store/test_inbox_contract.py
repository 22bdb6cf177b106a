"""Contract of `InboxStore` (what people sent, waiting for a worker), run against every
back end (SQLite and PostgreSQL), plus migrations 0003 and 0004.
"""

from __future__ import annotations

import asyncio
from collections import defaultdict
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

import pytest
from alembic import command
from sqlalchemy import inspect, select, text

from bot.store import models
from bot.store.ports import InboxItem, NewInboxItem
from bot.store.sql import SqlStore, alembic_config, upgrade_async

UTC = timezone.utc
NOW = datetime(2026, 3, 2, 9, 30, tzinfo=UTC)
LEASE = timedelta(minutes=5)


def turn(
    conversation: str,
    dedup_key: str | None = None,
    *,
    channel: str = "slack",
    kind: str = "message",
    priority: int = 1,
    payload: dict[str, Any] | None = None,
) -> NewInboxItem:
    return NewInboxItem(
        channel=channel,
        kind=kind,
        conversation_key=conversation,
        payload={"text": f"{conversation}/{dedup_key}"} if payload is None else payload,
        dedup_key=dedup_key,
        priority=priority,
    )


def keys(items: list[InboxItem] | Any) -> list[str | None]:
    return [t.dedup_key for t in items]


async def locks(store: SqlStore) -> dict[str | None, datetime | None]:
    i = models.inbox
    async with store.engine.connect() as conn:
        rows = (await conn.execute(select(i.c.dedup_key, i.c.locked_until).order_by(i.c.id))).all()
    return {k: v for k, v in rows}


# ---- enqueue ------------------------------------------------------------------------------------------


async def test_enqueue_counts_new_items_and_ignores_repeated_dedup_keys(store: SqlStore) -> None:
    first = [turn("c1", "d1", payload={"n": 1}), turn("c2", "d2"), turn("c3"), turn("c1", "d1", payload={"n": 2})]
    assert await store.enqueue_inbound(first, NOW) == 3  # the repeated d1 of the same batch is ignored
    later = NOW + timedelta(seconds=3)
    assert await store.enqueue_inbound([turn("c2", "d2"), turn("c4", "d3"), turn("c4")], later) == 2
    assert await store.enqueue_inbound([turn("c1", "d1"), turn("c2", "d2")], later) == 0
    assert await store.enqueue_inbound([], NOW) == 0

    items = await store.list_inbound()
    assert [(t.conversation_key, t.dedup_key) for t in items] == [
        ("c1", "d1"), ("c2", "d2"), ("c3", None), ("c4", "d3"), ("c4", None),
    ]
    assert items[0].payload == {"n": 1}  # the first of the batch counts
    assert [t.id for t in items] == sorted(t.id for t in items)
    assert len({t.id for t in items}) == 5
    a = items[0]
    assert (a.channel, a.kind, a.priority, a.status, a.attempts, a.last_error, a.done_at) == (
        "slack", "message", 1, "pending", 0, None, None,
    )
    assert (a.received_at, a.next_attempt_at) == (NOW, NOW)
    assert a.received_at.utcoffset() == timedelta(0)
    assert (items[3].received_at, items[3].next_attempt_at) == (later, later)
    assert await locks(store) == {"d1": None, "d2": None, None: None, "d3": None}

    # a done item still recognises its dedup_key (a platform's late retry), until purged
    (c1,) = [t for t in await store.claim_inbound(NOW, LEASE) if t.dedup_key == "d1"]
    await store.finish_inbound(c1.id, NOW)
    assert await store.enqueue_inbound([turn("c1", "d1")], NOW + timedelta(minutes=1)) == 0
    assert await store.purge_inbound(NOW + timedelta(seconds=1)) == 1
    assert await store.enqueue_inbound([turn("c1", "d1")], NOW + timedelta(minutes=1)) == 1


async def test_enqueue_a_large_batch_with_repeats(store: SqlStore) -> None:
    batch = [turn(f"c{n % 7}", f"k{n % 150}" if n % 10 else None) for n in range(200)]
    expected = len({t.dedup_key for t in batch if t.dedup_key is not None}) + sum(t.dedup_key is None for t in batch)
    assert expected == 155  # 135 distinct keys (multiples of 10 have none), 20 without a key
    assert await store.enqueue_inbound(batch, NOW) == expected
    assert await store.enqueue_inbound(batch, NOW) == 20  # only those without a key are new again
    assert len(await store.list_inbound()) == expected + 20
    assert await store.count_unfinished_inbound() == expected + 20


async def test_payload_round_trips(store: SqlStore) -> None:
    payload = {
        "text": "Bonjour, ça ne marche plus 😱 — 发票",
        "blocks": [{"type": "section", "fields": [1, 2.5, True, None, "ü"]}, []],
        "nested": {"a": {"b": {"c": ["x", {"d": -7}]}}},
        "empty": {},
    }
    assert await store.enqueue_inbound([turn("U1", "e1", payload=payload, kind="block_actions", channel="teams")], NOW) == 1
    (item,) = await store.list_inbound()
    assert item.payload == payload
    assert (item.kind, item.channel, item.conversation_key) == ("block_actions", "teams", "U1")
    (claimed,) = await store.claim_inbound(NOW, LEASE)
    assert claimed.payload == payload
    # values JSON cannot hold as such are stored the way the outbox stores them
    await store.enqueue_inbound([turn("U2", payload={"amount": Decimal("1.50"), "day": NOW})], NOW)
    assert (await store.list_inbound())[-1].payload == {"amount": "1.50", "day": "2026-03-02T09:30:00+00:00"}


# ---- claim --------------------------------------------------------------------------------------------


async def test_claim_by_priority_then_arrival(store: SqlStore) -> None:
    await store.enqueue_inbound(
        [
            turn("c1", "a", priority=1),
            turn("c2", "b", priority=0),
            turn("c3", "c", priority=2),
            turn("c4", "d", priority=1),
            turn("c5", "e", priority=0),
        ],
        NOW,
    )
    first = await store.claim_inbound(NOW, LEASE, limit=3)
    assert [(t.dedup_key, t.priority, t.status, t.attempts) for t in first] == [
        ("b", 0, "working", 1), ("e", 0, "working", 1), ("a", 1, "working", 1),
    ]
    assert keys(await store.claim_inbound(NOW, LEASE)) == ["d", "c"]
    assert await store.claim_inbound(NOW, LEASE) == []
    assert await locks(store) == {k: NOW + LEASE for k in "abcde"}
    assert keys(await store.list_inbound("working")) == ["a", "b", "c", "d", "e"]
    assert await store.list_inbound("pending") == []


async def test_a_person_with_few_waiting_items_goes_before_a_sender_with_many(store: SqlStore) -> None:
    # Two heavy senders wrote first (30 items each), then a person writes once: the person's item
    # is among the first taken, not behind the heavy senders' backlog.
    await store.enqueue_inbound([turn("heavy1", f"h1-{n}") for n in range(30)], NOW)
    await store.enqueue_inbound([turn("heavy2", f"h2-{n}", priority=0) for n in range(30)], NOW)
    await store.enqueue_inbound([turn("person", "p1")], NOW + timedelta(seconds=1))
    first = await store.claim_inbound(NOW + timedelta(seconds=1), LEASE, limit=1)
    assert keys(first) == ["p1"]
    # among conversations with as many waiting items: priority, then arrival
    assert keys(await store.claim_inbound(NOW + timedelta(seconds=1), LEASE, limit=5)) == ["h2-0", "h1-0"]
    # the counts change as items finish: a heavy sender's next item waits behind a new person's
    for item in await store.list_inbound("working"):
        await store.finish_inbound(item.id, NOW + timedelta(seconds=2))
    await store.enqueue_inbound([turn("person2", "q1", priority=2)], NOW + timedelta(seconds=2))
    assert keys(await store.claim_inbound(NOW + timedelta(seconds=2), LEASE, limit=2)) == ["q1", "h2-1"]


async def test_wait_for_items_returns_after_the_timeout_or_when_this_process_wrote(store: SqlStore) -> None:
    loop = asyncio.get_running_loop()
    # PostgreSQL: the first wait starts listening, which wakes the waiter once (a NOTIFY may have
    # been missed before); SQLite: nothing was written, it times out.
    await store.wait_for_items(1.0)
    at = loop.time()
    assert await store.wait_for_items(0.2) is False
    assert loop.time() - at >= 0.15
    waiting = asyncio.create_task(store.wait_for_items(10))
    await asyncio.sleep(0.05)
    assert not waiting.done()
    at = loop.time()
    await store.enqueue_inbound([turn("c1", "k1")], NOW)
    assert await asyncio.wait_for(waiting, 5) is True
    assert loop.time() - at < 2
    # a write before the wait is not missed either
    await store.enqueue_inbound([turn("c2", "k2")], NOW)
    assert await asyncio.wait_for(store.wait_for_items(10), 1) is True


async def test_on_postgresql_another_processs_write_wakes_a_waiting_worker_also_after_a_dropped_connection(
        store: SqlStore, store_factory) -> None:  # type: ignore[no-untyped-def]
    if store.dialect != "postgresql":
        pytest.skip("SQLite: the process that acknowledges also works (no worker processes)")
    other = await store_factory()
    loop = asyncio.get_running_loop()

    async def woken_by_the_other() -> None:
        assert await store.wait_for_items(10) is True  # listening: its connection wakes it once
        waiting = asyncio.create_task(store.wait_for_items(10))
        await asyncio.sleep(0.05)
        assert not waiting.done()
        at = loop.time()
        await other.enqueue_inbound([turn("c", None)], NOW)
        assert await asyncio.wait_for(waiting, 5) is True
        assert loop.time() - at < 2

    await woken_by_the_other()
    # the listening connection is cut (a restart, a network drop): it connects again and listens
    async with other.engine.connect() as conn:
        cut = (await conn.execute(text(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
            " WHERE datname = current_database() AND query LIKE 'LISTEN%'"))).scalars().all()
    assert cut == [True]
    await woken_by_the_other()


async def test_finish_and_claim_marks_done_then_takes_the_conversations_next_item(store: SqlStore) -> None:
    await store.enqueue_inbound([turn("A", "a1"), turn("A", "a2"), turn("B", "b1")], NOW)
    b1, a1 = await store.claim_inbound(NOW, LEASE)
    later = NOW + timedelta(seconds=1)
    # a1 done and a2 (its conversation's next item) taken in the same call; b1's finish names an
    # attempt that is not its claim's: not marked
    done, taken = await store.finish_and_claim_inbound([(a1.id, a1.attempts), (b1.id, b1.attempts + 1)], later, LEASE)
    assert done == 1 and keys(taken) == ["a2"]
    by_key = {t.dedup_key: t for t in await store.list_inbound()}
    assert (by_key["a1"].status, by_key["a1"].done_at) == ("done", later)
    assert (by_key["b1"].status, by_key["a2"].status) == ("working", "working")
    # finishing only (limit 0), and nothing at all
    assert await store.finish_and_claim_inbound([(b1.id, b1.attempts)], later, LEASE, 0) == (1, [])
    assert await store.finish_and_claim_inbound([], later, LEASE, 0) == (0, [])
    assert [t.dedup_key for t in await store.list_inbound("done")] == ["a1", "b1"]


async def test_claim_takes_only_items_due(store: SqlStore) -> None:
    await store.enqueue_inbound([turn("c1", "now")], NOW)
    await store.enqueue_inbound([turn("c2", "later")], NOW + timedelta(minutes=1))
    assert keys(await store.claim_inbound(NOW, LEASE)) == ["now"]
    assert keys(await store.claim_inbound(NOW + timedelta(minutes=1), LEASE)) == ["later"]


async def test_one_conversation_is_worked_one_item_at_a_time_in_order(store: SqlStore) -> None:
    # a1 is older than a2, which is more urgent: arrival order wins inside a conversation
    await store.enqueue_inbound(
        [turn("A", "a1"), turn("A", "a2", priority=0), turn("B", "b1"), turn("A", "a3"), turn("A", "a4")], NOW
    )
    first = await store.claim_inbound(NOW, LEASE, limit=10)
    # never two of one conversation in one call, though all are pending; B (one item waiting)
    # before A (four)
    assert keys(first) == ["b1", "a1"]
    assert await store.claim_inbound(NOW, LEASE) == []  # a2 waits while a1 is worked on

    await store.finish_inbound(first[1].id, NOW + timedelta(seconds=1))
    (a2,) = await store.claim_inbound(NOW + timedelta(seconds=1), LEASE)
    assert (a2.dedup_key, a2.attempts) == ("a2", 1)

    await store.fail_inbound(a2.id, "boom")  # given up: the conversation goes on without it
    assert keys(await store.claim_inbound(NOW + timedelta(seconds=2), LEASE)) == ["a3"]
    assert await store.claim_inbound(NOW + timedelta(seconds=2), LEASE) == []

    by_key = {t.dedup_key: t for t in await store.list_inbound()}
    assert (by_key["a1"].status, by_key["a1"].done_at, by_key["a1"].last_error) == (
        "done", NOW + timedelta(seconds=1), None,
    )
    assert (by_key["a2"].status, by_key["a2"].last_error, by_key["a2"].done_at) == ("failed", "boom", None)
    assert (by_key["a3"].status, by_key["a4"].status, by_key["b1"].status) == ("working", "pending", "working")
    assert await locks(store) == {
        "a1": None, "a2": None, "b1": NOW + LEASE, "a3": NOW + timedelta(seconds=2) + LEASE, "a4": None,
    }


async def test_an_expired_lease_is_taken_again(store: SqlStore) -> None:
    await store.enqueue_inbound([turn("A", "a1"), turn("A", "a2")], NOW)
    (a1,) = await store.claim_inbound(NOW, LEASE)
    assert await store.claim_inbound(NOW + timedelta(minutes=4), LEASE) == []  # lease still running
    assert await store.claim_inbound(NOW + LEASE, LEASE) == []  # runs out only after
    # the worker died: a1 is taken again (and a2 still waits for it)
    again = await store.claim_inbound(NOW + timedelta(minutes=6), LEASE)
    assert [(t.id, t.status, t.attempts) for t in again] == [(a1.id, "working", 2)]
    assert (await locks(store))["a1"] == NOW + timedelta(minutes=11)
    await store.finish_inbound(a1.id, NOW + timedelta(minutes=7))
    assert [(t.dedup_key, t.attempts) for t in await store.claim_inbound(NOW + timedelta(minutes=7), LEASE)] == [
        ("a2", 1)
    ]


async def test_extend_keeps_a_working_item_and_nothing_else(store: SqlStore) -> None:
    await store.enqueue_inbound([turn("A", "a1"), turn("A", "a2"), turn("B", "b1")], NOW)
    b1, a1 = await store.claim_inbound(NOW, LEASE, limit=2)  # B has fewer items waiting
    assert (a1.dedup_key, b1.dedup_key) == ("a1", "b1")
    await store.enqueue_inbound([turn("C", "c1")], NOW)
    c1 = (await store.list_inbound("pending"))[-1]
    assert c1.dedup_key == "c1"

    # the worker still on a1 keeps it well past its first lease
    new_lease = NOW + timedelta(minutes=20)
    assert await store.extend_inbound(a1.id, new_lease) is True
    assert (await locks(store))["a1"] == new_lease
    assert (await locks(store))["b1"] == NOW + LEASE  # only that item
    # past the old lease, before the new one: a1 is not taken again (nor a2 behind it), b1 is
    past_old = NOW + LEASE + timedelta(minutes=1)
    assert [(t.dedup_key, t.attempts) for t in await store.claim_inbound(past_old, LEASE)] == [("b1", 2), ("c1", 1)]
    assert await store.claim_inbound(past_old, LEASE) == []
    assert [(t.dedup_key, t.status, t.attempts) for t in await store.list_inbound()] == [
        ("a1", "working", 1), ("a2", "pending", 0), ("b1", "working", 2), ("c1", "working", 1),
    ]
    # an aware time in any zone is fine, a naive one refused
    later = NOW + timedelta(minutes=30)
    assert await store.extend_inbound(a1.id, later.astimezone(timezone(timedelta(hours=-5)))) is True
    assert (await locks(store))["a1"] == later
    with pytest.raises(ValueError, match="locked_until"):
        await store.extend_inbound(a1.id, datetime(2026, 3, 2, 10, 0))
    assert (await locks(store))["a1"] == later

    # finished: nothing to keep any more, and the lease stays cleared
    await store.finish_inbound(a1.id, NOW + timedelta(minutes=21))
    assert await store.extend_inbound(a1.id, NOW + timedelta(hours=1)) is False
    assert (await locks(store))["a1"] is None
    assert [(t.status, t.attempts) for t in await store.list_inbound() if t.dedup_key == "a1"] == [("done", 1)]

    # pending (never claimed), failed, back to pending by a retry, unknown: False, left alone
    (a2,) = [t for t in await store.list_inbound("pending") if t.dedup_key == "a2"]
    assert await store.extend_inbound(a2.id, NOW + timedelta(hours=1)) is False
    await store.fail_inbound(c1.id, "gave up")
    assert await store.extend_inbound(c1.id, NOW + timedelta(hours=1)) is False
    await store.retry_inbound(b1.id, NOW + timedelta(hours=2), "later")
    assert await store.extend_inbound(b1.id, NOW + timedelta(hours=1)) is False
    assert await store.extend_inbound(max(a1.id, a2.id, b1.id, c1.id) + 1000, NOW + timedelta(hours=1)) is False
    assert await locks(store) == {"a1": None, "a2": None, "b1": None, "c1": None}
    assert [(t.dedup_key, t.status, t.next_attempt_at) for t in await store.list_inbound()] == [
        ("a1", "done", NOW), ("a2", "pending", NOW), ("b1", "pending", NOW + timedelta(hours=2)),
        ("c1", "failed", NOW),
    ]
    # a2, pending and due, is taken as usual (extend did not touch it)
    assert [(t.dedup_key, t.attempts) for t in await store.claim_inbound(NOW + timedelta(minutes=22), LEASE)] == [
        ("a2", 1)
    ]


async def test_a_retry_blocks_its_conversation_until_due(store: SqlStore) -> None:
    await store.enqueue_inbound([turn("A", "a1"), turn("A", "a2"), turn("B", "b1")], NOW)
    b1, a1 = await store.claim_inbound(NOW, LEASE)  # B has fewer items waiting
    retry_at = NOW + timedelta(minutes=10)
    await store.retry_inbound(a1.id, retry_at, "503 from the ticket system")
    item = (await store.list_inbound("pending"))[0]
    assert (item.id, item.next_attempt_at, item.last_error, item.attempts) == (
        a1.id, retry_at, "503 from the ticket system", 1,
    )
    assert (await locks(store))["a1"] is None

    await store.finish_inbound(b1.id, NOW + timedelta(minutes=1))
    assert await store.claim_inbound(NOW + timedelta(minutes=9), LEASE) == []  # a2 waits behind a1
    again = await store.claim_inbound(retry_at, LEASE)
    assert [(t.dedup_key, t.attempts, t.last_error) for t in again] == [("a1", 2, "503 from the ticket system")]
    await store.finish_inbound(a1.id, retry_at)
    assert keys(await store.claim_inbound(retry_at, LEASE)) == ["a2"]


async def test_claim_by_channel(store: SqlStore) -> None:
    await store.enqueue_inbound(
        [turn("s1", "s1", channel="slack"), turn("t1", "t1", channel="teams"), turn("s2", "s2", channel="slack")], NOW
    )
    assert await store.claim_inbound(NOW, LEASE, channels=[]) == []
    assert await store.claim_inbound(NOW, LEASE, channels=["web"]) == []
    assert keys(await store.claim_inbound(NOW, LEASE, channels=["teams"])) == ["t1"]
    assert keys(await store.claim_inbound(NOW, LEASE, channels=("teams", "slack"), limit=1)) == ["s1"]
    assert keys(await store.claim_inbound(NOW, LEASE)) == ["s2"]


async def test_claim_limit_and_lease_checks(store: SqlStore) -> None:
    await store.enqueue_inbound([turn(f"c{n}", f"k{n}") for n in range(5)], NOW)
    assert await store.claim_inbound(NOW, LEASE, limit=0) == []
    assert await store.claim_inbound(NOW, LEASE, limit=-1) == []
    with pytest.raises(ValueError):
        await store.claim_inbound(NOW, timedelta(0))
    with pytest.raises(ValueError):
        await store.claim_inbound(NOW, 300)  # type: ignore[arg-type]
    assert keys(await store.claim_inbound(NOW, LEASE, limit=2)) == ["k0", "k1"]
    assert keys(await store.claim_inbound(NOW, LEASE)) == ["k2", "k3", "k4"]  # default limit 10
    assert [t.attempts for t in await store.list_inbound()] == [1] * 5


async def test_concurrent_workers_never_share_an_item_nor_a_conversation(store: SqlStore, store_factory) -> None:  # type: ignore[no-untyped-def]
    other = await store_factory()
    # 40 items over 10 conversations, interleaved, some urgent
    batch = [turn(f"conv{n % 10}", f"item{n:02d}", priority=0 if n % 7 == 0 else 1) for n in range(40)]
    assert await store.enqueue_inbound(batch, NOW) == 40
    id_of = {t.dedup_key: t.id for t in await store.list_inbound()}

    taken: list[int] = []
    finished: dict[str, list[int]] = defaultdict(list)
    in_flight: dict[str, int] = {}
    problems: list[str] = []

    async def worker(s: SqlStore) -> None:
        while await s.count_unfinished_inbound():
            got = await s.claim_inbound(NOW, LEASE, limit=3)
            if not got:
                await asyncio.sleep(0.002)
                continue
            if len({t.conversation_key for t in got}) != len(got):
                problems.append(f"one claim took two items of a conversation: {keys(got)}")
            for t in got:
                if t.conversation_key in in_flight:
                    problems.append(f"{t.dedup_key} taken while {in_flight[t.conversation_key]} is worked on")
                in_flight[t.conversation_key] = t.id
                taken.append(t.id)
            for t in got:
                await asyncio.sleep(0)  # let the other workers in while this one "works"
                # out of flight before the store says done: the next item can be taken only after
                del in_flight[t.conversation_key]
                finished[t.conversation_key].append(t.id)
                await s.finish_inbound(t.id, NOW)

    await asyncio.wait_for(asyncio.gather(*(worker(s) for s in [store, other, store, other])), timeout=120)

    assert problems == []
    assert len(taken) == len(set(taken)) == 40
    assert set(taken) == set(id_of.values())
    for c in range(10):
        # arrival order: the order of the batch, which is the order of the ids
        expected = [id_of[f"item{n:02d}"] for n in range(c, 40, 10)]
        assert expected == sorted(expected)
        assert finished[f"conv{c}"] == expected
    items = await store.list_inbound()
    assert [(t.status, t.attempts) for t in items] == [("done", 1)] * 40
    assert await store.count_unfinished_inbound() == 0


# ---- counting, purging, time checks ------------------------------------------------------------------


async def test_count_unfinished(store: SqlStore) -> None:
    assert await store.count_unfinished_inbound() == 0
    await store.enqueue_inbound([turn(f"c{n}", f"k{n}") for n in range(5)], NOW)
    assert await store.count_unfinished_inbound() == 5
    a, b, c = await store.claim_inbound(NOW, LEASE, limit=3)
    assert await store.count_unfinished_inbound() == 5  # working counts
    await store.finish_inbound(a.id, NOW)
    await store.fail_inbound(b.id, "bad payload")
    await store.retry_inbound(c.id, NOW + timedelta(hours=1), "later")
    assert await store.count_unfinished_inbound() == 3  # c (pending again) and the two never taken
    assert [t.status for t in await store.list_inbound()] == ["done", "failed", "pending", "pending", "pending"]
    assert keys(await store.list_inbound("failed")) == ["k1"]


async def test_purge_deletes_only_old_done_items(store: SqlStore) -> None:
    await store.enqueue_inbound([turn(f"c{n}", f"k{n}") for n in range(6)], NOW)
    k0, k1, k2, k3, k4, _k5 = await store.claim_inbound(NOW, LEASE)
    await store.finish_inbound(k0.id, NOW + timedelta(hours=1))
    await store.finish_inbound(k1.id, NOW + timedelta(hours=2))
    await store.finish_inbound(k2.id, NOW + timedelta(hours=3))
    await store.fail_inbound(k3.id, "gave up")
    await store.retry_inbound(k4.id, NOW, "again")  # k4 pending, k5 working

    assert await store.purge_inbound(NOW + timedelta(hours=1)) == 0  # strictly before
    assert await store.purge_inbound(NOW + timedelta(hours=2, seconds=1)) == 2
    assert keys(await store.list_inbound()) == ["k2", "k3", "k4", "k5"]
    assert await store.purge_inbound(NOW + timedelta(days=30)) == 1
    assert await store.purge_inbound(NOW + timedelta(days=30)) == 0
    assert [(t.dedup_key, t.status) for t in await store.list_inbound()] == [
        ("k3", "failed"), ("k4", "pending"), ("k5", "working"),
    ]
    # the purged keys are free again, the others still known
    assert await store.enqueue_inbound([turn("c0", "k0"), turn("c3", "k3"), turn("c5", "k5")], NOW) == 1


async def test_naive_datetimes_are_refused(store: SqlStore) -> None:
    naive = datetime(2026, 3, 2, 9, 30)
    with pytest.raises(ValueError, match="timezone-aware"):
        await store.enqueue_inbound([turn("c1", "k1")], naive)
    with pytest.raises(TypeError):
        await store.enqueue_inbound([turn("c1", "k1")], "2026-03-02T09:30:00Z")  # type: ignore[arg-type]
    assert await store.list_inbound() == []

    await store.enqueue_inbound([turn("c1", "k1")], NOW)
    with pytest.raises(ValueError, match="timezone-aware"):
        await store.claim_inbound(naive, LEASE)
    (item,) = await store.claim_inbound(NOW, LEASE)
    with pytest.raises(ValueError, match="timezone-aware"):
        await store.finish_inbound(item.id, naive)
    with pytest.raises(ValueError, match="next_attempt_at"):
        await store.retry_inbound(item.id, naive, "later")
    with pytest.raises(ValueError, match="done_before"):
        await store.purge_inbound(naive)
    assert [(t.status, t.attempts) for t in await store.list_inbound()] == [("working", 1)]

    # any aware time zone is fine and comes back in UTC
    brussels = NOW.astimezone(timezone(timedelta(hours=1)))
    await store.finish_inbound(item.id, brussels)
    (done,) = await store.list_inbound("done")
    assert done.done_at == NOW and done.done_at.utcoffset() == timedelta(0)


# ---- migration 0003 -----------------------------------------------------------------------------------


async def test_migration_0003_up_and_down(fresh_database_url: str) -> None:
    await upgrade_async(fresh_database_url, "0002")
    store = SqlStore(fresh_database_url)

    def tables(conn):  # type: ignore[no-untyped-def]
        return set(inspect(conn).get_table_names())

    def downgrade(conn):  # type: ignore[no-untyped-def]
        command.downgrade(alembic_config(connection=conn), "0002")

    async def version() -> list[str]:
        async with store.engine.connect() as conn:
            return list((await conn.execute(text("SELECT version_num FROM alembic_version"))).scalars())

    try:
        async with store.engine.connect() as conn:
            assert "inbox" not in await conn.run_sync(tables)
        await upgrade_async(fresh_database_url, "0003")
        assert await version() == ["0003"]
        assert await store.enqueue_inbound([turn("c1", "k1")], NOW) == 1

        async with store.engine.begin() as conn:
            await conn.run_sync(downgrade)
        assert await version() == ["0002"]
        async with store.engine.connect() as conn:
            found = await conn.run_sync(tables)
        assert "inbox" not in found and "outbox" in found

        await store.initialize()
        assert await store.list_inbound() == []  # a new, empty table
        assert await store.enqueue_inbound([turn("c1", "k1")], NOW) == 1
    finally:
        await store.close()


# ---- migration 0004 -----------------------------------------------------------------------------------


async def test_migration_0004_leaves_the_inbox_lean_indexes_and_the_purge_uses_its_own(fresh_database_url: str) -> None:
    await upgrade_async(fresh_database_url, "0003")
    store = SqlStore(fresh_database_url)

    def indexes(conn):  # type: ignore[no-untyped-def]
        return {ix["name"] for ix in inspect(conn).get_indexes("inbox")}

    def downgrade(conn):  # type: ignore[no-untyped-def]
        command.downgrade(alembic_config(connection=conn), "0003")

    async def index_names() -> set[str]:
        async with store.engine.connect() as conn:
            return await conn.run_sync(indexes) - {"uq_inbox_dedup_key"}  # PostgreSQL lists the unique one

    purge = "DELETE FROM inbox WHERE status = 'done' AND done_at < :before"
    try:
        assert await store.enqueue_inbound([turn("c1", "k1"), turn("c2", "k2")], NOW) == 2
        assert await index_names() == {"ix_inbox_status_priority_id", "ix_inbox_unfinished_conversation",
                                       "ix_inbox_done_at"}
        await store.initialize()  # -> head
        assert await index_names() == {"ix_inbox_unfinished_conversation", "ix_inbox_done_at"}

        # The purge's condition (done_at < ...) is enough for the partial index: it is usable.
        async with store.engine.begin() as conn:
            if store.dialect == "postgresql":
                await conn.execute(text("SET LOCAL enable_seqscan = off"))
                plan = "\n".join((await conn.execute(text("EXPLAIN " + purge), {"before": NOW})).scalars())
            else:
                rows = (await conn.execute(text("EXPLAIN QUERY PLAN " + purge), {"before": NOW})).all()
                plan = "\n".join(str(row[-1]) for row in rows)
        assert "ix_inbox_done_at" in plan, plan

        # Items are worked and purged as before the migration.
        (first, second) = await store.claim_inbound(NOW, LEASE, limit=10)
        await store.finish_inbound(first.id, NOW)
        await store.finish_inbound(second.id, NOW + timedelta(hours=2))
        assert await store.purge_inbound(NOW + timedelta(hours=1)) == 1
        assert [item.dedup_key for item in await store.list_inbound()] == ["k2"]

        async with store.engine.begin() as conn:
            await conn.run_sync(downgrade)
        assert await index_names() == {"ix_inbox_status_priority_id", "ix_inbox_unfinished_conversation",
                                       "ix_inbox_done_at"}
        assert [item.dedup_key for item in await store.list_inbound()] == ["k2"]
    finally:
        await store.close()
