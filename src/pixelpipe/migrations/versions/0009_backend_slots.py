"""Jobs wait in line for a slot of their self-hosted backend: jobs.slot_wait_since.

Revision ID: 0009
Revises: 0008
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

_WAITING = sa.text("slot_wait_since IS NOT NULL")
_HOLDING = sa.text("status IN ('submitting', 'waiting')")  # = jobs.tables.HOLDING_SQL


def upgrade() -> None:
    # a plain ADD COLUMN (no table copy); existing rows are in no line
    op.add_column("jobs", sa.Column("slot_wait_since", sa.Float(), nullable=True))
    op.create_index(
        "ix_jobs_slot_line",
        "jobs",
        ["provider", "slot_wait_since"],
        sqlite_where=_WAITING,
        postgresql_where=_WAITING,
    )

    op.create_index(
        "ix_jobs_holding", "jobs", ["provider"], sqlite_where=_HOLDING, postgresql_where=_HOLDING
    )


def downgrade() -> None:
    op.drop_index("ix_jobs_holding", table_name="jobs")
    op.drop_index("ix_jobs_slot_line", table_name="jobs")
    with op.batch_alter_table("jobs") as batch:  # SQLite cannot drop a column in place
        batch.drop_column("slot_wait_since")
