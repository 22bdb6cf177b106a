"""Messages kept for people no channel can push to (the console, a closed portal page), shown
the next time they talk to CareDesk ("While you were away") instead of being dead-lettered.

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-06 03:00:00
"""

from __future__ import annotations

from typing import Sequence, Union

import sqlalchemy as sa
from alembic import op

revision: str = "0011"
down_revision: Union[str, Sequence[str], None] = "0010"
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    op.create_table(
        "kept_messages",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("outbox_key", sa.String(length=255), nullable=False),
        sa.Column("recipient", sa.String(length=254), nullable=False),
        sa.Column("recipient_key", sa.String(length=254), nullable=False),
        sa.Column("kind", sa.String(length=50), nullable=False),
        sa.Column("payload", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("shown_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_kept_messages")),
        sa.UniqueConstraint("outbox_key", name=op.f("uq_kept_messages_outbox_key")),
    )
    op.create_index(op.f("ix_kept_messages_recipient_key_shown_at"), "kept_messages",
                    ["recipient_key", "shown_at"], unique=False)


def downgrade() -> None:
    op.drop_index(op.f("ix_kept_messages_recipient_key_shown_at"), table_name="kept_messages")
    op.drop_table("kept_messages")
