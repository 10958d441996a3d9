"""Job events in SQL: appended in the writes that cause them, read back by id."""

from __future__ import annotations

import time
from typing import Any

from sqlalchemy import Connection, func, select

from pixelpipe.jobs.model import Job, JobEvent
from pixelpipe.jobs.rows import row_to_event, row_to_job
from pixelpipe.jobs.sql.base import SqlStoreBase, write_event
from pixelpipe.jobs.sql.statements import EVENTS_SINCE, JOB_BY_ID
from pixelpipe.jobs.tables import job_events

_LAST_EVENT_ID = select(func.coalesce(func.max(job_events.c.id), 0))


class SqlJobEvents(SqlStoreBase):
    async def add_event(self, job_id: str, type_: str, data: dict[str, Any]) -> None:
        now = time.time()
        await self.db.write(lambda conn: write_event(conn, job_id, type_, data, now))
        await self._wake(job_id)

    async def events_since(self, job_id: str, after_id: int = 0) -> list[JobEvent]:
        params = {"w_job": job_id, "w_after": after_id}
        rows = await self.db.read_sync(lambda conn: conn.execute(EVENTS_SINCE, params).all())
        return [row_to_event(r) for r in rows]

    async def events_with_job(
        self, job_id: str, after_id: int
    ) -> tuple[list[JobEvent], Job | None]:
        """The job's fixed fields complete each event's snapshot
        (:func:`~pixelpipe.jobs.snapshots.job_at`): one read, one thread hop."""

        def work(conn: Connection) -> tuple[list[JobEvent], Job | None]:
            params = {"w_job": job_id, "w_after": after_id}
            events = [row_to_event(r) for r in conn.execute(EVENTS_SINCE, params).all()]
            if not any(ev.type == "status" for ev in events):
                return events, None
            row = conn.execute(JOB_BY_ID, {"w_id": job_id}).first()
            return events, row_to_job(row) if row is not None else None

        return await self.db.read_sync(work)

    async def status_events_after(self, after_id: int, *, limit: int = 500) -> list[JobEvent]:
        stmt = (
            select(*(c for c in job_events.c if c.name != "snapshot"))  # the feed needs no job
            .where(job_events.c.id > after_id, job_events.c.type == "status")
            .order_by(job_events.c.id)
            .limit(limit)
        )
        return [row_to_event(r) for r in await self._all_rows(stmt)]

    async def last_event_id(self) -> int:
        stmt = _LAST_EVENT_ID
        return int(await self.db.read_sync(lambda conn: conn.execute(stmt).scalar_one()))
