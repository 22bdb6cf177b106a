"""Operations on SQL: the queues' state for the metrics, the retention purge, and a person's data
(GDPR export and erasure; table `privacy_erasures` keeps the record of each erasure).

A person is found by their identifiers (e-mail, and the names and phone numbers the directory
and their tickets give for it) in every text and JSON column of every table of the database,
read from the database itself (reflection) rather than from a list kept here: a table added
later is exported and erased without a change to this module. The tables whose rows belong to
the person without naming them (a dialog's state is keyed by the platform's user id) are
handled by name first.
"""

from __future__ import annotations

import json
import re
import secrets
from datetime import datetime
from typing import Any, Mapping, Sequence

from sqlalchemy import JSON, MetaData, String, Table, Text, cast, delete, func, insert, or_, select, update
from sqlalchemy.engine import Connection

from bot.store import models as m
from bot.store.ports import ErasureReport, OperationsSnapshot, QueueState, RetentionCutoffs
from bot.store.sql.base import SqlBase, _aware, _email_key, to_json

# Not about anyone: the schema's version, and the erasures' own record (it names no one).
NOT_PERSONAL = frozenset({"alembic_version", "privacy_erasures"})
# A name shorter than this would be found inside other words ("Jo" in "Johnson"): it is
# erased where it stands in its own column (the directory, the ticket's requester), not searched.
MIN_SEARCHED_NAME = 3
ERASED_DOMAIN = "erased.invalid"  # RFC 2606: never a real mailbox
ERASED_PHONE = "[erased]"


class Identifiers:
    """What names a person, and what replaces each of it on erasure."""

    def __init__(self, email: str, names: set[str], phones: set[str], pseudonym: str) -> None:
        self.email = _email_key(email)
        self.pseudonym_email = f"{pseudonym}@{ERASED_DOMAIN}"
        self.pseudonym_name = f"Erased person {pseudonym.removeprefix('erased-')}"
        self.names = {n.strip() for n in names if n and len(n.strip()) >= MIN_SEARCHED_NAME}
        self.phones = {p.strip() for p in phones if p and p.strip()}
        needles = [self.email, *self.names, *self.phones]
        self.needles = sorted({n.lower() for n in needles}, key=len, reverse=True)
        self._pattern = re.compile("|".join(re.escape(n) for n in self.needles), re.IGNORECASE)
        self._replacement = {self.email: self.pseudonym_email,
                             **{n.lower(): self.pseudonym_name for n in self.names},
                             **{p.lower(): ERASED_PHONE for p in self.phones}}

    def search_terms(self) -> list[str]:
        """Lower-case needles as a column's text holds them: as written, and as JSON escapes
        non-ASCII letters ("Müller" is stored "M\\u00fcller" in a JSON column)."""
        terms = set(self.needles)
        terms.update(json.dumps(n)[1:-1].lower() for n in self.needles)
        return sorted(terms)

    def mentions(self, value: Any) -> bool:
        if isinstance(value, str):
            return self._pattern.search(value) is not None
        if isinstance(value, Mapping):
            return any(self.mentions(k) or self.mentions(v) for k, v in value.items())
        if isinstance(value, (list, tuple)):
            return any(self.mentions(v) for v in value)
        return False

    def replace(self, value: Any) -> Any:
        if isinstance(value, str):
            return self._pattern.sub(lambda match: self._replacement[match.group(0).lower()], value)
        if isinstance(value, Mapping):
            return {self.replace(k): self.replace(v) for k, v in value.items()}
        if isinstance(value, list):
            return [self.replace(v) for v in value]
        return value


def _texty(column: Any) -> bool:
    return isinstance(column.type, (String, JSON))


def _reflect(conn: Connection) -> list[Table]:
    """Every table of the database as it is (not as this version's models say)."""
    metadata = MetaData()
    metadata.reflect(conn)
    return [t for t in metadata.sorted_tables if t.name not in NOT_PERSONAL]


def _mentioning(conn: Connection, table: Table, who: Identifiers) -> list[Any]:
    """The rows of `table` whose text or JSON columns mention the person."""
    columns = [c for c in table.columns if _texty(c)]
    if not columns:
        return []
    terms = who.search_terms()
    # LIKE finds the candidates in the database; the exact (case-insensitive) check is Python's.
    conditions = [func.lower(cast(c, Text)).contains(term, autoescape=True) for c in columns for term in terms]
    rows = conn.execute(select(table).where(or_(*conditions))).all()
    return [r for r in rows if any(who.mentions(r._mapping[c.name]) for c in columns)]


def _key(table: Table, row: Any) -> tuple[Any, ...]:
    columns = list(table.primary_key.columns) or list(table.columns)
    return tuple(row._mapping[c.name] for c in columns)


def _where_key(table: Table, row: Any) -> Any:
    columns = list(table.primary_key.columns) or list(table.columns)
    return [c == row._mapping[c.name] for c in columns]


def _plain(row: Any) -> dict[str, Any]:
    return to_json({k: v for k, v in row._mapping.items()})


class SqlOperations(SqlBase):
    # ---- metrics -----------------------------------------------------------------------------
    async def operations_snapshot(self, now: datetime) -> OperationsSnapshot:
        _aware(now)
        i, o, e = m.inbox, m.outbox, m.escalations
        async with self._tx(read_only=True) as conn:
            inbox_counts: dict[str, int] = dict((await conn.execute(select(i.c.status, func.count()).group_by(i.c.status))).all())
            inbox_oldest = (await conn.execute(
                select(func.min(i.c.received_at)).where(i.c.status.in_(("pending", "working"))))).scalar()
            outbox_counts: dict[str, int] = dict((await conn.execute(select(o.c.status, func.count()).group_by(o.c.status))).all())
            outbox_oldest = (await conn.execute(
                select(func.min(o.c.created_at)).where(o.c.status.in_(("pending", "sending"))))).scalar()
            rows = (await conn.execute(select(e.c.reason, e.c.status, func.count()).group_by(e.c.reason, e.c.status)
                                       .where(e.c.status != "closed"))).all()
        escalations: dict[str, int] = {}
        pages: dict[str, int] = {}
        for reason, status, count in rows:
            target = pages if reason == "emergency" else escalations
            target[status] = target.get(status, 0) + int(count)
        return OperationsSnapshot(
            inbox=QueueState({k: int(v) for k, v in inbox_counts.items()}, _age(now, inbox_oldest)),
            outbox=QueueState({k: int(v) for k, v in outbox_counts.items()}, _age(now, outbox_oldest)),
            escalations=escalations, pages=pages)

    # ---- retention ---------------------------------------------------------------------------
    async def purge_retained(self, now: datetime, cutoffs: RetentionCutoffs) -> Mapping[str, int]:
        _aware(now)
        d, i, o, r, p = m.dialog_states, m.inbox, m.outbox, m.conversation_refs, m.processed_events
        statements = {
            "dialog_states": delete(d).where(d.c.updated_at < now - cutoffs.dialogs),
            # A delivery is remembered as long as a dialog could still be answered with it.
            "processed_events": delete(p).where(p.c.processed_at < now - cutoffs.dialogs),
            "inbox": delete(i).where(i.c.status == "done", i.c.done_at < now - cutoffs.inbox_done),
            "outbox": delete(o).where(o.c.status == "sent", o.c.sent_at < now - cutoffs.outbox_sent),
            # Kept for a person's next visit and shown to them: delivered, like the outbox's.
            "kept_messages": delete(m.kept_messages).where(m.kept_messages.c.shown_at < now - cutoffs.outbox_sent),
            "conversation_refs": delete(r).where(r.c.updated_at < now - cutoffs.conversation_refs),
        }
        purged: dict[str, int] = {}
        for table, statement in statements.items():
            # One statement per transaction: a purge never holds SQLite's write lock for long.
            async with self._tx(autocommit=True) as conn:
                purged[table] = int((await conn.execute(statement)).rowcount)
        return purged

    # ---- privacy -----------------------------------------------------------------------------
    async def _identifiers(self, conn: Any, email: str, pseudonym: str) -> Identifiers | None:
        key = _email_key(email)
        c, s, t = m.contacts, m.staff, m.tickets
        names: set[str] = set()
        phones: set[str] = set()
        for table in (c, s):
            for row in (await conn.execute(select(table.c.name, table.c.phone).where(table.c.email_key == key))).all():
                names.add(row.name)
                phones.add(row.phone or "")
        for row in (await conn.execute(select(t.c.requester_name, t.c.requester_phone)
                                       .where(t.c.requester_email_key == key))).all():
            names.add(row.requester_name)
            phones.add(row.requester_phone or "")
        return Identifiers(key, names, phones, pseudonym)

    async def _owned(self, conn: Any, key: str) -> dict[str, list[Any]]:
        """Rows that are the person's without naming them: their dialogs (keyed by platform user
        ids), and the comments, changes, time and escalations of their tickets."""
        r, d, t = m.conversation_refs, m.dialog_states, m.tickets
        refs = (await conn.execute(select(r).where(r.c.email_key == key))).all()
        people = {(ref.channel, ref.user_key) for ref in refs}
        # A person key is "<tenant>:<user id>" (bot.protocol.turn.person_key); the console's user id
        # is the e-mail itself.
        user_ids = sorted({user_key.split(":", 1)[-1] for _, user_key in people})
        candidates = select(d).where(or_(d.c.user_id.in_(user_ids), func.lower(d.c.user_id) == key))
        dialogs = [row for row in (await conn.execute(candidates)).all()
                   if (row.channel, f"{row.tenant}:{row.user_id}") in people or row.user_id.lower() == key]
        ticket_ids = select(t.c.id).where(t.c.requester_email_key == key)
        owned: dict[str, list[Any]] = {"dialog_states": dialogs}
        for table in (m.ticket_comments, m.ticket_events, m.time_entries, m.escalations):
            owned[table.name] = list((await conn.execute(select(table).where(table.c.ticket_id.in_(ticket_ids)))).all())
        # Their portal chat: the conversation (keyed by their e-mail) and its transcript.
        pc, pa = m.portal_conversations, m.portal_activities
        conversations = list((await conn.execute(select(pc).where(pc.c.person == key))).all())
        owned["portal_conversations"] = conversations
        owned["portal_activities"] = list((await conn.execute(
            select(pa).where(pa.c.conversation_id.in_([c.id for c in conversations])))).all())
        owned["__people"] = [people]
        return owned

    async def privacy_export(self, email: str) -> Mapping[str, Any] | None:
        async with self._tx(read_only=True) as conn:
            who = await self._identifiers(conn, email, "export")
            assert who is not None
            owned = await self._owned(conn, who.email)
            people = owned.pop("__people")[0]
            tables = await conn.run_sync(_reflect)
            found: dict[str, dict[tuple[Any, ...], Any]] = {}
            for table in tables:
                rows = {_key(table, row): row for row in await conn.run_sync(_mentioning, table, who)}
                for row in owned.get(table.name, []):
                    rows.setdefault(_key(table, row), row)
                if rows:
                    found[table.name] = rows
        if not any(k in found for k in ("contacts", "staff", "tickets", "conversation_refs", "time_entries",
                                        "escalations", "outbox", "ticket_comments", "kept_messages")):
            return None
        export: dict[str, Any] = {"email": who.email, "names": sorted(who.names), "phones": sorted(who.phones),
                                  "platform_accounts": [{"channel": c, "user": u} for c, u in sorted(people)]}
        export["tables"] = {name: [_plain(row) for _, row in sorted(rows.items(), key=lambda kv: repr(kv[0]))]
                            for name, rows in sorted(found.items())}
        return export

    async def privacy_erase(self, email: str, now: datetime, by: str) -> ErasureReport | None:
        _aware(now)
        pseudonym = f"erased-{secrets.token_hex(4)}"
        deleted: dict[str, int] = {}
        changed: dict[str, int] = {}
        async with self._tx() as conn:
            who = await self._identifiers(conn, email, pseudonym)
            assert who is not None
            owned = await self._owned(conn, who.email)
            people = owned.pop("__people")[0]
            tables = await conn.run_sync(_reflect)
            mentioned = {t.name: await conn.run_sync(_mentioning, t, who) for t in tables}
            if not any(mentioned.get(k) for k in ("contacts", "staff", "tickets", "conversation_refs",
                                                   "time_entries", "escalations", "outbox", "ticket_comments",
                                                   "kept_messages")):
                return None
            key = who.email

            async def drop(name: str, statement: Any) -> None:
                count = int((await conn.execute(statement)).rowcount)
                if count:
                    deleted[name] = deleted.get(name, 0) + count

            # Deleted: the directory entry, what only served to talk to them (dialogs, where to
            # reach them, messages to them, what they sent once it is worked on).
            d, r, o, i, n = m.dialog_states, m.conversation_refs, m.outbox, m.inbox, m.undelivered_notices
            for row in owned["dialog_states"]:
                await drop("dialog_states", delete(d).where(d.c.channel == row.channel, d.c.tenant == row.tenant,
                                                            d.c.conversation == row.conversation,
                                                            d.c.user_id == row.user_id))
            await drop("conversation_refs", delete(r).where(r.c.email_key == key))
            portal_ids = [c.id for c in owned["portal_conversations"]]
            if portal_ids:
                pa, pc = m.portal_activities, m.portal_conversations
                await drop("portal_activities", delete(pa).where(pa.c.conversation_id.in_(portal_ids)))
                await drop("portal_conversations", delete(pc).where(pc.c.id.in_(portal_ids)))
            for table in (m.contacts, m.staff):
                await drop(table.name, delete(table).where(table.c.email_key == key))
            user_keys = sorted(u for _, u in people)
            await drop("outbox", delete(o).where(or_(func.lower(o.c.recipient) == key, o.c.recipient.in_(user_keys))))
            k = m.kept_messages  # kept for their next visit, shown or not
            await drop("kept_messages", delete(k).where(or_(k.c.recipient_key == key,
                                                            k.c.recipient_key.in_([u.lower() for u in user_keys]))))
            for user_key in user_keys:
                await drop("inbox", delete(i).where(i.c.status.in_(("done", "failed")),
                                                    i.c.conversation_key.contains(user_key, autoescape=True)))
                await drop("undelivered_notices", delete(n).where(n.c.person == user_key))
            # Kept under the pseudonym: tickets, their history and billing, so that numbers and
            # totals still add up; the phone number serves nothing any more.
            t = m.tickets
            await conn.execute(update(t).where(t.c.requester_email_key == key).values(requester_phone=None))
            # Every other mention, in any table: rewritten to the pseudonym.
            for table in await conn.run_sync(_reflect):
                count = await conn.run_sync(_pseudonymise, table, who)
                if count:
                    changed[table.name] = count
            audit = await conn.execute(insert(m.privacy_erasures).values(
                pseudonym=who.pseudonym_email, erased_at=now, erased_by=by,
                rows={"deleted": deleted, "pseudonymised": changed}).returning(m.privacy_erasures.c.id))
            audit_id = int(audit.scalar_one())
        return ErasureReport(audit_id, who.pseudonym_email, deleted, changed)

    async def list_privacy_erasures(self) -> Sequence[Mapping[str, Any]]:
        p = m.privacy_erasures
        async with self._tx(read_only=True) as conn:
            rows = (await conn.execute(select(p).order_by(p.c.id))).all()
        return [_plain(row) for row in rows]


def _pseudonymise(conn: Connection, table: Table, who: Identifiers) -> int:
    columns = [c for c in table.columns if _texty(c)]
    count = 0
    for row in _mentioning(conn, table, who):
        values = {c.name: who.replace(row._mapping[c.name]) for c in columns if who.mentions(row._mapping[c.name])}
        conn.execute(update(table).where(*_where_key(table, row)).values(**values))
        count += 1
    return count


def _age(now: datetime, oldest: datetime | None) -> float | None:
    if oldest is None:
        return None
    if oldest.tzinfo is None:  # SQLite's naive UTC, through an aggregate that skips the column type
        from datetime import timezone

        oldest = oldest.replace(tzinfo=timezone.utc)
    return max((now - oldest).total_seconds(), 0.0)
