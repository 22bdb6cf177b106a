"""Contract of `NoticeStore` (answers owed to a person), run against every back end (SQLite and
PostgreSQL)."""

from __future__ import annotations

from datetime import timedelta

from bot.store.ports.notices import MAX_NOTICES_PER_PERSON
from tests.store.helpers import NOW


async def test_notices_are_kept_per_person_and_channel_oldest_first(store):
    await store.add_notice("slack", "T1:U1", "CS-2026-00001", NOW)
    await store.add_notice("slack", "T1:U1", None, NOW + timedelta(seconds=1))
    await store.add_notice("slack", "T1:U2", "CS-2026-00009", NOW)
    await store.add_notice("msteams", "T1:U1", "CS-2026-00007", NOW)
    notices = await store.pending_notices("slack", "T1:U1")
    assert [n.ticket_number for n in notices] == ["CS-2026-00001", None]
    assert notices[0].created_at == NOW and notices[0].created_at.tzinfo is not None
    assert [n.ticket_number for n in await store.pending_notices("slack", "T1:U2")] == ["CS-2026-00009"]
    assert await store.pending_notices("slack", "T9:U9") == []


async def test_only_the_newest_notices_are_kept(store):
    for n in range(MAX_NOTICES_PER_PERSON + 3):
        await store.add_notice("slack", "T1:U1", f"CS-2026-{n:05d}", NOW + timedelta(seconds=n))
    kept = [n.ticket_number for n in await store.pending_notices("slack", "T1:U1")]
    assert kept == [f"CS-2026-{n:05d}" for n in range(3, MAX_NOTICES_PER_PERSON + 3)]


async def test_clearing_keeps_a_notice_added_after_the_read(store):
    await store.add_notice("slack", "T1:U1", "CS-2026-00001", NOW)
    told = await store.pending_notices("slack", "T1:U1")
    await store.add_notice("slack", "T1:U1", "CS-2026-00002", NOW)  # another process, meanwhile
    await store.clear_notices("slack", "T1:U1", told[-1].id)
    assert [n.ticket_number for n in await store.pending_notices("slack", "T1:U1")] == ["CS-2026-00002"]


async def test_notices_survive_a_new_connection(store, store_factory):
    await store.add_notice("slack", "T1:U1", "CS-2026-00001", NOW)
    other = await store_factory()  # another process on the same database
    assert [n.ticket_number for n in await other.pending_notices("slack", "T1:U1")] == ["CS-2026-00001"]
