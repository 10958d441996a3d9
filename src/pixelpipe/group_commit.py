"""Group commit: concurrent small write transactions share one database transaction.

Each unit of work runs inside its own SAVEPOINT, so one failing unit (a unique-constraint race, a
lost transition) rolls back alone; the caller's future resolves only after the shared COMMIT, so
durability is exactly that of a private transaction. Under load this turns N commits (each an
fsync-ish round trip through the driver thread) into one, which is what lets one SQLite writer
keep up with many concurrent requests.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from sqlalchemy import Table, insert
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

T = TypeVar("T")
Work = Callable[[AsyncConnection], Awaitable[Any]]
Rows = list[tuple[Table, dict[str, Any]]]
MAX_BATCH = 256


class GroupCommitter:
    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine
        self._pending: list[tuple[Work, asyncio.Future[Any]]] = []
        self._appends: list[tuple[Rows, asyncio.Future[None]]] = []
        self._task: asyncio.Task[None] | None = None

    async def run(self, work: Callable[[AsyncConnection], Awaitable[T]]) -> T:
        fut: asyncio.Future[T] = asyncio.get_running_loop().create_future()
        self._pending.append((work, fut))
        self._start()
        return await fut

    async def append(self, rows: Rows) -> None:
        """Insert fresh rows (no conflicts expected) with multi-row INSERTs shared by the batch.

        All appends of one flush succeed or fail together (IntegrityError): callers that can
        collide fall back to :meth:`run`.
        """
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._appends.append((rows, fut))
        self._start()
        await fut

    def _start(self) -> None:
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(self._flusher())

    async def _flusher(self) -> None:
        while self._pending or self._appends:
            batch, self._pending = self._pending[:MAX_BATCH], self._pending[MAX_BATCH:]
            appends, self._appends = self._appends, []
            await self._flush(batch, appends)
            await asyncio.sleep(0)  # let new work arrive before the next transaction

    async def _flush(
        self, batch: list[tuple[Work, asyncio.Future[Any]]], appends: list[tuple[Rows, Any]]
    ) -> None:
        results: list[tuple[asyncio.Future[Any], Any, BaseException | None]] = []
        try:
            async with self._engine.begin() as conn:
                if appends:
                    outcome = await _unit(conn, _bulk_insert([rows for rows, _ in appends]))
                    results.extend((fut, *outcome) for _, fut in appends)
                for work, fut in batch:
                    results.append((fut, *await _unit(conn, work)))
        except BaseException as exc:  # the COMMIT (or BEGIN) itself failed: nobody is durable
            for _, fut in [*batch, *appends]:
                if not fut.done():
                    fut.set_exception(exc)
            if not isinstance(exc, Exception):
                raise
            return
        for fut, value, error in results:
            if fut.done():
                continue
            if error is not None:
                fut.set_exception(error)
            else:
                fut.set_result(value)

    async def aclose(self) -> None:
        if self._task is not None:
            with contextlib.suppress(Exception):
                await self._task


def _bulk_insert(groups: list[Rows]) -> Work:
    """One multi-row INSERT per table, tables in first-seen order (parents before children)."""
    by_table: dict[Table, list[dict[str, Any]]] = {}
    for rows in groups:
        for table, row in rows:
            by_table.setdefault(table, []).append(row)

    async def work(conn: AsyncConnection) -> None:
        for table, rows in by_table.items():
            await conn.execute(insert(table), rows)

    return work


async def _unit(conn: AsyncConnection, work: Work) -> tuple[Any, BaseException | None]:
    savepoint = await conn.begin_nested()
    try:
        value = await work(conn)
    except Exception as exc:
        await savepoint.rollback()
        return None, exc
    await savepoint.commit()
    return value, None
