"""Contract of `EscalationStore` (escalations with their outbox messages, climbing,
acknowledgement), run against every back end (SQLite and PostgreSQL).
"""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest
from sqlalchemy import update

from bot.domain.model import EscalationReason, EscalationStatus
from bot.store import models
from bot.store.ports import NewOutboxMessage, UnknownTicketError
from bot.store.sql import SqlStore
from tests.store.helpers import FMT, NOW, assert_utc, msgs, new_ticket, outbox_keys


# ---- escalations and their outbox -----------------------------------------------------------------


def outbox_messages(suffix: str = "") -> list[NewOutboxMessage]:
    return [
        NewOutboxMessage(f"esc-1:l1{suffix}", "naida.jelacic@caresolutions.be", "escalation", {"ticket": "CS-2026-00001"}),
        NewOutboxMessage(f"esc-1:ack{suffix}", "jan.peeters@acme.be", "escalation_ack", {"level": 1}),
    ]


async def test_escalation_with_outbox(store: SqlStore) -> None:
    ticket = await store.create_ticket(new_ticket(), NOW, FMT)
    later = NOW + timedelta(hours=1)
    esc = await store.create_escalation(
        "cs-2026-00001", 1, EscalationReason.SOLUTION, "Still broken", "jan.peeters@acme.be", later, outbox_messages()
    )
    assert esc.ticket_number == ticket.number
    assert (esc.level, esc.reason, esc.status) == (1, EscalationReason.SOLUTION, EscalationStatus.OPEN)
    assert (esc.comment, esc.requested_by) == ("Still broken", "jan.peeters@acme.be")
    assert esc.created_at == later and esc.level_since == later
    assert_utc(esc.created_at)
    assert esc.acknowledged_by is None and esc.acknowledged_at is None

    queued = await store.list_outbox()
    assert [(q.idempotency_key, q.recipient, q.kind, dict(q.payload), q.status, q.attempts) for q in queued] == [
        ("esc-1:l1", "naida.jelacic@caresolutions.be", "escalation", {"ticket": "CS-2026-00001"}, "pending", 0),
        ("esc-1:ack", "jan.peeters@acme.be", "escalation_ack", {"level": 1}, "pending", 0),
    ]
    assert queued[0].next_attempt_at == later and queued[0].created_at == later
    assert_utc(queued[0].next_attempt_at)

    # a second escalation re-using the same message keys: recorded, duplicates ignored
    esc2 = await store.create_escalation(
        ticket.number, 2, EscalationReason.ATTITUDE, "", "jan.peeters@acme.be", later, outbox_messages()
    )
    assert esc2.id != esc.id and esc2.level == 2
    assert len(await store.list_outbox()) == 2
    assert [e.id for e in await store.list_escalations()] == [esc.id, esc2.id]
    assert [e.id for e in await store.list_escalations(ticket_number=" CS-2026-00001")] == [esc.id, esc2.id]
    assert await store.list_escalations(ticket_number="CS-2026-00404") == []

    async with store.engine.begin() as conn:
        await conn.execute(
            update(models.escalations).where(models.escalations.c.id == esc.id).values(status="closed")
        )
    assert [e.id for e in await store.list_escalations()] == [esc2.id]
    assert [e.id for e in await store.list_escalations(open_only=False)] == [esc.id, esc2.id]


async def test_escalation_of_unknown_ticket_queues_nothing(store: SqlStore) -> None:
    with pytest.raises(UnknownTicketError):
        await store.create_escalation(
            "CS-2026-00404", 1, EscalationReason.FEEDBACK, "?", "x@y.be", NOW, outbox_messages("-x")
        )
    assert await store.list_outbox() == []
    assert await store.list_escalations(open_only=False) == []


async def test_escalation_rolled_back_with_its_outbox(store: SqlStore) -> None:
    await store.create_ticket(new_ticket(), NOW, FMT)
    with pytest.raises(TypeError):
        await store.create_escalation(
            "CS-2026-00001",
            1,
            EscalationReason.FEEDBACK,
            "x",
            "x@y.be",
            NOW,
            [NewOutboxMessage("k", "a@b.be", "escalation", {"bad": object()})],
        )
    assert await store.list_escalations(open_only=False) == []
    assert await store.list_outbox() == []


async def test_escalation_idempotency_key(store: SqlStore, store_factory) -> None:  # type: ignore[no-untyped-def]
    await store.create_ticket(new_ticket(), NOW, FMT)
    other = await store_factory()
    results = await asyncio.gather(
        *(
            s.create_escalation(
                "CS-2026-00001", 1, EscalationReason.FEEDBACK, "no answer", "jan@acme.be", NOW,
                outbox_messages(), idempotency_key="dialog-7:escalate",
            )
            for s in [store, other] * 3
        )
    )
    assert len({e.id for e in results}) == 1
    assert len(await store.list_escalations(open_only=False)) == 1
    assert len(await store.list_outbox()) == 2
    again = await store.create_escalation(
        "CS-2026-00001", 1, EscalationReason.FEEDBACK, "no answer", "jan@acme.be", NOW,
        outbox_messages("-new"), idempotency_key="dialog-7:escalate",
    )
    assert again == results[0]
    assert len(await store.list_outbox()) == 2  # the repeat queued nothing
    second = await store.create_escalation(
        "CS-2026-00001", 2, EscalationReason.SOLUTION, "still", "jan@acme.be", NOW, idempotency_key="dialog-8"
    )
    assert second.id != again.id and second.level == 2


# ---- escalation climbing --------------------------------------------------------------------------


async def test_escalation_pinged_climbs_while_open(store: SqlStore) -> None:
    await store.create_ticket(new_ticket(), NOW, FMT)
    esc = await store.create_escalation("CS-2026-00001", 1, EscalationReason.SOLUTION, "still broken", "jan@acme.be", NOW)
    assert esc.last_ping_at is None
    assert await store.get_escalation(esc.id) == esc
    assert await store.get_escalation(esc.id + 100) is None

    t1 = NOW + timedelta(minutes=30)
    pinged = await store.escalation_pinged(esc.id, 1, t1, msgs("esc:l1:ping1"))
    assert (pinged.level, pinged.level_since, pinged.last_ping_at) == (1, NOW, t1)  # same level: since unchanged
    t2 = NOW + timedelta(hours=1)
    climbed = await store.escalation_pinged(esc.id, 2, t2, msgs("esc:l2", "esc:l1:ping1"))
    assert (climbed.level, climbed.level_since, climbed.last_ping_at, climbed.status) == (2, t2, t2, EscalationStatus.OPEN)
    assert await store.get_escalation(esc.id) == climbed
    assert await outbox_keys(store) == ["esc:l1:ping1", "esc:l2"]

    t3 = NOW + timedelta(hours=2)
    acked, now_acked = await store.acknowledge_escalation(esc.id, "boss2@caresolutions.be", t3, msgs("esc:ack"))
    assert now_acked is True
    assert (acked.status, acked.acknowledged_by, acked.acknowledged_at) == (
        EscalationStatus.ACKNOWLEDGED, "boss2@caresolutions.be", t3,
    )
    assert (acked.level, acked.level_since, acked.last_ping_at) == (2, t2, t2)

    # acknowledged: a late ping changes nothing and queues nothing, nor does a second acknowledgement
    late = await store.escalation_pinged(esc.id, 3, t3 + timedelta(minutes=1), msgs("esc:l3"))
    assert late == acked
    again, again_acked = await store.acknowledge_escalation(esc.id, "naida@caresolutions.be", t3, msgs("esc:ack2"))
    assert (again, again_acked) == (acked, False)
    assert await outbox_keys(store) == ["esc:l1:ping1", "esc:l2", "esc:ack"]

    with pytest.raises(LookupError):
        await store.escalation_pinged(esc.id + 100, 2, t3, msgs("nothing"))
    with pytest.raises(LookupError):
        await store.acknowledge_escalation(esc.id + 100, "x@y.be", t3, msgs("nothing"))
    assert await outbox_keys(store) == ["esc:l1:ping1", "esc:l2", "esc:ack"]


async def test_two_managers_acknowledging_at_once(store: SqlStore, store_factory) -> None:  # type: ignore[no-untyped-def]
    await store.create_ticket(new_ticket(), NOW, FMT)
    esc = await store.create_escalation("CS-2026-00001", 1, EscalationReason.ATTITUDE, "rude", "jan@acme.be", NOW)
    other = await store_factory()
    managers = [f"manager{i}@caresolutions.be" for i in range(6)]
    results = await asyncio.gather(
        *(
            s.acknowledge_escalation(esc.id, by, NOW + timedelta(minutes=1), msgs(f"ack-by-{by}"))
            for s, by in zip([store, other] * 3, managers)
        )
    )
    flags = [acknowledged for _, acknowledged in results]
    assert flags.count(True) == 1 and flags.count(False) == 5
    winner = managers[flags.index(True)]
    assert all(e.acknowledged_by == winner and e.status is EscalationStatus.ACKNOWLEDGED for e, _ in results)
    assert (await store.get_escalation(esc.id)).acknowledged_by == winner  # type: ignore[union-attr]
    assert await outbox_keys(store) == [f"ack-by-{winner}"]
