"""Changing jobs in SQL: guarded status transitions, field updates and deletion."""

from __future__ import annotations

import time
from collections.abc import Iterable
from typing import Any

from sqlalchemy import Connection, delete

from pixelpipe.compiled_sql import execute, first_row, write_deferred
from pixelpipe.jobs.model import Job, JobStatus
from pixelpipe.jobs.rows import row_to_job
from pixelpipe.jobs.rules import check_deletable, transition_values
from pixelpipe.jobs.slots import frees_slot
from pixelpipe.jobs.snapshots import status_data
from pixelpipe.jobs.sql.base import SqlStoreBase, write_event
from pixelpipe.jobs.sql.slot_statements import WAKE_NEXT_IN_LINE
from pixelpipe.jobs.sql.statements import (
    IMAGE_LOCKED,
    JOB_BY_ID,
    OTHER_JOB_WITH_KEY,
    TOMBSTONE,
    transition_stmt,
)
from pixelpipe.jobs.store import Deletion
from pixelpipe.jobs.tables import idempotency_aliases, images, job_events, jobs
from pixelpipe.ledger.sql.ledger import insert_entry


class SqlJobChanges(SqlStoreBase):
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
        now = time.time()
        allowed, values = transition_values(expected, target, fields, now)

        def work(conn: Connection) -> Job | None:
            moved = move_job(conn, job_id, allowed, values, owner=owner, event=event, now=now)
            if moved is not None and entry is not None:
                insert_entry(conn, entry)  # the attempt's pending row, with the move
            return moved

        job = await self.db.write(work)
        if job is not None:
            await self._wake(job_id)
        return job

    async def update(self, job_id: str, *, owner: str | None = None, **fields: Any) -> bool:
        return await self._update_fields(job_id, owner, fields)

    async def delete(self, job_id: str) -> Deletion:
        """Ledger entries are never touched: the money history stays."""
        now = time.time()
        done = await self.db.write(lambda conn: _delete(conn, job_id, now))
        if done.content_key is not None:
            self._images.discard(done.content_key)
        return done


def move_job(
    conn: Connection,
    job_id: str,
    allowed: list[JobStatus],
    values: dict[str, Any],
    *,
    owner: str | None,
    event: dict[str, Any] | None,
    now: float,
) -> Job | None:
    """The guarded transition and its status event, in the caller's transaction. A job leaving
    submitting/waiting frees its backend's slot: the first sleeper in that backend's line wakes."""
    if frees_slot(allowed, JobStatus(values["status"])):
        execute(conn, WAKE_NEXT_IN_LINE, jobs, {"next_run_at": now, "w_id": job_id, "w_now": now})
    stmt = transition_stmt(len(allowed), owner is not None)
    params = {**values, "w_id": job_id}
    params.update((f"w_status{i}", str(s)) for i, s in enumerate(allowed))
    if owner is not None:
        params["w_owner"] = owner
    row = first_row(conn, stmt, jobs, params)
    if row is None:
        return None
    moved = row_to_job(row)
    write_event(conn, job_id, "status", {**status_data(moved), **(event or {})}, now, moved)
    return moved


def _delete(conn: Connection, job_id: str, now: float) -> Deletion:
    write_deferred(conn)  # the batch's queued events, this job's among them, before they go
    row = first_row(conn, JOB_BY_ID, jobs, {"w_id": job_id})
    if row is None:
        gone = conn.execute(TOMBSTONE, {"w_job": job_id}).first()
        return Deletion(found=gone is not None, already=gone is not None)
    job = row_to_job(row)
    check_deletable(job)
    key = {"w_key": job.content_key}
    image = conn.execute(IMAGE_LOCKED, key).first()  # before counting the references
    conn.execute(delete(jobs).where(jobs.c.id == job_id))
    conn.execute(delete(job_events).where(job_events.c.job_id == job_id))
    conn.execute(delete(idempotency_aliases).where(idempotency_aliases.c.job_id == job_id))
    write_event(conn, job_id, "deleted", {}, now)
    if conn.execute(OTHER_JOB_WITH_KEY, {**key, "w_id": job_id}).first() is not None:
        return Deletion(found=True)  # the image is shared: it stays
    keys = {job.storage_key, job.thumb_key}
    if image is not None:
        conn.execute(delete(images).where(images.c.content_key == job.content_key))
        keys |= {image.storage_key, image.thumb_key}
    orphaned = tuple(sorted(k for k in keys if k))
    return Deletion(found=True, orphaned=orphaned, content_key=job.content_key)
