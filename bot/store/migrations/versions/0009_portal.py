"""The customer-portal chat: each person's one conversation and its transcript (what the page
shows on a reload or the next visit, numbered for the Direct Line watermark).

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-05 23:00:00
"""

from __future__ import annotations

from typing import Sequence, Union

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: Union[str, Sequence[str], None] = "0008"
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    op.create_table(
        "portal_conversations",
        sa.Column("id", sa.String(length=50), nullable=False),
        sa.Column("person", sa.String(length=254), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_portal_conversations")),
        sa.UniqueConstraint("person", name=op.f("uq_portal_conversations_person")),
    )
    op.create_table(
        "portal_activities",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("conversation_id", sa.String(length=50), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("client_id", sa.String(length=255), nullable=True),
        sa.Column("activity", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_portal_activities")),
        sa.UniqueConstraint("conversation_id", "seq", name=op.f("uq_portal_activities_conversation_id_seq")),
        sa.UniqueConstraint("conversation_id", "client_id",
                            name=op.f("uq_portal_activities_conversation_id_client_id")),
    )


def downgrade() -> None:
    op.drop_table("portal_activities")
    op.drop_table("portal_conversations")
