"""Ticket workflow and time registration: ticket_events; idempotency key of time entries.

* `ticket_events`: one row per changed field of a ticket (status, assignee, dates);
* `time_entries.idempotency_key` (nullable, unique index) so a retried "log time" request
  records one entry, and an index on `time_entries.started_at` for period reports.

`time_entries.deleted_at`, `escalations.last_ping_at`, `outbox.sent_at` and the outbox index on
(status, next_attempt_at) already exist since 0001.  Only columns and indexes are added to
existing tables: SQLite does that in place (no table re-creation, which with foreign keys on
would cascade-delete the rows of `time_entry_changes`).

Revision ID: 0002
Revises: 0001
Create Date: 2026-03-02 00:00:00
"""

from __future__ import annotations

from typing import Sequence, Union

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: Union[str, Sequence[str], None] = "0001"
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    op.create_table(
        "ticket_events",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("ticket_id", sa.Integer(), nullable=False),
        sa.Column("actor", sa.String(length=254), nullable=False),
        sa.Column("field", sa.String(length=50), nullable=False),
        sa.Column("before", sa.Text(), nullable=True),
        sa.Column("after", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["ticket_id"], ["tickets.id"], name=op.f("fk_ticket_events_ticket_id_tickets"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ticket_events")),
    )
    op.create_index(op.f("ix_ticket_events_ticket_id"), "ticket_events", ["ticket_id"], unique=False)

    op.add_column("time_entries", sa.Column("idempotency_key", sa.String(length=255), nullable=True))
    op.create_index(
        op.f("ix_time_entries_idempotency_key"), "time_entries", ["idempotency_key"], unique=True
    )
    op.create_index(op.f("ix_time_entries_started_at"), "time_entries", ["started_at"], unique=False)


def downgrade() -> None:
    op.drop_index(op.f("ix_time_entries_started_at"), table_name="time_entries")
    op.drop_index(op.f("ix_time_entries_idempotency_key"), table_name="time_entries")
    # SQLite >= 3.35 drops a column in place (ALTER TABLE ... DROP COLUMN).
    op.drop_column("time_entries", "idempotency_key")
    op.drop_index(op.f("ix_ticket_events_ticket_id"), table_name="ticket_events")
    op.drop_table("ticket_events")
