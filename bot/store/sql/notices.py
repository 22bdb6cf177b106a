"""Notices owed to a person on SQL: table `undelivered_notices`.

Transactions: an addition inserts the notice and trims the person's older ones in one; a read is
one select; clearing deletes up to an id, so a notice added meanwhile (by another process) stays.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import delete, insert, select

from bot.store import models as m
from bot.store.ports.notices import MAX_NOTICES_PER_PERSON, Notice
from bot.store.sql.base import SqlBase, _aware


class SqlNotices(SqlBase):
    """`NoticeStore` on SQL."""

    async def add_notice(self, channel: str, person: str, ticket_number: str | None, now: datetime) -> None:
        n = m.undelivered_notices
        mine = (n.c.channel == channel) & (n.c.person == person)
        async with self._tx() as conn:
            await conn.execute(insert(n).values(channel=channel, person=person, ticket_number=ticket_number,
                                                created_at=now))
            kept = select(n.c.id).where(mine).order_by(n.c.id.desc()).limit(MAX_NOTICES_PER_PERSON)
            await conn.execute(delete(n).where(mine, n.c.id.not_in(kept.scalar_subquery())))

    async def pending_notices(self, channel: str, person: str) -> Sequence[Notice]:
        n = m.undelivered_notices
        async with self._tx(read_only=True) as conn:
            rows = (await conn.execute(
                select(n.c.id, n.c.ticket_number, n.c.created_at)
                .where(n.c.channel == channel, n.c.person == person).order_by(n.c.id))).all()
        return [Notice(row.id, row.ticket_number, _aware(row.created_at)) for row in rows]

    async def clear_notices(self, channel: str, person: str, up_to: int) -> None:
        n = m.undelivered_notices
        async with self._tx() as conn:
            await conn.execute(delete(n).where(n.c.channel == channel, n.c.person == person, n.c.id <= up_to))
