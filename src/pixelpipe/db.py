"""Database engines: one place that knows SQLite's and PostgreSQL's quirks.

SQLite (embedded default) runs in WAL mode with ``busy_timeout=5000`` and ``synchronous=NORMAL``,
and every write transaction starts with ``BEGIN IMMEDIATE`` (the driver's deferred default lets two
read-modify-write transactions both read, then one fails or loses the update; see
docs/adr/0003-sqlite-transaction-mode.md). Writes go through a single-connection pool, so in one
process they queue in Python instead of spinning on the file lock; reads use their own pool.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from sqlalchemy import MetaData, Table, event
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
    """A writer and a reader engine (the same engine on PostgreSQL), plus group commit."""

    writer: AsyncEngine
    reader: AsyncEngine
    dialect: str
    _group: GroupCommitter | None = None

    async def batch(self, work: Callable[[AsyncConnection], Awaitable[T]]) -> T:
        """Run ``work`` in a write transaction shared with concurrent callers (group commit)."""
        if self._group is None:
            self._group = GroupCommitter(self.writer)
        return await self._group.run(work)

    async def append(self, rows: list[tuple[Table, dict[str, Any]]]) -> None:
        """Group-committed multi-row INSERT of fresh rows (see GroupCommitter.append)."""
        if self._group is None:
            self._group = GroupCommitter(self.writer)
        await self._group.append(rows)

    def begin(self) -> Any:
        """``async with db.begin() as conn``: a write transaction (BEGIN IMMEDIATE on SQLite)."""
        return self.writer.begin()

    def read(self) -> Any:
        """``async with db.read() as conn``: a read-only snapshot."""
        return self.reader.connect()

    async def dispose(self) -> None:
        if self._group is not None:
            await self._group.aclose()
        await self.writer.dispose()
        if self.reader is not self.writer:
            await self.reader.dispose()


def _sqlite_pragmas(engine: AsyncEngine, *, immediate: bool) -> None:
    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        dbapi_conn.isolation_level = None  # we issue BEGIN ourselves
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA busy_timeout=5000")
        cur.execute("PRAGMA synchronous=NORMAL")
        cur.execute("PRAGMA foreign_keys=ON")
        cur.close()

    @event.listens_for(engine.sync_engine, "begin")
    def _on_begin(conn: Any) -> None:
        conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")


def open_database(url: str) -> Database:
    if url.startswith("sqlite"):
        writer = create_async_engine(url, pool_size=1, max_overflow=0, pool_timeout=60)
        reader = create_async_engine(url, pool_size=4, max_overflow=4)
        _sqlite_pragmas(writer, immediate=True)
        _sqlite_pragmas(reader, immediate=False)
        return Database(writer, reader, "sqlite")
    engine = create_async_engine(url, pool_size=10, max_overflow=10, pool_pre_ping=True)
    return Database(engine, engine, "postgresql")


async def ping(conn: AsyncConnection) -> None:
    from sqlalchemy import text

    await conn.execute(text("SELECT 1"))
