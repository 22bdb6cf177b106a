"""The outbox dispatcher: delivers what the bot says on its own initiative.

Messages are written to the outbox in the same transaction as the change that caused them;
the dispatcher takes due ones (several dispatchers never take the same one), renders each in
its recipient's language and hands it to a `Delivery` (the channels' side). A message no
channel can push to a person of the directory (`Undeliverable`: the console has no push) is
kept for them and shown the next time they talk to CareDesk ("While you were away",
`bot.app.runner`). Platform errors and rate limits are retried with exponential back-off;
after the last attempt a message is dead-lettered (`caredesk outbox list --failed`,
`caredesk outbox retry`). A dispatcher that dies mid-delivery loses nothing: its lease runs
out and another one takes the message.
"""

from __future__ import annotations

import abc
import asyncio
import logging
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Iterator, Protocol

from bot.app import metrics
from bot.app.desk import Desk
from bot.app.retention import Retention
from bot.domain.clock import SystemClock
from bot.domain.config import OutboxSettings
from bot.domain.model import OutboxMessage
from bot.app.escalations import Escalations
from bot.i18n import normalize_language
from bot.app.notifications import REPLY, render
from bot.app.reach import in_directory
from bot.protocol.replies import Response
from bot.protocol.stored import response_to_json
from bot.protocol.turn import Turn
from bot.store.ports import DirectoryStore, NewOutboxMessage, OutboxStore, StoreUnavailableError

log = logging.getLogger("caredesk.outbox")


class DeliveryFailed(Exception):
    """The platform refused or failed for now; try again (after `retry_after` seconds if given)."""

    def __init__(self, reason: str, retry_after: float | None = None):
        super().__init__(reason)
        self.retry_after = retry_after


class Undeliverable(Exception):
    """No way to reach this person (never seen on any channel): dead-letter at once."""


# ---- durable replies ------------------------------------------------------------------------------
#
# A turn's answer is written to the outbox in the transaction that saves the turn (its dialog
# state, its delivery id), held by the turn's own worker, which posts it right after the commit
# and reports it posted (`posted`): the inbox worker marks it sent in its next claim's
# transaction. A post that fails is released to the dispatcher (after Retry-After); a worker that
# dies before posting leaves it to the turn's next try (the redelivered turn claims it) or, once
# REPLY_HOLD has passed, to the dispatcher. A worker that dies after posting and before marking
# posts it once more: that reply is the one thing a person may see twice.

# How long the turn's own worker holds its reply before the dispatcher may post it instead:
# longer than a post (10 s at most) and the next claim that marks it, by far.
REPLY_HOLD = timedelta(minutes=2)


def reply_key(source: str, event_id: str) -> str:
    """The outbox key of a delivery's reply (one per platform delivery)."""
    return f"reply:{source}:{event_id}"


def durable_reply(turn: Turn, response: Response, now: datetime) -> NewOutboxMessage | None:
    """The outbox row of a turn's answer, when its channel asked for one (`Turn.reply_to`) and
    the turn has a delivery id; None otherwise (nothing to say, or nothing to key it by)."""
    if turn.reply_to is None or not turn.event_id or not response.replies or response.duplicate:
        return None
    return NewOutboxMessage(reply_key(turn.channel, turn.event_id), turn.user.email or turn.user.id, REPLY,
                            {"channel": turn.channel, "to": dict(turn.reply_to), "response": response_to_json(response)},
                            held_until=now + REPLY_HOLD)


_posted: ContextVar[list[str] | None] = ContextVar("caredesk_posted_replies", default=None)


@contextmanager
def collecting_posted() -> Iterator[list[str]]:
    """The keys of the durable replies posted within: an inbox worker marks them sent with its
    next claim."""
    keys: list[str] = []
    token = _posted.set(keys)
    try:
        yield keys
    finally:
        _posted.reset(token)


def posted(key: str) -> bool:
    """Report the durable reply `key` posted to the inbox worker the work runs in; False outside
    one (the caller marks it sent itself)."""
    keys = _posted.get()
    if keys is None:
        return False
    keys.append(key)
    return True


class Delivery(abc.ABC):
    """The channels' side of the outbox: reach one person with one message."""

    @abc.abstractmethod
    async def deliver(self, message: OutboxMessage, response: Response) -> None:
        """Send; raise DeliveryFailed or Undeliverable."""


@dataclass(frozen=True)
class RetryPolicy:
    """Exponential back-off from `base_delay`, capped at `max_delay`; given up after
    `max_attempts` tries (None: no limit), or once the first try is `give_up_after` old."""

    max_attempts: int | None = 8
    base_delay: timedelta = timedelta(seconds=10)
    max_delay: timedelta = timedelta(hours=1)
    give_up_after: timedelta | None = None

    @classmethod
    def for_outbox(cls, settings: OutboxSettings) -> RetryPolicy:
        """The outbox's: by age, not by count, so that an outage of a day loses nothing and the
        message goes out within `max_retry_minutes` of the platform's return."""
        return cls(max_attempts=None, base_delay=timedelta(seconds=10),
                   max_delay=timedelta(minutes=settings.max_retry_minutes),
                   give_up_after=timedelta(hours=settings.give_up_after_hours))

    def exhausted(self, attempts: int, first_queued: datetime, now: datetime) -> bool:
        if self.max_attempts is not None and attempts >= self.max_attempts:
            return True
        return self.give_up_after is not None and now - first_queued >= self.give_up_after

    def delay(self, attempts: int, retry_after: float | None = None) -> timedelta:
        # The exponent is bounded: with no attempt limit, 2 ** attempts would grow without end.
        backoff = min(self.base_delay * (2 ** min(max(0, attempts - 1), 30)), self.max_delay)
        if retry_after is not None:
            backoff = max(backoff, timedelta(seconds=retry_after))
        return backoff


class DispatcherStore(OutboxStore, DirectoryStore, Protocol):
    """What the dispatcher needs of the store: the outbox, and the directory for a recipient's language."""


class Dispatcher:
    def __init__(self, desk: Desk, delivery: Delivery, *, policy: RetryPolicy | None = None,
                 lease: timedelta = timedelta(minutes=5), batch: int = 20):
        self.desk = desk
        self.store: DispatcherStore = desk.store
        self.delivery = delivery
        self.policy = policy if policy is not None else RetryPolicy.for_outbox(desk.settings.outbox)
        self.lease = lease
        self.batch = batch
        self.escalations = Escalations(desk)
        # Whoever delivers the outbox also purges what has been kept long enough (real time).
        self.retention = Retention(desk.store, desk.settings.retention, SystemClock().now)

    async def language_of(self, email: str) -> str:
        contact, staff, _ = await self.store.find_person(email)
        person = staff or contact
        return normalize_language(person.language if person else None, self.desk.settings.default_language)

    async def run_once(self) -> int:
        """Deliver one batch of due messages; returns how many were sent."""
        now = self.desk.now()
        sent = 0
        for message in await self.store.claim_outbox(now, self.lease, self.batch):
            if await self._deliver(message):
                sent += 1
        return sent

    async def _deliver(self, message: OutboxMessage) -> bool:
        try:
            # A reply is stored rendered, in its person's language.
            lang = self.desk.settings.default_language if message.kind == REPLY else await self.language_of(message.recipient)
            response = render(message.kind, message.payload, lang, self.desk.settings)
            await self.delivery.deliver(message, response)
        except Undeliverable as exc:
            if message.kind != REPLY and await in_directory(self.store, message.recipient):
                # No channel can push it to them (the console, a portal page never opened): kept
                # and shown the next time they talk to CareDesk ("While you were away"), rather
                # than dead-lettered. A turn's reply belongs to its conversation: not kept.
                await self.store.keep_for_next_visit(message.id, self.desk.now())
                log.info("outbox message %s (%s to %s) kept for their next visit: %s", message.id, message.kind,
                         message.recipient, exc)
                metrics.kept_for_next_visit()
                return False
            log.warning("outbox message %s (%s to %s) dead-lettered, undeliverable: %s", message.id, message.kind,
                        message.recipient, exc)
            await self.store.mark_failed(message.id, f"undeliverable: {exc}")
            metrics.dead_letter("outbox")
            return False
        except DeliveryFailed as exc:
            await self._retry(message, str(exc), exc.retry_after)
            return False
        except StoreUnavailableError:
            raise
        except Exception as exc:  # a bug or an unexpected platform answer: retried, never lost
            log.exception("outbox message %s failed unexpectedly", message.id)
            await self._retry(message, f"{type(exc).__name__}: {exc}", None)
            return False
        await self.store.mark_sent(message.id, self.desk.now())
        log.info("outbox message %s (%s) delivered to %s", message.id, message.kind, message.recipient)
        return True

    async def _retry(self, message: OutboxMessage, reason: str, retry_after: float | None) -> None:
        now = self.desk.now()
        if self.policy.exhausted(message.attempts, message.created_at, now):
            # WARNING, with what an operator needs to find it again (`caredesk outbox list --failed`).
            log.warning("outbox message %s (%s to %s) dead-lettered after %d attempts over %s: %s",
                        message.id, message.kind, message.recipient, message.attempts,
                        _age(now - message.created_at), reason)
            await self.store.mark_failed(message.id, reason)
            metrics.dead_letter("outbox")
            return
        delay = self.policy.delay(message.attempts, retry_after)
        log.warning("outbox message %s to %s failed (attempt %d), retry in %ss: %s",
                    message.id, message.recipient, message.attempts, int(delay.total_seconds()), reason)
        await self.store.mark_retry(message.id, now + delay, reason)

    async def run(self, stop: asyncio.Event, interval: float = 2.0) -> None:
        """Deliver and climb escalations until `stop` is set (inside the server, or `caredesk worker`)."""
        while not stop.is_set():
            try:
                await self.escalations.tick()
                await self.retention.tick()
                while await self.run_once() >= self.batch and not stop.is_set():
                    pass
            except StoreUnavailableError as exc:
                log.warning("outbox: database unavailable (%s); trying again", exc)
            except Exception:
                log.exception("outbox dispatcher error; going on")
            try:
                await asyncio.wait_for(stop.wait(), timeout=interval)
            except asyncio.TimeoutError:
                pass


def _age(age: timedelta) -> str:
    minutes = int(age.total_seconds() // 60)
    return f"{minutes // 60}h{minutes % 60:02d}"
