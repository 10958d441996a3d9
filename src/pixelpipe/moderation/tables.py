"""The moderation log's table (migration: pixelpipe/migrations/versions/0011_moderation.py).

One row per prompt moderation refused and per image it blocked, blurred or flagged (or let through
unchecked, fail-open): who asked (``api_key_id``), when (``day``), which categories, and for an
image the attempt's price (``amount_micros``; NULL: unpriced) and where its blocked bytes sit in
quarantine until ``quarantine_until``. An image row is unique per (job_id, kind), so a step that
runs again after a crash adds nothing; prompt rows have no job (NULLs never collide).
"""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    BigInteger,
    Column,
    Float,
    Index,
    Integer,
    String,
    Table,
    UniqueConstraint,
)

from pixelpipe.db import metadata

BigId = BigInteger().with_variant(Integer(), "sqlite")

moderation_events = Table(
    "moderation_events",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("kind", String(8), nullable=False),  # prompt | image
    Column("action", String(12), nullable=False),  # refused | blocked | blurred | flagged | …
    Column("source", String(12), nullable=False),  # blocklist | moderation | provider
    Column("api_key_id", String(32)),
    Column("job_id", String(32)),
    Column("categories", JSON, nullable=False),
    Column("amount_micros", BigInteger),
    Column("day", String(10), nullable=False),
    Column("created_at", Float, nullable=False),
    Column("quarantine_key", String(1024)),
    Column("quarantine_until", Float),
    UniqueConstraint("job_id", "kind", name="uq_moderation_events_job"),
    Index("ix_moderation_events_day", "day"),
    Index("ix_moderation_events_quarantine", "quarantine_until"),
)
