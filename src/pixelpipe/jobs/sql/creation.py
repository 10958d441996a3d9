"""Creating jobs in SQL: idempotency keys, single flight, admission and cache hits.

``create`` without single flight or an idempotency key appends in bulk (group commit); the others
look for the job they attach to and insert in one unit of work, retried when a concurrent
insert of the same key wins the race (the unique ``inflight_key``/``idempotency_key`` columns).
"""

from __future__ import annotations

import dataclasses
import time
from typing import Any

from sqlalchemy import Connection, insert
from sqlalchemy.exc import IntegrityError

from pixelpipe.compiled_sql import first_row, insert_row
from pixelpipe.jobs.model import Job, JobStatus
from pixelpipe.jobs.rows import job_to_row, row_to_image, row_to_job
from pixelpipe.jobs.rules import check_fingerprint, transition_values
from pixelpipe.jobs.snapshots import status_data
from pixelpipe.jobs.sql.base import SqlStoreBase, event_row, write_event
from pixelpipe.jobs.sql.statements import (
    ALIAS_BY_KEY,
    IMAGE_BY_KEY,
    IMAGE_SHARED,
    JOB_BY_ID,
    JOB_BY_IDEMPOTENCY,
    JOB_IN_FLIGHT,
)
from pixelpipe.jobs.store import Admission, Opening
from pixelpipe.jobs.tables import idempotency_aliases, images, job_events, jobs
from pixelpipe.ledger.base import Reservation
from pixelpipe.ledger.sql.ledger import insert_entry
from pixelpipe.ledger.sql.reserve import make_reservation
from pixelpipe.ledger.tables import ledger_entries

_GONE = object()  # a cache hit's image was deleted before the hit could reference it


class SqlJobCreation(SqlStoreBase):
    async def create(
        self, job: Job, *, single_flight: bool, fingerprint: str | None = None
    ) -> tuple[Job, bool]:
        row = job_to_row(job)
        row["request_fingerprint"] = fingerprint
        row["inflight_key"] = job.content_key if single_flight and not job.status.terminal else None
        if not single_flight and not job.idempotency_key:
            try:  # nothing to look up: a fresh id cannot collide, so append in bulk
                event = event_row(job.id, "status", status_data(job), job.created_at, job)
                await self.db.append([(jobs, row), (job_events, event)])
            except IntegrityError:
                pass  # fall through to the checked path
            else:
                await self._wake(job.id)
                return job, True

        def work(conn: Connection) -> Job | None:
            return _insert_unless_taken(conn, job, row, single_flight, fingerprint)

        existing = await self._write_racing(work)
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
        """One unit of work, one commit: the image lookup, the attach, the reservation (its
        refusal rolls the unit back), the job row and its ``opening``, instead of a read and
        two or three writes."""
        row = job_to_row(job)
        row["request_fingerprint"] = fingerprint
        row["inflight_key"] = job.content_key

        def work(conn: Connection) -> Admission:
            found = first_row(conn, IMAGE_BY_KEY, images, {"w_key": job.content_key})
            if found is not None:
                return Admission(job, created=False, image=row_to_image(found))
            existing = _existing(conn, job, True, fingerprint)
            if existing is not None:
                return Admission(existing, created=False)
            if opening is None:
                _insert_new(conn, job, row, guard)
                return Admission(job, created=True)
            return Admission(_insert_opened(conn, job, row, opening, guard), created=True)

        admission = await self._write_racing(work)
        if admission.image is not None:
            self._images[job.content_key] = admission.image
        if admission.created:
            await self._wake(job.id)
        return admission

    async def create_cache_hit(
        self, job: Job, *, fingerprint: str | None = None, entry: dict[str, Any] | None = None
    ) -> tuple[Job, bool] | None:
        """The image is checked under a share lock in the same unit of work as the insert (and
        the ledger ``entry``, when given)."""
        row = job_to_row(job)
        row["request_fingerprint"] = fingerprint
        row["inflight_key"] = None
        params = {"w_key": job.content_key}

        def work(conn: Connection) -> Job | object | None:
            if first_row(conn, IMAGE_SHARED, images, params) is None:
                return _GONE
            existing = _insert_unless_taken(conn, job, row, False, fingerprint)
            if existing is None and entry is not None:
                insert_row(conn, ledger_entries, entry)
            return existing

        existing = await self._write_racing(work)
        if existing is _GONE:
            self._images.discard(job.content_key)
            return None
        if isinstance(existing, Job):
            return existing, False
        await self._wake(job.id)
        return job, True


def _insert_opened(
    conn: Connection, job: Job, row: dict[str, Any], opening: Opening, guard: Reservation | None
) -> Job:
    """Make the reservation ``guard``; insert ``job`` (``row``) as its move to submitting would
    leave it — one INSERT, not an INSERT and an UPDATE — with both status events (queued, then
    submitting: as the move writes them) and the attempt's pending ledger row."""
    now = time.time()
    _, values = transition_values(JobStatus.QUEUED, JobStatus.SUBMITTING, opening.fields, now)
    moved = dataclasses.replace(job, **{**values, "status": JobStatus.SUBMITTING})
    _insert_new(conn, job, {**row, **values}, guard)
    write_event(conn, job.id, "status", status_data(moved), now, moved)
    if opening.entry is not None:
        insert_entry(conn, opening.entry)
    return moved


def _insert_unless_taken(
    conn: Connection,
    job: Job,
    row: dict[str, Any],
    single_flight: bool,
    fingerprint: str | None,
    guard: Reservation | None = None,
) -> Job | None:
    """The earlier job this request attaches to, or None after making the reservation ``guard``
    and inserting ``row`` with its first status event."""
    existing = _existing(conn, job, single_flight, fingerprint)
    if existing is None:
        _insert_new(conn, job, row, guard)
    return existing


def _insert_new(conn: Connection, job: Job, row: dict[str, Any], guard: Reservation | None) -> None:
    """Make the reservation ``guard``, insert ``row`` (``job``'s) and its first status event
    (``job`` as it was created: queued)."""
    if guard is not None:
        make_reservation(conn, guard, new_job=True)  # its row goes in just below
    insert_row(conn, jobs, row)
    write_event(conn, job.id, "status", status_data(job), job.created_at, job)


def _existing(
    conn: Connection, job: Job, single_flight: bool, fingerprint: str | None
) -> Job | None:
    if job.idempotency_key:
        found = _by_idempotency_key(conn, job.idempotency_key, fingerprint)
        if found is not None:
            return found
    if single_flight:
        found_row = first_row(conn, JOB_IN_FLIGHT, jobs, {"w_key": job.content_key})
        if found_row is not None:
            if job.idempotency_key:  # remember where this key went (a retry must find it)
                conn.execute(
                    insert(idempotency_aliases).values(
                        idempotency_key=job.idempotency_key,
                        job_id=found_row["id"],
                        request_fingerprint=fingerprint,
                        created_at=time.time(),
                    )
                )
            return row_to_job(found_row)
    return None


def _by_idempotency_key(conn: Connection, key: str, fingerprint: str | None) -> Job | None:
    """The job of an Idempotency-Key (its own, or the one it attached to); IdempotencyMismatch
    when the key was used with another request body."""
    found = first_row(conn, JOB_BY_IDEMPOTENCY, jobs, {"w_key": key})
    used_with = found["request_fingerprint"] if found is not None else None
    if found is None:  # the key may have attached to another request's job
        alias = first_row(conn, ALIAS_BY_KEY, idempotency_aliases, {"w_key": key})
        if alias is not None:
            used_with = alias["request_fingerprint"]
            found = first_row(conn, JOB_BY_ID, jobs, {"w_id": alias["job_id"]})
    if found is None:
        return None
    check_fingerprint(fingerprint, used_with)
    return row_to_job(found)
