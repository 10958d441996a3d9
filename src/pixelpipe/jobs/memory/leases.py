"""Leases in memory: claims, heartbeats, hand-back, and the sweeper's and scheduler's queries."""

from __future__ import annotations

import time
from typing import Any

from pixelpipe.jobs.memory.base import MemoryStoreBase
from pixelpipe.jobs.memory.tables import StoredJob, copied
from pixelpipe.jobs.model import ACTIVE, RUNNABLE, Job, JobStatus


class MemoryLeases(MemoryStoreBase):
    async def claim_due(self, owner: str, *, limit: int, lease_s: float) -> list[Job]:
        now = time.time()
        due = [s for s in self._tables.jobs.values() if _is_due(s.job, now) and _free(s.job, now)]
        due.sort(key=lambda s: s.job.next_run_at or 0.0)
        return [self._lease(s, owner, now + lease_s) for s in due[:limit]]

    async def claim(self, job_id: str, owner: str, *, lease_s: float) -> Job | None:
        now = time.time()
        stored = self._tables.jobs.get(job_id)
        if stored is None or stored.job.status not in RUNNABLE or not _free(stored.job, now):
            return None
        return self._lease(stored, owner, now + lease_s)

    async def renew_leases(self, job_ids: list[str], owner: str, lease_s: float) -> int:
        until = time.time() + lease_s
        renewed = 0
        for job_id in job_ids:
            stored = self._tables.jobs.get(job_id)
            if stored is not None and stored.job.lease_owner == owner:
                stored.job.lease_expires_at = until
                renewed += 1
        return renewed

    async def release(self, job_id: str, owner: str, **fields: Any) -> None:
        stored = self._tables.jobs.get(job_id)
        if stored is not None and stored.job.lease_owner == owner:
            released = {"lease_owner": None, "lease_expires_at": None, **fields}
            self._tables.set_fields(stored, {**released, "updated_at": time.time()})

    async def release_all(self, owner: str) -> int:
        held = [s.job for s in self._tables.jobs.values() if s.job.lease_owner == owner]
        for job in held:
            job.lease_owner = job.lease_expires_at = None
        return len(held)

    async def overdue(self, now: float, *, limit: int = 500) -> tuple[list[Job], list[Job]]:
        jobs = [s.job for s in self._tables.jobs.values()]
        late = [j for j in jobs if j.status in ACTIVE and j.deadline_at < now]
        silent = [j for j in jobs if _silent(j, now)]
        return [copied(j) for j in late[:limit]], [copied(j) for j in silent[:limit]]

    async def next_due_at(self) -> float | None:
        times = [_due_at(s.job) for s in self._tables.jobs.values() if s.job.status in RUNNABLE]
        known = [t for t in times if t is not None]
        return min(known) if known else None

    def _lease(self, stored: StoredJob, owner: str, until: float) -> Job:
        stored.job.lease_owner, stored.job.lease_expires_at = owner, until
        return copied(stored.job)


def _is_due(job: Job, now: float) -> bool:
    return job.status in RUNNABLE and job.next_run_at is not None and job.next_run_at <= now


def _free(job: Job, now: float) -> bool:
    """Not leased, or its lease has expired."""
    return job.lease_expires_at is None or job.lease_expires_at < now


def _silent(job: Job, now: float) -> bool:
    """Waiting past its webhook deadline, with no poll scheduled before now."""
    return (
        job.status is JobStatus.WAITING
        and job.webhook_deadline_at is not None
        and job.webhook_deadline_at < now
        and (job.next_run_at is None or job.next_run_at > now)
    )


def _due_at(job: Job) -> float | None:
    """When a runnable job is due: a leased one not before its lease ends."""
    lease, due = job.lease_expires_at, job.next_run_at
    if lease is not None and due is not None and lease > due:
        return lease
    return due
