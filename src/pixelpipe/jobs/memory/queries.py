"""Reading jobs in memory: by id, the newest-first list, by provider run, counts per status."""

from __future__ import annotations

from collections import Counter

from pixelpipe.jobs.listing import JobFilter, keeps, sort_key
from pixelpipe.jobs.memory.base import MemoryStoreBase
from pixelpipe.jobs.memory.tables import copied
from pixelpipe.jobs.model import Job


class MemoryJobQueries(MemoryStoreBase):
    async def get(self, job_id: str) -> Job | None:
        stored = self._tables.jobs.get(job_id)
        return copied(stored.job) if stored is not None else None

    async def list_jobs(
        self,
        *,
        before: str | None = None,
        limit: int = 30,
        model: str | None = None,
        query: str | None = None,
        group: str | None = None,
        status: str | None = None,
        where: JobFilter | None = None,
    ) -> list[Job]:
        wanted = query.lower() if query else None
        found: list[Job] = []
        for job_id in self._ordered(where):
            if len(found) == limit:
                break
            job = self._tables.jobs[job_id].job
            if (
                (not before or job.id < before)
                and (not model or job.model == model)
                and (not group or job.group_id == group)
                and (not status or job.status == status)
                and (wanted is None or wanted in job.request.prompt.lower())
                and (where is None or keeps(where, job))
            ):
                found.append(copied(job))
        return found

    def _ordered(self, where: JobFilter | None) -> list[str]:
        if where is None or where.sort == "newest":
            return sorted(self._tables.jobs, reverse=True)
        table = self._tables.jobs
        keys = {job_id: sort_key(s.job, where.sort) for job_id, s in table.items()}
        return sorted(keys, key=keys.__getitem__, reverse=where.sort == "cost_desc")

    async def find_by_provider_job(self, provider: str, provider_job_id: str) -> Job | None:
        matches = [
            s.job.id
            for s in self._tables.jobs.values()
            if s.job.provider == provider and s.job.provider_job_id == provider_job_id
        ]
        return copied(self._tables.jobs[max(matches)].job) if matches else None

    async def count_by_status(self) -> dict[str, int]:
        return dict(Counter(str(s.job.status) for s in self._tables.jobs.values()))
