"""What every part of the SQL job store shares: the database, the notifier, the image cache."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from sqlalchemy import Connection, Executable, select
from sqlalchemy.exc import IntegrityError

from pixelpipe.compiled_sql import insert_later
from pixelpipe.db import Database
from pixelpipe.events.base import ALL, Notifier
from pixelpipe.jobs.cache import BoundedCache
from pixelpipe.jobs.model import ImageRecord, Job
from pixelpipe.jobs.snapshots import snapshot
from pixelpipe.jobs.sql.statements import UPDATE
from pixelpipe.jobs.tables import job_events

T = TypeVar("T")
_SELECT_1 = select(1)


class SqlStoreBase:
    def __init__(self, db: Database, notifier: Notifier, *, image_cache: int = 10_000) -> None:
        self.db = db
        self.notifier = notifier
        # images this process has seen (immutable): a cache hit needs no read
        self._images: BoundedCache[str, ImageRecord] = BoundedCache(image_cache)

    async def ping(self) -> None:
        await self._all_rows(_SELECT_1)

    async def _wake(self, job_id: str) -> None:
        await self.notifier.publish(f"job:{job_id}", "changed")
        await self.notifier.publish(ALL, job_id)

    async def _write_racing(self, work: Callable[[Connection], T]) -> T:
        """Run a checked insert; an IntegrityError means another process inserted the same key
        in between, so look again (three times; a fourth failure is raised)."""
        for _ in range(3):
            try:
                return await self.db.write(work)
            except IntegrityError:
                continue
        return await self.db.write(work)

    async def _update_fields(self, job_id: str, owner: str | None, fields: dict[str, Any]) -> bool:
        """Set ``fields`` of a job (held by ``owner``, when given); False when none matched."""
        stmt = UPDATE[owner is not None]
        params = {**fields, "updated_at": time.time(), "w_id": job_id}
        if owner is not None:
            params["w_owner"] = owner

        def work(conn: Connection) -> bool:
            return bool((conn.execute(stmt, params)).rowcount)

        return await self.db.write(work)

    async def _all_rows(self, stmt: Executable) -> Sequence[Any]:
        return await self.db.read_sync(lambda conn: conn.execute(stmt).all())

    async def _first_row(self, stmt: Executable) -> Any:
        return await self.db.read_sync(lambda conn: conn.execute(stmt).first())


def write_event(
    conn: Connection,
    job_id: str,
    type_: str,
    data: dict[str, Any],
    now: float,
    job: Job | None = None,
) -> None:
    """Queued when the caller's transaction defers its rows (a group commit's batch:
    :func:`~pixelpipe.compiled_sql.rows_deferred`), else inserted now."""
    insert_later(conn, job_events, event_row(job_id, type_, data, now, job))


def event_row(
    job_id: str, type_: str, data: dict[str, Any], now: float, job: Job | None = None
) -> dict[str, Any]:
    """An event row; a status event (``job`` given) keeps the job as it is in this write."""
    row = {"job_id": job_id, "type": type_, "data": data, "created_at": now}
    if job is not None:
        row["snapshot"] = snapshot(job)
    return row
