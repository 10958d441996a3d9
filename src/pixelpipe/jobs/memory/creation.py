"""Creating jobs in memory: idempotency keys, single flight, admission and cache hits."""

from __future__ import annotations

import time
from typing import Any

from pixelpipe.errors import ConfigError
from pixelpipe.jobs.memory.base import MemoryStoreBase
from pixelpipe.jobs.memory.changes import move_stored
from pixelpipe.jobs.memory.tables import copied
from pixelpipe.jobs.model import Job, JobStatus
from pixelpipe.jobs.rules import check_fingerprint, transition_values
from pixelpipe.jobs.snapshots import status_data
from pixelpipe.jobs.store import Admission, Opening
from pixelpipe.ledger.base import Reservation


class MemoryJobCreation(MemoryStoreBase):
    async def create(
        self, job: Job, *, single_flight: bool, fingerprint: str | None = None
    ) -> tuple[Job, bool]:
        inflight = job.content_key if single_flight and not job.status.terminal else None
        existing = self._insert_unless_taken(job, single_flight, fingerprint, inflight)
        if existing is not None:
            return existing, False
        await self._wake(job.id)
        return job, True

    async def admit(
        self,
        job: Job,
        *,
        fingerprint: str | None = None,
        guard: Reservation | None = None,
        opening: Opening | None = None,
    ) -> Admission:
        if guard is not None or (opening is not None and opening.entry is not None):
            raise ConfigError(
                "the in-memory job store cannot make a SQL ledger's reservation or entry in its "
                "transaction: pair it with the in-memory ledger (its reservation() and "
                "pending_values() are None)"
            )
        image = self._tables.images.get(job.content_key)
        if image is not None:
            return Admission(job, created=False, image=image)
        existing = self._insert_unless_taken(job, True, fingerprint, job.content_key)
        if existing is not None:
            return Admission(existing, created=False)
        if opening is not None:  # no await since the insert: nothing came between
            job = self._opened(job, opening)
        await self._wake(job.id)
        return Admission(job, created=True)

    def _opened(self, job: Job, opening: Opening) -> Job:
        """The job just inserted, moved on to submitting (the SQL store's ``_opened``)."""
        now = time.time()
        allowed, values = transition_values(
            JobStatus.QUEUED, JobStatus.SUBMITTING, opening.fields, now
        )
        stored = self._tables.jobs[job.id]
        return move_stored(self._tables, stored, allowed, values, event=None, now=now)

    async def create_cache_hit(
        self, job: Job, *, fingerprint: str | None = None, entry: dict[str, Any] | None = None
    ) -> tuple[Job, bool] | None:
        if entry is not None:
            raise ConfigError(
                "the in-memory job store cannot write a SQL ledger's entry in its transaction: "
                "pair it with the in-memory ledger (its entry_values() is None)"
            )
        if job.content_key not in self._tables.images:
            return None  # deleted since the caller saw it
        existing = self._insert_unless_taken(job, False, fingerprint, None)
        if existing is not None:
            return existing, False
        await self._wake(job.id)
        return job, True

    def _insert_unless_taken(
        self, job: Job, single_flight: bool, fingerprint: str | None, inflight: str | None
    ) -> Job | None:
        """The earlier job this request attaches to, or None after inserting ``job`` with its
        first status event."""
        existing = self._existing(job, single_flight, fingerprint)
        if existing is not None:
            return copied(existing)
        self._tables.insert(job, fingerprint, inflight)
        self._tables.add_event(job.id, "status", status_data(job), job.created_at, job)
        return None

    def _existing(self, job: Job, single_flight: bool, fingerprint: str | None) -> Job | None:
        t = self._tables
        if job.idempotency_key:
            found = self._by_idempotency_key(job.idempotency_key, fingerprint)
            if found is not None:
                return found
        if single_flight and job.content_key in t.in_flight:
            job_id = t.in_flight[job.content_key]
            if job.idempotency_key:  # remember where this key went (a retry must find it)
                t.aliases[job.idempotency_key] = (job_id, fingerprint)
            return t.jobs[job_id].job
        return None

    def _by_idempotency_key(self, key: str, fingerprint: str | None) -> Job | None:
        t = self._tables
        job_id = t.by_idempotency_key.get(key)
        used_with = t.jobs[job_id].fingerprint if job_id is not None else None
        if job_id is None and key in t.aliases:  # attached to another request's job
            job_id, used_with = t.aliases[key]
        stored = t.jobs.get(job_id) if job_id is not None else None
        if stored is None:
            return None
        check_fingerprint(fingerprint, used_with)
        return stored.job
