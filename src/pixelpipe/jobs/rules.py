"""The rules every job store applies the same way: guarded transitions, idempotency keys,
deletion of finished jobs only."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from pixelpipe.errors import Conflict, IdempotencyMismatch
from pixelpipe.jobs.model import TERMINAL, Job, JobStatus, check_transition


def transition_values(
    expected: JobStatus | Iterable[JobStatus], target: JobStatus, fields: dict[str, Any], now: float
) -> tuple[list[JobStatus], dict[str, Any]]:
    """The statuses a transition may move from (each checked against ``target``) and the
    columns it sets: terminal targets clear the single-flight key, the lease and the schedule."""
    allowed = [expected] if isinstance(expected, JobStatus) else list(expected)
    for current in allowed:
        check_transition(current, target)
    values: dict[str, Any] = {"status": str(target), "updated_at": now, **fields}
    if target is not JobStatus.QUEUED:
        values["slot_wait_since"] = None  # a job out of the queue is in no backend's line
    if target in TERMINAL:
        values.update(inflight_key=None, lease_owner=None, lease_expires_at=None, next_run_at=None)
        values.setdefault("finished_at", now)
    return allowed, values


def check_fingerprint(fingerprint: str | None, used_with: str | None) -> None:
    """Refuse an Idempotency-Key used before with another request body."""
    if fingerprint and used_with != fingerprint:
        raise IdempotencyMismatch(
            "this Idempotency-Key was already used with a different request body; "
            "use a new key for a new request"
        )


def check_deletable(job: Job) -> None:
    """Refuse to delete a job that has not finished."""
    if not job.status.terminal:
        raise Conflict(
            f"generation {job.id} is still {job.status}; cancel it first "
            f"(POST /v1/generations/{job.id}/cancel), then delete it",
            status=str(job.status),
        )
