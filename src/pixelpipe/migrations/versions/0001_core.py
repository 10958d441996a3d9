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
    op.create_table(
        "jobs",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("model", sa.String(64), nullable=False),
        sa.Column("provider", sa.String(32)),
        sa.Column("request", sa.JSON, nullable=False),
        sa.Column("content_key", sa.String(80), nullable=False),
        sa.Column("inflight_key", sa.String(80), unique=True),
        sa.Column("attempt", sa.Integer, nullable=False),
        sa.Column("max_attempts", sa.Integer, nullable=False),
        sa.Column("next_run_at", sa.Float),
        sa.Column("lease_owner", sa.String(64)),
        sa.Column("lease_expires_at", sa.Float),
        sa.Column("provider_job_id", sa.String(160)),
        sa.Column("provider_state", sa.JSON, nullable=False),
        sa.Column("webhook_deadline_at", sa.Float),
        sa.Column("deadline_at", sa.Float, nullable=False),
        sa.Column("created_at", sa.Float, nullable=False),
        sa.Column("updated_at", sa.Float, nullable=False),
        sa.Column("submitted_at", sa.Float),
        sa.Column("finished_at", sa.Float),
        sa.Column("storage_key", sa.String(255)),
        sa.Column("thumb_key", sa.String(255)),
        sa.Column("content_type", sa.String(64)),
        sa.Column("width", sa.Integer),
        sa.Column("height", sa.Integer),
        sa.Column("bytes", sa.BigInteger),
        sa.Column("cached", sa.Boolean, nullable=False),
        sa.Column("cost_micros", sa.BigInteger),
        sa.Column("cost_status", sa.String(16), nullable=False),
        sa.Column("estimate_micros", sa.BigInteger),
        sa.Column("error_code", sa.String(64)),
        sa.Column("error_detail", sa.Text),
        sa.Column("api_key_id", sa.String(32)),
        sa.Column("idempotency_key", sa.String(300), unique=True),
        sa.Column("request_fingerprint", sa.String(80)),
        sa.Column("group_id", sa.String(64)),
        sa.Column("webhook_url", sa.Text),
        sa.Column("revised_prompt", sa.Text),
    )
    op.create_index("ix_jobs_due", "jobs", ["status", "next_run_at"])
    op.create_index("ix_jobs_created", "jobs", ["created_at"])
    op.create_index("ix_jobs_provider_job", "jobs", ["provider", "provider_job_id"])
    op.create_index("ix_jobs_group", "jobs", ["group_id"])
    op.create_index("ix_jobs_content_key", "jobs", ["content_key"])
    op.create_table(
        "job_events",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("job_id", sa.String(32), nullable=False),
        sa.Column("type", sa.String(16), nullable=False),
        sa.Column("data", sa.JSON, nullable=False),
        sa.Column("created_at", sa.Float, nullable=False),
        sqlite_autoincrement=True,
    )
    op.create_index("ix_job_events_job", "job_events", ["job_id", "id"])
    op.create_table(
        "images",
        sa.Column("content_key", sa.String(80), primary_key=True),
        sa.Column("storage_key", sa.String(255), nullable=False),
        sa.Column("thumb_key", sa.String(255)),
        sa.Column("content_type", sa.String(64), nullable=False),
        sa.Column("width", sa.Integer, nullable=False),
        sa.Column("height", sa.Integer, nullable=False),
        sa.Column("bytes", sa.BigInteger, nullable=False),
        sa.Column("model", sa.String(64), nullable=False),
        sa.Column("job_id", sa.String(32), nullable=False),
        sa.Column("created_at", sa.Float, nullable=False),
    )
    op.create_table(
        "webhook_deliveries",
        sa.Column("provider", sa.String(32), nullable=False),
        sa.Column("delivery_id", sa.String(200), nullable=False),
        sa.Column("job_id", sa.String(32)),
        sa.Column("received_at", sa.Float, nullable=False),
        sa.PrimaryKeyConstraint("provider", "delivery_id"),
    )


def downgrade() -> None:
    for name in ("webhook_deliveries", "images", "job_events", "jobs"):
        op.drop_table(name)
