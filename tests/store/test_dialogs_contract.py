"""Contract of `DialogStore` (versioned dialog states, processed deliveries, the turn-start read),
run against every back end (SQLite and PostgreSQL).
"""

from __future__ import annotations

import asyncio
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal

import pytest

from bot.domain.model import DialogKey
from bot.store.ports import NewOutboxMessage, StaleDialogError
from bot.store.sql import SqlStore
from tests.store.helpers import DIRECTORY, NOW, assert_utc


# ---- dialogs --------------------------------------------------------------------------------------


KEY = DialogKey("teams", "tenant-1", "conv-1", "user-1")


async def test_dialog_versions(store: SqlStore) -> None:
    assert await store.load_dialog(KEY) is None
    assert await store.save_dialog(KEY, {"step": "describe", "n": 1}, None, NOW) == 1
    with pytest.raises(StaleDialogError):
        await store.save_dialog(KEY, {"step": "other"}, None, NOW)

    later = NOW + timedelta(minutes=3)
    assert await store.save_dialog(KEY, {"step": "confirm", "items": [1, 2]}, 1, later) == 2
    with pytest.raises(StaleDialogError):
        await store.save_dialog(KEY, {"step": "late"}, 1, later)
    with pytest.raises(StaleDialogError):
        await store.save_dialog(DialogKey("teams", "tenant-1", "conv-1", "someone-else"), {}, 1, later)

    stored = await store.load_dialog(KEY)
    assert stored is not None
    assert stored.key == KEY and stored.version == 2
    assert stored.state == {"step": "confirm", "items": [1, 2]}
    assert stored.updated_at == later
    assert_utc(stored.updated_at)

    # other keys are independent
    other = DialogKey("slack", "T1", "C1", "user-1")
    assert await store.save_dialog(other, {"x": 1}, None, NOW) == 1

    with pytest.raises(StaleDialogError):
        await store.delete_dialog(KEY, 1)
    await store.delete_dialog(KEY, 2)
    assert await store.load_dialog(KEY) is None
    with pytest.raises(StaleDialogError):
        await store.delete_dialog(KEY, 2)
    assert (await store.load_dialog(other)).version == 1  # type: ignore[union-attr]
    assert await store.save_dialog(KEY, {"step": "again"}, None, NOW) == 1


async def test_dialog_state_json_values(store: SqlStore) -> None:
    state = {"amount": Decimal("12.50"), "day": date(2026, 3, 2), "at": NOW, "nested": {"ok": True, "none": None}}
    await store.save_dialog(KEY, state, None, NOW)
    stored = await store.load_dialog(KEY)
    assert stored is not None
    assert stored.state == {
        "amount": "12.50",
        "day": "2026-03-02",
        "at": "2026-03-02T09:30:00+00:00",
        "nested": {"ok": True, "none": None},
    }
    with pytest.raises(TypeError):
        await store.save_dialog(KEY, {"bad": object()}, 1, NOW)
    assert (await store.load_dialog(KEY)).version == 1  # type: ignore[union-attr]


async def test_concurrent_dialog_saves_only_one_wins(store: SqlStore, store_factory) -> None:  # type: ignore[no-untyped-def]
    other = await store_factory()
    await store.save_dialog(KEY, {"v": 0}, None, NOW)

    async def attempt(s: SqlStore, i: int) -> int | None:
        try:
            return await s.save_dialog(KEY, {"v": i}, 1, NOW)
        except StaleDialogError:
            return None

    results = await asyncio.gather(*(attempt(s, i) for i, s in enumerate([store, other] * 4)))
    assert sorted(r for r in results if r is not None) == [2]
    assert results.count(None) == 7
    winner = results.index(2)
    assert (await store.load_dialog(KEY)).state == {"v": winner}  # type: ignore[union-attr]


# ---- platform deliveries --------------------------------------------------------------------------


async def test_claim_event_once(store: SqlStore) -> None:
    assert await store.claim_event("slack", "Ev01", NOW) is True
    assert await store.claim_event("slack", "Ev01", NOW + timedelta(seconds=3)) is False
    assert await store.claim_event("teams", "Ev01", NOW) is True
    assert await store.claim_event("slack", "Ev02", NOW) is True


async def test_claim_event_across_store_instances(store: SqlStore, store_factory) -> None:  # type: ignore[no-untyped-def]
    other = await store_factory()
    results = await asyncio.gather(*(s.claim_event("slack", "Ev99", NOW) for s in [store, other] * 5))
    assert results.count(True) == 1 and results.count(False) == 9
    assert await other.claim_event("slack", "Ev99", NOW) is False


async def test_save_dialog_claims_the_event_in_the_same_transaction(store: SqlStore) -> None:
    assert await store.is_event_processed("slack", "Ev1") is False
    assert await store.save_dialog(KEY, {"step": 1}, None, NOW, event=("slack", "Ev1")) == 1
    assert await store.is_event_processed("slack", "Ev1") is True
    assert await store.is_event_processed("teams", "Ev1") is False

    # the same delivery again: refused, nothing saved
    with pytest.raises(StaleDialogError):
        await store.save_dialog(KEY, {"step": 2}, 1, NOW, event=("slack", "Ev1"))
    stored = await store.load_dialog(KEY)
    assert (stored.version, stored.state) == (1, {"step": 1})  # type: ignore[union-attr]

    # a stale dialog write does not consume the delivery
    with pytest.raises(StaleDialogError):
        await store.save_dialog(KEY, {"step": 2}, 7, NOW, event=("slack", "Ev2"))
    assert await store.is_event_processed("slack", "Ev2") is False
    assert await store.save_dialog(KEY, {"step": 2}, 1, NOW, event=("slack", "Ev2")) == 2
    assert await store.claim_event("slack", "Ev2", NOW) is False

    with pytest.raises(StaleDialogError):
        await store.delete_dialog(KEY, 2, event=("slack", "Ev2"))
    assert (await store.load_dialog(KEY)).version == 2  # type: ignore[union-attr]
    await store.delete_dialog(KEY, 2, event=("slack", "Ev3"), now=NOW)
    assert await store.load_dialog(KEY) is None
    assert await store.is_event_processed("slack", "Ev3") is True


# ---- the turn-start read --------------------------------------------------------------------------


async def test_read_turn_start_reads_delivery_dialog_and_person_at_once(store: SqlStore) -> None:
    await store.replace_directory(DIRECTORY)
    key = DialogKey("slack", "T1", "D1", "U1")
    empty = await store.read_turn_start(key, None, ("slack", "Ev1"))
    assert (empty.processed, empty.dialog, empty.contact, empty.staff, empty.company) == (False, None, None, None, None)
    now = datetime(2026, 3, 2, 9, 30, tzinfo=timezone.utc)
    await store.save_dialog(key, {"dialog": "new_ticket", "step": "module"}, None, now, event=("slack", "Ev1"))
    start = await store.read_turn_start(key, " Jan.Peeters@ACME.be", ("slack", "Ev1"))
    assert start.processed is True
    assert start.dialog is not None and start.dialog.state["step"] == "module" and start.dialog.version == 1
    assert (start.contact, start.staff, start.company) == await store.find_person("jan.peeters@acme.be")
    assert start.company is not None and start.company.name == "Acme NV"
    assert (await store.read_turn_start(key, "naida.jelacic@caresolutions.be", ("slack", "Ev2"))).processed is False
    assert (await store.read_turn_start(key, "naida.jelacic@caresolutions.be")).staff is not None


# ---- durable replies: the turn's answer saved with the turn ---------------------------------------


def _reply(event_id: str) -> NewOutboxMessage:
    return NewOutboxMessage(f"reply:slack:{event_id}", "a@acme.be", "reply", {"response": {"replies": []}},
                            held_until=NOW + timedelta(minutes=2))


async def _replies(store: SqlStore) -> list[tuple[str, str, int]]:
    return [(m.idempotency_key, m.status, m.attempts) for m in await store.list_outbox()]


async def test_a_reply_is_written_with_the_save_delete_or_claim_and_never_without_it(store: SqlStore) -> None:
    await store.save_dialog(KEY, {"step": 1}, None, NOW, event=("slack", "Ev1"), reply=_reply("Ev1"))
    # held by its first try: being sent, attempt 1, locked until held_until
    assert await _replies(store) == [("reply:slack:Ev1", "sending", 1)]
    assert await store.claim_outbox(NOW + timedelta(minutes=1), timedelta(minutes=5)) == []

    # a save that fails (stale version, delivery claimed already) writes no reply
    with pytest.raises(StaleDialogError):
        await store.save_dialog(KEY, {"step": 2}, 7, NOW, event=("slack", "Ev2"), reply=_reply("Ev2"))
    with pytest.raises(StaleDialogError):
        await store.save_dialog(KEY, {"step": 2}, 1, NOW, event=("slack", "Ev1"), reply=_reply("Ev1b"))
    with pytest.raises(StaleDialogError):
        await store.save_dialog(KEY, {"step": 9}, None, NOW, event=("slack", "Ev9"), reply=_reply("Ev9"))
    assert [k for k, _, _ in await _replies(store)] == ["reply:slack:Ev1"]

    await store.save_dialog(KEY, {"step": 2}, 1, NOW, event=("slack", "Ev2"), reply=_reply("Ev2"))
    with pytest.raises(StaleDialogError):
        await store.delete_dialog(KEY, 1, event=("slack", "Ev3"), now=NOW, reply=_reply("Ev3"))
    await store.delete_dialog(KEY, 2, event=("slack", "Ev3"), now=NOW, reply=_reply("Ev3"))
    assert await store.claim_event("slack", "Ev4", NOW, reply=_reply("Ev4")) is True
    assert await store.claim_event("slack", "Ev4", NOW, reply=_reply("Ev4-again")) is False
    assert [k for k, _, _ in await _replies(store)] == [f"reply:slack:{e}" for e in ("Ev1", "Ev2", "Ev3", "Ev4")]
    # once the hold runs out, the dispatcher takes what was never reported posted
    late = await store.claim_outbox(NOW + timedelta(minutes=3), timedelta(minutes=5))
    assert [(m.idempotency_key, m.attempts) for m in late] == [(f"reply:slack:{e}", 2) for e in ("Ev1", "Ev2", "Ev3", "Ev4")]


async def test_read_turn_start_says_whether_notices_are_owed_to_the_person(store: SqlStore) -> None:
    key = DialogKey("slack", "T1", "D1", "U1")
    now = datetime(2026, 3, 2, 9, 30, tzinfo=timezone.utc)
    assert (await store.read_turn_start(key, None, None, "T1:U1")).notices_owed is False
    await store.add_notice("slack", "T1:U1", "CS-2026-00001", now)
    await store.add_notice("slack", "T1:U2", None, now)
    await store.add_notice("msteams", "T1:U3", None, now)
    assert (await store.read_turn_start(key, None, None, "T1:U1")).notices_owed is True
    # another person's, another channel's, or no person given: nothing owed
    assert (await store.read_turn_start(key, None, None, "T1:U9")).notices_owed is False
    assert (await store.read_turn_start(key, None, None, "T1:U3")).notices_owed is False
    assert (await store.read_turn_start(key, None)).notices_owed is False
    owed = await store.pending_notices("slack", "T1:U1")
    await store.clear_notices("slack", "T1:U1", owed[-1].id)
    assert (await store.read_turn_start(key, None, None, "T1:U1")).notices_owed is False
