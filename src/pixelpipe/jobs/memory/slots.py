"""Backend slots in memory (:mod:`pixelpipe.jobs.slots`): one process, so each call is atomic."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Iterable
from typing import Any

from pixelpipe.jobs.memory.base import MemoryStoreBase
from pixelpipe.jobs.memory.tables import MemoryTables, StoredJob, copied
from pixelpipe.jobs.model import HOLDING, Job, JobStatus
from pixelpipe.jobs.order import key_of
from pixelpipe.jobs.rules import transition_values
from pixelpipe.jobs.slots import (
    LINE_REFRESH,
    InLine,
    SlotRequest,
    SlotUse,
    has_turn,
    holds_slot,
    in_line,
    kept_place,
    line_order,
    line_progress,
    recheck_after_s,
    taking_slot,
)
from pixelpipe.jobs.snapshots import status_data

_S = JobStatus


class MemoryBackendSlots(MemoryStoreBase):
    async def start_in_slot(
        self,
        job: Job,
        owner: str,
        want: SlotRequest,
        *,
        event: dict[str, Any] | None = None,
        **fields: Any,
    ) -> Job | InLine | None:
        now = time.time()
        stored = self._tables.jobs.get(job.id)
        if stored is None or stored.job.status is not _S.QUEUED or stored.job.lease_owner != owner:
            return None
        if want.backend in self._tables.pauses:
            return None  # paused by an operator: it waits (docs/queue.md)
        current = stored.job
        busy = sum(1 for s in self._tables.jobs.values() if holds_slot(s.job, want.backend))
        kept = kept_place(current, busy, want.slots)
        if kept is not None:
            return self._join_line(stored, want, kept, now)
        ahead = len(line_ahead(self._tables, current, want.backend))
        if not has_turn(busy, ahead, want.slots):
            return self._join_line(stored, want, ahead + 1, now)
        was_in_line = current.slot_wait_since is not None
        _, values = transition_values(_S.QUEUED, _S.SUBMITTING, taking_slot(current, fields), now)
        self._tables.set_fields(stored, values)
        data = {**status_data(current), **(event or {})}
        self._tables.add_event(job.id, "status", data, now, current)
        told = self._tell_places(want.backend, now) if was_in_line else []
        for job_id in [job.id, *told]:
            await self._wake(job_id)
        return copied(current)

    async def line_position(self, job: Job) -> int | None:
        stored = self._tables.jobs.get(job.id)
        if stored is None or not in_line(stored.job) or not stored.job.provider:
            return None
        return len(line_ahead(self._tables, stored.job, stored.job.provider)) + 1

    async def line_ids(self, backend: str) -> list[str]:
        return [j.id for j in line_ahead(self._tables, None, backend)]

    def _tell_places(self, backend: str, now: float) -> list[str]:
        """The line moved up: the first jobs in it get their new places (those that changed)."""
        told = []
        line = line_ahead(self._tables, None, backend)[:LINE_REFRESH]
        for position, job in enumerate(line, 1):
            if (job.provider_state.get("progress") or {}).get("queue_position") == position:
                continue
            job.provider_state = line_progress(job.provider_state, backend, position)
            job.updated_at = now
            self._tables.add_event(job.id, "progress", job.provider_state["progress"], now)
            told.append(job.id)
        return told

    async def slot_use(self, backends: Iterable[str]) -> dict[str, SlotUse]:
        use = {}
        for name in sorted(set(backends)):
            jobs = [s.job for s in self._tables.jobs.values() if s.job.provider == name]
            busy = sum(1 for j in jobs if j.status in HOLDING and j.held_at is None)
            use[name] = SlotUse(busy, sum(1 for j in jobs if _in_line(j, name)))
        return use

    def _join_line(self, stored: StoredJob, want: SlotRequest, position: int, now: float) -> InLine:
        job = stored.job
        since = job.slot_wait_since if job.slot_wait_since is not None else now
        state = line_progress(job.provider_state, want.backend, position)
        if state["progress"] != job.provider_state.get("progress"):
            self._tables.add_event(job.id, "progress", state["progress"], now)
        self._tables.set_fields(
            stored,
            {
                "slot_wait_since": since,
                "next_run_at": now + recheck_after_s(position, want.slots),
                "provider_state": state,
                "updated_at": now,
            },
        )
        return InLine(position, since)


def wake_next_in_line(tables: MemoryTables, freed: Job, now: float) -> None:
    """``freed`` leaves submitting/waiting: the first sleeper of its backend's line (in the order
    it has once ``freed`` left its slot) wakes."""
    if freed.status not in HOLDING or freed.provider is None:
        return
    line = line_ahead(tables, None, freed.provider, gone=freed.id)
    sleepers = [j for j in line if (j.next_run_at or 0.0) > now]
    if sleepers:
        sleepers[0].next_run_at = now


def line_ahead(tables: MemoryTables, job: Job | None, backend: str, *, gone: str = "") -> list[Job]:
    """The jobs in ``backend``'s line before ``job`` (all of them for None), first first, in
    :func:`~pixelpipe.jobs.slots.line_order` (``gone``: a run leaving its slot, not counted)."""
    line = [s.job for s in tables.jobs.values() if _in_line(s.job, backend)]
    if job is not None and not any(j.id == job.id for j in line):
        line.append(job)  # not in line yet: it would join it last among its equals
    holding = Counter(
        key_of(s.job)
        for s in tables.jobs.values()
        if holds_slot(s.job, backend) and s.job.id != gone
    )
    ordered = line_order(line, holding)
    if job is None:
        return ordered
    return ordered[: next(i for i, j in enumerate(ordered) if j.id == job.id)]


def _in_line(job: Job, backend: str) -> bool:
    return (
        job.provider == backend
        and job.status is _S.QUEUED
        and job.slot_wait_since is not None
        and job.held_at is None
    )
