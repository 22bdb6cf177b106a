"""Contract of `PortalStore` (the customer-portal chat's conversations and transcript), run
against every back end (SQLite and PostgreSQL)."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest

from tests.store.helpers import NOW


async def test_a_person_has_one_conversation_whatever_the_case_of_their_address(store):
    first = await store.open_portal_conversation("Lotte.Peeters@brasseriedeklok.be", "conv-a", NOW)
    again = await store.open_portal_conversation("lotte.peeters@brasseriedeklok.be", "conv-b", NOW)
    other = await store.open_portal_conversation("emma.wilson@atelier-lumiere.be", "conv-c", NOW)
    assert (first, again, other) == ("conv-a", "conv-a", "conv-c")
    assert await store.portal_person("conv-a") == "lotte.peeters@brasseriedeklok.be"
    assert await store.portal_person("conv-b") is None
    assert await store.portal_conversation_of("LOTTE.peeters@brasseriedeklok.be") == "conv-a"
    assert await store.portal_conversation_of("nobody@example.com") is None


async def test_activities_are_numbered_in_order_and_read_after_a_watermark(store):
    conv = await store.open_portal_conversation("a@example.com", "conv-1", NOW)
    other = await store.open_portal_conversation("b@example.com", "conv-2", NOW)
    assert await store.add_portal_activities(conv, [{"type": "message", "text": "one"}], NOW) == [1]
    assert await store.add_portal_activities(conv, [{"type": "message", "text": "two"},
                                                    {"type": "message", "text": "three"}],
                                             NOW + timedelta(seconds=1)) == [2, 3]
    assert await store.add_portal_activities(other, [{"type": "message", "text": "elsewhere"}], NOW) == [1]
    everything = await store.portal_activities(conv)
    assert [(a.seq, a.activity["text"]) for a in everything] == [(1, "one"), (2, "two"), (3, "three")]
    assert everything[0].created_at == NOW and everything[0].created_at.tzinfo is not None
    assert [a.activity["text"] for a in await store.portal_activities(conv, after=1)] == ["two", "three"]
    assert await store.portal_activities(conv, after=3) == []
    # A long conversation: the newest ones, still oldest first.
    assert [a.seq for a in await store.portal_activities(conv, limit=2)] == [2, 3]


async def test_a_message_sent_again_with_its_client_id_is_kept_once(store):
    conv = await store.open_portal_conversation("a@example.com", "conv-1", NOW)
    message = {"type": "message", "text": "my invoices do not print <b>now</b>"}
    assert await store.add_portal_activities(conv, [message], NOW, client_id="wc-1") == [1]
    assert await store.add_portal_activities(conv, [{"type": "message", "text": "answer"}], NOW) == [2]
    assert await store.add_portal_activities(conv, [message], NOW, client_id="wc-1") == [1]
    kept = await store.portal_activities(conv)
    assert [(a.seq, a.client_id, a.activity["text"]) for a in kept] == [
        (1, "wc-1", "my invoices do not print <b>now</b>"), (2, None, "answer")]


async def test_appending_to_an_unknown_conversation_fails(store):
    with pytest.raises(KeyError):
        await store.add_portal_activities("nope", [{"type": "message"}], NOW)


async def test_concurrent_appends_get_distinct_numbers_in_order(store, store_factory):
    conv = await store.open_portal_conversation("a@example.com", "conv-1", NOW)
    other = await store_factory()  # another process on the same database
    results = await asyncio.gather(*[
        (store if n % 2 else other).add_portal_activities(conv, [{"type": "message", "text": str(n)}], NOW)
        for n in range(10)])
    numbers = sorted(n for result in results for n in result)
    assert numbers == list(range(1, 11))
    assert [a.seq for a in await other.portal_activities(conv)] == list(range(1, 11))
