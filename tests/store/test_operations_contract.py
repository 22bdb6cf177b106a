"""The operations port on every back end: a person's data exported and erased (GDPR), the
retention purge, the queues' snapshot for the metrics.

The erasure is checked by reading every text and JSON column of every table the database has
(reflected, not listed here): a table another change adds is checked too, and fails this test
until the erasure covers it.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

from sqlalchemy import JSON, MetaData, String, select

from bot.domain.model import DialogKey, EscalationReason
from bot.store.ports import NewInboxItem, NewOutboxMessage, RetentionCutoffs
from bot.store.sql import SqlStore
from tests.store.helpers import DIRECTORY, FMT, LEASE, NOW, new_ticket, time_entry

JAN_EMAIL = "Jan.Peeters@Acme.be"
JAN_NAME = "Jan Peeters"
JAN_PHONE = "+32 3 111 11 11"
MARIE = "marie@globex.be"


async def _every_text(store: SqlStore) -> list[tuple[str, str, str]]:
    """(table, column, text) of every text and JSON value in the database."""

    def read(conn: Any) -> list[tuple[str, str, str]]:
        metadata = MetaData()
        metadata.reflect(conn)
        found = []
        for table in metadata.sorted_tables:
            columns = [c for c in table.columns if isinstance(c.type, (String, JSON))]
            if not columns:
                continue
            for row in conn.execute(select(*columns)).all():
                for column, value in zip(columns, row):
                    if value is None:
                        continue
                    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
                    found.append((table.name, column.name, text))
        return found

    async with store.engine.connect() as conn:
        return await conn.run_sync(read)


def _naming(texts: list[tuple[str, str, str]], *needles: str) -> list[tuple[str, str, str]]:
    return [t for t in texts if any(n.lower() in t[2].lower() for n in needles)]


async def _billing(store: SqlStore) -> tuple[int, Decimal]:
    entries = await store.list_time_entries()
    return len(entries), sum((e.amount or Decimal(0) for e in entries), Decimal(0))


async def _populate(store: SqlStore) -> tuple[str, str]:
    await store.replace_directory(DIRECTORY)
    jan = await store.create_ticket(new_ticket(requester_phone=JAN_PHONE,
                                               description=f"Printing fails. {JAN_NAME} ({JAN_PHONE}) asks a call back"),
                                    NOW, FMT)
    marie = await store.create_ticket(new_ticket(requester_email=MARIE, requester_name="Marie Dubois",
                                                 company="Globex BV"), NOW, FMT)
    await store.add_ticket_comment(jan.number, JAN_EMAIL, "Any news? Jan", NOW, internal=False)
    await store.add_ticket_comment(marie.number, "agent.one@caresolutions.be", f"Same as {JAN_NAME}'s ticket",
                                   NOW, internal=True)
    await store.add_time_entry(time_entry(jan.number), NOW, idempotency_key="te-jan")
    await store.add_time_entry(time_entry(marie.number, amount=Decimal("95.00")), NOW, idempotency_key="te-marie")
    await store.create_escalation(jan.number, 1, EscalationReason.FEEDBACK, f"{JAN_NAME} is unhappy", JAN_EMAIL, NOW,
                                  [NewOutboxMessage("esc-1", "naida.jelacic@caresolutions.be", "escalation",
                                                    {"requester": JAN_NAME, "email": JAN_EMAIL})])
    await store.save_conversation_ref("slack", "T1:U1", {"team_id": "T1", "user_id": "U1", "channel_id": "D1"}, NOW,
                                      email=JAN_EMAIL)
    await store.save_dialog(DialogKey("slack", "T1", "D1", "U1"), {"dialog": "new_ticket", "data": {"x": 1}},
                            None, NOW)
    await store.save_dialog(DialogKey("console", "console", JAN_EMAIL.lower(), JAN_EMAIL.lower()),
                            {"dialog": "quote", "data": {}}, None, NOW)
    await store.enqueue([NewOutboxMessage("notice-1", JAN_EMAIL, "status_changed", {"name": JAN_NAME})], NOW)
    await store.enqueue_inbound([NewInboxItem("slack", "message", "slack:T1:U1",
                                              {"text": f"my phone is {JAN_PHONE}"}, dedup_key="ev-1")], NOW)
    # The portal chat: the conversation is keyed by the e-mail; the transcript holds what they typed.
    portal = await store.open_portal_conversation(JAN_EMAIL, "portal-jan", NOW)
    await store.add_portal_activities(portal, [{"type": "message", "text": "the printer on floor 2 again",
                                                "from": {"id": "u", "role": "user"}}], NOW)
    # A status message no channel could push to Jan, kept for his next visit.
    await store.enqueue([NewOutboxMessage("kept-1", JAN_EMAIL, "ticket_update", {"ticket": jan.number})], NOW)
    [kept] = [q for q in await store.list_outbox() if q.idempotency_key == "kept-1"]
    await store.keep_for_next_visit(kept.id, NOW)
    return jan.number, marie.number


async def test_export_lists_what_is_held_about_a_person(store: SqlStore) -> None:
    jan, marie = await _populate(store)
    export = await store.privacy_export(JAN_EMAIL.upper())
    assert export is not None
    assert export["email"] == JAN_EMAIL.lower()
    assert JAN_NAME in export["names"] and JAN_PHONE in export["phones"]
    assert export["platform_accounts"] == [{"channel": "slack", "user": "T1:U1"}]
    tables = export["tables"]
    assert [c["name"] for c in tables["contacts"]] == [JAN_NAME]
    assert [t["number"] for t in tables["tickets"]] == [jan]  # not Marie's ticket ...
    assert {c["text"] for c in tables["ticket_comments"]} == {"Any news? Jan", f"Same as {JAN_NAME}'s ticket"}
    assert [e["idempotency_key"] for e in tables["time_entries"]] == ["te-jan"]
    assert [e["comment"] for e in tables["escalations"]] == [f"{JAN_NAME} is unhappy"]
    assert {(d["channel"], d["user_id"]) for d in tables["dialog_states"]} == {
        ("slack", "U1"), ("console", JAN_EMAIL.lower())}
    assert [r["user_key"] for r in tables["conversation_refs"]] == ["T1:U1"]
    assert {o["idempotency_key"] for o in tables["outbox"]} == {"esc-1", "notice-1", "kept-1"}
    assert [k["outbox_key"] for k in tables["kept_messages"]] == ["kept-1"]
    assert [i["dedup_key"] for i in tables["inbox"]] == ["ev-1"]
    assert [a["activity"]["text"] for a in tables["portal_activities"]] == ["the printer on floor 2 again"]
    assert [c["id"] for c in tables["portal_conversations"]] == ["portal-jan"]
    assert "staff" not in tables
    assert marie not in json.dumps(export)
    # A staff member's export: their directory entry and the time they logged.
    agent = await store.privacy_export("agent.one@caresolutions.be")
    assert agent is not None and [s["name"] for s in agent["tables"]["staff"]] == ["Agent One"]
    assert {e["idempotency_key"] for e in agent["tables"]["time_entries"]} == {"te-jan", "te-marie"}


async def test_export_and_erase_of_an_unknown_email_find_nothing(store: SqlStore) -> None:
    await _populate(store)
    assert await store.privacy_export("nobody@example.com") is None
    before = await _every_text(store)
    assert await store.privacy_erase("nobody@example.com", NOW, "dpo") is None
    assert await _every_text(store) == before


async def test_erase_leaves_no_email_name_or_phone_anywhere_and_billing_adds_up(store: SqlStore) -> None:
    jan, marie = await _populate(store)
    assert _naming(await _every_text(store), JAN_EMAIL, JAN_NAME, JAN_PHONE)  # the scan sees them before
    tickets_before = [(t.number, t.company, t.description[:8]) for t in await store.list_tickets(limit=100)]
    billing_before = await _billing(store)

    report = await store.privacy_erase(JAN_EMAIL, NOW + timedelta(days=1), "dpo@caresolutions.be")

    assert report is not None
    left = _naming(await _every_text(store), JAN_EMAIL, JAN_NAME, JAN_PHONE)
    assert left == []
    # Tickets and billing kept, under the pseudonym: numbers and totals add up as before.
    assert await _billing(store) == billing_before
    assert [(t.number, t.company, t.description[:8]) for t in await store.list_tickets(limit=100)] == tickets_before
    ticket = await store.get_ticket(jan)
    assert ticket is not None
    assert ticket.requester_email == report.pseudonym and ticket.requester_name.startswith("Erased person ")
    assert ticket.requester_phone is None
    assert "Erased person" in ticket.description and "[erased]" in ticket.description
    assert [e.amount for e in await store.list_time_entries(ticket_number=jan)] == [Decimal("261.25")]
    # Dialogs, references, the directory entry and messages to them: gone.
    assert await store.get_conversation_ref("slack", "T1:U1") is None
    assert await store.load_dialog(DialogKey("slack", "T1", "D1", "U1")) is None
    assert await store.find_contact(JAN_EMAIL) is None
    assert report.deleted["dialog_states"] == 2 and report.deleted["contacts"] == 1
    # The portal chat's transcript goes with the conversation: what they typed is no billing record.
    assert await store.portal_conversation_of(JAN_EMAIL) is None
    assert report.deleted["portal_conversations"] == 1 and report.deleted["portal_activities"] == 1
    assert not [t for t in await _every_text(store) if "floor 2" in t[2]]
    assert [m.idempotency_key for m in await store.list_outbox()] == ["esc-1"]  # to the manager, pseudonymised
    assert report.deleted["kept_messages"] == 1 and await store.list_kept_messages() == []
    # Others are untouched.
    marie_ticket = await store.get_ticket(marie)
    assert marie_ticket is not None and marie_ticket.requester_name == "Marie Dubois"
    assert await store.find_contact(MARIE) is not None
    # The audit record: when, by whom, the pseudonym and the counts; not who.
    audits = await store.list_privacy_erasures()
    assert [(a["erased_by"], a["pseudonym"]) for a in audits] == [("dpo@caresolutions.be", report.pseudonym)]
    assert audits[0]["rows"]["deleted"]["contacts"] == 1
    # Asked again: nothing is held any more.
    assert await store.privacy_export(JAN_EMAIL) is None


async def test_retention_purge_deletes_only_what_is_old_enough(store: SqlStore) -> None:
    await store.save_conversation_ref("slack", "T1:OLD", {"u": 1}, NOW - timedelta(days=400))
    await store.save_conversation_ref("slack", "T1:NEW", {"u": 2}, NOW - timedelta(days=10))
    await store.save_dialog(DialogKey("slack", "T1", "D1", "OLD"), {"dialog": "quote", "data": {}}, None,
                            NOW - timedelta(days=31))
    await store.save_dialog(DialogKey("slack", "T1", "D1", "NEW"), {"dialog": "quote", "data": {}}, None,
                            NOW - timedelta(days=29))
    await store.enqueue([NewOutboxMessage("old", "a@b.be", "notice", {}), NewOutboxMessage("new", "a@b.be", "notice", {}),
                         NewOutboxMessage("waiting", "a@b.be", "notice", {})], NOW - timedelta(days=40))
    claimed = {q.idempotency_key: q.id for q in await store.claim_outbox(NOW - timedelta(days=40), LEASE)}
    await store.mark_sent(claimed["old"], NOW - timedelta(days=31))
    await store.mark_sent(claimed["new"], NOW - timedelta(days=1))
    await store.mark_retry(claimed["waiting"], NOW, "platform down")
    cutoffs = RetentionCutoffs(dialogs=timedelta(days=30), inbox_done=timedelta(minutes=15),
                               outbox_sent=timedelta(days=30), conversation_refs=timedelta(days=365))

    await store.enqueue([NewOutboxMessage("kept-old", "a@b.be", "notice", {}),
                         NewOutboxMessage("kept-new", "a@b.be", "notice", {}),
                         NewOutboxMessage("kept-waiting", "c@b.be", "notice", {})], NOW - timedelta(days=40))
    for q in await store.claim_outbox(NOW - timedelta(days=40), LEASE):
        await store.keep_for_next_visit(q.id, NOW - timedelta(days=40))
    await store.take_kept_messages("a@b.be", NOW - timedelta(days=31), limit=1)  # shown 31 days ago
    await store.take_kept_messages("a@b.be", NOW - timedelta(days=1))  # shown yesterday

    purged = await store.purge_retained(NOW, cutoffs)

    assert purged["kept_messages"] == 1  # the one shown long enough ago; never one still waiting
    assert sorted(k.payload == {} and k.recipient for k in await store.list_kept_messages()) == ["a@b.be", "c@b.be"]
    # The outbox's copies of the kept messages are done with (sent 40 days ago): purged with "old".
    assert purged["conversation_refs"] == 1 and purged["dialog_states"] == 1 and purged["outbox"] == 4
    assert await store.get_conversation_ref("slack", "T1:OLD") is None
    assert await store.get_conversation_ref("slack", "T1:NEW") is not None
    assert await store.load_dialog(DialogKey("slack", "T1", "D1", "OLD")) is None
    assert await store.load_dialog(DialogKey("slack", "T1", "D1", "NEW")) is not None
    assert sorted(m.idempotency_key for m in await store.list_outbox()) == ["new", "waiting"]


async def test_snapshot_counts_queues_and_open_escalations(store: SqlStore) -> None:
    await store.replace_directory(DIRECTORY)
    ticket = await store.create_ticket(new_ticket(), NOW, FMT)
    await store.enqueue_inbound([NewInboxItem("slack", "message", "slack:T1:U1", {}, dedup_key="a"),
                                 NewInboxItem("slack", "message", "slack:T1:U2", {}, dedup_key="b")],
                                NOW - timedelta(seconds=90))
    await store.enqueue([NewOutboxMessage("n1", "a@b.be", "notice", {})], NOW - timedelta(seconds=30))
    await store.create_escalation(ticket.number, 1, EscalationReason.FEEDBACK, "slow", JAN_EMAIL, NOW)
    page = await store.create_escalation(ticket.number, 1, EscalationReason.EMERGENCY, "down", JAN_EMAIL, NOW)
    await store.acknowledge_escalation(page.id, "agent.one@caresolutions.be", NOW)

    snapshot = await store.operations_snapshot(NOW)

    assert snapshot.inbox.by_status == {"pending": 2}
    assert snapshot.inbox.oldest_waiting_seconds == 90.0
    assert snapshot.outbox.by_status == {"pending": 1} and snapshot.outbox.oldest_waiting_seconds == 30.0
    assert snapshot.escalations == {"open": 1}
    assert snapshot.pages == {"acknowledged": 1}


async def test_the_outbox_dispatcher_purges_with_the_settings_retention(store: SqlStore) -> None:
    import asyncio

    from bot.app.desk import Desk
    from bot.app.outbox import Dispatcher
    from bot.domain.clock import ManualClock
    from bot.domain.config import ConfigError, settings_from_mapping

    settings = settings_from_mapping({"retention": {"conversation_ref_days": 2, "dialog_days": 3}})
    assert (settings.retention.conversation_ref_days, settings.retention.dialog_days,
            settings.retention.outbox_sent_days) == (2, 3, 30)
    for bad in ({"dialog_days": 0}, {"keep_forever": True}, {"outbox_sent_days": "a week"}):
        try:
            settings_from_mapping({"retention": bad})
        except ConfigError as exc:
            assert f"retention.{next(iter(bad))}" in str(exc)
        else:
            raise AssertionError(f"{bad} accepted")
    real_now = datetime.now(timezone.utc)
    await store.save_conversation_ref("slack", "T1:OLD", {"u": 1}, real_now - timedelta(days=3))
    await store.save_conversation_ref("slack", "T1:NEW", {"u": 2}, real_now - timedelta(days=1))

    class NoDelivery:
        async def deliver(self, message: Any, response: Any) -> None:  # nothing is queued
            raise AssertionError("nothing to deliver")

    stop = asyncio.Event()
    dispatcher = Dispatcher(Desk(settings, store, ManualClock(NOW)), NoDelivery())  # type: ignore[arg-type]
    task = asyncio.create_task(dispatcher.run(stop, interval=0.05))
    for _ in range(100):
        if await store.get_conversation_ref("slack", "T1:OLD") is None:
            break
        await asyncio.sleep(0.05)
    stop.set()
    await task
    assert await store.get_conversation_ref("slack", "T1:OLD") is None
    assert await store.get_conversation_ref("slack", "T1:NEW") is not None
