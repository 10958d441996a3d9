"""Status events keep the job as it was at that moment: job_events.snapshot.

Revision ID: 0007
Revises: 0006
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # a plain ADD COLUMN on both databases: no table copy, existing rows keep NULL (their events
    # are rendered from the event's own data, see jobs/snapshots.py)
    op.add_column("job_events", sa.Column("snapshot", sa.JSON(), nullable=True))


def downgrade() -> None:
    # batch mode: SQLite cannot drop a column in place
    with op.batch_alter_table("job_events") as batch:
        batch.drop_column("snapshot")
