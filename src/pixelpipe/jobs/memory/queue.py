"""The queue's controls in memory (:class:`pixelpipe.jobs.store.QueueControl`)."""

from __future__ import annotations

import time

from pixelpipe.jobs.memory.base import MemoryStoreBase
from pixelpipe.jobs.memory.tables import copied
from pixelpipe.jobs.model import Job, JobStatus
from pixelpipe.jobs.order import Candidate, in_flight, ranked, running_per_key
from pixelpipe.jobs.store import Pause, Waiting


class MemoryQueueControl(MemoryStoreBase):
    async def waiting_order(self) -> list[Waiting]:
        now = time.time()
        everyone = [s.job for s in self._tables.jobs.values()]
        waiting = {j.id: j for j in everyone if _waiting(j, now)}
        order = ranked(map(Candidate.of, waiting.values()), running_per_key(everyone, now))
        return [Waiting(i, waiting[i].provider, waiting[i].api_key_id) for i in order]

    async def jobs_by_ids(self, ids: list[str]) -> list[Job]:
        return [copied(self._tables.jobs[i].job) for i in ids if i in self._tables.jobs]

    async def in_flight(self, *, limit: int = 500) -> list[Job]:
        now = time.time()
        running = [s.job for s in self._tables.jobs.values() if in_flight(s.job, now)]
        running.sort(key=lambda j: (j.submitted_at or j.created_at, j.id))
        return [copied(j) for j in running[:limit]]

    async def set_priority(self, job_id: str, priority: int) -> Job | None:
        stored = self._tables.jobs.get(job_id)
        if stored is None or stored.job.status is not JobStatus.QUEUED:
            return None
        now = time.time()
        self._tables.set_fields(stored, {"priority": priority, "updated_at": now})
        self._tables.add_event(job_id, "priority", {"priority": priority}, now)
        await self._wake(job_id)
        return copied(stored.job)

    async def held_jobs(self, *, limit: int = 500) -> list[Job]:
        held = [s.job for s in self._tables.jobs.values() if _held(s.job)]
        held.sort(key=lambda j: (j.held_at or 0.0, j.id))
        return [copied(j) for j in held[:limit]]

    async def release_held(self, job_id: str) -> Job | None:
        stored = self._tables.jobs.get(job_id)
        if stored is None or not _held(stored.job):
            return None
        now = time.time()
        released = {"held_at": None, "held_reason": None, "crashes": 0, "next_run_at": now}
        self._tables.set_fields(stored, {**released, "updated_at": now})
        self._tables.add_event(job_id, "released", {"by": "operator"}, now)
        await self._wake(job_id)
        return copied(stored.job)

    async def pause(self, target: str, reason: str | None = None) -> Pause:
        when, why = self._tables.pauses.setdefault(target, (time.time(), reason))
        return Pause(target, when, why)

    async def resume(self, target: str) -> bool:
        if self._tables.pauses.pop(target, None) is None:
            return False
        now = time.time()
        for stored in self._tables.jobs.values():
            job = stored.job
            if job.provider == target and _waiting(job, now) and (job.next_run_at or 0) > now:
                job.next_run_at = now
        return True

    async def is_paused(self, target: str) -> bool:
        return target in self._tables.pauses

    async def pauses(self) -> dict[str, Pause]:
        return {t: Pause(t, when, why) for t, (when, why) in self._tables.pauses.items()}


def _held(job: Job) -> bool:
    return job.held_at is not None and not job.status.terminal


def _waiting(job: Job, now: float) -> bool:
    """Queued, not held, not claimed."""
    return job.status is JobStatus.QUEUED and job.held_at is None and not in_flight(job, now)
