"""The pieces every channel shares (adapters/shared): the expiring cache, the conversation
references, the delivery claim, the apology on failure and the notices of lost answers. On
SQLite and PostgreSQL."""

from __future__ import annotations

import logging
from datetime import datetime
from zoneinfo import ZoneInfo

import pytest

from adapters.shared.cache import ExpiringCache
from adapters.shared.notices import NOTHING_OWED, OwedNotices
from adapters.shared.references import ReferenceBook, find_reference
from adapters.shared.turns import answer, first_delivery
from bot.app.desk import Desk
from bot.app.runner import TurnRunner
from bot.domain.clock import ManualClock
from bot.domain.config import Settings
from bot.i18n import translate
from bot.protocol.replies import Response, Text, Tone
from bot.protocol.turn import Turn, UserIdentity
from bot.store.ports import StoreUnavailableError

BXL = ZoneInfo("Europe/Brussels")


@pytest.fixture
async def desk(store):
    return Desk(Settings(), store, ManualClock(datetime(2026, 11, 26, 10, 0, tzinfo=BXL)))


class Ticking:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_an_entry_expires_after_its_time():
    clock = Ticking()
    cache: ExpiringCache[str, str] = ExpiringCache(clock=clock)
    cache.put("U1", "lotte", ttl_seconds=60)
    clock.now += 59.9
    assert cache.get("U1") == "lotte" and "U1" in cache
    clock.now += 0.2
    assert cache.get("U1") is None and len(cache) == 0


def test_the_cache_never_grows_past_its_bound():
    clock = Ticking()
    cache: ExpiringCache[int, int] = ExpiringCache(max_entries=3, clock=clock)
    for n in range(3):
        cache.put(n, n, ttl_seconds=10 if n == 1 else 1000)
    clock.now += 20  # entry 1 expired: it makes room first
    cache.put(3, 3, ttl_seconds=1000)
    assert len(cache) == 3 and cache.get(1) is None and cache.get(0) == 0
    cache.put(4, 4, ttl_seconds=1000)  # all fresh: the oldest goes
    assert len(cache) == 3 and cache.get(0) is None and cache.get(4) == 4


def test_clearing_forgets_every_entry():
    cache: ExpiringCache[str, str] = ExpiringCache(clock=Ticking())
    cache.put("U1", "lotte", ttl_seconds=60)
    cache.clear()
    assert cache.get("U1") is None and len(cache) == 0


async def test_a_reference_is_written_once_per_change(desk, monkeypatch):
    book = ReferenceBook(desk, "msteams")
    writes = []
    original = desk.store.save_conversation_ref

    async def counting(*args, **kwargs):
        writes.append(args[1])
        return await original(*args, **kwargs)

    monkeypatch.setattr(desk.store, "save_conversation_ref", counting)
    reference = {"conversation": {"id": "a:1"}, "serviceUrl": "http://127.0.0.1:1/"}
    for _ in range(3):
        await book.save("aad-lotte", reference, "lotte@example.com")
    assert writes == ["aad-lotte"]
    await book.save("aad-lotte", {**reference, "serviceUrl": "http://127.0.0.1:2/"}, "lotte@example.com")
    assert writes == ["aad-lotte", "aad-lotte"]
    assert (await find_reference(desk, "msteams", "lotte@example.com"))["serviceUrl"] == "http://127.0.0.1:2/"
    assert await find_reference(desk, "slack", "lotte@example.com") is None  # another channel's
    assert (await book.find("aad-lotte"))["conversation"] == {"id": "a:1"}
    assert await book.find("  ") is None


async def test_a_failed_reference_write_is_logged_and_tried_again(desk, monkeypatch, caplog):
    book = ReferenceBook(desk, "slack")

    async def failing(*args, **kwargs):
        raise RuntimeError("disk full")

    monkeypatch.setattr(desk.store, "save_conversation_ref", failing)
    with caplog.at_level(logging.ERROR, logger="caredesk.references"):
        await book.save("T1:U1", {"channel_id": "D1"}, None)  # does not raise
    assert "could not store the slack conversation reference of T1:U1" in caplog.text
    monkeypatch.undo()
    await book.save("T1:U1", {"channel_id": "D1"}, None)  # not remembered as saved: written now
    assert await desk.store.get_conversation_ref("slack", "T1:U1") == {"channel_id": "D1"}


async def test_a_delivery_is_claimed_once(desk):
    assert await first_delivery(desk, "msteams", "activity-1") is True
    assert await first_delivery(desk, "msteams", "activity-1") is False
    assert await first_delivery(desk, "slack", "activity-1") is True  # another channel's ids
    assert await first_delivery(desk, "msteams", None) is True  # nothing to claim


def person_turn(locale: str) -> Turn:
    return Turn("console", "local", "c:1", UserIdentity(id="x@example.com", email="x@example.com", locale=locale),
                text="help")


async def test_a_failing_core_gives_an_apology_in_the_persons_language(desk, monkeypatch):
    runner = TurnRunner(desk)

    async def broken(turn):
        raise ValueError("bug")

    monkeypatch.setattr(runner, "handle", broken)
    response = await answer(runner, person_turn("nl-BE"), apology_key="slack.error")
    assert response.lang == "nl" and response.replies[0].tone is Tone.ERROR
    assert response.replies[0].text and "bug" not in response.replies[0].text


async def test_a_database_outage_is_not_apologised_for(desk, monkeypatch):
    runner = TurnRunner(desk)

    async def away(turn):
        raise StoreUnavailableError("down")

    monkeypatch.setattr(runner, "handle", away)
    with pytest.raises(StoreUnavailableError):
        await answer(runner, person_turn("fr"), apology_key="slack.error")


async def test_a_working_core_answers_as_it_is(desk):
    response = await answer(TurnRunner(desk), person_turn("fr"), apology_key="slack.error")
    assert response.lang == "fr" and response.replies


def lost(ticket_number: str | None) -> Response:
    return Response((Text("Your ticket was created."),), "en", ticket_number=ticket_number)


async def test_a_lost_answer_is_owed_once_per_ticket_number_and_cleared_up_to_what_was_told(desk):
    notices = OwedNotices(desk, "slack", lost_key="slack.undelivered", lost_ticket_key="slack.undelivered_ticket")
    assert await notices.owed("T1:U1", "en") == NOTHING_OWED
    await notices.remember("T1:U1", lost(None))
    only_lost = await notices.owed("T1:U1", "en")
    assert [r.text for r in only_lost.replies] == [translate("en", "slack.undelivered")]
    for number in ("CS-2026-00001", None, "CS-2026-00001", "CS-2026-00002"):
        await notices.remember("T1:U1", lost(number))
    owed = await notices.owed("T1:U1", "fr")
    assert [r.text for r in owed.replies] == [translate("fr", "slack.undelivered_ticket", number=n)
                                             for n in ("CS-2026-00001", "CS-2026-00002")]
    assert {r.tone for r in owed.replies} == {Tone.WARNING}
    await notices.remember("T1:U1", lost("CS-2026-00003"))  # lost while the owed ones were being told
    await notices.told("T1:U1", owed)
    after = await notices.owed("T1:U1", "en")
    assert [r.text for r in after.replies] == [translate("en", "slack.undelivered_ticket", number="CS-2026-00003")]
    await notices.told("T1:U1", NOTHING_OWED)  # nothing read, nothing cleared
    assert await notices.owed("T1:U1", "en") == after


async def test_notices_the_store_cannot_keep_or_give_never_stop_an_answer(desk, monkeypatch, caplog):
    notices = OwedNotices(desk, "slack", lost_key="slack.undelivered", lost_ticket_key="slack.undelivered_ticket")
    await notices.remember("T1:U1", lost("CS-2026-00001"))
    owed = await notices.owed("T1:U1", "en")

    async def away(*args, **kwargs):
        raise StoreUnavailableError("down")

    for method in ("add_notice", "pending_notices", "clear_notices"):
        monkeypatch.setattr(desk.store, method, away)
    with caplog.at_level(logging.ERROR, logger="caredesk.notices"):
        await notices.remember("T1:U1", lost("CS-2026-00002"))
        assert await notices.owed("T1:U1", "en") == NOTHING_OWED
        await notices.told("T1:U1", owed)
    assert [r.getMessage() for r in caplog.records] == [
        "could not remember a lost slack answer to T1:U1", "could not read the slack notices owed to T1:U1",
        "could not clear the slack notices told to T1:U1"]
    monkeypatch.undo()
    assert (await notices.owed("T1:U1", "en")).replies == owed.replies  # still owed: told next time
