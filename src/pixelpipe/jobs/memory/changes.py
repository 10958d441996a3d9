"""Changing jobs in memory: guarded status transitions, field updates and deletion."""

from __future__ import annotations

import time
from collections.abc import Iterable
from typing import Any

from pixelpipe.errors import ConfigError
from pixelpipe.jobs.memory.base import MemoryStoreBase
from pixelpipe.jobs.memory.slots import wake_next_in_line
from pixelpipe.jobs.memory.tables import MemoryTables, StoredJob, copied
from pixelpipe.jobs.model import Job, JobStatus
from pixelpipe.jobs.rules import check_deletable, transition_values
from pixelpipe.jobs.slots import frees_slot
from pixelpipe.jobs.snapshots import status_data
from pixelpipe.jobs.store import Deletion


class MemoryJobChanges(MemoryStoreBase):
    async def transition(
        self,
        job_id: str,
        expected: JobStatus | Iterable[JobStatus],
        target: JobStatus,
        *,
        owner: str | None = None,
        event: dict[str, Any] | None = None,
        entry: dict[str, Any] | None = None,
        **fields: Any,
    ) -> Job | None:
        if entry is not None:
            raise ConfigError(
                "the in-memory job store cannot write a SQL ledger's entry in its transaction: "
                "pair it with the in-memory ledger (its pending_values() is None)"
            )
        now = time.time()
        allowed, values = transition_values(expected, target, fields, now)
        stored = self._held(job_id, owner)
        if stored is None or stored.job.status not in allowed:
            return None
        moved = move_stored(self._tables, stored, allowed, values, event=event, now=now)
        await self._wake(job_id)
        return moved

    async def update(self, job_id: str, *, owner: str | None = None, **fields: Any) -> bool:
        stored = self._held(job_id, owner)
        if stored is None:
            return False
        self._tables.set_fields(stored, {**fields, "updated_at": time.time()})
        return True

    async def delete(self, job_id: str) -> Deletion:
        """Ledger entries are never touched: the money history stays."""
        t = self._tables
        stored = t.jobs.get(job_id)
        if stored is None:
            gone = any(e.type == "deleted" for e in t.events.get(job_id, ()))
            return Deletion(found=gone, already=gone)
        job = stored.job
        check_deletable(job)
        t.drop(job_id)
        t.add_event(job_id, "deleted", {}, time.time())
        if any(other.job.content_key == job.content_key for other in t.jobs.values()):
            return Deletion(found=True)  # the image is shared: it stays
        keys = {job.storage_key, job.thumb_key}
        image = t.images.pop(job.content_key, None)
        if image is not None:
            keys |= {image.storage_key, image.thumb_key}
        orphaned = tuple(sorted(k for k in keys if k))
        return Deletion(found=True, orphaned=orphaned, content_key=job.content_key)

    def _held(self, job_id: str, owner: str | None) -> StoredJob | None:
        """The stored job, when it exists and ``owner`` (when given) holds its lease."""
        stored = self._tables.jobs.get(job_id)
        if stored is None or (owner is not None and stored.job.lease_owner != owner):
            return None
        return stored


def move_stored(
    tables: MemoryTables,
    stored: StoredJob,
    allowed: list[JobStatus],
    values: dict[str, Any],
    *,
    event: dict[str, Any] | None,
    now: float,
) -> Job:
    """The transition of ``stored`` (its status one of ``allowed``) and its status event: the
    SQL store's ``move_job``. A job leaving submitting/waiting frees its backend's slot: the
    first sleeper in that backend's line wakes."""
    if frees_slot(allowed, JobStatus(values["status"])):
        wake_next_in_line(tables, stored.job, now)
    tables.set_fields(stored, values)
    data = {**status_data(stored.job), **(event or {})}
    tables.add_event(stored.job.id, "status", data, now, stored.job)
    return copied(stored.job)
