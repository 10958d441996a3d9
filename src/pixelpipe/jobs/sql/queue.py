"""The queue's controls in SQL (:class:`pixelpipe.jobs.store.QueueControl`)."""

from __future__ import annotations

import time
from collections import Counter
from typing import Any

from sqlalchemy import Connection, delete, func, or_, select, update
from sqlalchemy.exc import IntegrityError

from pixelpipe.jobs.model import Job, JobStatus
from pixelpipe.jobs.order import Candidate, ranked
from pixelpipe.jobs.rows import row_to_job
from pixelpipe.jobs.sql.base import SqlStoreBase, write_event
from pixelpipe.jobs.sql.queue_statements import (
    RUNNING_CLAIMED,
    RUNNING_STARTED,
    STARTED_STATUSES,
    WAITING,
)
from pixelpipe.jobs.store import Pause, Waiting
from pixelpipe.jobs.tables import jobs, queue_pauses

_QUEUED = str(JobStatus.QUEUED)
PAUSES_TTL_S = 1.0  # how long a process reuses the list of pauses (is_paused)
_HELD = [jobs.c.held_at.is_not(None), jobs.c.status.in_([*STARTED_STATUSES, _QUEUED])]


class SqlQueueControl(SqlStoreBase):
    # the pauses this process read last, and when (is_paused); a class default, set per store
    _paused_seen: tuple[float, frozenset[str]] = (-PAUSES_TTL_S, frozenset())

    async def waiting_order(self) -> list[Waiting]:
        now = time.time()

        def read(conn: Connection) -> list[Waiting]:
            rows = {r.id: r for r in conn.execute(WAITING, {"w_now": now}).all()}
            order = ranked([candidate(r) for r in rows.values()], running_per_key(conn, now))
            return [Waiting(i, rows[i].provider, rows[i].api_key_id) for i in order]

        return await self.db.read_sync(read)

    async def jobs_by_ids(self, ids: list[str]) -> list[Job]:
        if not ids:
            return []
        got: dict[str, Job] = {}
        for start in range(0, len(ids), 500):
            chunk = ids[start : start + 500]
            rows = await self._all_rows(select(jobs).where(jobs.c.id.in_(chunk)))
            got.update((r.id, row_to_job(r)) for r in rows)
        return [got[i] for i in ids if i in got]

    async def in_flight(self, *, limit: int = 500) -> list[Job]:
        now = time.time()
        running = or_(
            (jobs.c.status.in_(STARTED_STATUSES) & jobs.c.held_at.is_(None)),
            (jobs.c.status == _QUEUED) & (jobs.c.lease_expires_at >= now),
        )
        order = func.coalesce(jobs.c.submitted_at, jobs.c.created_at)
        stmt = select(jobs).where(running).order_by(order, jobs.c.id).limit(limit)
        return [row_to_job(r) for r in await self._all_rows(stmt)]

    async def set_priority(self, job_id: str, priority: int) -> Job | None:
        now = time.time()
        stmt = (
            update(jobs)
            .where(jobs.c.id == job_id, jobs.c.status == _QUEUED)
            .values(priority=priority, updated_at=now)
            .returning(jobs)
        )
        return await self._change(job_id, stmt, "priority", {"priority": priority}, now)

    async def held_jobs(self, *, limit: int = 500) -> list[Job]:
        stmt = select(jobs).where(*_HELD).order_by(jobs.c.held_at, jobs.c.id).limit(limit)
        return [row_to_job(r) for r in await self._all_rows(stmt)]

    async def release_held(self, job_id: str) -> Job | None:
        now = time.time()
        stmt = (
            update(jobs)
            .where(jobs.c.id == job_id, *_HELD)
            .values(held_at=None, held_reason=None, crashes=0, next_run_at=now, updated_at=now)
            .returning(jobs)
        )
        return await self._change(job_id, stmt, "released", {"by": "operator"}, now)

    async def pause(self, target: str, reason: str | None = None) -> Pause:
        now = time.time()
        row = {"target": target, "paused_at": now, "reason": reason}

        def work(conn: Connection) -> Pause:
            found = conn.execute(select(queue_pauses).where(queue_pauses.c.target == target))
            kept = found.first()
            if kept is None:
                conn.execute(queue_pauses.insert().values(**row))
                return Pause(target, now, reason)
            return Pause(target, kept.paused_at, kept.reason)

        self._paused_seen = (-PAUSES_TTL_S, frozenset())
        try:
            return await self.db.write(work)
        except IntegrityError:  # paused by another process at the same moment: theirs stands
            return (await self.pauses())[target]

    async def resume(self, target: str) -> bool:
        now = time.time()

        def work(conn: Connection) -> bool:
            gone = conn.execute(delete(queue_pauses).where(queue_pauses.c.target == target))
            if not gone.rowcount:
                return False
            conn.execute(
                update(jobs)
                .where(
                    jobs.c.provider == target,
                    jobs.c.status == _QUEUED,
                    jobs.c.held_at.is_(None),
                    jobs.c.next_run_at > now,
                )
                .values(next_run_at=now)
            )
            return True

        self._paused_seen = (-PAUSES_TTL_S, frozenset())
        return await self.db.write(work)

    async def pauses(self) -> dict[str, Pause]:
        rows = await self._all_rows(select(queue_pauses))
        found = {r.target: Pause(r.target, r.paused_at, r.reason) for r in rows}
        self._paused_seen = (time.monotonic(), frozenset(found))
        return found

    async def is_paused(self, target: str) -> bool:
        seen_at, paused = self._paused_seen
        if time.monotonic() - seen_at >= PAUSES_TTL_S:
            paused = frozenset(await self.pauses())
        return target in paused

    async def _change(
        self, job_id: str, stmt: Any, type_: str, data: dict[str, Any], now: float
    ) -> Job | None:
        def work(conn: Connection) -> Job | None:
            row = conn.execute(stmt).first()
            if row is None:
                return None
            write_event(conn, job_id, type_, data, now)
            return row_to_job(row)

        changed = await self.db.write(work)
        if changed is not None:
            await self._wake(job_id)
        return changed


def running_per_key(conn: Connection, now: float) -> Counter[str]:
    """Each key's jobs using capacity now (started, or queued and claimed)."""
    running: Counter[str] = Counter()
    for stmt in (RUNNING_STARTED, RUNNING_CLAIMED):
        for key, n in conn.execute(stmt, {"w_now": now}).all():
            running[key] += int(n)
    return running


def candidate(row: Any) -> Candidate:
    return Candidate(row.id, row.status, row.api_key_id, row.priority, row.share, row.next_run_at)
