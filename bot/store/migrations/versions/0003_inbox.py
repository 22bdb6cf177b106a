"""The inbox: what people sent, waiting for a worker.

* `inbox`: one row per turn a person sent (a message, a button, a slash command), written before
  the platform's ack, so that a crash between the ack and the work loses nothing; workers take
  the rows from there (FOR UPDATE SKIP LOCKED on PostgreSQL), one item of a conversation at a
  time and in arrival order.  Done rows are kept a while, so that a platform's retry or a replayed
  request is still recognised by its `dedup_key` (nullable, unique), then purged;
* indexes: (status, priority, id) for the claim, (conversation_key, id) of the unfinished rows
  only (partial) for "the oldest unfinished item of each conversation", done_at for the purge.

Only a new table: nothing existing is touched.

Revision ID: 0003
Revises: 0002
Create Date: 2026-03-16 00:00:00
"""

from __future__ import annotations

from typing import Sequence, Union

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: Union[str, Sequence[str], None] = "0002"
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    op.create_table(
        "inbox",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("channel", sa.String(length=20), nullable=False),
        sa.Column("kind", sa.String(length=50), nullable=False),
        sa.Column("conversation_key", sa.String(length=255), nullable=False),
        sa.Column("dedup_key", sa.String(length=255), nullable=True),
        sa.Column("payload", sa.JSON(), nullable=False),
        sa.Column("priority", sa.SmallInteger(), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("next_attempt_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("locked_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("done_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.CheckConstraint("status IN ('pending', 'working', 'done', 'failed')", name=op.f("ck_inbox_status")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_inbox")),
        sa.UniqueConstraint("dedup_key", name=op.f("uq_inbox_dedup_key")),
    )
    op.create_index(op.f("ix_inbox_status_priority_id"), "inbox", ["status", "priority", "id"], unique=False)
    # Partial: only unfinished rows, so the done rows kept for deduplication cost the claim nothing.
    unfinished = sa.text("status IN ('pending', 'working')")
    op.create_index("ix_inbox_unfinished_conversation", "inbox", ["conversation_key", "id"], unique=False,
                    postgresql_where=unfinished, sqlite_where=unfinished)
    op.create_index(op.f("ix_inbox_done_at"), "inbox", ["done_at"], unique=False)


def downgrade() -> None:
    op.drop_index(op.f("ix_inbox_done_at"), table_name="inbox")
    op.drop_index("ix_inbox_unfinished_conversation", table_name="inbox")
    op.drop_index(op.f("ix_inbox_status_priority_id"), table_name="inbox")
    op.drop_table("inbox")
