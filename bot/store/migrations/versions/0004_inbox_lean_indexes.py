"""The inbox's indexes, fewer and leaner: every Slack request is one inbox row written before its
acknowledgement, so each index on it is work on the acknowledgement's path.

* `ix_inbox_status_priority_id` is dropped: the claim reads the unfinished heads from the partial
  index `ix_inbox_unfinished_conversation` and their rows by primary key; no query used it;
* `ix_inbox_done_at` becomes partial (`done_at IS NOT NULL`): a new row has no done_at and is no
  longer written into it; the purge (`done_at < ...`) still reads it on both back ends.

Indexes only: no row is touched.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-26 00:00:00
"""

from __future__ import annotations

from typing import Sequence, Union

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: Union[str, Sequence[str], None] = "0003"
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None

DONE = sa.text("done_at IS NOT NULL")


def upgrade() -> None:
    op.drop_index("ix_inbox_status_priority_id", table_name="inbox")
    op.drop_index("ix_inbox_done_at", table_name="inbox")
    op.create_index("ix_inbox_done_at", "inbox", ["done_at"], unique=False, postgresql_where=DONE, sqlite_where=DONE)


def downgrade() -> None:
    op.drop_index("ix_inbox_done_at", table_name="inbox")
    op.create_index("ix_inbox_done_at", "inbox", ["done_at"], unique=False)
    op.create_index("ix_inbox_status_priority_id", "inbox", ["status", "priority", "id"], unique=False)
