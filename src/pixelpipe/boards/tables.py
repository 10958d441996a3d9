"""Tables of the boards boundary (migration: pixelpipe/migrations/versions/0013_boards.py)."""

from __future__ import annotations

from sqlalchemy import Column, Float, Index, PrimaryKeyConstraint, String, Table, UniqueConstraint

from pixelpipe.db import metadata

boards = Table(
    "boards",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("owner", String(32), nullable=False),  # an API key id; "" with auth off
    Column("name", String(80), nullable=False),
    Column("created_at", Float, nullable=False),
    Column("updated_at", Float, nullable=False),
    UniqueConstraint("owner", "name"),
)

board_items = Table(
    "board_items",
    metadata,
    Column("board_id", String(32), nullable=False),
    Column("job_id", String(32), nullable=False),
    Column("added_at", Float, nullable=False),
    PrimaryKeyConstraint("board_id", "job_id"),
    Index("ix_board_items_job", "job_id"),
)

favourites = Table(
    "favourites",
    metadata,
    Column("owner", String(32), nullable=False),
    Column("job_id", String(32), nullable=False),
    Column("created_at", Float, nullable=False),
    PrimaryKeyConstraint("owner", "job_id"),
    Index("ix_favourites_job", "job_id"),
)
