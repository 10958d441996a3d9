"""Tables of the cost ledger (migration: pixelpipe/migrations/versions/0002_ledger.py).

Money columns are integer micro-dollars; ``ledger_entries.amount_micros`` NULL means *unpriced*.
``ledger_entries`` holds one row per billable event, unique per
(job_id, attempt, provider_job_id, kind) so that duplicate webhooks, retries and restarts cannot
create a second row for one attempt. A provider attempt's row is written *before* the request that
may cost money is sent (``state = 'pending'``, ``provider_job_id = ''``, the estimated price); the
provider's answer turns it into ``billed`` (its run id and actual price), a definite "not charged"
removes it, and an outcome that will never be known leaves it ``unconfirmed`` at the estimate.
Billed and unconfirmed rows are never changed or removed.
"""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    BigInteger,
    Column,
    Float,
    Index,
    Integer,
    PrimaryKeyConstraint,
    String,
    Table,
    UniqueConstraint,
)

from pixelpipe.db import metadata

# BIGINT on PostgreSQL; INTEGER on SQLite so the key is the rowid and autoincrements.
BigId = BigInteger().with_variant(Integer(), "sqlite")

ledger_entries = Table(
    "ledger_entries",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("job_id", String(32), nullable=False),
    Column("attempt", Integer, nullable=False),
    Column("provider", String(32), nullable=False),
    Column("provider_job_id", String(160), nullable=False),
    Column("model", String(64), nullable=False),
    Column("kind", String(16), nullable=False),
    Column("amount_micros", BigInteger),  # NULL = unpriced
    Column("saved_micros", BigInteger),
    Column("price_version", String(32), nullable=False),
    Column("basis", String(32), nullable=False),
    Column("api_key_id", String(32)),
    Column("detail", JSON, nullable=False),
    Column("day", String(10), nullable=False),  # UTC YYYY-MM-DD of created_at
    Column("created_at", Float, nullable=False),
    # pending | billed | unconfirmed (migration 0008)
    Column("state", String(12), nullable=False, server_default="billed"),
    Column("outcome", String(12)),  # NULL | blocked (migration 0011)
    UniqueConstraint(
        "job_id", "attempt", "provider_job_id", "kind", name="uq_ledger_entries_attempt"
    ),
    Index("ix_ledger_entries_day", "day"),
    Index("ix_ledger_entries_key_day", "api_key_id", "day"),
    Index("ix_ledger_entries_created", "created_at"),
)

budgets = Table(
    "budgets",
    metadata,
    Column("scope", String(64), nullable=False),  # "global" or "key:<api key id>"
    Column("period", String(8), nullable=False),  # "day" or "month"
    Column("limit_micros", BigInteger, nullable=False),
    Column("updated_at", Float, nullable=False),
    PrimaryKeyConstraint("scope", "period", name="pk_budgets"),
)

budget_reservations = Table(
    "budget_reservations",
    metadata,
    Column("job_id", String(32), nullable=False),
    Column("api_key_id", String(32)),
    Column("amount_micros", BigInteger, nullable=False),
    Column("created_at", Float, nullable=False),
    Column("expires_at", Float, nullable=False),
    PrimaryKeyConstraint("job_id", name="pk_budget_reservations"),
    Index("ix_budget_reservations_expires", "expires_at"),
)
