"""Completion-webhook outbox: completion_webhooks.

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "completion_webhooks",
        sa.Column("id", sa.String(64), nullable=False),
        sa.Column("job_id", sa.String(32), nullable=False),
        sa.Column("url", sa.Text(), nullable=False),
        sa.Column("event_type", sa.String(40), nullable=False),
        sa.Column("payload", sa.Text(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", sa.Float(), nullable=True),
        sa.Column("last_status", sa.Integer(), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.Column("updated_at", sa.Float(), nullable=False),
        sa.Column("delivered_at", sa.Float(), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_completion_webhooks"),
    )
    op.create_index(
        "ix_completion_webhooks_due", "completion_webhooks", ["status", "next_attempt_at"]
    )
    op.create_index("ix_completion_webhooks_job", "completion_webhooks", ["job_id"])


def downgrade() -> None:
    op.drop_index("ix_completion_webhooks_job", table_name="completion_webhooks")
    op.drop_index("ix_completion_webhooks_due", table_name="completion_webhooks")
    op.drop_table("completion_webhooks")
