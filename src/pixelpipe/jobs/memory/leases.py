"""Leases in memory: claims, heartbeats, hand-back, and the sweeper's and scheduler's queries."""

from __future__ import annotations

import time
from typing import Any

from pixelpipe.jobs.memory.base import MemoryStoreBase
from pixelpipe.jobs.memory.tables import StoredJob, copied
from pixelpipe.jobs.model import ACTIVE, RUNNABLE, Job, JobStatus
from pixelpipe.jobs.order import Candidate, crash_reason, ranked, running_per_key


class MemoryLeases(MemoryStoreBase):
    async def claim_due(
        self, owner: str, *, limit: int, lease_s: float, poison_after: int = 0
    ) -> list[Job]:
        now = time.time()
        everyone = [s.job for s in self._tables.jobs.values()]
        paused = set(self._tables.pauses)
        due = [j for j in everyone if _is_due(j, now, paused) and _free(j, now)]
        order = ranked(map(Candidate.of, due), running_per_key(everyone, now))
        claimed = []
        for job_id in order[:limit]:
            stored = self._tables.jobs[job_id]
            if self._crashed_too_often(stored, now, poison_after):
                continue
            claimed.append(self._lease(stored, owner, now + lease_s))
        return claimed

    async def claim(
        self, job_id: str, owner: str, *, lease_s: float, poison_after: int = 0
    ) -> Job | None:
        now = time.time()
        stored = self._tables.jobs.get(job_id)
        if stored is None or stored.job.status not in RUNNABLE or not _free(stored.job, now):
            return None
        if stored.job.held_at is not None or self._crashed_too_often(stored, now, poison_after):
            return None
        return self._lease(stored, owner, now + lease_s)

    def _crashed_too_often(self, stored: StoredJob, now: float, poison_after: int) -> bool:
        """Count a crash when the job's last lease lapsed mid-step; quarantine it at
        ``poison_after`` crashes (0: never)."""
        job = stored.job
        if job.lease_owner is None:
            return False
        job.crashes += 1
        if poison_after <= 0 or job.crashes < poison_after:
            return False
        reason = crash_reason(job.status, job.provider, job.crashes)
        held = {"held_at": now, "held_reason": reason, "next_run_at": None}
        self._tables.set_fields(stored, {**held, "lease_owner": None, "lease_expires_at": None})
        self._tables.add_event(job.id, "quarantined", {"reason": reason}, now)
        return True

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
        late = [j for j in jobs if j.status in ACTIVE and j.deadline_at < now and not j.held_at]
        silent = [j for j in jobs if _silent(j, now)]
        return [copied(j) for j in late[:limit]], [copied(j) for j in silent[:limit]]

    async def next_due_at(self) -> float | None:
        paused = set(self._tables.pauses)
        times = [
            _due_at(s.job)
            for s in self._tables.jobs.values()
            if s.job.status in RUNNABLE
            and not (s.job.status is JobStatus.QUEUED and s.job.provider in paused)
        ]
        known = [t for t in times if t is not None]
        return min(known) if known else None

    def _lease(self, stored: StoredJob, owner: str, until: float) -> Job:
        stored.job.lease_owner, stored.job.lease_expires_at = owner, until
        return copied(stored.job)


def _is_due(job: Job, now: float, paused: set[str]) -> bool:
    if job.status is JobStatus.QUEUED and job.provider in paused:
        return False  # its provider is paused: a queued job waits (running ones go on)
    return job.status in RUNNABLE and job.next_run_at is not None and job.next_run_at <= now


def _free(job: Job, now: float) -> bool:
    """Not leased, or its lease has expired."""
    return job.lease_expires_at is None or job.lease_expires_at < now


def _silent(job: Job, now: float) -> bool:
    """Waiting past its webhook deadline, with no poll scheduled before now."""
    return (
        job.status is JobStatus.WAITING
        and job.held_at is None
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
