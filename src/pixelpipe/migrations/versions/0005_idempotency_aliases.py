"""Idempotency keys that attached to another request's in-flight job: idempotency_aliases.

Revision ID: 0005
Revises: 0004
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "idempotency_aliases",
        sa.Column("idempotency_key", sa.String(300), nullable=False),
        sa.Column("job_id", sa.String(32), nullable=False),
        sa.Column("request_fingerprint", sa.String(80), nullable=True),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("idempotency_key", name="pk_idempotency_aliases"),
    )


def downgrade() -> None:
    op.drop_table("idempotency_aliases")
