"""Leases in SQL: ``FOR UPDATE SKIP LOCKED`` claims (a no-op on SQLite, where ``BEGIN IMMEDIATE``
already serialises writers), heartbeats, hand-back, and the sweeper's and scheduler's queries."""

from __future__ import annotations

import time
from typing import Any

from sqlalchemy import Connection, and_, case, func, or_, select, update

from pixelpipe.jobs.model import Job, JobStatus
from pixelpipe.jobs.rows import row_to_job
from pixelpipe.jobs.sql.base import SqlStoreBase
from pixelpipe.jobs.sql.statements import RUNNABLE_STATUSES
from pixelpipe.jobs.tables import jobs

_ACTIVE = [s.value for s in JobStatus if not s.terminal]


class SqlLeases(SqlStoreBase):
    async def claim_due(self, owner: str, *, limit: int, lease_s: float) -> list[Job]:
        now = time.time()
        due = and_(
            jobs.c.status.in_(RUNNABLE_STATUSES),
            jobs.c.next_run_at <= now,
            or_(jobs.c.lease_expires_at.is_(None), jobs.c.lease_expires_at < now),
        )
        pick = (
            select(jobs.c.id)
            .where(due)
            .order_by(jobs.c.next_run_at)
            .limit(limit)
            .with_for_update(skip_locked=True)
        )

        def work(conn: Connection) -> list[Job]:
            ids = [r[0] for r in (conn.execute(pick)).all()]
            if not ids:
                return []
            res = conn.execute(
                update(jobs)
                .where(jobs.c.id.in_(ids), due)
                .values(lease_owner=owner, lease_expires_at=now + lease_s)
                .returning(jobs)
            )
            return [row_to_job(r) for r in res.all()]

        return await self.db.write(work)

    async def claim(self, job_id: str, owner: str, *, lease_s: float) -> Job | None:
        now = time.time()
        stmt = (
            update(jobs)
            .where(
                jobs.c.id == job_id,
                jobs.c.status.in_(RUNNABLE_STATUSES),
                or_(jobs.c.lease_expires_at.is_(None), jobs.c.lease_expires_at < now),
            )
            .values(lease_owner=owner, lease_expires_at=now + lease_s)
            .returning(jobs)
        )

        def work(conn: Connection) -> Job | None:
            row = (conn.execute(stmt)).first()
            return row_to_job(row) if row else None

        return await self.db.write(work)

    async def renew_leases(self, job_ids: list[str], owner: str, lease_s: float) -> int:
        stmt = (
            update(jobs)
            .where(jobs.c.id.in_(job_ids), jobs.c.lease_owner == owner)
            .values(lease_expires_at=time.time() + lease_s)
        )

        def work(conn: Connection) -> int:
            return int((conn.execute(stmt)).rowcount or 0)

        return await self.db.write(work)

    async def release(self, job_id: str, owner: str, **fields: Any) -> None:
        released = {"lease_owner": None, "lease_expires_at": None, **fields}
        await self._update_fields(job_id, owner, released)

    async def release_all(self, owner: str) -> int:
        stmt = (
            update(jobs)
            .where(jobs.c.lease_owner == owner)
            .values(lease_owner=None, lease_expires_at=None)
        )
        return await self.db.write(lambda conn: int(conn.execute(stmt).rowcount or 0))

    async def overdue(self, now: float, *, limit: int = 500) -> tuple[list[Job], list[Job]]:
        late = select(jobs).where(jobs.c.status.in_(_ACTIVE), jobs.c.deadline_at < now).limit(limit)
        silent = (
            select(jobs)
            .where(
                jobs.c.status == JobStatus.WAITING.value,
                jobs.c.webhook_deadline_at < now,
                or_(jobs.c.next_run_at.is_(None), jobs.c.next_run_at > now),
            )
            .limit(limit)
        )
        a = [row_to_job(r) for r in await self._all_rows(late)]
        b = [row_to_job(r) for r in await self._all_rows(silent)]
        return a, b

    async def next_due_at(self) -> float | None:
        # a leased row is not due before its lease ends: without this, a running step's row
        # (due, but leased) would make the dispatcher spin on claims while the step runs
        due_at = case(
            (jobs.c.lease_expires_at > jobs.c.next_run_at, jobs.c.lease_expires_at),
            else_=jobs.c.next_run_at,
        )
        stmt = select(func.min(due_at)).where(jobs.c.status.in_(RUNNABLE_STATUSES))
        value = await self.db.read_sync(lambda conn: conn.execute(stmt).scalar())
        return float(value) if value is not None else None
