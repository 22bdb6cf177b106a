"""The inbox's writer (group commit) and worker (claim, lease renewal, outage waits, retries, dead
letters, order within a conversation), against the real store on every back end (SQLite and
PostgreSQL) and a real UTC clock, with short leases and waits.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from datetime import datetime, timedelta, timezone
from typing import Any, Sequence

import pytest

from bot.app.inbox import InboxWorker, InboxWriter, wall_clock
from bot.app.outbox import DeliveryFailed, RetryPolicy
from bot.store.ports import InboxItem, NewInboxItem, StoreUnavailableError
from bot.store.sql import SqlStore

LEASE = timedelta(seconds=0.6)
POLICY = RetryPolicy(max_attempts=2, base_delay=timedelta(seconds=0), max_delay=timedelta(seconds=0))
OUTAGE_WAITS = (0.05,)


def turn(conversation: str, key: str, *, channel: str = "slack") -> NewInboxItem:
    return NewInboxItem(channel=channel, kind="message", conversation_key=conversation,
                          payload={"key": key}, dedup_key=key)


def worker(store: SqlStore, handler: Any, **kw: Any) -> InboxWorker:
    kw.setdefault("lease", LEASE)
    kw.setdefault("policy", POLICY)
    kw.setdefault("outage_waits", OUTAGE_WAITS)
    return InboxWorker(store, wall_clock, {"slack": handler}, **kw)


def count_enqueues(store: SqlStore) -> list[int]:
    """Wrap the store's enqueue_inbound: the size of every call's batch is recorded."""
    calls: list[int] = []
    original = store.enqueue_inbound

    async def counting(items: Sequence[NewInboxItem], now: Any) -> int:
        calls.append(len(items))
        return await original(items, now)

    store.enqueue_inbound = counting  # type: ignore[method-assign]
    return calls


async def state(store: SqlStore) -> dict[str | None, tuple[str, int, str | None]]:
    return {t.dedup_key: (t.status, t.attempts, t.last_error) for t in await store.list_inbound()}


# ---- writer ---------------------------------------------------------------------------------------


async def test_writer_group_commits_concurrent_writes(store: SqlStore) -> None:
    calls = count_enqueues(store)
    written: list[int] = []
    writer = InboxWriter(store, wall_clock, on_written=lambda: written.append(len(calls)))

    await asyncio.wait_for(asyncio.gather(*(writer.write(turn(f"c{n % 10}", f"k{n:03d}")) for n in range(100))), 10)

    items = await store.list_inbound()
    assert sorted(t.dedup_key or "" for t in items) == [f"k{n:03d}" for n in range(100)]
    assert [t.status for t in items] == ["pending"] * 100
    assert sum(calls) == 100
    assert 1 <= len(calls) <= 3, calls  # a burst costs a few transactions, not 100
    assert written == list(range(1, len(calls) + 1))  # once per transaction, after it

    # max_batch bounds a transaction; the items arriving during one go together in the next
    calls.clear()
    small = InboxWriter(store, wall_clock, max_batch=30)
    await asyncio.wait_for(asyncio.gather(*(small.write(turn("b", f"b{n:03d}")) for n in range(100))), 10)
    assert calls == [30, 30, 30, 10]
    assert len(await store.list_inbound()) == 200
    # in arrival order (one conversation: the order its turns are worked in)
    assert [t.dedup_key for t in await store.list_inbound() if t.conversation_key == "b"] == [
        f"b{n:03d}" for n in range(100)
    ]


async def test_writer_a_failing_store_fails_every_waiting_write_and_recovers(store: SqlStore) -> None:
    original = store.enqueue_inbound
    calls: list[int] = []
    down = True

    async def flaky(items: Sequence[NewInboxItem], now: Any) -> int:
        calls.append(len(items))
        await asyncio.sleep(0.01)
        if down:
            raise StoreUnavailableError("database away")
        return await original(items, now)

    store.enqueue_inbound = flaky  # type: ignore[method-assign]
    written: list[str] = []
    writer = InboxWriter(store, wall_clock, max_batch=8, on_written=lambda: written.append("w"))

    results = await asyncio.wait_for(
        asyncio.gather(*(writer.write(turn(f"c{n}", f"k{n}")) for n in range(20)), return_exceptions=True), 5
    )
    assert len(results) == 20
    assert all(isinstance(r, StoreUnavailableError) for r in results), results
    assert [str(r) for r in results] == ["database away"] * 20
    assert calls == [8, 8, 4]  # every batch was tried, none hangs
    assert written == []  # nothing was written
    assert await store.list_inbound() == []

    # the database is back: the same writer writes again
    down = False
    await asyncio.wait_for(asyncio.gather(*(writer.write(turn(f"c{n}", f"k{n}")) for n in range(3))), 5)
    assert sorted(t.dedup_key or "" for t in await store.list_inbound()) == ["k0", "k1", "k2"]
    assert written == ["w"]


# ---- worker: drain, order, concurrency ------------------------------------------------------------


async def test_drain_keeps_a_conversation_in_order_and_runs_conversations_concurrently(store: SqlStore) -> None:
    conversations = "ABCD"
    await store.enqueue_inbound([turn(c, f"{c}{n}") for n in range(3) for c in conversations], wall_clock())
    log: list[tuple[str, str]] = []
    active: set[str] = set()
    active_conversations: Counter[str] = Counter()
    most = 0
    overlaps: list[str] = []

    async def handle(item: InboxItem) -> None:
        nonlocal most
        key, conv = item.payload["key"], item.conversation_key
        if active_conversations[conv]:
            overlaps.append(key)
        active_conversations[conv] += 1
        active.add(key)
        most = max(most, len(active))
        log.append(("start", key))
        await asyncio.sleep(0.03)
        log.append(("end", key))
        active.discard(key)
        active_conversations[conv] -= 1

    await asyncio.wait_for(worker(store, handle, concurrency=3).drain(), 10)

    assert overlaps == []
    started = [k for what, k in log if what == "start"]
    assert sorted(started) == sorted(f"{c}{n}" for c in conversations for n in range(3))  # each once
    for c in conversations:
        mine = [(what, k) for what, k in log if k.startswith(c)]
        assert mine == [(what, f"{c}{n}") for n in range(3) for what in ("start", "end")]  # in order, one at a time
    assert most == 3  # up to `concurrency`, never more
    assert started[:3] == ["A0", "B0", "C0"]  # the first claim: oldest conversations first
    assert set((await state(store)).values()) == {("done", 1, None)}
    assert await store.count_unfinished_inbound() == 0


async def test_drain_with_nothing_to_do_returns(store: SqlStore) -> None:
    async def handle(item: InboxItem) -> None:  # pragma: no cover - never called
        raise AssertionError(item)

    await asyncio.wait_for(worker(store, handle).drain(), 5)
    # items of a channel without a handler are left to the workers that have one
    await store.enqueue_inbound([turn("A", "t1", channel="teams")], wall_clock())
    await asyncio.wait_for(worker(store, handle).drain(), 5)
    assert await state(store) == {"t1": ("pending", 0, None)}


# ---- worker: failures -----------------------------------------------------------------------------


async def test_a_platform_failing_for_now_is_retried_then_dead_lettered_and_its_conversation_goes_on(
        store: SqlStore) -> None:
    await store.enqueue_inbound([turn("A", "a1"), turn("A", "a2"), turn("B", "b1")], wall_clock())
    seen: list[tuple[str, int, str | None]] = []

    async def handle(item: InboxItem) -> None:
        seen.append((item.payload["key"], item.attempts, item.last_error))
        if item.payload["key"] == "a1":
            raise DeliveryFailed("Slack says 500")

    await asyncio.wait_for(worker(store, handle).drain(), 10)

    a_seen = [s for s in seen if s[0].startswith("a")]
    assert a_seen == [
        ("a1", 1, None),
        ("a1", 2, "DeliveryFailed: Slack says 500"),  # retried, the first failure recorded
        ("a2", 1, None),  # only after a1 was given up
    ]
    assert ("b1", 1, None) in seen and len(seen) == 4
    assert await state(store) == {
        "a1": ("failed", 2, "DeliveryFailed: Slack says 500"),
        "a2": ("done", 1, None),
        "b1": ("done", 1, None),
    }


async def test_a_rate_limit_reschedules_the_item_after_retry_after_without_waiting_in_a_slot(store: SqlStore) -> None:
    await store.enqueue_inbound([turn("A", "a1"), turn("B", "b1")], wall_clock())

    async def handle(item: InboxItem) -> None:
        if item.payload["key"] == "a1":
            raise DeliveryFailed("Slack: HTTP 429", retry_after=20)

    w = worker(store, handle, policy=RetryPolicy(max_attempts=5, base_delay=timedelta(0)), concurrency=1)
    start = wall_clock()
    await asyncio.wait_for(w.drain(), 5)  # returns at once: a1 waits in the store, not in the slot
    items = {t.dedup_key: t for t in await store.list_inbound()}
    assert items["b1"].status == "done"
    assert items["a1"].status == "pending" and items["a1"].attempts == 1
    assert items["a1"].next_attempt_at - start >= timedelta(seconds=20)


async def test_a_poison_item_is_dead_lettered_at_once_and_its_person_told(store: SqlStore, caplog) -> None:
    await store.enqueue_inbound([turn("A", "a1"), turn("A", "a2")], wall_clock())
    seen: list[str] = []
    told: list[str] = []

    async def handle(item: InboxItem) -> None:
        seen.append(item.payload["key"])
        if item.payload["key"] == "a1":
            {"text": {"not": "a string"}}["text"].strip()  # what a malformed payload does

    async def tell(item: InboxItem) -> None:
        told.append(item.payload["key"])

    w = worker(store, handle, policy=RetryPolicy(max_attempts=5, base_delay=timedelta(seconds=30)),
               unreadable={"slack": tell})
    with caplog.at_level("WARNING", logger="caredesk.inbox"):
        await asyncio.wait_for(w.drain(), 5)
    assert seen == ["a1", "a2"]  # not retried; the next message right after
    assert told == ["a1"]
    status, attempts, error = (await state(store))["a1"]
    assert (status, attempts) == ("failed", 1) and error is not None and error.startswith("unreadable: AttributeError")
    (line,) = [r for r in caplog.records if "dead-lettered at once" in r.getMessage()]
    assert line.levelname == "WARNING" and f"inbox item {(await store.list_inbound('failed'))[0].id} " in line.getMessage()
    assert "not a string" not in line.getMessage()  # the failure's place, not what was sent


async def test_a_short_database_outage_is_waited_out_within_the_claim(store: SqlStore) -> None:
    await store.enqueue_inbound([turn("A", "a1"), turn("A", "a2")], wall_clock())
    seen: list[tuple[str, int]] = []

    async def handle(item: InboxItem) -> None:
        seen.append((item.payload["key"], item.attempts))
        if len(seen) == 1:
            raise StoreUnavailableError("connection refused")

    await asyncio.wait_for(worker(store, handle).drain(), 10)

    assert seen == [("a1", 1), ("a1", 1), ("a2", 1)]  # the same claim, tried again after the wait
    assert await state(store) == {"a1": ("done", 1, None), "a2": ("done", 1, None)}


async def test_a_longer_outage_is_left_to_the_store_retry(store: SqlStore) -> None:
    await store.enqueue_inbound([turn("A", "a1")], wall_clock())
    seen: list[int] = []

    async def handle(item: InboxItem) -> None:
        seen.append(item.attempts)
        if len(seen) <= 2:  # longer than outage_waits=(0.05,): both tries of the first claim fail
            raise StoreUnavailableError("connection refused")

    await asyncio.wait_for(worker(store, handle).drain(), 10)

    assert seen == [1, 1, 2]
    assert await state(store) == {"a1": ("done", 2, "StoreUnavailableError: connection refused")}


# ---- worker: lease renewal ------------------------------------------------------------------------


async def test_a_slow_handler_keeps_its_lease_against_another_worker(store: SqlStore, store_factory) -> None:  # type: ignore[no-untyped-def]
    other_store = await store_factory()
    await store.enqueue_inbound([turn("A", "a1")], wall_clock())
    runs: list[tuple[str, int]] = []
    slow_started = asyncio.Event()

    async def slow(item: InboxItem) -> None:
        runs.append((item.payload["key"], item.attempts))
        slow_started.set()
        await asyncio.sleep(LEASE.total_seconds() * 3)  # 1.8 s: three leases

    async def other_handler(item: InboxItem) -> None:
        runs.append((f"other:{item.payload['key']}", item.attempts))

    first = worker(store, slow, concurrency=1)
    assert await first.fill() == 1
    await asyncio.wait_for(slow_started.wait(), 5)

    other = worker(other_store, other_handler)  # like another process
    took: list[int] = []
    while first.tasks:
        took.append(await other.fill())
        await asyncio.sleep(0.05)
    assert len(took) >= 10  # it really tried, over the three leases
    assert set(took) == {0}, took
    assert not other.tasks
    assert runs == [("a1", 1)]  # once, by the first worker
    await first.stop(0)  # what its next claim would do: mark a1 done
    assert await state(store) == {"a1": ("done", 1, None)}


async def test_a_stopped_worker_leaves_its_item_to_another_after_the_lease(store: SqlStore, store_factory) -> None:  # type: ignore[no-untyped-def]
    other_store = await store_factory()
    await store.enqueue_inbound([turn("A", "a1")], wall_clock())
    cancelled: list[str] = []

    async def stuck(item: InboxItem) -> None:
        try:
            await asyncio.sleep(30)
        except asyncio.CancelledError:
            cancelled.append(item.payload["key"])
            raise

    first = worker(store, stuck)
    assert await first.fill() == 1
    await asyncio.sleep(0.05)
    await asyncio.wait_for(first.stop(grace=0.05), 5)  # cancelled: no renewal any more
    assert cancelled == ["a1"]
    assert not first.tasks
    assert await state(store) == {"a1": ("working", 1, None)}

    seen: list[int] = []

    async def handle(item: InboxItem) -> None:
        seen.append(item.attempts)

    other = worker(other_store, handle)
    assert await other.fill() == 0  # the lease still runs
    await asyncio.sleep(LEASE.total_seconds() + 0.1)
    await asyncio.wait_for(other.drain(), 5)
    assert seen == [2]
    assert await state(store) == {"a1": ("done", 2, None)}


# ---- worker: run loop -----------------------------------------------------------------------------


async def test_run_handles_written_items_promptly_and_stops(store: SqlStore) -> None:
    handled: dict[str, float] = {}
    loop = asyncio.get_running_loop()
    finished_slow = asyncio.Event()

    async def handle(item: InboxItem) -> None:
        key = item.payload["key"]
        if key.startswith("slow"):
            await asyncio.sleep(0.3)
            finished_slow.set()
        handled[key] = loop.time()

    # polls are long: only wake() makes it look at once
    w = worker(store, handle, idle_poll=5.0)
    writer = InboxWriter(store, wall_clock, on_written=w.wake)
    stop = asyncio.Event()
    running = asyncio.create_task(w.run(stop, grace=5.0))
    try:
        await asyncio.sleep(0.2)  # it looked, found nothing, and waits its poll
        for n in range(3):
            at = loop.time()
            await writer.write(turn(f"c{n}", f"k{n}"))
            for _ in range(100):
                if f"k{n}" in handled:
                    break
                await asyncio.sleep(0.01)
            assert f"k{n}" in handled, f"k{n} not handled within 1 s"
            assert handled[f"k{n}"] - at < 1.0  # not at the next poll (3-5 s later)
        # a turn still being worked on when stopping is let finish (within the grace)
        await writer.write(turn("s", "slow1"))
        await asyncio.sleep(0.1)
        assert "slow1" not in handled
        stop.set()
        await asyncio.wait_for(running, 3)
    finally:
        if not running.done():
            running.cancel()
    assert finished_slow.is_set()
    assert sorted(handled) == ["k0", "k1", "k2", "slow1"]
    assert set((await state(store)).values()) == {("done", 1, None)}


async def test_run_is_woken_by_the_stores_writes_without_polling(store: SqlStore, store_factory) -> None:  # type: ignore[no-untyped-def]
    """No wake() from a writer in this process: the store wakes the worker (PostgreSQL: another
    process's insert, by NOTIFY; SQLite: a write through the same store)."""
    handled: dict[str, float] = {}
    loop = asyncio.get_running_loop()

    async def handle(item: InboxItem) -> None:
        handled[item.payload["key"]] = loop.time()

    writer_store = await store_factory() if store.dialect == "postgresql" else store
    w = worker(store, handle, idle_poll=5.0)  # its own looks are 5 s apart
    stop = asyncio.Event()
    running = asyncio.create_task(w.run(stop, grace=5.0))
    try:
        await asyncio.sleep(0.5)  # it looked, found nothing, and waits (PostgreSQL: listening)
        for n in range(3):
            at = loop.time()
            await writer_store.enqueue_inbound([turn(f"c{n}", f"k{n}")], wall_clock())
            for _ in range(200):
                if f"k{n}" in handled:
                    break
                await asyncio.sleep(0.01)
            assert f"k{n}" in handled and handled[f"k{n}"] - at < 1.5, f"k{n} not handled before the next poll"
    finally:
        stop.set()
        await asyncio.wait_for(running, 5)


async def test_run_stops_at_once_when_idle(store: SqlStore) -> None:
    async def handle(item: InboxItem) -> None:  # pragma: no cover - never called
        raise AssertionError(item)

    w = worker(store, handle, idle_poll=5.0)
    stop = asyncio.Event()
    running = asyncio.create_task(w.run(stop))
    await asyncio.sleep(0.1)
    assert not running.done()
    loop = asyncio.get_running_loop()
    at = loop.time()
    stop.set()
    await asyncio.wait_for(running, 2)
    assert loop.time() - at < 0.5  # the stop wakes it, it does not wait out its poll


@pytest.mark.parametrize("concurrency", [0, -1])
def test_concurrency_must_be_positive(concurrency: int) -> None:
    with pytest.raises(ValueError, match="concurrency"):
        InboxWorker(None, wall_clock, {}, concurrency=concurrency)  # type: ignore[arg-type]



# ---- regressions: a worker that lost its lease; a failing on_written ----------------------------------

TAKEOVER_LEASE = timedelta(minutes=5)
T0 = datetime(2026, 3, 2, 9, 30, tzinfo=timezone.utc)


def _turn(c, k):
    return NewInboxItem(channel="slack", kind="message", conversation_key=c, payload={"key": k}, dedup_key=k)


async def test_extend_and_finish_after_a_takeover_change_nothing(store):
    """A worker whose lease ran out and whose item another worker took cannot renew it."""
    await store.enqueue_inbound([_turn("A", "a1")], T0)
    (a1,) = await store.claim_inbound(T0, TAKEOVER_LEASE)
    (again,) = await store.claim_inbound(T0 + timedelta(minutes=6), TAKEOVER_LEASE)  # worker A's lease ran out
    assert again.attempts == 2
    # worker A (holding attempts == 1) tries to renew: it no longer holds the item
    assert await store.extend_inbound(a1.id, T0 + timedelta(minutes=7), attempt=a1.attempts) is False
    assert await store.finish_inbound(a1.id, T0 + timedelta(minutes=7), attempt=a1.attempts) is False
    assert await store.extend_inbound(a1.id, T0 + timedelta(minutes=7), attempt=again.attempts) is True
    assert [(t.status, t.attempts) for t in await store.list_inbound()] == [("working", 2)]


async def test_a_worker_that_lost_its_lease_does_not_release_the_conversation(store, store_factory):
    """Worker A cannot renew (its database connection is away longer than the lease) and B takes
    a1 over; A's handler then finishes: A must not mark a1 done while B still works on it, or a2
    of the same conversation would be taken while a1 is still being worked on. (That A and B both
    ran a1 is what a lease allows: the core's turns are idempotent by delivery id.)"""
    other = await store_factory()
    await store.enqueue_inbound([_turn("A", "a1"), _turn("A", "a2")], wall_clock())
    lease = timedelta(seconds=0.3)
    policy = RetryPolicy(max_attempts=3, base_delay=timedelta(0), max_delay=timedelta(0))
    active: set = set()
    overlaps: list = []

    async def unavailable(*a, **k):
        raise StoreUnavailableError("A's pool is broken")

    async def handle(item):
        if active:
            overlaps.append((item.payload["key"], item.attempts, sorted(active)))
        active.add((item.payload["key"], item.attempts))
        await asyncio.sleep(0.8 if item.attempts == 1 else 1.2)
        active.discard((item.payload["key"], item.attempts))

    a = InboxWorker(store, wall_clock, {"slack": handle}, lease=lease, policy=policy, outage_waits=())
    b = InboxWorker(other, wall_clock, {"slack": handle}, lease=lease, policy=policy, outage_waits=())
    assert await a.fill() == 1
    real_extend = store.extend_inbound
    store.extend_inbound = unavailable  # A's renewals fail ...
    await asyncio.sleep(0.5)
    assert await b.fill() == 1  # B takes a1 over (attempts 2): A's lease ran out
    store.extend_inbound = real_extend  # A's database is back
    await asyncio.sleep(0.5)  # A finishes a1 while B is still on it ...
    assert not a.tasks
    await a.fill()  # ... and its next claim marks a1 done (changing nothing: A's claim no longer holds)
    assert await b.fill() == 0, "a2 was claimed while a1 is still being worked on by B"
    await asyncio.wait(a.tasks | b.tasks)
    await b.stop(0)  # B marks a1 done
    # the only overlap is a1 itself (A's late run beside B's); never a2 beside a1
    assert all(key == "a1" and all(k == "a1" for k, _ in others) for key, _, others in overlaps), overlaps
    assert [(t.payload["key"], t.status, t.attempts) for t in await store.list_inbound()] == [
        ("a1", "done", 2), ("a2", "pending", 0)]


async def test_a_failing_on_written_does_not_leave_later_writes_hanging(store):
    calls = []

    def on_written():
        calls.append(1)
        if len(calls) == 1:
            raise RuntimeError("observer bug")

    writer = InboxWriter(store, wall_clock, on_written=on_written)
    real = store.enqueue_inbound

    async def slow(items, now):
        await asyncio.sleep(0.05)
        return await real(items, now)

    store.enqueue_inbound = slow
    first = asyncio.create_task(writer.write(_turn("A", "a1")))
    await asyncio.sleep(0.01)
    second = asyncio.create_task(writer.write(_turn("B", "b1")))  # waits for the next batch
    await asyncio.wait_for(first, 2)
    await asyncio.wait_for(second, 2)  # the flusher went on after on_written's exception
    assert len(calls) == 2 and len(await store.list_inbound()) == 2


# ---- ack pressure: the work makes room for the acknowledgements, never all of it -------------------


class FakePressure:
    """What a worker yields to (`bot.app.inbox.AckYield`): busy or not, as the test says."""

    def __init__(self) -> None:
        self.busy = False
        self._listeners: list[Any] = []

    def subscribe(self, listener: Any) -> None:
        self._listeners.append(listener)

    def set(self, busy: bool) -> None:
        self.busy = busy
        for listener in self._listeners:
            listener(busy)


async def test_under_pressure_the_worker_keeps_one_item_going_then_all_at_once_when_it_ends(store: SqlStore) -> None:
    started: list[str] = []
    running: list[int] = []
    release = asyncio.Event()

    async def handle(item: InboxItem) -> None:
        started.append(item.payload["key"])
        running.append(len(w.tasks))
        await (release.wait() if item.payload["key"] == "k0" else asyncio.sleep(0.01))

    pressure = FakePressure()
    w = worker(store, handle, concurrency=8, idle_poll=0.02, pressure=pressure)
    await store.enqueue_inbound([turn(f"c{n}", f"k{n}") for n in range(6)], wall_clock())
    pressure.set(True)
    stop = asyncio.Event()
    run = asyncio.create_task(w.run(stop, grace=2.0))
    try:
        await asyncio.sleep(0.3)
        assert started == ["k0"]  # one at a time: k0 is still being worked on
        release.set()
        for _ in range(200):
            if len(started) >= 4:
                break
            await asyncio.sleep(0.01)
        assert len(started) >= 4 and set(running) == {1}  # the next one at once, one at a time
        pressure.set(False)
        for _ in range(100):
            if len(started) == 6:
                break
            await asyncio.sleep(0.01)
        assert len(started) == 6
    finally:
        stop.set()
        await asyncio.wait_for(run, 5)
    assert set((await state(store)).values()) == {("done", 1, None)}


async def test_a_flood_never_starves_the_work_a_waiting_person_is_answered_within_ten_seconds(store: SqlStore) -> None:
    """The server stays behind for the whole test; each turn takes half a second (of a fake
    clock). The worker still goes on at the turns' own pace, an urgent item (a click, a command:
    someone is looking at Slack) before the rest, and every answer is out within 10 s."""
    fake_now = 0.0
    answered: dict[str, float] = {}
    concurrent = 0
    most = 0

    async def handle(item: InboxItem) -> None:
        nonlocal fake_now, concurrent, most
        concurrent += 1
        most = max(most, concurrent)
        await asyncio.sleep(0)
        fake_now += 0.5  # the turn's own time
        answered[item.payload["key"]] = fake_now
        concurrent -= 1

    pressure = FakePressure()
    pressure.set(True)
    w = worker(store, handle, concurrency=4, idle_poll=0.01, pressure=pressure)
    waiting = [NewInboxItem("slack", "answer_dm", f"c{n}", {"key": f"k{n}"}, f"k{n}", 1) for n in range(16)]
    await store.enqueue_inbound(waiting, wall_clock())
    await store.enqueue_inbound([NewInboxItem("slack", "run_action", "urgent", {"key": "click"}, "click", 0)],
                                wall_clock())
    stop = asyncio.Event()
    run = asyncio.create_task(w.run(stop, grace=2.0))
    try:
        for _ in range(500):
            if len(answered) == 17:
                break
            await asyncio.sleep(0.01)
    finally:
        stop.set()
        await asyncio.wait_for(run, 5)
    assert pressure.busy and len(answered) == 17
    assert most == 1  # the acks keep the rest of the machine
    assert answered["click"] == 0.5  # the urgent one first, though it came last
    assert max(answered.values()) <= 10.0


def test_the_pressured_concurrency_is_at_least_one(store: SqlStore) -> None:
    with pytest.raises(ValueError, match="at least 1"):
        worker(store, None, pressured_concurrency=0)


async def test_drain_works_at_full_speed_whatever_the_pressure(store: SqlStore) -> None:
    handled: list[str] = []

    async def handle(item: InboxItem) -> None:
        handled.append(item.payload["key"])

    pressure = FakePressure()
    pressure.set(True)
    w = worker(store, handle, concurrency=4, pressure=pressure)
    await store.enqueue_inbound([turn(f"c{n}", f"k{n}") for n in range(5)], wall_clock())
    await asyncio.wait_for(w.drain(), 5)
    assert sorted(handled) == [f"k{n}" for n in range(5)]
