"""Backend slots in SQL (:mod:`pixelpipe.jobs.slots`): the check, the move to submitting and
joining the line in one write, serialised per backend."""

from __future__ import annotations

import sys
import time
from collections.abc import Iterable
from typing import Any

from sqlalchemy import Connection, bindparam, select, text

from pixelpipe.compiled_sql import execute
from pixelpipe.jobs.model import Job, JobStatus
from pixelpipe.jobs.rows import row_to_job
from pixelpipe.jobs.rules import transition_values
from pixelpipe.jobs.slots import (
    InLine,
    SlotRequest,
    SlotUse,
    has_turn,
    in_line,
    kept_place,
    line_progress,
    recheck_after_s,
    taking_slot,
)
from pixelpipe.jobs.sql.base import SqlStoreBase, write_event
from pixelpipe.jobs.sql.changes import move_job
from pixelpipe.jobs.sql.slot_statements import (
    BUSY,
    FIRST_IN_LINE,
    JOIN_LINE,
    LINE_IDS,
    LINE_LENGTH,
    POSITION,
    SET_PLACE,
)
from pixelpipe.jobs.sql.statements import JOB_BY_ID
from pixelpipe.jobs.tables import jobs, queue_pauses

PAUSED = select(queue_pauses.c.target).where(queue_pauses.c.target == bindparam("w_target"))
_BEHIND_ALL = sys.float_info.max  # the place of a job not in line (a bound float, not inf)
_LOCK = text("SELECT pg_advisory_xact_lock(hashtext(:k))").bindparams(bindparam("k"))


class SqlBackendSlots(SqlStoreBase):
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
        allowed, values = transition_values(
            JobStatus.QUEUED, JobStatus.SUBMITTING, taking_slot(job, fields), now
        )

        def work(conn: Connection) -> tuple[Job | InLine | None, list[str]]:
            _lock_line(conn, want.backend)
            if conn.execute(PAUSED, {"w_target": want.backend}).first() is not None:
                return None, []  # paused by an operator: it waits (docs/queue.md)
            busy = int(conn.execute(BUSY, {"w_backend": want.backend}).scalar_one())
            kept = kept_place(job, busy, want.slots)
            if kept is not None:
                return _join_line(conn, job, owner, want, kept, now), []
            ahead = _ahead(conn, job, want.backend)
            if not has_turn(busy, ahead, want.slots):
                return _join_line(conn, job, owner, want, ahead + 1, now), []
            moved = move_job(conn, job.id, allowed, values, owner=owner, event=event, now=now)
            told = _tell_places(conn, want.backend, now) if job.slot_wait_since else []
            return moved, told

        moved, told = await self.db.write(work)
        for job_id in ([job.id] if moved is not None else []) + told:
            await self._wake(job_id)
        return moved

    async def line_position(self, job: Job) -> int | None:
        def read(conn: Connection) -> int | None:
            row = conn.execute(JOB_BY_ID, {"w_id": job.id}).first()
            stored = row_to_job(row) if row is not None else None
            if stored is None or not in_line(stored) or not stored.provider:
                return None
            return _ahead(conn, stored, stored.provider) + 1

        return await self.db.read_sync(read)

    async def line_ids(self, backend: str) -> list[str]:
        def read(conn: Connection) -> list[str]:
            return [row[0] for row in conn.execute(LINE_IDS, {"w_backend": backend})]

        return await self.db.read_sync(read)

    async def slot_use(self, backends: Iterable[str]) -> dict[str, SlotUse]:
        def read(conn: Connection) -> dict[str, SlotUse]:
            use = {}
            for name in sorted(set(backends)):  # two index-only counts each (few backends)
                params = {"w_backend": name}
                busy = conn.execute(BUSY, params).scalar_one()
                use[name] = SlotUse(int(busy), int(conn.execute(LINE_LENGTH, params).scalar_one()))
            return use

        return await self.db.read_sync(read)


def _lock_line(conn: Connection, backend: str) -> None:
    """Serialise the slot checks of one backend until the transaction ends (PostgreSQL; SQLite's
    single writer already does)."""
    if conn.dialect.name == "postgresql":
        conn.execute(_LOCK, {"k": f"pixelpipe.slots:{backend}"})


def _ahead(conn: Connection, job: Job, backend: str) -> int:
    """How many jobs of ``backend``'s line are before ``job`` (as if it joined now)."""
    place = _BEHIND_ALL if job.slot_wait_since is None else job.slot_wait_since
    params = {"w_backend": backend, "w_place": place, "w_id": job.id}
    position = conn.execute(POSITION, params).scalar()  # None: no longer queued on it
    return 0 if position is None else int(position) - 1


def _tell_places(conn: Connection, backend: str, now: float) -> list[str]:
    """The line moved up: the first jobs in it get their new places (those that changed)."""
    told = []
    line = conn.execute(FIRST_IN_LINE, {"w_backend": backend}).all()
    for position, (job_id, state) in enumerate(line, 1):
        state = state or {}
        if (state.get("progress") or {}).get("queue_position") == position:
            continue
        placed = line_progress(state, backend, position)
        params = {"provider_state": placed, "updated_at": now, "w_id": job_id}
        if execute(conn, SET_PLACE, jobs, params):
            write_event(conn, job_id, "progress", placed["progress"], now)
            told.append(job_id)
    return told


def _join_line(
    conn: Connection, job: Job, owner: str, want: SlotRequest, position: int, now: float
) -> InLine | None:
    since = job.slot_wait_since if job.slot_wait_since is not None else now
    state = line_progress(job.provider_state, want.backend, position)
    params = {
        "slot_wait_since": since,
        "next_run_at": now + recheck_after_s(position, want.slots),
        "provider_state": state,
        "updated_at": now,
        "w_id": job.id,
        "w_owner": owner,
    }
    if not execute(conn, JOIN_LINE, jobs, params):
        return None  # moved meanwhile (canceled), or no longer ours
    if state["progress"] != job.provider_state.get("progress"):
        write_event(conn, job.id, "progress", state["progress"], now)
    return InLine(position, since)
