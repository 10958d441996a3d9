"""Attempts in the ledger before money can be spent: ledger_entries.state.

``pending``: the request to the provider is (about to be) sent and its outcome is not known yet;
``billed``: the provider's answer says what it costs (every row before this revision);
``unconfirmed``: the outcome will never be known (a crash or a lost answer) — it may have been
billed, so it stays in the ledger at the estimated price.

Revision ID: 0008
Revises: 0007
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("ledger_entries") as batch:
        batch.add_column(sa.Column("state", sa.String(12), nullable=False, server_default="billed"))


def downgrade() -> None:
    with op.batch_alter_table("ledger_entries") as batch:
        batch.drop_column("state")
