"""What a job looked like at one of its status events.

Each status event row carries a *snapshot*: the job's fields that a reader can see change
(status, attempt, image, cost, error, progress, …), written in the same transaction as the status
change itself. The fields that never change after creation (id, model, request, key, group, …)
and the scheduler's bookkeeping (leases, next run, provider ids) are left out: the first are
taken from the job as it is now, the second are never shown. So an SSE stream, live or replayed
from ``Last-Event-ID``, renders every event as the job was at that moment, never as it is later.

Fields still at their default are not stored (a queued job's snapshot is a few bytes); a new
``Job`` field is snapshotted unless it is listed in ``_NOT_SNAPSHOTTED``.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from pixelpipe.jobs.model import Job, JobEvent, JobStatus

_NOT_SNAPSHOTTED = frozenset(
    {
        # fixed at creation
        "id",
        "model",
        "request",
        "content_key",
        "created_at",
        "deadline_at",
        "max_attempts",
        "api_key_id",
        "idempotency_key",
        "group_id",
        "webhook_url",
        # bookkeeping no reader is shown (provider_state: only its "progress", stored apart)
        "updated_at",
        "next_run_at",
        "lease_owner",
        "lease_expires_at",
        "provider_job_id",
        "provider_state",
        "webhook_deadline_at",
        "submitted_at",
        "slot_wait_since",  # the line position is shown through progress.queue_position
    }
)
_DEFAULTS: dict[str, Any] = {
    f.name: f.default for f in dataclasses.fields(Job) if f.name not in _NOT_SNAPSHOTTED
}
SNAPSHOT_FIELDS = tuple(_DEFAULTS)


def snapshot(job: Job) -> dict[str, Any]:
    """The job's visible, changing fields (those not at their default), as JSON data."""
    data: dict[str, Any] = {"status": str(job.status)}
    for name, default in _DEFAULTS.items():
        value = getattr(job, name)
        if value != default and name != "status":
            data[name] = value
    progress = job.provider_state.get("progress")
    if progress:
        data["progress"] = progress
    return data


def job_at(current: Job, event: JobEvent) -> Job:
    """The job as it was at ``event`` (a status event), from the job as it is now."""
    snap = event.snapshot
    if snap is None:  # written before snapshots existed (migration 0007): what the event says
        return _from_event_data(current, event.data)
    changes: dict[str, Any] = {name: snap.get(name, default) for name, default in _DEFAULTS.items()}
    changes["status"] = JobStatus(snap["status"])
    changes["provider_state"] = {"progress": snap["progress"]} if "progress" in snap else {}
    return dataclasses.replace(current, **changes)


def _from_event_data(current: Job, data: dict[str, Any]) -> Job:
    error = data.get("error") or {}
    return dataclasses.replace(
        current,
        status=JobStatus(data["status"]),
        attempt=int(data.get("attempt", current.attempt)),
        error_code=error.get("code"),
        error_detail=error.get("detail"),
    )


def status_data(job: Job) -> dict[str, Any]:
    """The data of a status event moving ``job`` to its status."""
    data: dict[str, Any] = {"status": str(job.status), "attempt": job.attempt}
    if job.error_code:
        data["error"] = {"code": job.error_code, "detail": job.error_detail}
    return data
