"""Job events in memory: ids that only grow, status events with the job's snapshot."""

from __future__ import annotations

import copy
import dataclasses
import time
from typing import Any

from pixelpipe.jobs.memory.base import MemoryStoreBase
from pixelpipe.jobs.memory.tables import copied
from pixelpipe.jobs.model import Job, JobEvent


class MemoryJobEvents(MemoryStoreBase):
    async def add_event(self, job_id: str, type_: str, data: dict[str, Any]) -> None:
        self._tables.add_event(job_id, type_, data, time.time())
        await self._wake(job_id)

    async def events_since(self, job_id: str, after_id: int = 0) -> list[JobEvent]:
        events = self._tables.events.get(job_id, [])
        return copy.deepcopy([e for e in events if e.id > after_id])

    async def events_with_job(
        self, job_id: str, after_id: int
    ) -> tuple[list[JobEvent], Job | None]:
        events = await self.events_since(job_id, after_id)
        if not any(ev.type == "status" for ev in events):
            return events, None
        stored = self._tables.jobs.get(job_id)
        return events, copied(stored.job) if stored is not None else None

    async def status_events_after(self, after_id: int, *, limit: int = 500) -> list[JobEvent]:
        found: list[JobEvent] = []
        for event_id, event in self._tables.status_feed.items():  # in id order
            if len(found) == limit:
                break
            if event_id > after_id:  # the feed needs no job: no snapshot
                data = copy.deepcopy(event.data)
                found.append(dataclasses.replace(event, data=data, snapshot=None))
        return found

    async def last_event_id(self) -> int:
        return self._tables.last_event_id
