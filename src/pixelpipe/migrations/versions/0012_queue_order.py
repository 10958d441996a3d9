"""The queue: jobs.priority, jobs.share, jobs.crashes, jobs.held_at/held_reason (quarantine) and
the queue_pauses table (docs/queue.md, ADR 0011).

Revision ID: 0012
Revises: 0011
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None

_COLUMNS = ("priority", "share", "crashes", "held_at", "held_reason")


def upgrade() -> None:
    # plain ADD COLUMNs with server defaults (no table copy): existing jobs get the defaults
    op.add_column("jobs", sa.Column("priority", sa.Integer, nullable=False, server_default="5"))
    op.add_column("jobs", sa.Column("share", sa.Integer, nullable=False, server_default="1"))
    op.add_column("jobs", sa.Column("crashes", sa.Integer, nullable=False, server_default="0"))
    op.add_column("jobs", sa.Column("held_at", sa.Float, nullable=True))
    op.add_column("jobs", sa.Column("held_reason", sa.Text, nullable=True))
    op.create_table(
        "queue_pauses",
        sa.Column("target", sa.String(64), primary_key=True),
        sa.Column("paused_at", sa.Float, nullable=False),
        sa.Column("reason", sa.Text),
    )


def downgrade() -> None:
    op.drop_table("queue_pauses")
    with op.batch_alter_table("jobs") as batch:  # SQLite cannot drop a column in place
        for name in _COLUMNS:
            batch.drop_column(name)
