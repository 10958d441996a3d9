"""Moderation: the moderation log (prompts refused, images blocked/blurred/flagged, quarantine)
and ledger_entries.outcome (``blocked``: an attempt that was paid for and whose image moderation
blocked — still counted at its price).

Revision ID: 0011
Revises: 0010
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None

_BIG_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.add_column("ledger_entries", sa.Column("outcome", sa.String(12), nullable=True))
    op.create_table(
        "moderation_events",
        sa.Column("id", _BIG_ID, primary_key=True, autoincrement=True),
        sa.Column("kind", sa.String(8), nullable=False),
        sa.Column("action", sa.String(12), nullable=False),
        sa.Column("source", sa.String(12), nullable=False),
        sa.Column("api_key_id", sa.String(32)),
        sa.Column("job_id", sa.String(32)),
        sa.Column("categories", sa.JSON, nullable=False),
        sa.Column("amount_micros", sa.BigInteger),
        sa.Column("day", sa.String(10), nullable=False),
        sa.Column("created_at", sa.Float, nullable=False),
        sa.Column("quarantine_key", sa.String(1024)),
        sa.Column("quarantine_until", sa.Float),
        sa.UniqueConstraint("job_id", "kind", name="uq_moderation_events_job"),
    )
    op.create_index("ix_moderation_events_day", "moderation_events", ["day"])
    op.create_index("ix_moderation_events_quarantine", "moderation_events", ["quarantine_until"])


def downgrade() -> None:
    op.drop_table("moderation_events")
    with op.batch_alter_table("ledger_entries") as batch:
        batch.drop_column("outcome")
