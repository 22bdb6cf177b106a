"""How a ticket reached the desk: `intake` is "chat" for the bot's own tickets and "mail",
"phone", "in_person" or "portal" for those staff register for a customer (issue 15 §3).
Existing tickets were all opened in the chat or by the CLI's agent path; they read "chat".

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-05 23:30:00
"""

from __future__ import annotations

from typing import Sequence, Union

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: Union[str, Sequence[str], None] = "0006"
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    op.add_column("tickets", sa.Column("intake", sa.String(length=20), server_default="chat", nullable=False))


def downgrade() -> None:
    # A plain DROP COLUMN (SQLite 3.35+ too): a batch copy of the table would drop the old one,
    # and with it (ON DELETE CASCADE) every row that refers to a ticket.
    op.drop_column("tickets", "intake")
