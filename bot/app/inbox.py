"""The inbox: what people send is written to the store before the platform is told it arrived,
and worked on afterwards by an `InboxWorker` (in the server process, or in `caredesk worker`
processes beside it).

Why: a platform that got its acknowledgement never sends the request again, so work kept only in
a process's memory between the ack and the answer would be lost with that process. Written
first, it survives a crash, a restart or a database outage (the platform is asked to retry
while the database is away), and the process that acknowledges does almost nothing else:
acknowledgements stay fast under a flood, while workers catch up.

* `InboxWriter` writes items arriving at the same moment in one transaction (a group commit:
  the first item of a quiet moment is written at once, the ones arriving meanwhile go together
  in the next transaction), so a burst costs a few transactions, not one per request.
* `InboxWorker` takes items (`InboxStore.claim_inbound`: one conversation's turns one at a time and
  in order, conversations with few items waiting first, several workers never take the same
  item), hands each to its channel's handler and marks it done (in its next claim's
  transaction). It is woken by the writes (`InboxStore.wait_for_items`: on PostgreSQL any
  process's) and looks by itself only now and then. An item whose handler fails for now (the
  database away, `DeliveryFailed`: a platform's 5xx, 429 or dropped connection) is tried again
  with back-off (after Retry-After, never waited out in a work slot), then dead-lettered; any
  other failure is a poison item (it would fail the same way every time, and its person's next
  messages wait behind it): dead-lettered at once with a WARNING line, and the person is told.
  A worker that dies leaves its items to another one when their lease runs out.
"""

from __future__ import annotations

import asyncio
import logging
import os
import traceback
from contextlib import AbstractContextManager, nullcontext
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any, Awaitable, Callable, Iterable, Mapping, Protocol

from bot.app import log_context, metrics
from bot.domain.clock import SystemClock
from bot.app.outbox import DeliveryFailed, RetryPolicy, collecting_posted
from bot.store.ports import InboxItem, InboxStore, NewInboxItem, StoreUnavailableError

log = logging.getLogger("caredesk.inbox")

Handler = Callable[[InboxItem], Awaitable[None]]
Clock = Callable[[], datetime]

# One transaction writes at most this many items; more wait for the next one.
MAX_BATCH = 200
# Done items are kept this long, so that a platform's late retry (Slack retries up to about 5
# minutes later) or a replayed request is recognised by its dedup key, then purged.
DONE_RETENTION = timedelta(minutes=15)
PURGE_EVERY_S = 60.0
# How long `drain` waits before it looks for work a last time.
DRAIN_SETTLE_S = 0.05
# A worker holds an item this long and renews it every third of it while working: a worker that
# dies leaves its items (and their conversations, which wait in order) for at most this long.
LEASE = timedelta(seconds=15)


# Under ack pressure a worker keeps this many items in progress, never fewer: whoever waits for
# an answer still gets it at the pace of the turns themselves, urgent items (a click, a command,
# a form) first, however long a flood lasts; the rest waits in the inbox until it is over.
PRESSURED_CONCURRENCY = 1


# Traces (adapters/server/observability.py sets these when they are on): what an item carries of
# the context it was written in (the request's trace, as W3C trace context headers), and how the
# worker resumes that context around the item's work, so that one trace runs from the platform's
# request through the inbox to the turn, its SQL and the platform calls. Kept in the stored payload
# under TRACE_KEY and taken out again before the channel's handler sees the payload.
TRACE_KEY = "_caredesk_trace"
carry_context: Callable[[], Mapping[str, str]] | None = None
resume_context: Callable[[InboxItem, Mapping[str, str]], AbstractContextManager[Any]] | None = None


def _carried(item: NewInboxItem) -> NewInboxItem:
    carrier = carry_context() if carry_context is not None else None
    return replace(item, payload={**item.payload, TRACE_KEY: dict(carrier)}) if carrier else item


def _resumed(item: InboxItem) -> tuple[InboxItem, AbstractContextManager[Any]]:
    if TRACE_KEY not in item.payload:
        return item, nullcontext()
    carrier = item.payload[TRACE_KEY]
    item = replace(item, payload={k: v for k, v in item.payload.items() if k != TRACE_KEY})
    if resume_context is None or not isinstance(carrier, Mapping):
        return item, nullcontext()
    return item, resume_context(item, carrier)


class AckYield(Protocol):
    """What a worker makes room for: a server's acknowledgements, due within seconds (the HTTP
    side's `adapters.shared.pressure.AckPressure`). `busy` while the server is behind;
    `subscribe(listener)` calls `listener(busy)` at each change."""

    @property
    def busy(self) -> bool: ...

    def subscribe(self, listener: Callable[[bool], None]) -> None: ...


# Leases and retries count real time, whatever the desk's business clock says (a demo clock
# shifted per process must not make one process's leases look young to another).
wall_clock: Clock = SystemClock().now


async def finish_or_cancel(tasks: Iterable[asyncio.Task[Any]], grace: float) -> int:
    """Let the tasks finish for up to `grace` seconds, cancel the rest and wait for them;
    returns how many were cancelled."""
    tasks = list(tasks)
    if not tasks:
        return 0
    _, still = await asyncio.wait(tasks, timeout=grace)
    for task in still:
        task.cancel()
    if still:
        await asyncio.gather(*still, return_exceptions=True)
    return len(still)


class InboxWriter:
    """Group commit of inbound items; `write` returns once the item is durably stored."""

    def __init__(self, store: InboxStore, clock: Clock, *, max_batch: int = MAX_BATCH,
                 on_written: Callable[[], None] | None = None) -> None:
        self.store = store
        self.clock = clock
        self.max_batch = max_batch
        self.on_written = on_written
        self._waiting: list[tuple[NewInboxItem, asyncio.Future[None]]] = []
        self._flusher: asyncio.Task[None] | None = None

    async def write(self, item: NewInboxItem) -> None:
        """Raises StoreUnavailableError when the database cannot take it (nothing was written)."""
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiting.append((_carried(item), future))
        if self._flusher is None or self._flusher.done():
            self._flusher = asyncio.create_task(self._flush(), name="caredesk-inbox-writer")
        # Shielded: a caller that goes away must not cancel the write of the others' items.
        await asyncio.shield(future)

    async def _flush(self) -> None:
        while self._waiting:
            batch, self._waiting = self._waiting[: self.max_batch], self._waiting[self.max_batch:]
            try:
                await self.store.enqueue_inbound([item for item, _ in batch], self.clock())
            except Exception as exc:  # every waiting request gets the failure, none hangs
                for _, future in batch:
                    if not future.done():
                        future.set_exception(exc)
                continue
            for _, future in batch:
                if not future.done():
                    future.set_result(None)
            if self.on_written is not None:
                try:
                    self.on_written()
                except Exception:  # a failing listener must not stop the writes behind
                    log.exception("inbox: on_written failed")


class InboxWorker:
    """Works on inbound items until stopped; `drain()` works until none is left (tests, tools)."""

    def __init__(
        self,
        store: InboxStore,
        clock: Clock,
        handlers: Mapping[str, Handler],
        *,
        concurrency: int = 3,
        lease: timedelta = LEASE,
        policy: RetryPolicy = RetryPolicy(max_attempts=5, base_delay=timedelta(seconds=5),
                                          max_delay=timedelta(minutes=5)),
        # How often a worker looks without being woken: the store wakes it when items are written
        # (`InboxStore.wait_for_items`), and a finished item wakes it for its conversation's next
        # one; it still looks now and then for what no write announces (a retry coming due, a
        # dead worker's lease running out) and for a wake missed while the store reconnected.
        idle_poll: float = 1.0,
        retention: timedelta = DONE_RETENTION,
        # Under the lease in all (7.7 s < 15 s): the database may be away for all of it, and
        # then the lease cannot be renewed either.
        outage_waits: tuple[float, ...] = (0.2, 0.5, 1.0, 2.0, 4.0),
        pressure: AckYield | None = None,
        pressured_concurrency: int = PRESSURED_CONCURRENCY,
        # Per channel: tell the person of an item given up at once that it could not be read.
        unreadable: Mapping[str, Handler] | None = None,
    ) -> None:
        if concurrency < 1 or pressured_concurrency < 1:
            raise ValueError("concurrency must be at least 1, also under pressure")
        self.store = store
        self.clock = clock
        self.handlers = dict(handlers)
        self.unreadable = dict(unreadable or {})
        self.concurrency = concurrency
        self.lease = lease
        self.policy = policy
        self.idle_poll = idle_poll
        self.retention = retention
        self.outage_waits = outage_waits
        self.tasks: set[asyncio.Task[None]] = set()
        self._wake = asyncio.Event()
        self.pressured_concurrency = min(pressured_concurrency, concurrency)
        self.pressure: AckYield | None = None
        if pressure is not None:
            self.yield_to(pressure)
        self._filling = asyncio.Lock()  # the run loop and drain() both fill: one at a time
        # Items whose work is done, (id, attempt of the claim): marked done by the next claim, in
        # its transaction, which that item's end wakes at once (one transaction fewer per item).
        self._done: list[tuple[int, int]] = []
        # Durable replies the items' work posted (outbox keys): marked sent by the same claim.
        self._posted: list[str] = []
        # None until the first purge (not 0.0: the loop's clock counts from the machine's boot).
        self._last_purge: float | None = None

    def wake(self) -> None:
        """Something was written (by this process): look now rather than at the next poll."""
        self._wake.set()

    async def _wake_on_writes(self) -> None:
        """Look whenever the store says items were written (by any process on PostgreSQL)."""
        while True:
            try:
                if await self.store.wait_for_items(self.idle_poll):
                    self._wake.set()
            except Exception:  # the worker's own poll goes on meanwhile
                log.exception("inbox: waiting for new items failed")
                await asyncio.sleep(self.idle_poll)

    def yield_to(self, pressure: AckYield) -> None:
        """Make room for the acknowledgements while `pressure` says the server is behind."""
        self.pressure = pressure
        pressure.subscribe(self._pressure_changed)

    def _pressure_changed(self, busy: bool) -> None:
        if busy:
            log.info("inbox: the server is behind with its acknowledgements; taking %s at a time",
                     "one item" if self.pressured_concurrency == 1 else f"{self.pressured_concurrency} items")
        else:
            log.info("inbox: acknowledgements caught up; back to full speed")
            self.wake()

    async def fill(self, *, yielding: bool = True) -> int:
        """Take as many items as there are free slots and start working on them (only up to the
        pressured concurrency while the server is under ack pressure, unless not `yielding`)."""
        async with self._filling:
            limit = self.concurrency
            if yielding and self.pressure is not None and self.pressure.busy:
                limit = self.pressured_concurrency
            free = max(limit - len(self.tasks), 0)
            if free <= 0 and not self._done and not self._posted:
                return 0
            done, self._done = self._done, []
            posted, self._posted = self._posted, []
            try:
                marked, items = await self.store.finish_and_claim_inbound(done, self.clock(), self.lease, free,
                                                                          tuple(self.handlers), sent_replies=posted)
            except BaseException:
                self._done[:0] = done  # marked by a later claim (or redone once their leases run out)
                self._posted[:0] = posted
                raise
            if marked < len(done):
                log.warning("%d inbox item(s) were done here after their lease ran out (another worker took them)",
                            len(done) - marked)
            for item in items:
                task = asyncio.create_task(self._work(item), name=f"caredesk-inbox-{item.id}")
                self.tasks.add(task)
                task.add_done_callback(self._finished)
            return len(items)

    def _finished(self, task: asyncio.Task[None]) -> None:
        self.tasks.discard(task)
        self._wake.set()  # a slot is free, and the conversation's next item may be taken

    async def _work(self, item: InboxItem) -> None:
        handler = self.handlers[item.channel]
        keeper = asyncio.create_task(self._keep(item))
        item, traced = _resumed(item)
        try:
            try:
                with collecting_posted() as posted, traced, log_context.bound(
                        channel=item.channel, conversation=item.conversation_key, inbox_item=str(item.id)):
                    await self._patiently(handler, item)
            finally:
                keeper.cancel()
                self._posted.extend(posted)  # posted is posted, however the item ends
        except asyncio.CancelledError:
            raise  # stopping: the lease runs out and the item is taken again
        except StoreUnavailableError as exc:
            log.warning("inbox item %s (%s %s): database unavailable, retried later", item.id, item.channel, item.kind)
            await self._retry(item, f"{type(exc).__name__}: {exc}")
            return
        except DeliveryFailed as exc:
            # The platform fails for now: the item waits in the store (after Retry-After, if
            # given), not in a work slot, and the slot goes to someone else.
            log.warning("inbox item %s (%s %s): %s; retried later", item.id, item.channel, item.kind, exc)
            await self._retry(item, f"{type(exc).__name__}: {exc}", exc.retry_after)
            return
        except Exception as exc:
            await self._give_up(item, exc)
            return
        # Marked done by the claim that this task's end wakes. Should that fail for good (the
        # database away, the process stopped), the lease runs out and the item is done again,
        # which the core recognises (the delivery id is claimed with the dialog's state).
        self._done.append((item.id, item.attempts))

    async def _keep(self, item: InboxItem) -> None:
        """Renew the item's lease while its work goes on (a slow platform, a database outage)."""
        period = self.lease.total_seconds() / 3
        while True:
            await asyncio.sleep(period)
            try:
                if not await self.store.extend_inbound(item.id, self.clock() + self.lease, attempt=item.attempts):
                    log.warning("inbox item %s: its lease ran out and another worker took it", item.id)
                    return
            except StoreUnavailableError:
                pass  # the database is away: the item is redone if this worker does not finish it

    async def _patiently(self, handler: Handler, item: InboxItem) -> None:
        """A database outage is waited out here, in real time, a while: the item's turn then
        goes on where it stopped (the core saves a turn's state with its delivery id in one
        transaction, so a turn that was saved is not done twice) and the person gets the answer,
        late rather than an apology. A longer outage leaves it to the store's retry."""
        for delay in (*self.outage_waits, None):
            try:
                await handler(item)
                return
            except StoreUnavailableError:
                if delay is None:
                    raise
                log.warning("inbox item %s: database unavailable, trying again in %.1f s", item.id, delay)
                await asyncio.sleep(delay)

    async def _retry(self, item: InboxItem, reason: str, retry_after: float | None = None) -> None:
        now = self.clock()
        try:
            if self.policy.exhausted(item.attempts, item.received_at, now):
                log.warning("inbox item %s (%s %s) dead-lettered after %d attempts: %s", item.id, item.channel,
                            item.kind, item.attempts, reason)
                await self.store.fail_inbound(item.id, reason, attempt=item.attempts)
                metrics.dead_letter("inbox")
            else:
                await self.store.retry_inbound(item.id, now + self.policy.delay(item.attempts, retry_after), reason,
                                               attempt=item.attempts)
        except StoreUnavailableError:
            log.warning("inbox item %s: could not record the failure (database unavailable)", item.id)

    async def _give_up(self, item: InboxItem, exc: Exception) -> None:
        """A poison item: what failed is not the database nor the platform for now, so trying
        again would fail the same way while the person's next messages wait behind it. It is
        dead-lettered at once (its conversation goes on) and the person is asked to send it again."""
        # Where it failed, not the exception's text: that may quote what the person wrote.
        reason = f"{type(exc).__name__} {_where(exc)}"
        log.warning("inbox item %s (%s %s, %s) could not be worked on (%s): dead-lettered at once, the person is "
                    "asked to send it again (caredesk inbox list --failed)", item.id, item.channel, item.kind,
                    item.conversation_key, reason)
        try:
            await self.store.fail_inbound(item.id, f"unreadable: {reason}", attempt=item.attempts)
            metrics.dead_letter("inbox")
        except StoreUnavailableError:
            log.warning("inbox item %s: could not record the failure (database unavailable)", item.id)
            return  # taken again when its lease runs out, and given up then
        tell = self.unreadable.get(item.channel)
        if tell is None:
            return
        try:
            await tell(item)
        except Exception:
            log.warning("inbox item %s: could not tell the person it was unreadable", item.id, exc_info=True)

    async def _purge(self) -> None:
        loop = asyncio.get_running_loop()
        if self._last_purge is not None and loop.time() - self._last_purge < PURGE_EVERY_S:
            return
        self._last_purge = loop.time()
        purged = await self.store.purge_inbound(self.clock() - self.retention)
        if purged:
            log.debug("purged %d finished inbox items", purged)

    async def run(self, stop: asyncio.Event, *, grace: float = 5.0) -> None:
        stopper = asyncio.create_task(self._wake_on(stop))
        listener = asyncio.create_task(self._wake_on_writes())
        try:
            while not stop.is_set():
                # Cleared before the claim: a wake during the claim makes it look once more.
                self._wake.clear()
                try:
                    await self.fill()
                    await self._purge()
                except StoreUnavailableError as exc:
                    log.warning("inbox: database unavailable (%s); trying again", exc)
                except Exception:
                    log.exception("inbox worker error; going on")
                # No look between wakes while busy: a write, a finished item (a free slot, the
                # conversation's next item) or the end of the ack pressure wakes the worker.
                try:
                    await asyncio.wait_for(self._wake.wait(), timeout=self.idle_poll)
                except asyncio.TimeoutError:
                    pass
        finally:
            stopper.cancel()
            listener.cancel()
            await self.stop(grace)

    async def _wake_on(self, stop: asyncio.Event) -> None:
        await stop.wait()
        self._wake.set()

    async def stop(self, grace: float) -> None:
        """Let running work finish for a moment, then cancel it (another worker takes it later),
        and mark what was finished done."""
        cancelled = await finish_or_cancel(self.tasks, grace)
        if cancelled:
            log.warning("stopped %d unfinished inbox item(s); they will be taken again", cancelled)
        await self._mark_done()

    async def _mark_done(self) -> None:
        done, self._done = self._done, []
        posted, self._posted = self._posted, []
        if not done and not posted:
            return
        try:
            marked, _ = await self.store.finish_and_claim_inbound(done, self.clock(), self.lease, 0,
                                                                  sent_replies=posted)
        except StoreUnavailableError:
            # Kept for this worker's next claim, if there is one: else their leases run out and
            # they are done again, and a reply posted but not marked would be posted twice.
            self._done[:0] = done
            self._posted[:0] = posted
            log.warning("%d inbox item(s) done but not marked yet (database unavailable)", len(done))
            return
        if marked < len(done):
            log.warning("%d inbox item(s) were done here after their lease ran out (another worker took them)",
                        len(done) - marked)

    async def drain(self) -> None:
        """Work until nothing this worker can take is left (items another worker holds are its own)."""
        looked_again = False
        while True:
            try:
                took = await self.fill(yielding=False)
            except StoreUnavailableError:
                took = 0  # what is left is taken when the database is back
            if took:
                looked_again = False
            if self.tasks:
                await asyncio.wait(list(self.tasks), return_when=asyncio.FIRST_COMPLETED)
            elif not took:
                if looked_again:
                    await self._mark_done()
                    return
                # Once more, a moment later: a row another connection was still releasing (a
                # conversation's next item behind one just given up) is taken too.
                looked_again = True
                await asyncio.sleep(DRAIN_SETTLE_S)


def _where(exc: BaseException) -> str:
    """`in function (file.py:line)` of the innermost frame of a failure."""
    frames = traceback.extract_tb(exc.__traceback__)
    if not frames:
        return ""
    last = frames[-1]
    return f"in {last.name} ({os.path.basename(last.filename)}:{last.lineno})"
