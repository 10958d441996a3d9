"""The in-memory job store's tables: plain dicts, with the SQL tables' unique keys as indexes.

Every method runs without awaiting, so on one event loop each is atomic (what a transaction is to
the SQL store). Jobs and event data are copied in and out: a caller changing a returned ``Job``
changes nothing stored, as with rows read from a database.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any

from pixelpipe.errors import Conflict
from pixelpipe.jobs.model import ImageRecord, Job, JobEvent, JobStatus
from pixelpipe.jobs.snapshots import snapshot


@dataclass(slots=True)
class StoredJob:
    """A job row: the job and the columns only the store sees."""

    job: Job
    fingerprint: str | None  # the request fingerprint its Idempotency-Key was used with
    inflight_key: str | None  # the content key while single flight holds it


@dataclass(slots=True)
class MemoryTables:
    jobs: dict[str, StoredJob] = field(default_factory=dict)
    by_idempotency_key: dict[str, str] = field(default_factory=dict)  # key -> job id
    in_flight: dict[str, str] = field(default_factory=dict)  # content key -> job id
    # an Idempotency-Key that attached to another request's job -> (job id, fingerprint)
    aliases: dict[str, tuple[str, str | None]] = field(default_factory=dict)
    events: dict[str, list[JobEvent]] = field(default_factory=dict)  # job id -> its events
    status_feed: dict[int, JobEvent] = field(default_factory=dict)  # id -> status event
    last_event_id: int = 0
    images: dict[str, ImageRecord] = field(default_factory=dict)
    deliveries: set[tuple[str, str]] = field(default_factory=set)
    pauses: dict[str, tuple[float, str | None]] = field(default_factory=dict)  # target -> when, why

    def insert(self, job: Job, fingerprint: str | None, inflight_key: str | None) -> None:
        if job.id in self.jobs:
            raise Conflict(f"job {job.id} exists already")
        stored = StoredJob(copy.deepcopy(job), fingerprint, inflight_key)
        self.jobs[job.id] = stored
        if job.idempotency_key:
            self.by_idempotency_key[job.idempotency_key] = job.id
        if inflight_key is not None:
            self.in_flight[inflight_key] = job.id

    def drop(self, job_id: str) -> StoredJob:
        """Remove a job with its events and the keys that point at it."""
        stored = self.jobs.pop(job_id)
        key = stored.job.idempotency_key
        if key and self.by_idempotency_key.get(key) == job_id:
            del self.by_idempotency_key[key]
        self._free_inflight(stored)
        self.aliases = {k: v for k, v in self.aliases.items() if v[0] != job_id}
        for event in self.events.pop(job_id, []):
            self.status_feed.pop(event.id, None)
        return stored

    def set_fields(self, stored: StoredJob, fields: dict[str, Any]) -> None:
        """Set columns of a stored job, as an UPDATE would."""
        for name, value in fields.items():
            if name == "inflight_key":
                self._free_inflight(stored)
                stored.inflight_key = value
                if value is not None:
                    self.in_flight[value] = stored.job.id
            elif name == "request_fingerprint":
                stored.fingerprint = value
            elif name == "status":
                stored.job.status = JobStatus(value)
            else:
                setattr(stored.job, name, copy.deepcopy(value))

    def add_event(
        self, job_id: str, type_: str, data: dict[str, Any], now: float, job: Job | None = None
    ) -> JobEvent:
        """Append an event; a status event (``job`` given) keeps the job as it is now."""
        self.last_event_id += 1
        snap = copy.deepcopy(snapshot(job)) if job is not None else None
        event = JobEvent(self.last_event_id, job_id, type_, copy.deepcopy(data), now, snap)
        self.events.setdefault(job_id, []).append(event)
        if type_ == "status":
            self.status_feed[event.id] = event
        return event

    def _free_inflight(self, stored: StoredJob) -> None:
        key = stored.inflight_key
        if key is not None and self.in_flight.get(key) == stored.job.id:
            del self.in_flight[key]
        stored.inflight_key = None


def copied(job: Job) -> Job:
    """A job as handed out: the caller's own copy."""
    return copy.deepcopy(job)
