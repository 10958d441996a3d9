"""Gallery curation: boards, board_items, favourites (per owner: an API key id, "" with auth off).

Revision ID: 0013
Revises: 0012
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "boards",
        sa.Column("id", sa.String(32), nullable=False),
        sa.Column("owner", sa.String(32), nullable=False),
        sa.Column("name", sa.String(80), nullable=False),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.Column("updated_at", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_boards"),
        sa.UniqueConstraint("owner", "name", name="uq_boards_owner_name"),
    )
    op.create_table(
        "board_items",
        sa.Column("board_id", sa.String(32), nullable=False),
        sa.Column("job_id", sa.String(32), nullable=False),
        sa.Column("added_at", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("board_id", "job_id", name="pk_board_items"),
    )
    op.create_index("ix_board_items_job", "board_items", ["job_id"])
    op.create_table(
        "favourites",
        sa.Column("owner", sa.String(32), nullable=False),
        sa.Column("job_id", sa.String(32), nullable=False),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("owner", "job_id", name="pk_favourites"),
    )
    op.create_index("ix_favourites_job", "favourites", ["job_id"])


def downgrade() -> None:
    op.drop_index("ix_favourites_job", table_name="favourites")
    op.drop_table("favourites")
    op.drop_index("ix_board_items_job", table_name="board_items")
    op.drop_table("board_items")
    op.drop_table("boards")
