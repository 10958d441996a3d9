"""Cost ledger: ledger_entries (append-only), budgets, budget_reservations.

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

BIG_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "ledger_entries",
        sa.Column("id", BIG_ID, autoincrement=True, nullable=False),
        sa.Column("job_id", sa.String(32), nullable=False),
        sa.Column("attempt", sa.Integer(), nullable=False),
        sa.Column("provider", sa.String(32), nullable=False),
        sa.Column("provider_job_id", sa.String(160), nullable=False),
        sa.Column("model", sa.String(64), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("amount_micros", sa.BigInteger(), nullable=True),
        sa.Column("saved_micros", sa.BigInteger(), nullable=True),
        sa.Column("price_version", sa.String(32), nullable=False),
        sa.Column("basis", sa.String(32), nullable=False),
        sa.Column("api_key_id", sa.String(32), nullable=True),
        sa.Column("detail", sa.JSON(), nullable=False),
        sa.Column("day", sa.String(10), nullable=False),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_ledger_entries"),
        sa.UniqueConstraint(
            "job_id", "attempt", "provider_job_id", "kind", name="uq_ledger_entries_attempt"
        ),
    )
    op.create_index("ix_ledger_entries_day", "ledger_entries", ["day"])
    op.create_index("ix_ledger_entries_key_day", "ledger_entries", ["api_key_id", "day"])
    op.create_index("ix_ledger_entries_created", "ledger_entries", ["created_at"])
    op.create_table(
        "budgets",
        sa.Column("scope", sa.String(64), nullable=False),
        sa.Column("period", sa.String(8), nullable=False),
        sa.Column("limit_micros", sa.BigInteger(), nullable=False),
        sa.Column("updated_at", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("scope", "period", name="pk_budgets"),
    )
    op.create_table(
        "budget_reservations",
        sa.Column("job_id", sa.String(32), nullable=False),
        sa.Column("api_key_id", sa.String(32), nullable=True),
        sa.Column("amount_micros", sa.BigInteger(), nullable=False),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.Column("expires_at", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("job_id", name="pk_budget_reservations"),
    )
    op.create_index("ix_budget_reservations_expires", "budget_reservations", ["expires_at"])


def downgrade() -> None:
    op.drop_index("ix_budget_reservations_expires", table_name="budget_reservations")
    op.drop_table("budget_reservations")
    op.drop_table("budgets")
    for name in ("ix_ledger_entries_created", "ix_ledger_entries_key_day", "ix_ledger_entries_day"):
        op.drop_index(name, table_name="ledger_entries")
    op.drop_table("ledger_entries")
