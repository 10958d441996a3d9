"""Database engines: one place that knows SQLite's and PostgreSQL's quirks.

SQLite (embedded default) runs in WAL mode with ``busy_timeout=5000`` and ``synchronous=NORMAL``,
and every write transaction starts with ``BEGIN IMMEDIATE`` (the driver's deferred default lets two
read-modify-write transactions both read, then one fails or loses the update; see
docs/adr/0003-sqlite-transaction-mode.md).

Hot paths do not go through the async driver statement by statement: each statement through
SQLAlchemy-async + aiosqlite is a thread hop (~0.24 ms of CPU, measured), against ~0.03 ms for the
same statement on a synchronous connection. So the job store and the ledger hand whole units of
work to :meth:`Database.write` (group-committed, run in one worker thread per batch on a
synchronous engine) and :meth:`Database.read_sync` (one thread hop per read). The async engines
remain for code that wants ``async with db.begin()`` / ``db.read()``.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from functools import partial
from typing import Any, TypeVar

import orjson
from sqlalchemy import Connection, Engine, MetaData, Table, create_engine, event
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

from pixelpipe.group_commit import GroupCommitter

T = TypeVar("T")

NAMING = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

metadata = MetaData(naming_convention=NAMING)


@dataclass(slots=True)
class Database:
    """Async engines (writer, reader) and their synchronous twins used from worker threads."""

    writer: AsyncEngine
    reader: AsyncEngine
    dialect: str
    sync_writer: Engine
    sync_reader: Engine
    _group: GroupCommitter = field(init=False)

    checkpoint: Callable[[], None] | None = None

    def __post_init__(self) -> None:
        self._group = GroupCommitter(
            self.sync_writer, checkpoint=self.checkpoint, inline=self.dialect == "sqlite"
        )

    async def write(self, work: Callable[[Connection], T]) -> T:
        """Run ``work`` in a write transaction shared with concurrent callers (group commit)."""
        return await self._group.run(work)

    async def append(self, rows: list[tuple[Table, dict[str, Any]]]) -> None:
        """Group-committed multi-row INSERT of fresh rows (see GroupCommitter.append)."""
        await self._group.append(rows)

    async def read_sync(self, work: Callable[[Connection], T]) -> T:
        """Run a read-only ``work`` on a synchronous connection in a worker thread."""

        def run() -> T:
            with self.sync_reader.connect() as conn:
                return work(conn)

        return await asyncio.to_thread(run)

    async def batch(self, work: Callable[[AsyncConnection], Awaitable[T]]) -> T:
        """An async write transaction of its own (for code not on a hot path)."""
        async with self.writer.begin() as conn:
            return await work(conn)

    def begin(self) -> Any:
        """``async with db.begin() as conn``: a write transaction (BEGIN IMMEDIATE on SQLite)."""
        return self.writer.begin()

    def read(self) -> Any:
        """``async with db.read() as conn``: a read-only snapshot."""
        return self.reader.connect()

    async def dispose(self) -> None:
        await self._group.aclose()
        await self.writer.dispose()
        if self.reader is not self.writer:
            await self.reader.dispose()
        self.sync_writer.dispose()
        if self.sync_reader is not self.sync_writer:
            self.sync_reader.dispose()


def _sqlite_pragmas(engine: Engine, *, immediate: bool, autocheckpoint: bool = True) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        dbapi_conn.isolation_level = None  # we issue BEGIN ourselves
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA busy_timeout=5000")
        cur.execute("PRAGMA synchronous=NORMAL")
        cur.execute("PRAGMA foreign_keys=ON")
        if not autocheckpoint:
            cur.execute("PRAGMA wal_autocheckpoint=0")  # the group committer checkpoints
        cur.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Any) -> None:
        conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")


def _wal_checkpoint(path: str) -> None:
    """A PASSIVE checkpoint on a connection of its own: never blocks writers or readers."""
    conn = sqlite3.connect(path, timeout=5)
    try:
        conn.execute("PRAGMA wal_checkpoint(PASSIVE)")
    finally:
        conn.close()


def _json_dumps(value: Any) -> str:
    return orjson.dumps(value, option=orjson.OPT_NON_STR_KEYS).decode()


# JSON columns (requests, events, provider state) through orjson: ~10x the stdlib's speed
_JSON: dict[str, Any] = {"json_serializer": _json_dumps, "json_deserializer": orjson.loads}


def open_database(url: str) -> Database:
    if url.startswith("sqlite"):
        sync_url = url.replace("+aiosqlite", "")
        thread_ok = {"check_same_thread": False}
        writer = create_async_engine(url, pool_size=1, max_overflow=0, pool_timeout=60, **_JSON)
        reader = create_async_engine(url, pool_size=4, max_overflow=4, **_JSON)
        sync_writer = create_engine(
            sync_url, pool_size=1, max_overflow=0, pool_timeout=60, connect_args=thread_ok, **_JSON
        )
        sync_reader = create_engine(
            sync_url, pool_size=4, max_overflow=8, connect_args=thread_ok, **_JSON
        )
        for engine, immediate in (
            (writer.sync_engine, True),
            (reader.sync_engine, False),
            (sync_reader, False),
        ):
            _sqlite_pragmas(engine, immediate=immediate)
        _sqlite_pragmas(sync_writer, immediate=True, autocheckpoint=False)
        path = sync_url.split("///", 1)[-1]
        return Database(
            writer, reader, "sqlite", sync_writer, sync_reader, partial(_wal_checkpoint, path)
        )
    pg = create_async_engine(url, pool_size=10, max_overflow=10, pool_pre_ping=True)
    pg_sync = create_engine(url, pool_size=10, max_overflow=10, pool_pre_ping=True)
    return Database(pg, pg, "postgresql", pg_sync, pg_sync)


async def ping(conn: AsyncConnection) -> None:
    from sqlalchemy import text

    await conn.execute(text("SELECT 1"))
