"""Core tables: jobs, job_events, images, webhook_deliveries.

Revision ID: 0001
Revises:
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    from pixelpipe.jobs.tables import images, job_events, jobs, webhook_deliveries

    bind = op.get_bind()
    for table in (jobs, job_events, images, webhook_deliveries):
        table.create(bind)


def downgrade() -> None:
    for name in ("webhook_deliveries", "images", "job_events", "jobs"):
        op.drop_table(name)
    _ = sa
