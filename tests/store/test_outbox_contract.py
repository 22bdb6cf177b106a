"""Contract of `OutboxStore` (queueing, claiming with leases, marking), run against every back end
(SQLite and PostgreSQL).
"""

from __future__ import annotations

import asyncio
from datetime import date, timedelta
from decimal import Decimal

import pytest
from sqlalchemy import select

from bot.domain.model import DialogKey
from bot.store import models
from bot.store.ports import NewOutboxMessage
from bot.store.sql import SqlStore
from tests.store.helpers import LEASE, NOW, msgs, outbox_keys


# ---- enqueue --------------------------------------------------------------------------------------


async def test_enqueue_ignores_duplicates(store: SqlStore) -> None:
    msgs = [
        NewOutboxMessage("reminder:1", "a@acme.be", "reminder", {"amount": Decimal("102.21"), "day": date(2026, 3, 2)}),
        NewOutboxMessage("reminder:2", "b@acme.be", "reminder"),
    ]
    await store.enqueue(msgs, NOW)
    await store.enqueue([msgs[0], NewOutboxMessage("reminder:3", "c@acme.be", "reminder")], NOW + timedelta(minutes=1))
    await store.enqueue([], NOW)
    queued = await store.list_outbox()
    assert [q.idempotency_key for q in queued] == ["reminder:1", "reminder:2", "reminder:3"]
    assert dict(queued[0].payload) == {"amount": "102.21", "day": "2026-03-02"}
    assert dict(queued[1].payload) == {}
    assert queued[0].created_at == NOW and queued[2].created_at == NOW + timedelta(minutes=1)
    assert all(q.last_error is None and q.status == "pending" for q in queued)
    assert [q.idempotency_key for q in await store.list_outbox("pending")] == ["reminder:1", "reminder:2", "reminder:3"]
    assert await store.list_outbox("sent") == []


# ---- outbox delivery ------------------------------------------------------------------------------


async def test_claim_outbox_due_messages_and_expired_leases(store: SqlStore) -> None:
    await store.enqueue(msgs("a", "b", "c"), NOW)
    await store.enqueue(msgs("later"), NOW + timedelta(hours=1))  # due in an hour

    first = await store.claim_outbox(NOW, LEASE, limit=2)
    assert [(q.idempotency_key, q.status, q.attempts) for q in first] == [("a", "sending", 1), ("b", "sending", 1)]
    assert [(q.idempotency_key, q.attempts) for q in await store.claim_outbox(NOW, LEASE, limit=2)] == [("c", 1)]
    assert await store.claim_outbox(NOW + timedelta(minutes=4), LEASE) == []  # leases still running
    assert await outbox_keys(store, "pending") == ["later"]

    # the dispatcher died: after the lease the messages are taken again, "later" still is not due
    again = await store.claim_outbox(NOW + timedelta(minutes=6), LEASE)
    assert [(q.idempotency_key, q.status, q.attempts) for q in again] == [
        ("a", "sending", 2), ("b", "sending", 2), ("c", "sending", 2),
    ]
    async with store.engine.connect() as conn:
        locks = (await conn.execute(select(models.outbox.c.locked_until).order_by(models.outbox.c.id))).scalars().all()
    assert locks == [NOW + timedelta(minutes=11)] * 3 + [None]

    for q in again[:2]:
        await store.mark_sent(q.id, NOW + timedelta(minutes=7))
    late = await store.claim_outbox(NOW + timedelta(hours=1), LEASE)  # "c" was never marked: taken a third time
    assert [(q.idempotency_key, q.attempts) for q in late] == [("c", 3), ("later", 1)]
    assert await store.claim_outbox(NOW, LEASE, limit=0) == []
    with pytest.raises(ValueError):
        await store.claim_outbox(NOW, timedelta(0))


async def test_mark_sent_retry_failed_and_requeue(store: SqlStore) -> None:
    await store.enqueue(msgs("a", "b", "c", "d"), NOW)
    a, b, c, d = await store.claim_outbox(NOW, LEASE)
    sent_at = NOW + timedelta(seconds=2)
    await store.mark_sent(a.id, sent_at)
    retry_at = NOW + timedelta(minutes=1)
    await store.mark_retry(b.id, retry_at, "429 Too Many Requests")
    await store.mark_failed(c.id, "user not found")
    await store.mark_failed(d.id, "403 Forbidden")

    by_key = {q.idempotency_key: q for q in await store.list_outbox()}
    assert (by_key["a"].status, by_key["a"].sent_at, by_key["a"].last_error) == ("sent", sent_at, None)
    assert (by_key["b"].status, by_key["b"].next_attempt_at, by_key["b"].last_error) == (
        "pending", retry_at, "429 Too Many Requests",
    )
    assert (by_key["c"].status, by_key["c"].attempts, by_key["c"].sent_at) == ("failed", 1, None)
    async with store.engine.connect() as conn:
        locks = (await conn.execute(select(models.outbox.c.locked_until))).scalars().all()
    assert locks == [None] * 4

    # sent and failed messages are never claimed again; the retry only once it is due
    assert await store.claim_outbox(NOW + timedelta(seconds=30), LEASE) == []
    assert [q.idempotency_key for q in await store.claim_outbox(retry_at, LEASE)] == ["b"]

    requeue_at = NOW + timedelta(hours=2)
    assert await store.requeue_failed(requeue_at, [c.id, a.id, b.id]) == 1  # only the failed one
    assert await store.requeue_failed(requeue_at, []) == 0
    by_key = {q.idempotency_key: q for q in await store.list_outbox()}
    assert (by_key["c"].status, by_key["c"].attempts, by_key["c"].next_attempt_at, by_key["c"].last_error) == (
        "pending", 0, requeue_at, "user not found",
    )
    assert (by_key["a"].status, by_key["b"].status, by_key["d"].status) == ("sent", "sending", "failed")
    assert await store.requeue_failed(requeue_at) == 1  # all failed: d
    assert await store.requeue_failed(requeue_at) == 0
    assert await outbox_keys(store, "pending") == ["c", "d"]


async def test_concurrent_dispatchers_never_take_the_same_message(store: SqlStore, store_factory) -> None:  # type: ignore[no-untyped-def]
    other = await store_factory()
    keys = [f"m{i:03d}" for i in range(60)]
    await store.enqueue(msgs(*keys), NOW)

    async def dispatcher(s: SqlStore) -> list[int]:
        taken: list[int] = []
        while batch := await s.claim_outbox(NOW, LEASE, limit=3):
            assert len(batch) <= 3
            taken.extend(q.id for q in batch)
        return taken

    results = await asyncio.gather(*(dispatcher(s) for s in [store, other, store, other]))
    taken = [i for r in results for i in r]
    assert len(taken) == len(set(taken)) == 60
    all_ids = {q.id for q in await store.list_outbox()}
    assert set(taken) == all_ids
    assert [q.attempts for q in await store.list_outbox()] == [1] * 60
    assert await outbox_keys(store, "sending") == keys


# ---- durable replies -------------------------------------------------------------------------------


def _held(key: str, until: timedelta = timedelta(minutes=2)) -> NewOutboxMessage:
    return NewOutboxMessage(key, "a@acme.be", "reply", {"to": {"channel": "D1"}}, held_until=NOW + until)


async def _state(store: SqlStore, key: str) -> tuple[str, int]:
    (message,) = [m for m in await store.list_outbox() if m.idempotency_key == key]
    return message.status, message.attempts


async def test_claim_reply_takes_a_reply_its_first_try_never_posted_but_not_one_held_by_a_dispatcher(
        store: SqlStore) -> None:
    await store.enqueue([_held("r1")], NOW)
    taken = await store.claim_reply("r1", NOW + timedelta(seconds=20), LEASE)  # its worker died
    assert taken is not None and (taken.status, taken.attempts) == ("sending", 2)
    assert dict(taken.payload) == {"to": {"channel": "D1"}}
    assert await store.claim_reply("r1", NOW + timedelta(minutes=1), LEASE) is None  # held by that claim
    again = await store.claim_reply("r1", NOW + timedelta(seconds=20) + LEASE + timedelta(seconds=1), LEASE)
    assert again is not None and again.attempts == 3  # that one died too: its lease ran out
    assert await store.claim_reply("nothing", NOW, LEASE) is None

    await store.enqueue([_held("r2")], NOW)
    assert await store.release_reply("r2", NOW + timedelta(seconds=20), "Slack: HTTP 429") is True
    assert await _state(store, "r2") == ("pending", 1)
    assert await store.release_reply("r2", NOW, "again") is False  # not being sent any more
    assert await store.claim_reply("r2", NOW + timedelta(seconds=10), LEASE) is None  # waiting for Retry-After
    assert await store.claim_outbox(NOW + timedelta(seconds=10), LEASE) == []
    (due,) = await store.claim_outbox(NOW + timedelta(seconds=20), LEASE)
    assert (due.idempotency_key, due.attempts, due.last_error) == ("r2", 2, "Slack: HTTP 429")
    assert await store.claim_reply("r2", NOW + timedelta(seconds=21), LEASE) is None  # the dispatcher holds it


async def test_replies_are_marked_sent_alone_or_with_the_inbox_claim_and_purged_with_done_items(
        store: SqlStore) -> None:
    await store.enqueue([_held("r1"), _held("r2"), _held("r3")], NOW)
    assert await store.mark_replies_sent(["r1", "unknown"], NOW) == 1
    assert await store.mark_replies_sent([], NOW) == 0
    done, items = await store.finish_and_claim_inbound([], NOW, LEASE, 0, sent_replies=["r2"])
    assert (done, list(items)) == (0, [])
    assert [(m.idempotency_key, m.status, m.sent_at) for m in await store.list_outbox()] == [
        ("r1", "sent", NOW), ("r2", "sent", NOW), ("r3", "sending", None)]
    assert await store.claim_reply("r1", NOW + timedelta(hours=1), LEASE) is None  # posted: never again
    assert await store.claim_outbox(NOW + timedelta(hours=1), LEASE) != []  # r3 only
    await store.purge_inbound(NOW + timedelta(minutes=1))
    assert [m.idempotency_key for m in await store.list_outbox()] == ["r3"]


# ---- kept for the next visit (people with no push channel) -------------------------------------------


async def test_a_message_kept_for_the_next_visit_is_taken_once_and_marked_shown(store: SqlStore) -> None:
    await store.enqueue([NewOutboxMessage("status:1", "Lotte@Klok.be", "ticket_update", {"ticket": "CS-1"}),
                         NewOutboxMessage("status:2", "lotte@klok.be", "ticket_update", {"ticket": "CS-2"}),
                         NewOutboxMessage("status:3", "other@klok.be", "ticket_update", {"ticket": "CS-3"})], NOW)
    claimed = await store.claim_outbox(NOW, LEASE)
    for message in claimed:
        await store.keep_for_next_visit(message.id, NOW)
    await store.keep_for_next_visit(claimed[0].id, NOW)  # a retry of the same keep keeps it once
    # The dispatcher is done with them: sent, with why.
    assert all(q.status == "sent" and q.last_error == "kept for the next visit" for q in await store.list_outbox())
    assert await store.claim_outbox(NOW + timedelta(hours=1), LEASE) == []
    assert len(await store.list_kept_messages("LOTTE@klok.be")) == 2

    # The turn's first read says whether to look (the turn asks for them only then).
    key = DialogKey("console", "", "lotte", "lotte")
    assert (await store.read_turn_start(key, " Lotte@KLOK.be ")).kept_waiting is True
    assert (await store.read_turn_start(key, "nobody@klok.be")).kept_waiting is False
    assert (await store.read_turn_start(key, None)).kept_waiting is False

    later = NOW + timedelta(hours=2)
    taken = await store.take_kept_messages("lotte@KLOK.be", later)
    assert [dict(k.payload) for k in taken] == [{"ticket": "CS-1"}, {"ticket": "CS-2"}]
    assert all(k.shown_at == later and k.kind == "ticket_update" for k in taken)
    assert await store.take_kept_messages("lotte@klok.be", later) == []  # shown once only
    assert await store.pending_kept_messages("lotte@klok.be") == []
    assert (await store.read_turn_start(key, "lotte@klok.be")).kept_waiting is False
    assert [dict(k.payload) for k in await store.pending_kept_messages("OTHER@klok.be")] == [{"ticket": "CS-3"}]
    assert [dict(k.payload) for k in await store.take_kept_messages("other@klok.be", later)] == [{"ticket": "CS-3"}]


async def _kept(store: SqlStore, *payloads: dict, prefix: str = "kept") -> list[int]:
    await store.enqueue([NewOutboxMessage(f"{prefix}:{i}", "lotte@klok.be", "ticket_update", p)
                         for i, p in enumerate(payloads)], NOW)
    for message in await store.claim_outbox(NOW, LEASE):
        await store.keep_for_next_visit(message.id, NOW)
    return [k.id for k in await store.pending_kept_messages("lotte@klok.be")]


async def test_kept_messages_are_marked_shown_in_the_transaction_that_saves_the_turn(store: SqlStore) -> None:
    from bot.domain.model import DialogKey
    from bot.store.ports import StaleDialogError

    key = DialogKey("console", "local", "c:lotte", "lotte@klok.be")
    first, second, third = await _kept(store, {"n": 1}, {"n": 2}, {"n": 3})
    version = await store.save_dialog(key, {"dialog": "quote"}, None, NOW, shown=[first])
    assert [k.id for k in await store.pending_kept_messages("lotte@klok.be")] == [second, third]
    # Shown meanwhile by another turn: this turn's save is refused whole (it answers again).
    with pytest.raises(StaleDialogError):
        await store.save_dialog(key, {"dialog": "quote", "step": 2}, version, NOW, shown=[first, second])
    assert (await store.load_dialog(key)).version == version  # nothing of it saved ...
    assert [k.id for k in await store.pending_kept_messages("lotte@klok.be")] == [second, third]  # ... not marked
    # A stale dialog version: nothing marked either.
    with pytest.raises(StaleDialogError):
        await store.save_dialog(key, {"dialog": "quote"}, version + 5, NOW, shown=[second])
    assert len(await store.pending_kept_messages("lotte@klok.be")) == 2
    await store.delete_dialog(key, version, now=NOW, event=("console", "ev-1"), shown=[second])
    assert await store.claim_event("console", "ev-2", NOW, shown=[third])
    assert await store.pending_kept_messages("lotte@klok.be") == []
    assert all(k.shown_at == NOW for k in await store.list_kept_messages("lotte@klok.be"))
    # A delivery claimed already marks nothing.
    [fourth] = await _kept(store, {"n": 4}, prefix="later")
    assert not await store.claim_event("console", "ev-2", NOW, shown=[fourth])
    assert [k.id for k in await store.pending_kept_messages("lotte@klok.be")] == [fourth]


async def test_concurrent_turns_never_show_the_same_kept_message(store: SqlStore, store_factory) -> None:  # type: ignore[no-untyped-def]
    other = await store_factory()
    await store.enqueue([NewOutboxMessage(f"k:{i}", "lotte@klok.be", "ticket_update", {"i": i}) for i in range(6)],
                        NOW)
    for message in await store.claim_outbox(NOW, LEASE):
        await store.keep_for_next_visit(message.id, NOW)
    results = await asyncio.gather(*(s.take_kept_messages("lotte@klok.be", NOW, limit=3)
                                     for s in [store, other, store, other]))
    shown = [k.payload["i"] for result in results for k in result]
    assert sorted(shown) == list(range(6))
