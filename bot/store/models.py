"""SQLAlchemy models of CareDesk's database (SQLite or PostgreSQL).

The schema itself is created by the Alembic migrations in `bot/store/migrations/versions/`; a
test checks that the migrated schema equals `metadata`, so a change here needs a new migration.

Conventions:
* e-mail addresses, company names and ticket numbers keep their original spelling for display
  and a lower-case `*_key` column that carries the unique constraint / index used for lookups;
* every date-time column is a `UTCDateTime`: aware datetimes in, aware UTC datetimes out, on
  both back ends;
* enumerations are stored as their string values (plain VARCHAR columns).
"""

from __future__ import annotations

from datetime import date, datetime, timezone
from decimal import Decimal
from typing import Any, cast

from sqlalchemy import (
    JSON,
    Boolean,
    CheckConstraint,
    Column,
    Date,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    Numeric,
    SmallInteger,
    String,
    Table,
    Text,
    UniqueConstraint,
    func,
    text,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.types import TypeDecorator

# Deterministic constraint names on every back end (Alembic needs names to alter constraints).
NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

EMAIL = 254
NAME = 200
KEY = 255
SHORT = 50

TICKET_KINDS = ("incident", "service_request", "change_request")
OUTBOX_STATUSES = ("pending", "sending", "sent", "failed")
INBOX_STATUSES = ("pending", "working", "done", "failed")


class UTCDateTime(TypeDecorator[datetime]):
    """A timezone-aware date-time stored in UTC.

    PostgreSQL keeps it in a TIMESTAMP WITH TIME ZONE; SQLite has no time zones, so the value is
    converted to UTC and stored naive, and UTC is attached again when it is read back.  Naive
    datetimes are refused: their meaning would depend on the machine's clock settings.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if not isinstance(value, datetime):
            raise TypeError(f"expected a datetime, got {type(value).__name__}")
        if value.tzinfo is None or value.utcoffset() is None:
            raise ValueError(f"naive datetime {value.isoformat()} refused: pass a timezone-aware datetime")
        value = value.astimezone(timezone.utc)
        if dialect.name == "sqlite":
            value = value.replace(tzinfo=None)
        return value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=timezone.utc)
        return value.astimezone(timezone.utc)


metadata = MetaData(naming_convention=NAMING_CONVENTION)


class Base(DeclarativeBase):
    metadata = metadata
    type_annotation_map = {
        datetime: UTCDateTime(),
        date: Date(),
        Decimal: Numeric(12, 2, asdecimal=True),
        dict[str, Any]: JSON(),
        list[Any]: JSON(),
    }


# ---- directory ---------------------------------------------------------------------------------


class CompanyRow(Base):
    __tablename__ = "companies"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(NAME))
    name_key: Mapped[str] = mapped_column(String(NAME), unique=True)
    support_module: Mapped[bool] = mapped_column(Boolean)
    sla_plan: Mapped[str] = mapped_column(String(SHORT))
    # {"sunday": "2.5", ...}: Decimal values as strings (exact), see Company.multiplier_overrides.
    multiplier_overrides: Mapped[dict[str, Any]] = mapped_column(JSON)


class ContactRow(Base):
    __tablename__ = "contacts"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    email_key: Mapped[str] = mapped_column(String(EMAIL), unique=True)
    email: Mapped[str] = mapped_column(String(EMAIL))
    name: Mapped[str] = mapped_column(String(NAME))
    company_name: Mapped[str] = mapped_column(String(NAME))
    phone: Mapped[str | None] = mapped_column(String(SHORT))
    language: Mapped[str | None] = mapped_column(String(8))
    sla_named: Mapped[bool] = mapped_column(Boolean)


class StaffRow(Base):
    __tablename__ = "staff"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    email_key: Mapped[str] = mapped_column(String(EMAIL), unique=True)
    email: Mapped[str] = mapped_column(String(EMAIL))
    name: Mapped[str] = mapped_column(String(NAME))
    role: Mapped[str] = mapped_column(String(20))
    phone: Mapped[str | None] = mapped_column(String(SHORT))
    language: Mapped[str | None] = mapped_column(String(8))
    level: Mapped[int | None] = mapped_column(Integer)


class OnCallShiftRow(Base):
    """One line of the on-call rota (bot/domain/oncall.py), kept in the file's order: a later
    override wins over an earlier one."""

    __tablename__ = "oncall_shifts"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    weekday: Mapped[int | None] = mapped_column(Integer)  # 0 = Monday; None: a dated override
    start: Mapped[str] = mapped_column(String(SHORT))
    end: Mapped[str] = mapped_column(String(SHORT))
    person: Mapped[str] = mapped_column(String(EMAIL))
    backup: Mapped[str | None] = mapped_column(String(EMAIL))


# ---- tickets -----------------------------------------------------------------------------------


class TicketRow(Base):
    __tablename__ = "tickets"
    __table_args__ = (
        UniqueConstraint("year", "seq"),
        CheckConstraint(
            "kind IN ('incident', 'service_request', 'change_request')",
            name="kind",
        ),
        Index(None, "created_at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    number: Mapped[str] = mapped_column(String(64), unique=True)
    number_key: Mapped[str] = mapped_column(String(64), unique=True)
    year: Mapped[int] = mapped_column(Integer)
    seq: Mapped[int] = mapped_column(Integer)
    kind: Mapped[str] = mapped_column(String(20))
    status: Mapped[str] = mapped_column(String(30))
    requester_email: Mapped[str] = mapped_column(String(EMAIL))
    requester_email_key: Mapped[str] = mapped_column(String(EMAIL), index=True)
    requester_name: Mapped[str] = mapped_column(String(NAME))
    requester_phone: Mapped[str | None] = mapped_column(String(SHORT))
    company: Mapped[str | None] = mapped_column(String(NAME))
    module: Mapped[str] = mapped_column(String(100))
    description: Mapped[str] = mapped_column(Text)
    reproduce: Mapped[str | None] = mapped_column(Text)
    diagnostics: Mapped[str | None] = mapped_column(Text)
    urgency: Mapped[str] = mapped_column(String(20))
    channel: Mapped[str] = mapped_column(String(20))
    out_of_hours_emergency: Mapped[bool] = mapped_column(Boolean)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)
    solution_date: Mapped[date | None] = mapped_column(Date)
    release_date: Mapped[date | None] = mapped_column(Date)
    assignee_email: Mapped[str | None] = mapped_column(String(EMAIL))
    created_by: Mapped[str | None] = mapped_column(String(EMAIL))
    # How the ticket reached the desk (bot/domain/model.py Intake): "chat" for the bot's own.
    intake: Mapped[str] = mapped_column(String(20), server_default="chat")
    idempotency_key: Mapped[str | None] = mapped_column(String(KEY), unique=True)


class TicketCounterRow(Base):
    """The last sequence number handed out per (Brussels) year; locked while a ticket is created."""

    __tablename__ = "ticket_counters"

    year: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    last_seq: Mapped[int] = mapped_column(Integer)


class TicketCommentRow(Base):
    __tablename__ = "ticket_comments"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    ticket_id: Mapped[int] = mapped_column(ForeignKey("tickets.id", ondelete="CASCADE"), index=True)
    author: Mapped[str] = mapped_column(String(EMAIL))
    text: Mapped[str] = mapped_column(Text)
    internal: Mapped[bool] = mapped_column(Boolean)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    # the same request retried (a platform redelivery, a stale-dialog retry) adds one comment
    idempotency_key: Mapped[str | None] = mapped_column(String(KEY), unique=True)


class TicketEventRow(Base):
    """One change of a ticket's status, assignee or dates (who, when, before and after as text)."""

    __tablename__ = "ticket_events"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    ticket_id: Mapped[int] = mapped_column(ForeignKey("tickets.id", ondelete="CASCADE"), index=True)
    actor: Mapped[str] = mapped_column(String(EMAIL))
    field: Mapped[str] = mapped_column(String(SHORT))
    before: Mapped[str | None] = mapped_column(Text)
    after: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


# ---- time registration -------------------------------------------------------------------------


class TimeEntryRow(Base):
    __tablename__ = "time_entries"
    __table_args__ = (
        # A unique index rather than a UNIQUE constraint: SQLite can add an index to an existing
        # table without re-creating it (migration 0002).
        Index(None, "idempotency_key", unique=True),
        Index(None, "started_at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    ticket_id: Mapped[int] = mapped_column(ForeignKey("tickets.id", ondelete="CASCADE"), index=True)
    agent_email: Mapped[str] = mapped_column(String(EMAIL))
    service: Mapped[str] = mapped_column(String(32))
    started_at: Mapped[datetime] = mapped_column(UTCDateTime)
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    participants: Mapped[int] = mapped_column(Integer)
    note: Mapped[str | None] = mapped_column(Text)
    lines: Mapped[list[Any]] = mapped_column(JSON)
    amount: Mapped[Decimal | None] = mapped_column(Numeric(12, 2, asdecimal=True))
    currency: Mapped[str] = mapped_column(String(3))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)
    deleted_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # the same request retried (a platform redelivery, a stale-dialog retry) logs one entry
    idempotency_key: Mapped[str | None] = mapped_column(String(KEY))


class TimeEntryChangeRow(Base):
    __tablename__ = "time_entry_changes"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    time_entry_id: Mapped[int] = mapped_column(ForeignKey("time_entries.id", ondelete="CASCADE"), index=True)
    changed_by: Mapped[str] = mapped_column(String(EMAIL))
    changed_at: Mapped[datetime] = mapped_column(UTCDateTime)
    action: Mapped[str] = mapped_column(String(20))
    before: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    after: Mapped[dict[str, Any] | None] = mapped_column(JSON)


# ---- escalations -------------------------------------------------------------------------------


class EscalationRow(Base):
    __tablename__ = "escalations"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    ticket_id: Mapped[int] = mapped_column(ForeignKey("tickets.id", ondelete="CASCADE"), index=True)
    level: Mapped[int] = mapped_column(Integer)
    reason: Mapped[str] = mapped_column(String(20))
    comment: Mapped[str] = mapped_column(Text)
    requested_by: Mapped[str] = mapped_column(String(EMAIL))
    status: Mapped[str] = mapped_column(String(20), index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    level_since: Mapped[datetime] = mapped_column(UTCDateTime)
    acknowledged_by: Mapped[str | None] = mapped_column(String(EMAIL))
    acknowledged_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_ping_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    idempotency_key: Mapped[str | None] = mapped_column(String(KEY), unique=True)


# ---- conversations -----------------------------------------------------------------------------


class DialogStateRow(Base):
    __tablename__ = "dialog_states"

    channel: Mapped[str] = mapped_column(String(20), primary_key=True)
    tenant: Mapped[str] = mapped_column(String(KEY), primary_key=True)
    conversation: Mapped[str] = mapped_column(String(KEY), primary_key=True)
    user_id: Mapped[str] = mapped_column(String(KEY), primary_key=True)
    state: Mapped[dict[str, Any]] = mapped_column(JSON)
    version: Mapped[int] = mapped_column(Integer)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)


class ProcessedEventRow(Base):
    """Platform deliveries already handled (Slack retries, Teams re-sends)."""

    __tablename__ = "processed_events"

    source: Mapped[str] = mapped_column(String(SHORT), primary_key=True)
    event_id: Mapped[str] = mapped_column(String(KEY), primary_key=True)
    processed_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)


class ConversationRefRow(Base):
    __tablename__ = "conversation_refs"

    channel: Mapped[str] = mapped_column(String(20), primary_key=True)
    user_key: Mapped[str] = mapped_column(String(KEY), primary_key=True)
    email_key: Mapped[str | None] = mapped_column(String(EMAIL), index=True)
    reference: Mapped[dict[str, Any]] = mapped_column(JSON)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)


class CompanyBindingRow(Base):
    """A Slack workspace or Microsoft 365 tenant bound to a company (`party_key` its name key) or
    to the service desk (`party_key` ""); `source` says who bound it: the directory file (`file`,
    rewritten with each load) or `caredesk companies bind` (`command`, kept across loads)."""

    __tablename__ = "company_bindings"
    __table_args__ = (UniqueConstraint("channel", "tenant", "party_key"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    channel: Mapped[str] = mapped_column(String(20))
    tenant: Mapped[str] = mapped_column(String(KEY), index=True)
    party_key: Mapped[str] = mapped_column(String(NAME))
    company_name: Mapped[str | None] = mapped_column(String(NAME))
    source: Mapped[str] = mapped_column(String(20))
    bound_at: Mapped[datetime] = mapped_column(UTCDateTime)


# ---- Slack installations (slack_sdk's stores) ---------------------------------------------------
# slack_sdk's own table definitions (`SQLAlchemyInstallationStore.build_installations_table`,
# `build_bots_table`, `SQLAlchemyOAuthStateStore.build_oauth_states_table`), written out here
# because the store does not import Slack's library: its async SQLAlchemy stores read and write
# them (tests/slack/test_oauth.py checks that they are the same). Their date-times are naive UTC,
# as slack_sdk writes them.

slack_installations = Table(
    "slack_installations", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("client_id", String(32), nullable=False),
    Column("app_id", String(32), nullable=False),
    Column("enterprise_id", String(32)),
    Column("enterprise_name", String(200)),
    Column("enterprise_url", String(200)),
    Column("team_id", String(32)),
    Column("team_name", String(200)),
    Column("bot_token", String(200)),
    Column("bot_id", String(32)),
    Column("bot_user_id", String(32)),
    Column("bot_scopes", String(1000)),
    Column("bot_refresh_token", String(200)),
    Column("bot_token_expires_at", DateTime),
    Column("user_id", String(32), nullable=False),
    Column("user_token", String(200)),
    Column("user_scopes", String(1000)),
    Column("user_refresh_token", String(200)),
    Column("user_token_expires_at", DateTime),
    Column("incoming_webhook_url", String(200)),
    Column("incoming_webhook_channel", String(200)),
    Column("incoming_webhook_channel_id", String(200)),
    Column("incoming_webhook_configuration_url", String(200)),
    Column("is_enterprise_install", Boolean, default=False, nullable=False),
    Column("token_type", String(32)),
    Column("installed_at", DateTime, nullable=False, default=func.now()),
    Index("slack_installations_idx", "client_id", "enterprise_id", "team_id", "user_id", "installed_at"),
)

slack_bots = Table(
    "slack_bots", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("client_id", String(32), nullable=False),
    Column("app_id", String(32), nullable=False),
    Column("enterprise_id", String(32)),
    Column("enterprise_name", String(200)),
    Column("team_id", String(32)),
    Column("team_name", String(200)),
    Column("bot_token", String(200)),
    Column("bot_id", String(32)),
    Column("bot_user_id", String(32)),
    Column("bot_scopes", String(1000)),
    Column("bot_refresh_token", String(200)),
    Column("bot_token_expires_at", DateTime),
    Column("is_enterprise_install", Boolean, default=False, nullable=False),
    Column("installed_at", DateTime, nullable=False, default=func.now()),
    Index("slack_bots_idx", "client_id", "enterprise_id", "team_id", "installed_at"),
)

slack_oauth_states = Table(
    "slack_oauth_states", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("state", String(200), nullable=False),
    Column("expire_at", DateTime, nullable=False),
)


# ---- outbox ------------------------------------------------------------------------------------


class OutboxRow(Base):
    __tablename__ = "outbox"
    __table_args__ = (
        CheckConstraint("status IN ('pending', 'sending', 'sent', 'failed')", name="status"),
        Index(None, "status", "next_attempt_at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    idempotency_key: Mapped[str] = mapped_column(String(KEY), unique=True)
    recipient: Mapped[str] = mapped_column(String(EMAIL))
    kind: Mapped[str] = mapped_column(String(SHORT))
    payload: Mapped[dict[str, Any]] = mapped_column(JSON)
    status: Mapped[str] = mapped_column(String(20))
    attempts: Mapped[int] = mapped_column(Integer)
    next_attempt_at: Mapped[datetime] = mapped_column(UTCDateTime)
    locked_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_error: Mapped[str | None] = mapped_column(Text)


class KeptMessageRow(Base):
    """A message the bot sent on its own initiative to a person no channel could push it to (the
    console, a closed portal page): kept, and shown the next time they talk to CareDesk ("While
    you were away"), once (`shown_at` is set in the transaction that reads it)."""

    __tablename__ = "kept_messages"
    __table_args__ = (Index(None, "recipient_key", "shown_at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    outbox_key: Mapped[str] = mapped_column(String(KEY), unique=True)
    recipient: Mapped[str] = mapped_column(String(EMAIL))
    recipient_key: Mapped[str] = mapped_column(String(EMAIL))  # lower-cased, as looked up
    kind: Mapped[str] = mapped_column(String(SHORT))
    payload: Mapped[dict[str, Any]] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    shown_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


# ---- inbox -------------------------------------------------------------------------------------


class InboxRow(Base):
    """What people sent, written before the platform's ack and worked by workers (one item of a
    conversation at a time, in arrival order). Done rows are kept a while so that a platform's
    retry or a replay is recognised by its dedup_key, then purged."""

    __tablename__ = "inbox"
    __table_args__ = (
        CheckConstraint("status IN ('pending', 'working', 'done', 'failed')", name="status"),
        # The claim: the oldest unfinished item of each conversation (a partial index: the done
        # rows kept for deduplication cost the claim nothing), then those rows by primary key.
        # Every index here is written on the acknowledgement's path: there are only these.
        Index("ix_inbox_unfinished_conversation", "conversation_key", "id",
              postgresql_where=text("status IN ('pending', 'working')"),
              sqlite_where=text("status IN ('pending', 'working')")),
        # the purge of done items (partial: a new row, without done_at, is not written into it)
        Index("ix_inbox_done_at", "done_at", postgresql_where=text("done_at IS NOT NULL"),
              sqlite_where=text("done_at IS NOT NULL")),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    channel: Mapped[str] = mapped_column(String(20))
    kind: Mapped[str] = mapped_column(String(SHORT))
    conversation_key: Mapped[str] = mapped_column(String(KEY))
    # NULL: never a duplicate (NULLs are distinct in a unique constraint on both back ends)
    dedup_key: Mapped[str | None] = mapped_column(String(KEY), unique=True)
    payload: Mapped[dict[str, Any]] = mapped_column(JSON)
    priority: Mapped[int] = mapped_column(SmallInteger)
    status: Mapped[str] = mapped_column(String(20))
    attempts: Mapped[int] = mapped_column(Integer)
    received_at: Mapped[datetime] = mapped_column(UTCDateTime)
    next_attempt_at: Mapped[datetime] = mapped_column(UTCDateTime)
    locked_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
    done_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_error: Mapped[str | None] = mapped_column(Text)


# ---- notices owed ----------------------------------------------------------------------------------


class UndeliveredNoticeRow(Base):
    """An answer that could not reach a person, to be mentioned in the next message that does."""

    __tablename__ = "undelivered_notices"
    __table_args__ = (Index(None, "channel", "person", "id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    channel: Mapped[str] = mapped_column(String(20))
    person: Mapped[str] = mapped_column(String(KEY))
    ticket_number: Mapped[str | None] = mapped_column(String(SHORT))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


# ---- privacy -----------------------------------------------------------------------------------


class PrivacyErasureRow(Base):
    """One GDPR erasure (`caredesk privacy erase`): when, by whom, the pseudonym the person's
    tickets and billing now carry, and the rows changed per table; none of their identifiers."""

    __tablename__ = "privacy_erasures"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    pseudonym: Mapped[str] = mapped_column(String(EMAIL))
    erased_at: Mapped[datetime] = mapped_column(UTCDateTime)
    erased_by: Mapped[str] = mapped_column(String(NAME))
    rows: Mapped[dict[str, Any]] = mapped_column(JSON)
# ---- the customer portal's chat --------------------------------------------------------------------


class PortalConversationRow(Base):
    """A person's one conversation on the customer-portal chat (their e-mail, as the portal's
    token proves it): a reload, another tab or the next visit continues it."""

    __tablename__ = "portal_conversations"

    id: Mapped[str] = mapped_column(String(SHORT), primary_key=True)
    person: Mapped[str] = mapped_column(String(EMAIL), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


class PortalActivityRow(Base):
    """The transcript of a portal conversation: each activity (the person's message, the bot's
    answer, a message from the outbox) as the page shows it, numbered in its conversation (the
    Direct Line watermark)."""

    __tablename__ = "portal_activities"
    __table_args__ = (
        UniqueConstraint("conversation_id", "seq"),
        UniqueConstraint("conversation_id", "client_id"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    conversation_id: Mapped[str] = mapped_column(String(SHORT))
    seq: Mapped[int] = mapped_column(Integer)
    client_id: Mapped[str | None] = mapped_column(String(KEY))
    activity: Mapped[dict[str, Any]] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


companies: Table = cast(Table, CompanyRow.__table__)
contacts: Table = cast(Table, ContactRow.__table__)
staff: Table = cast(Table, StaffRow.__table__)
oncall_shifts: Table = cast(Table, OnCallShiftRow.__table__)
tickets: Table = cast(Table, TicketRow.__table__)
ticket_counters: Table = cast(Table, TicketCounterRow.__table__)
ticket_comments: Table = cast(Table, TicketCommentRow.__table__)
ticket_events: Table = cast(Table, TicketEventRow.__table__)
time_entries: Table = cast(Table, TimeEntryRow.__table__)
time_entry_changes: Table = cast(Table, TimeEntryChangeRow.__table__)
escalations: Table = cast(Table, EscalationRow.__table__)
dialog_states: Table = cast(Table, DialogStateRow.__table__)
processed_events: Table = cast(Table, ProcessedEventRow.__table__)
conversation_refs: Table = cast(Table, ConversationRefRow.__table__)
outbox: Table = cast(Table, OutboxRow.__table__)
inbox: Table = cast(Table, InboxRow.__table__)
kept_messages: Table = cast(Table, KeptMessageRow.__table__)
undelivered_notices: Table = cast(Table, UndeliveredNoticeRow.__table__)
privacy_erasures: Table = cast(Table, PrivacyErasureRow.__table__)
company_bindings: Table = cast(Table, CompanyBindingRow.__table__)
portal_conversations: Table = cast(Table, PortalConversationRow.__table__)
portal_activities: Table = cast(Table, PortalActivityRow.__table__)
