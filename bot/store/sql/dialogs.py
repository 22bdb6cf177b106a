"""Dialog states and processed deliveries on SQL: tables `dialog_states`, `processed_events`.

Transactions: a save or delete checks the version (optimistic) and, given `event`, claims the
delivery in the same transaction, and given `reply`, queues the turn's answer in the outbox in it
too (a durable reply costs no transaction of its own), and given `shown`, marks the messages kept
for the person that the answer shows (`kept_messages`) shown in it; a claim alone is one upsert (with a reply,
one transaction); the turn-start read takes the delivery, the dialog and the person in one
statement (`TURN_START`).
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any, Mapping, Sequence

from sqlalchemy import and_, bindparam, delete, exists, func, insert, literal, select, update
from sqlalchemy import exc as sa_exc
from sqlalchemy.ext.asyncio import AsyncConnection

from bot.domain.model import DialogKey, StoredDialog
from bot.store import models as m
from bot.store.ports import NewOutboxMessage, StaleDialogError, TurnStart
from bot.store.sql.base import SqlBase, _aware, _email_key, to_json
from bot.store.sql.directory import company_from, contact_from, staff_from
from bot.store.sql.outbox import OUTBOX_COLUMNS, _enqueue_rows, _outbox_rows


async def _show_kept_in_tx(conn: AsyncConnection, shown: Sequence[int], now: datetime) -> None:
    """In the transaction that saves a turn and its answer: the kept messages the answer shows
    marked shown. One shown meanwhile by another turn raises StaleDialogError (nothing of the
    turn is saved; the caller answers again, without it)."""
    k = m.kept_messages
    for kept_id in shown:
        result = await conn.execute(update(k).where(k.c.id == kept_id, k.c.shown_at.is_(None)).values(shown_at=now))
        if result.rowcount != 1:
            raise StaleDialogError(f"kept message {kept_id} was shown by another turn")


# Built once: every turn reads its dialog, and building the statement each time cost more
# than running it (measured in the modal submission's check, before its ack).
DIALOG_BY_KEY = select(m.dialog_states).where(
    m.dialog_states.c.channel == bindparam("k_channel"),
    m.dialog_states.c.tenant == bindparam("k_tenant"),
    m.dialog_states.c.conversation == bindparam("k_conversation"),
    m.dialog_states.c.user_id == bindparam("k_user"),
)


_d = m.dialog_states
_KEY_MATCHES = and_(_d.c.channel == bindparam("k_channel"), _d.c.tenant == bindparam("k_tenant"),
                    _d.c.conversation == bindparam("k_conversation"), _d.c.user_id == bindparam("k_user"))
# A turn's save: the new state if the dialog is still at the version the turn read (built once,
# as DIALOG_BY_KEY).
DIALOG_UPDATE = (update(_d).where(_KEY_MATCHES, _d.c.version == bindparam("k_version"))
                 .values(state=bindparam("new_state", type_=_d.c.state.type), version=_d.c.version + 1,
                         updated_at=bindparam("new_updated_at", type_=_d.c.updated_at.type)))
# The end of a dialog: deleted if still at the version the turn read (built once, as the update).
DIALOG_DELETE = delete(_d).where(_KEY_MATCHES, _d.c.version == bindparam("k_version"))
EVENT_PROCESSED = select(m.processed_events.c.event_id).where(
    m.processed_events.c.source == bindparam("e_source"), m.processed_events.c.event_id == bindparam("e_id"))


def _turn_start_query() -> Any:
    """Everything a turn reads first, in one statement: whether its delivery was handled, its
    dialog, who the e-mail is (contact, their company, staff member), whether notices of lost
    answers are owed to the person, and whether messages are kept for the e-mail. One row always: each table is joined on its unique key
    to a one-row anchor, so a missing part is NULLs.

    One statement instead of five: the turn-start read was the largest share of a worker's
    database time (docs/performance.md)."""
    c, s, co, p, n, k = m.contacts, m.staff, m.companies, m.processed_events, m.undelivered_notices, m.kept_messages
    anchor = select(literal(1).label("one")).subquery("anchor")
    processed = exists().where(p.c.source == bindparam("e_source", type_=p.c.source.type),
                               p.c.event_id == bindparam("e_id", type_=p.c.event_id.type))
    notices_owed = exists().where(n.c.channel == bindparam("k_channel"),
                                  n.c.person == bindparam("n_person", type_=n.c.person.type))
    email_key = bindparam("email_key", type_=c.c.email_key.type)
    # Messages kept for the person's next visit (the outbox's "While you were away"): almost
    # never any, so the turn asks for them only when this says there are.
    kept_waiting = exists().where(k.c.recipient_key == email_key, k.c.shown_at.is_(None))
    joined = (anchor
              .outerjoin(_d, _KEY_MATCHES)
              .outerjoin(c, c.c.email_key == email_key)
              # contacts.company_name is the company's own `name` (replace_directory writes it so)
              .outerjoin(co, co.c.name == c.c.company_name)
              .outerjoin(s, s.c.email_key == email_key))
    columns = [processed.label("processed"), notices_owed.label("notices_owed"), kept_waiting.label("kept_waiting"),
               _d.c.version.label("d_version"),
               _d.c.state.label("d_state"), _d.c.updated_at.label("d_updated_at")]
    for prefix, table in (("c_", c), ("s_", s), ("co_", co)):
        columns += [column.label(prefix + column.name) for column in table.c]
    return select(*columns).select_from(joined)


TURN_START = _turn_start_query()


def _dialog_params(key: DialogKey) -> dict[str, str]:
    return {"k_channel": key.channel, "k_tenant": key.tenant, "k_conversation": key.conversation,
            "k_user": key.user}


class SqlDialogs(SqlBase):
    """`DialogStore` on SQL."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # The claim of a delivery (an upsert in this store's dialect), built once: every turn
        # with a delivery id runs it.
        p = m.processed_events
        self._event_claim = (
            self._upsert(p)
            .values(source=bindparam("e_source"), event_id=bindparam("e_id"),
                    processed_at=bindparam("e_at", type_=p.c.processed_at.type))
            .on_conflict_do_nothing(index_elements=[p.c.source, p.c.event_id])
            .returning(p.c.event_id)
        )
        # PostgreSQL: a save that claims its delivery sends the claim, the update and the turn's
        # reply (if any) as one statement of data-modifying CTEs inside the transaction: the
        # round trips of two statements fewer on every turn. The claim and the update are
        # counted, and a miss rolls the transaction back.
        claim = self._event_claim.cte("claim")
        saved = DIALOG_UPDATE.returning(_d.c.version).cte("saved")
        counts = [select(func.count()).select_from(claim).scalar_subquery().label("claimed"),
                  select(func.count()).select_from(saved).scalar_subquery().label("saved")]
        self._pg_claim_and_update = select(*counts)
        o = m.outbox
        reply = (self._upsert(o).values({name: bindparam("o_" + name, type_=o.c[name].type) for name in OUTBOX_COLUMNS})
                 .on_conflict_do_nothing(index_elements=[o.c.idempotency_key]).returning(o.c.id).cte("reply"))
        replies = select(func.count()).select_from(reply).scalar_subquery().label("replies")
        self._pg_claim_reply_and_update = select(*counts, replies)
        # The end of a dialog likewise: claim, reply and delete in one statement.
        ended = [counts[0], select(func.count()).select_from(DIALOG_DELETE.returning(_d.c.version).cte("ended")).scalar_subquery().label("saved")]
        self._pg_claim_and_delete = select(*ended)
        self._pg_claim_reply_and_delete = select(*ended, replies)

    async def read_turn_start(self, key: DialogKey, email: str | None,
                              event: tuple[str, str] | None = None, person: str | None = None) -> TurnStart:
        source, event_id = event if event is not None else (None, None)
        async with self._tx(read_only=True) as conn:
            row = (await conn.execute(TURN_START, {
                **_dialog_params(key), "e_source": source, "e_id": event_id,
                "email_key": _email_key(email) if email else None, "n_person": person})).one()
        dialog = (StoredDialog(key=key, state=row.d_state, version=row.d_version, updated_at=row.d_updated_at)
                  if row.d_version is not None else None)
        contact = contact_from(row, "c_") if row.c_id is not None else None
        company = company_from(row, "co_") if row.co_id is not None else None
        staff = staff_from(row, "s_") if row.s_id is not None else None
        return TurnStart(bool(row.processed), dialog, contact, staff, company, bool(row.notices_owed),
                         bool(row.kept_waiting))

    async def load_dialog(self, key: DialogKey) -> StoredDialog | None:
        async with self._tx(read_only=True) as conn:
            row = (await conn.execute(DIALOG_BY_KEY, _dialog_params(key))).first()
        if row is None:
            return None
        return StoredDialog(key=key, state=row.state, version=row.version, updated_at=row.updated_at)

    async def save_dialog(
        self,
        key: DialogKey,
        state: Mapping[str, Any],
        expected_version: int | None,
        now: datetime,
        *,
        event: tuple[str, str] | None = None,
        reply: NewOutboxMessage | None = None,
        shown: Sequence[int] = (),
    ) -> int:
        """Port method; extension: `event=(source, event_id)` claims that platform delivery in
        the same transaction, and a delivery already claimed raises StaleDialogError (nothing
        is saved: the caller retries and then sees the delivery as processed)."""
        _aware(now)
        data = to_json(dict(state))
        d = m.dialog_states
        if expected_version is None:
            try:
                async with self._tx() as conn:
                    await self._claim_in_tx(conn, event, now, key)
                    await self._reply_in_tx(conn, reply, now)
                    await _show_kept_in_tx(conn, shown, now)
                    await conn.execute(
                        insert(d).values(
                            channel=key.channel,
                            tenant=key.tenant,
                            conversation=key.conversation,
                            user_id=key.user,
                            state=data,
                            version=1,
                            updated_at=now,
                        )
                    )
            except sa_exc.IntegrityError:
                raise StaleDialogError(f"a dialog is already stored for {key}") from None
            return 1
        params = {**_dialog_params(key), "k_version": expected_version, "new_state": data, "new_updated_at": now}
        async with self._tx() as conn:
            if event is not None and self.dialect == "postgresql":
                params.update(e_source=event[0], e_id=event[1], e_at=now)
                await self._claim_and_change(conn, key, expected_version, event, params, reply, now,
                                             self._pg_claim_and_update, self._pg_claim_reply_and_update)
                await _show_kept_in_tx(conn, shown, now)
                return expected_version + 1
            await self._claim_in_tx(conn, event, now, key)
            await self._reply_in_tx(conn, reply, now)
            await _show_kept_in_tx(conn, shown, now)
            result = await conn.execute(DIALOG_UPDATE, params)
            if result.rowcount != 1:
                raise StaleDialogError(f"dialog {key} is not at version {expected_version}")
        return expected_version + 1

    async def delete_dialog(
        self,
        key: DialogKey,
        expected_version: int,
        *,
        event: tuple[str, str] | None = None,
        now: datetime | None = None,
        reply: NewOutboxMessage | None = None,
        shown: Sequence[int] = (),
    ) -> None:
        """Port method; extension: `event=(source, event_id)` as in save_dialog (claimed at `now`,
        default: the current time)."""
        now = now or datetime.now(timezone.utc)
        params: dict[str, Any] = {**_dialog_params(key), "k_version": expected_version}
        async with self._tx() as conn:
            if event is not None and self.dialect == "postgresql":
                params.update(e_source=event[0], e_id=event[1], e_at=now)
                await self._claim_and_change(conn, key, expected_version, event, params, reply, now,
                                             self._pg_claim_and_delete, self._pg_claim_reply_and_delete)
                await _show_kept_in_tx(conn, shown, now)
                return
            await self._claim_in_tx(conn, event, now, key)
            await self._reply_in_tx(conn, reply, now)
            await _show_kept_in_tx(conn, shown, now)
            result = await conn.execute(DIALOG_DELETE, params)
            if result.rowcount != 1:
                raise StaleDialogError(f"dialog {key} is not at version {expected_version}")

    async def _claim_and_change(self, conn: AsyncConnection, key: DialogKey, expected_version: int,
                                event: tuple[str, str], params: dict[str, Any], reply: NewOutboxMessage | None,
                                now: datetime, alone: Any, with_reply: Any) -> None:
        """PostgreSQL: the claim of `event`, the change of the dialog (`alone`, or `with_reply`
        that also queues `reply`) in one statement; StaleDialogError (the caller's transaction
        then rolls back) when the delivery was claimed already or the version moved on."""
        if reply is None:
            row = (await conn.execute(alone, params)).one()
        else:
            params.update({"o_" + name: value for name, value in _outbox_rows([reply], now)[0].items()})
            row = (await conn.execute(with_reply, params)).one()
        if row.claimed != 1:
            raise StaleDialogError(f"delivery {event[0]}/{event[1]} of dialog {key} was already processed")
        if row.saved != 1:
            raise StaleDialogError(f"dialog {key} is not at version {expected_version}")

    async def _claim_in_tx(
        self, conn: AsyncConnection, event: tuple[str, str] | None, now: datetime, key: DialogKey
    ) -> None:
        if event is None:
            return
        source, event_id = event
        _aware(now)
        claimed = await conn.execute(self._event_claim, {"e_source": source, "e_id": event_id, "e_at": now})
        if claimed.first() is None:
            raise StaleDialogError(f"delivery {source}/{event_id} of dialog {key} was already processed")

    @staticmethod
    async def _reply_in_tx(conn: AsyncConnection, reply: NewOutboxMessage | None, now: datetime) -> None:
        if reply is not None:
            await _enqueue_rows(conn, _outbox_rows([reply], now))

    async def claim_event(self, source: str, event_id: str, now: datetime, *,
                          reply: NewOutboxMessage | None = None, shown: Sequence[int] = ()) -> bool:
        _aware(now)
        # Alone, the claim is one statement; with a reply (or kept messages shown), one transaction.
        async with self._tx(autocommit=reply is None and not shown) as conn:
            claimed = await conn.execute(self._event_claim, {"e_source": source, "e_id": event_id, "e_at": now})
            if claimed.first() is None:
                return False
            await self._reply_in_tx(conn, reply, now)
            await _show_kept_in_tx(conn, shown, now)
            return True

    async def is_event_processed(self, source: str, event_id: str) -> bool:
        """Extension: whether (source, event_id) was claimed already (read only)."""
        async with self._tx(read_only=True) as conn:
            found = await conn.execute(EVENT_PROCESSED, {"e_source": source, "e_id": event_id})
            return found.first() is not None
