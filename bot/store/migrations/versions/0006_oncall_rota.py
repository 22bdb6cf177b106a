"""The on-call rota: who of the service desk is on duty out of hours, with a backup (weekly
shifts and dated overrides), loaded with the directory; an accepted emergency pages them.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-30 12:00:00
"""

from __future__ import annotations

from typing import Sequence, Union

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: Union[str, Sequence[str], None] = "0005"
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    op.create_table(
        "oncall_shifts",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("weekday", sa.Integer(), nullable=True),
        sa.Column("start", sa.String(length=50), nullable=False),
        sa.Column("end", sa.String(length=50), nullable=False),
        sa.Column("person", sa.String(length=254), nullable=False),
        sa.Column("backup", sa.String(length=254), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_oncall_shifts")),
    )


def downgrade() -> None:
    op.drop_table("oncall_shifts")
