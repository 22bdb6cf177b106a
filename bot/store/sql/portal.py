"""The customer-portal chat on SQL: tables `portal_conversations` and `portal_activities`.

Transactions: opening a conversation is an insert that does nothing when the person has one,
then a read; appending locks the conversation's row (PostgreSQL: FOR UPDATE; SQLite: the write
lock of BEGIN IMMEDIATE), so the numbers of one conversation are given in commit order and a
page that asks for what follows its watermark never skips a row committed later with a
smaller number.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import func, insert, select

from bot.store import models as m
from bot.store.ports.portal import PORTAL_HISTORY_LIMIT, PortalActivity
from bot.store.sql.base import SqlBase, _aware, _email_key


class SqlPortal(SqlBase):
    """`PortalStore` on SQL."""

    async def open_portal_conversation(self, person: str, new_id: str, now: datetime) -> str:
        c = m.portal_conversations
        key = _email_key(person)
        async with self._tx() as conn:
            await conn.execute(self._upsert(c).values(id=new_id, person=key, created_at=_aware(now))
                               .on_conflict_do_nothing(index_elements=[c.c.person]))
            found = (await conn.execute(select(c.c.id).where(c.c.person == key))).scalar_one()
        return str(found)

    async def portal_person(self, conversation_id: str) -> str | None:
        c = m.portal_conversations
        async with self._tx(read_only=True) as conn:
            found = (await conn.execute(select(c.c.person).where(c.c.id == conversation_id))).scalar_one_or_none()
        return None if found is None else str(found)

    async def portal_conversation_of(self, person: str) -> str | None:
        c = m.portal_conversations
        async with self._tx(read_only=True) as conn:
            found = (await conn.execute(
                select(c.c.id).where(c.c.person == _email_key(person)))).scalar_one_or_none()
        return None if found is None else str(found)

    async def add_portal_activities(self, conversation_id: str, activities: Sequence[Mapping[str, Any]],
                                    now: datetime, *, client_id: str | None = None) -> list[int]:
        if client_id is not None and len(activities) != 1:
            raise ValueError("a client id names one activity")
        c, a = m.portal_conversations, m.portal_activities
        _aware(now)
        async with self._tx() as conn:
            owner = (await conn.execute(self._lock(select(c.c.id).where(c.c.id == conversation_id)))).scalar_one_or_none()
            if owner is None:
                raise KeyError(f"no portal conversation {conversation_id}")
            if client_id is not None:
                seen = (await conn.execute(select(a.c.seq).where(
                    a.c.conversation_id == conversation_id, a.c.client_id == client_id))).scalar_one_or_none()
                if seen is not None:
                    return [int(seen)]
            last = (await conn.execute(select(func.coalesce(func.max(a.c.seq), 0))
                                       .where(a.c.conversation_id == conversation_id))).scalar_one()
            numbers = list(range(int(last) + 1, int(last) + 1 + len(activities)))
            if activities:
                await conn.execute(insert(a), [
                    {"conversation_id": conversation_id, "seq": seq, "client_id": client_id,
                     "activity": dict(activity), "created_at": now}
                    for seq, activity in zip(numbers, activities)])
        return numbers

    async def portal_activities(self, conversation_id: str, after: int = 0,
                                limit: int = PORTAL_HISTORY_LIMIT) -> Sequence[PortalActivity]:
        a = m.portal_activities
        async with self._tx(read_only=True) as conn:
            rows = (await conn.execute(
                select(a.c.seq, a.c.activity, a.c.client_id, a.c.created_at)
                .where(a.c.conversation_id == conversation_id, a.c.seq > after)
                .order_by(a.c.seq.desc()).limit(limit))).all()
        return [PortalActivity(int(row.seq), row.activity, row.client_id, _aware(row.created_at))
                for row in reversed(rows)]
