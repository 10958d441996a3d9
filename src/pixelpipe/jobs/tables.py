"""Tables of the job store (migrations in pixelpipe/migrations/versions)."""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    Float,
    Index,
    Integer,
    PrimaryKeyConstraint,
    String,
    Table,
    Text,
    text,
)

from pixelpipe.db import metadata
from pixelpipe.jobs.model import HOLDING

# the statuses that hold a backend slot, as SQL: the partial index's WHERE and the count's agree
HOLDING_SQL = "status IN ({})".format(", ".join(f"'{s}'" for s in sorted(HOLDING)))

jobs = Table(
    "jobs",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("status", String(16), nullable=False),
    Column("model", String(64), nullable=False),
    Column("provider", String(32)),
    Column("request", JSON, nullable=False),
    Column("content_key", String(80), nullable=False),
    Column("inflight_key", String(80), unique=True),  # single-flight: set while active
    Column("attempt", Integer, nullable=False, default=0),
    Column("max_attempts", Integer, nullable=False, default=5),
    Column("next_run_at", Float),
    Column("lease_owner", String(64)),
    Column("lease_expires_at", Float),
    Column("provider_job_id", String(160)),
    Column("provider_state", JSON, nullable=False, default=dict),
    Column("webhook_deadline_at", Float),
    Column("deadline_at", Float, nullable=False),
    Column("created_at", Float, nullable=False),
    Column("updated_at", Float, nullable=False),
    Column("submitted_at", Float),
    Column("finished_at", Float),
    Column("storage_key", String(255)),
    Column("thumb_key", String(255)),
    Column("content_type", String(64)),
    Column("width", Integer),
    Column("height", Integer),
    Column("bytes", BigInteger),
    Column("cached", Boolean, nullable=False, default=False),
    Column("cost_micros", BigInteger),
    Column("cost_status", String(16), nullable=False, default="pending"),
    Column("estimate_micros", BigInteger),
    Column("error_code", String(64)),
    Column("error_detail", Text),
    Column("api_key_id", String(32)),
    Column("idempotency_key", String(300), unique=True),  # "<key id or ->:<header value>"
    Column("request_fingerprint", String(80)),
    Column("group_id", String(64)),
    Column("webhook_url", Text),
    Column("revised_prompt", Text),
    Column("slot_wait_since", Float),  # in line for a slot of its backend since (jobs/slots.py)
    Column("retry_of", String(32)),  # the job this one retries (POST …/retry)
    # the queue's order and quarantine (0012, jobs/order.py)
    Column("priority", Integer, nullable=False, default=5, server_default="5"),
    Column("share", Integer, nullable=False, default=1, server_default="1"),
    Column("crashes", Integer, nullable=False, default=0, server_default="0"),
    Column("held_at", Float),
    Column("held_reason", Text),
    Index("ix_jobs_due", "status", "next_run_at"),
    Index("ix_jobs_created", "created_at"),
    Index("ix_jobs_provider_job", "provider", "provider_job_id"),
    Index("ix_jobs_group", "group_id"),
    Index("ix_jobs_content_key", "content_key"),
    Index(  # the runs in flight per provider: a backend's busy slots, without reading its history
        "ix_jobs_holding",
        "provider",
        sqlite_where=text(HOLDING_SQL),
        postgresql_where=text(HOLDING_SQL),
    ),
    Index(  # the lines of jobs waiting for a backend slot: small, and empty without backends
        "ix_jobs_slot_line",
        "provider",
        "slot_wait_since",
        sqlite_where=text("slot_wait_since IS NOT NULL"),
        postgresql_where=text("slot_wait_since IS NOT NULL"),
    ),
)

job_events = Table(
    "job_events",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("job_id", String(32), nullable=False),
    Column("type", String(16), nullable=False),
    Column("data", JSON, nullable=False),
    Column("created_at", Float, nullable=False),
    # status events: the job as it was at that moment (jobs/snapshots.py); NULL for other events
    Column("snapshot", JSON),
    Index("ix_job_events_job", "job_id", "id"),
    sqlite_autoincrement=True,  # ids never reused: Last-Event-ID replay stays monotonic
)

images = Table(
    "images",
    metadata,
    Column("content_key", String(80), primary_key=True),
    Column("storage_key", String(255), nullable=False),
    Column("thumb_key", String(255)),
    Column("content_type", String(64), nullable=False),
    Column("width", Integer, nullable=False),
    Column("height", Integer, nullable=False),
    Column("bytes", BigInteger, nullable=False),
    Column("model", String(64), nullable=False),
    Column("job_id", String(32), nullable=False),
    Column("created_at", Float, nullable=False),
)

# An Idempotency-Key whose request attached to another request's in-flight job (single-flight):
# the key is remembered here so that a retry with it finds that job, not a later cache-hit job.
idempotency_aliases = Table(
    "idempotency_aliases",
    metadata,
    Column("idempotency_key", String(300), primary_key=True),
    Column("job_id", String(32), nullable=False),
    Column("request_fingerprint", String(80)),
    Column("created_at", Float, nullable=False),
)

# providers and backends paused by an operator: their queued jobs wait (0012, docs/queue.md)
queue_pauses = Table(
    "queue_pauses",
    metadata,
    Column("target", String(64), primary_key=True),
    Column("paused_at", Float, nullable=False),
    Column("reason", Text),
)

webhook_deliveries = Table(
    "webhook_deliveries",
    metadata,
    Column("provider", String(32), nullable=False),
    Column("delivery_id", String(200), nullable=False),
    Column("job_id", String(32)),
    Column("received_at", Float, nullable=False),
    PrimaryKeyConstraint("provider", "delivery_id"),
)
