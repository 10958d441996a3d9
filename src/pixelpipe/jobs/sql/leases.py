"""Leases in SQL: claims in the queue's order (:mod:`pixelpipe.jobs.order`; ``FOR UPDATE SKIP
LOCKED`` on PostgreSQL, a no-op on SQLite, where ``BEGIN IMMEDIATE`` already serialises writers),
crash counting and quarantine, heartbeats, hand-back, and the sweeper's and scheduler's queries."""

from __future__ import annotations

import time
from typing import Any

from sqlalchemy import Connection, case, func, or_, select, update

from pixelpipe.jobs.model import Job, JobStatus
from pixelpipe.jobs.order import crash_reason, ranked
from pixelpipe.jobs.rows import row_to_job
from pixelpipe.jobs.sql.base import SqlStoreBase, write_event
from pixelpipe.jobs.sql.queue import candidate, running_per_key
from pixelpipe.jobs.sql.queue_statements import CANDIDATES, due_terms, not_paused
from pixelpipe.jobs.sql.statements import RUNNABLE_STATUSES
from pixelpipe.jobs.tables import jobs

_ACTIVE = [s.value for s in JobStatus if not s.terminal]
_CRASHED = case((jobs.c.lease_owner.is_not(None), 1), else_=0)


class SqlLeases(SqlStoreBase):
    async def claim_due(
        self, owner: str, *, limit: int, lease_s: float, poison_after: int = 0
    ) -> list[Job]:
        now = time.time()

        def work(conn: Connection) -> list[Job]:
            # look at a few more than it takes: other claims at this moment may hold the first
            picked = _lock_first(conn, _in_order(conn, now, limit)[: 4 * limit], now, limit)
            held = {p.id for p in picked if _quarantine(conn, p, now, poison_after)}
            ids = [p.id for p in picked if p.id not in held]
            if not ids:
                return []
            res = conn.execute(
                update(jobs)
                .where(jobs.c.id.in_(ids), *due_terms(now))
                .values(
                    lease_owner=owner,
                    lease_expires_at=now + lease_s,
                    crashes=jobs.c.crashes + _CRASHED,
                )
                .returning(jobs)
            )
            got = {r.id: row_to_job(r) for r in res.all()}
            return [got[i] for i in ids if i in got]

        return await self.db.write(work)

    async def claim(
        self, job_id: str, owner: str, *, lease_s: float, poison_after: int = 0
    ) -> Job | None:
        now = time.time()
        free = or_(jobs.c.lease_expires_at.is_(None), jobs.c.lease_expires_at < now)
        mine = [jobs.c.id == job_id, jobs.c.status.in_(RUNNABLE_STATUSES), free]
        stmt = (
            update(jobs)
            .where(*mine, jobs.c.held_at.is_(None))
            .values(
                lease_owner=owner, lease_expires_at=now + lease_s, crashes=jobs.c.crashes + _CRASHED
            )
            .returning(jobs)
        )

        def work(conn: Connection) -> Job | None:
            row = conn.execute(select(jobs).where(*mine, jobs.c.held_at.is_(None))).first()
            if row is None or _quarantine(conn, row, now, poison_after):
                return None
            got = (conn.execute(stmt)).first()
            return row_to_job(got) if got else None

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
        late = (
            select(jobs)
            .where(jobs.c.status.in_(_ACTIVE), jobs.c.deadline_at < now, jobs.c.held_at.is_(None))
            .limit(limit)
        )
        silent = (
            select(jobs)
            .where(
                jobs.c.status == JobStatus.WAITING.value,
                jobs.c.held_at.is_(None),
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
        stmt = select(func.min(due_at)).where(
            jobs.c.status.in_(RUNNABLE_STATUSES),
            not_paused(),  # a paused line is not due
        )
        value = await self.db.read_sync(lambda conn: conn.execute(stmt).scalar())
        return float(value) if value is not None else None


def _in_order(conn: Connection, now: float, limit: int) -> list[Any]:
    """The due rows a claim of ``limit`` may take, in the queue's order (jobs/order.py)."""
    rows = conn.execute(CANDIDATES, {"w_now": now, "w_limit": limit}).all()
    if not rows:
        return []
    order = ranked([candidate(r) for r in rows], running_per_key(conn, now))
    by_id = {r.id: r for r in rows}
    return [by_id[i] for i in order]


def _lock_first(conn: Connection, rows: list[Any], now: float, limit: int) -> list[Any]:
    """The first ``limit`` of ``rows`` that no other claim holds, in order. PostgreSQL: lock
    exactly those (``ORDER BY`` the given order, ``LIMIT``, ``FOR UPDATE SKIP LOCKED``): locking
    every candidate would leave a claim running at the same moment nothing to take (it skips
    them all), though only ``limit`` are taken."""
    if conn.dialect.name != "postgresql" or not rows:
        return rows[:limit]
    ids = [r.id for r in rows]
    place = case({job_id: i for i, job_id in enumerate(ids)}, value=jobs.c.id)
    lock = (
        select(jobs.c.id)
        .where(jobs.c.id.in_(ids), *due_terms(now))
        .order_by(place)
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    locked = set(conn.execute(lock).scalars())
    return [r for r in rows if r.id in locked]


def _quarantine(conn: Connection, row: Any, now: float, poison_after: int) -> bool:
    """A row whose last lease lapsed mid-step crashed once more: at ``poison_after`` crashes
    (0: never) it is held with its reason instead of claimed (True)."""
    if row.lease_owner is None or poison_after <= 0 or row.crashes + 1 < poison_after:
        return False
    crashes = row.crashes + 1
    reason = crash_reason(str(row.status), row.provider, crashes)
    held = conn.execute(
        update(jobs)
        .where(jobs.c.id == row.id, jobs.c.lease_owner == row.lease_owner)
        .values(
            crashes=crashes,
            held_at=now,
            held_reason=reason,
            next_run_at=None,
            lease_owner=None,
            lease_expires_at=None,
            updated_at=now,
        )
    )
    if held.rowcount:
        write_event(conn, row.id, "quarantined", {"reason": reason, "crashes": crashes}, now)
    return True
