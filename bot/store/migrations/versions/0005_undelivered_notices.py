"""Notices owed to people: an answer that could not reach a person is told in their next message
that does, by whichever process sends it (it used to be remembered in one process's memory, lost
on a restart and unknown to the other workers).

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-30 00:00:00
"""

from __future__ import annotations

from typing import Sequence, Union

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: Union[str, Sequence[str], None] = "0004"
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    op.create_table(
        "undelivered_notices",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("channel", sa.String(length=20), nullable=False),
        sa.Column("person", sa.String(length=255), nullable=False),
        sa.Column("ticket_number", sa.String(length=50), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_undelivered_notices")),
    )
    op.create_index(op.f("ix_undelivered_notices_channel_person_id"), "undelivered_notices",
                    ["channel", "person", "id"], unique=False)


def downgrade() -> None:
    op.drop_index(op.f("ix_undelivered_notices_channel_person_id"), table_name="undelivered_notices")
    op.drop_table("undelivered_notices")
