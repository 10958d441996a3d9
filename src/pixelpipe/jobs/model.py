"""The job: a row in our database that is the source of truth for one generation.

State diagram (also in docs/architecture.md)::

    queued ──► submitting ──► waiting ──► fetching ──► storing ──► succeeded
      │            │  │          │  ▲         │            │
      │            │  └──────────┼──┘ (output │            │
      │            │  (immediate │   polled)  │            │
      │            ▼   result)   ▼            ▼            ▼
      └──────► failed / canceled (terminal)   (retryable errors go back to queued with
                                               attempt+1 and next_run_at = backoff)

Every status change goes through :func:`check_transition`; the store applies it with a
``WHERE status = <expected>`` guard so two workers can never both move a job.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from pixelpipe.errors import Conflict
from pixelpipe.intake import CanonicalRequest


class JobStatus(StrEnum):
    QUEUED = "queued"
    SUBMITTING = "submitting"
    WAITING = "waiting"  # waiting on the provider (webhook or poll)
    FETCHING = "fetching"
    STORING = "storing"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELED = "canceled"

    @property
    def terminal(self) -> bool:
        return self in TERMINAL


TERMINAL = frozenset({JobStatus.SUCCEEDED, JobStatus.FAILED, JobStatus.CANCELED})
ACTIVE = frozenset(set(JobStatus) - TERMINAL)
#: statuses a worker runs a step for when the row is due
RUNNABLE = frozenset(
    {
        JobStatus.QUEUED,
        JobStatus.SUBMITTING,
        JobStatus.WAITING,
        JobStatus.FETCHING,
        JobStatus.STORING,
    }
)
#: statuses in which a job holds one of its backend's slots (a run was, or may have been, sent)
HOLDING = frozenset({JobStatus.SUBMITTING, JobStatus.WAITING})

_S = JobStatus
ALLOWED: dict[JobStatus, frozenset[JobStatus]] = {
    # queued → fetching: an earlier attempt's orphaned run finished after all (webhooks.py)
    _S.QUEUED: frozenset({_S.SUBMITTING, _S.FETCHING, _S.FAILED, _S.CANCELED}),
    _S.SUBMITTING: frozenset({_S.WAITING, _S.FETCHING, _S.QUEUED, _S.FAILED, _S.CANCELED}),
    _S.WAITING: frozenset({_S.WAITING, _S.FETCHING, _S.QUEUED, _S.FAILED, _S.CANCELED}),
    _S.FETCHING: frozenset({_S.STORING, _S.QUEUED, _S.FAILED, _S.CANCELED}),
    _S.STORING: frozenset({_S.SUCCEEDED, _S.FAILED}),
    _S.SUCCEEDED: frozenset(),
    _S.FAILED: frozenset(),
    _S.CANCELED: frozenset(),
}


def check_transition(current: JobStatus, target: JobStatus) -> None:
    if target not in ALLOWED[current]:
        raise Conflict(
            f"job cannot move from {current} to {target}", current=str(current), target=str(target)
        )


@dataclass(slots=True)
class Job:
    id: str
    status: JobStatus
    model: str
    request: CanonicalRequest
    content_key: str
    created_at: float
    updated_at: float
    deadline_at: float
    provider: str | None = None
    attempt: int = 0
    max_attempts: int = 5
    next_run_at: float | None = None
    lease_owner: str | None = None
    lease_expires_at: float | None = None
    provider_job_id: str | None = None
    provider_state: dict[str, Any] = field(default_factory=dict)
    webhook_deadline_at: float | None = None
    submitted_at: float | None = None
    finished_at: float | None = None
    storage_key: str | None = None
    thumb_key: str | None = None
    content_type: str | None = None
    width: int | None = None
    height: int | None = None
    bytes: int | None = None
    cached: bool = False
    cost_micros: int | None = None
    cost_status: str = "pending"  # pending | priced | unpriced | free
    estimate_micros: int | None = None
    error_code: str | None = None
    error_detail: str | None = None
    api_key_id: str | None = None
    idempotency_key: str | None = None
    group_id: str | None = None
    webhook_url: str | None = None
    revised_prompt: str | None = None
    # in line for a slot of its backend since (jobs/slots.py); None when not waiting for one
    retry_of: str | None = None  # the failed or canceled job this one retries (its lineage)
    slot_wait_since: float | None = None
    # the queue (jobs/order.py, docs/queue.md): higher runs first; a key's share of capacity
    priority: int = 5
    share: int = 1
    crashes: int = 0  # leases that expired mid-step, runs its backend lost (docs/queue.md)
    held_at: float | None = None  # quarantined (poison): not run until an operator releases it
    held_reason: str | None = None

    @property
    def duration_s(self) -> float | None:
        if self.finished_at is None:
            return None
        return round(self.finished_at - self.created_at, 3)


@dataclass(frozen=True, slots=True)
class JobEvent:
    id: int
    job_id: str
    type: str  # "status" | "progress" | "error"
    data: dict[str, Any]
    created_at: float
    snapshot: dict[str, Any] | None = None  # status events: the job then (jobs/snapshots.py)


@dataclass(frozen=True, slots=True)
class ImageRecord:
    """A stored image, addressed by its content key (the cache)."""

    content_key: str
    storage_key: str
    content_type: str
    width: int
    height: int
    bytes: int
    model: str
    job_id: str
    created_at: float
    thumb_key: str | None = None
