"""Group commit: concurrent small write transactions share one database transaction.

Units of work are synchronous functions of a SQLAlchemy ``Connection``. A flush runs a whole batch
on a synchronous engine — on the event loop's thread when the database is SQLite and its write
lock is free at once (:meth:`GroupCommitter._inline`), else in ONE worker-thread hop: first the
bulk appends (multi-row INSERTs of fresh rows, always in a thread), then each unit, all in one
SAVEPOINT; when a unit fails (a unique-constraint race), that savepoint is rolled back and the
batch runs again with each unit in a SAVEPOINT of its own, so the failing unit rolls back alone.
Callers' futures resolve only after the shared COMMIT, so durability is exactly that of a private
transaction. Under load this turns N commits and ~5·N thread hops into one commit and at most one
hop.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable
from typing import Any, TypeVar

from sqlalchemy import Connection, Engine, RootTransaction, Table
from sqlalchemy.pool import QueuePool

from pixelpipe.compiled_sql import driver_connection, insert_rows, rows_deferred

T = TypeVar("T")
Work = Callable[[Connection], Any]
Rows = list[tuple[Table, dict[str, Any]]]
Outcome = tuple[Any, BaseException | None]
MAX_BATCH = 512
_SAVEPOINT = "pixelpipe_unit"
_BATCH_SAVEPOINT = "pixelpipe_batch"
CHECKPOINT_EVERY_S = 1.0


class GroupCommitter:
    def __init__(
        self,
        engine: Engine,
        *,
        checkpoint: Callable[[], None] | None = None,
        inline: bool = False,
    ) -> None:
        """``inline``: a SQLite engine whose ``begin`` takes the write lock (``BEGIN IMMEDIATE``,
        :mod:`pixelpipe.db`): a small batch may then run on the event loop's thread
        (:meth:`_inline`)."""
        self._engine = engine
        self._checkpoint = checkpoint  # SQLite: WAL checkpoints off the commit path
        self._checkpointing: asyncio.Task[None] | None = None
        self._last_checkpoint = 0.0
        self._pending: list[tuple[Work, asyncio.Future[Any]]] = []
        self._appends: list[tuple[Rows, asyncio.Future[Any]]] = []
        self._task: asyncio.Task[None] | None = None
        self._inline_ok = inline and engine.dialect.name == "sqlite"
        self._busy_ms: int | None = None  # the writer connection's own busy timeout

    async def run(self, work: Callable[[Connection], T]) -> T:
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

    def _inline(self, works: list[Work]) -> list[Outcome] | None:
        """Run the batch as its own transaction right here, on the event loop's thread, if the
        write lock can be had without waiting; None (nothing done: the batch goes to a thread)
        when it cannot, or when a batch of several units could not COMMIT (a lone unit's
        failure, COMMIT included, is its outcome: :func:`_committed`).

        In a thread the batch would cost two thread hops (~0.1 ms of CPU each), and each of its
        statements gives the GIL up and waits to take it back from the event loop (ADR 0014):
        its SQL holds the GIL in either thread, and a commit in WAL mode with
        ``synchronous=NORMAL`` is a write into the WAL (no fsync: checkpoints sync, off this
        path), so the loop waits for nothing it did not wait for before — except a lock, which
        is why BEGIN IMMEDIATE is tried with a busy timeout of 0 and the batch goes to the queue
        (a thread that may wait) when another connection writes. Small batches only, at first
        (up to 16 units); measured since, whole batches are as fast for full generations and
        ×1.14 for cache hits at 64 connections (docs/performance.md, "Ninth pass")."""
        pool = self._engine.pool
        if not self._inline_ok or not (isinstance(pool, QueuePool) and pool.checkedin()):
            return None  # not SQLite, or no connection made yet (making one may wait: a thread)
        try:
            conn = self._engine.connect()
            tx = self._begin_now(conn)
        except Exception:
            return None
        if tx is None:  # another connection writes: the batch goes to a thread, which may wait
            with contextlib.suppress(Exception):
                conn.close()
            return None
        try:
            return _committed(conn, tx, works, [])
        except Exception:  # COMMIT failed: nothing is durable, the thread runs them again
            return None

    def _begin_now(self, conn: Connection) -> RootTransaction | None:
        """BEGIN IMMEDIATE with a busy timeout of 0 (the connection's own restored after)."""
        raw = conn.connection.driver_connection
        assert raw is not None
        try:
            if self._busy_ms is None:
                self._busy_ms = int(raw.execute("PRAGMA busy_timeout").fetchone()[0])
            raw.execute("PRAGMA busy_timeout=0")
            try:
                return conn.begin()
            finally:
                raw.execute(f"PRAGMA busy_timeout={self._busy_ms}")
        except Exception:
            return None

    def _start(self) -> None:
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(self._flusher())

    async def _flusher(self) -> None:
        while self._pending or self._appends:
            batch, self._pending = self._pending[:MAX_BATCH], self._pending[MAX_BATCH:]
            appends, self._appends = self._appends, []
            works, rows = [w for w, _ in batch], [r for r, _ in appends]
            inline = self._inline(works) if not rows else None
            if inline is not None:
                outcomes = inline
            else:
                try:
                    outcomes = await asyncio.to_thread(self._flush, works, rows)
                except Exception:  # BEGIN/COMMIT failed (e.g. a deadlock between two processes'
                    # batches on PostgreSQL): nothing was durable, so run each unit on its own
                    outcomes = await asyncio.to_thread(self._one_by_one, works, rows)
            self._maybe_checkpoint()
            for (_, fut), (value, error) in zip([*appends, *batch], outcomes, strict=True):
                if fut.done():
                    continue
                if error is not None:
                    fut.set_exception(error)
                else:
                    fut.set_result(value)

    def _maybe_checkpoint(self) -> None:
        """At most once a second, checkpoint the WAL in another thread: the committing writer
        never pays for the checkpoint's fsync (its automatic checkpoints are turned off)."""
        now = time.monotonic()
        if self._checkpoint is None or now - self._last_checkpoint < CHECKPOINT_EVERY_S:
            return
        if self._checkpointing is not None and not self._checkpointing.done():
            return
        self._last_checkpoint = now
        self._checkpointing = asyncio.get_running_loop().create_task(
            asyncio.to_thread(self._checkpoint)
        )

    def _flush(self, works: list[Work], appends: list[Rows]) -> list[Outcome]:
        conn = self._engine.connect()
        try:
            tx = conn.begin()
        except Exception:
            conn.close()
            raise
        return _committed(conn, tx, works, appends)

    def _one_by_one(self, works: list[Work], appends: list[Rows]) -> list[Outcome]:
        outcomes: list[Outcome] = []
        singles: list[tuple[list[Work], list[Rows]]] = [([], [rows]) for rows in appends]
        singles += [([work], []) for work in works]
        for one_work, one_append in singles:
            try:
                outcomes.extend(self._flush(one_work, one_append))
            except Exception as exc:
                outcomes.append((None, exc))
        return outcomes

    async def aclose(self) -> None:
        if self._checkpointing is not None:
            with contextlib.suppress(Exception):
                await self._checkpointing
        if self._task is not None:
            with contextlib.suppress(Exception):
                await self._task


def _bulk_insert(groups: list[Rows]) -> Work:
    """One executemany per table and column set, tables in first-seen order (parents first)."""
    by_shape: dict[tuple[Table, tuple[str, ...]], list[dict[str, Any]]] = {}
    for rows in groups:
        for table, row in rows:
            by_shape.setdefault((table, tuple(row)), []).append(row)

    def work(conn: Connection) -> None:
        for (table, _), rows in by_shape.items():
            insert_rows(conn, table, rows)

    return work


def _committed(
    conn: Connection, tx: RootTransaction, works: list[Work], appends: list[Rows]
) -> list[Outcome]:
    """Run the batch in ``tx`` (begun on ``conn``), commit, and give ``conn`` back. A unit alone
    needs no savepoint: whatever fails — it, COMMIT, giving the connection back — is its outcome.
    Otherwise each unit's failure is its own (:func:`_together`, else :func:`_each`), and a
    failed COMMIT raises."""
    if len(works) == 1 and not appends:
        try:
            with conn, tx, rows_deferred(conn):
                value = works[0](conn)
        except Exception as exc:
            return [(None, exc)]
        return [(value, None)]
    with conn, tx:
        outcomes = _together(conn, works, appends)
        if outcomes is None:  # a unit failed: the batch's writes are undone, each unit again
            outcomes = _each(conn, works, appends)
    return outcomes


def _together(conn: Connection, works: list[Work], appends: list[Rows]) -> list[Outcome] | None:
    """The whole batch in one savepoint: its outcomes, or None (everything it wrote undone)
    when a unit failed. A savepoint per unit (:func:`_each`) is two statements more per unit,
    and in a worker thread every statement gives the GIL up and waits to take it back from the
    event loop: ~15 round trips per full generation, measured as 13 % of the throughput at 64
    connections. Units fail rarely (a race lost to a unique constraint), and then the batch is
    run again unit by unit, in the same transaction."""
    raw = driver_connection(conn)
    raw.execute(f"SAVEPOINT {_BATCH_SAVEPOINT}")
    try:
        values: list[Any] = []
        if appends:
            _bulk_insert(appends)(conn)
            values.extend(None for _ in appends)
        with rows_deferred(conn):  # e.g. the status events: one INSERT for the batch
            values.extend(work(conn) for work in works)
    except Exception:
        raw.execute(f"ROLLBACK TO SAVEPOINT {_BATCH_SAVEPOINT}")
        raw.execute(f"RELEASE SAVEPOINT {_BATCH_SAVEPOINT}")
        return None
    raw.execute(f"RELEASE SAVEPOINT {_BATCH_SAVEPOINT}")
    return [(value, None) for value in values]


def _each(conn: Connection, works: list[Work], appends: list[Rows]) -> list[Outcome]:
    """Each unit in a savepoint of its own (the appends share one): one unit's failure rolls
    back only what it wrote."""
    outcomes: list[Outcome] = []
    if appends:
        bulk = _unit(conn, _bulk_insert(appends))
        outcomes.extend(bulk for _ in appends)
    outcomes.extend(_unit(conn, work) for work in works)
    return outcomes


def _unit(conn: Connection, work: Work) -> Outcome:
    """Run ``work`` in a savepoint of its own. The savepoint statements go straight to the
    driver's connection: through SQLAlchemy each costs ~0.05-0.1 ms of CPU (``begin_nested``
    also compiles a fresh clause every time), and :func:`_each` issues two per unit."""
    raw = driver_connection(conn)
    raw.execute(f"SAVEPOINT {_SAVEPOINT}")
    try:
        with rows_deferred(conn):
            value = work(conn)
    except Exception as exc:
        raw.execute(f"ROLLBACK TO SAVEPOINT {_SAVEPOINT}")
        raw.execute(f"RELEASE SAVEPOINT {_SAVEPOINT}")
        return None, exc
    raw.execute(f"RELEASE SAVEPOINT {_SAVEPOINT}")
    return value, None
