"""A batch runs on the event loop's thread (SQLite), never waiting there.

The group committer of pixelpipe's SQLite database (``open_database``) runs a lone unit, or a
batch of them, inline: no thread hop; units of a batch are still isolated by savepoints. It must
still never make the event loop wait for a lock: when another connection holds the write lock the
batch goes to a worker thread (which waits, as before), and the writer's own busy timeout is left
as it was. Concurrent units still share one transaction.
"""

from __future__ import annotations

import asyncio
import itertools
import sqlite3
import threading
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest
from sqlalchemy import Connection, text

from pixelpipe import group_commit
from pixelpipe.db import Database, open_database


@pytest.fixture
async def db(tmp_path: Path) -> AsyncIterator[Database]:
    database = open_database(f"sqlite+aiosqlite:///{tmp_path / 'inline.db'}")
    async with database.begin() as conn:
        await conn.execute(text("CREATE TABLE things (name TEXT UNIQUE)"))
    await database.write(lambda conn: None)  # the writer's connection exists from here on
    yield database
    await database.dispose()


def _add(name: str, threads: list[int]):  # type: ignore[no-untyped-def]
    def work(conn: Connection) -> str:
        threads.append(threading.get_ident())
        conn.execute(text("INSERT INTO things (name) VALUES (:n)"), {"n": name})
        return name

    return work


def _names(path: Path) -> list[str]:
    with sqlite3.connect(path) as raw:
        return sorted(r[0] for r in raw.execute("SELECT name FROM things"))


async def test_a_lone_unit_runs_on_the_loop_thread_and_commits(db: Database) -> None:
    threads: list[int] = []
    assert await db.write(_add("solo", threads)) == "solo"
    assert threads == [threading.get_ident()]  # no thread hop
    path = Path(db.sync_writer.url.database or "")
    assert _names(path) == ["solo"]  # committed: another connection sees it


async def test_a_failing_lone_unit_rolls_back_and_raises(db: Database) -> None:
    def half_then_fail(conn: Connection) -> None:
        conn.execute(text("INSERT INTO things (name) VALUES ('half')"))
        raise RuntimeError("the unit failed after writing")

    with pytest.raises(RuntimeError):
        await db.write(half_then_fail)
    assert _names(Path(db.sync_writer.url.database or "")) == []


async def test_a_small_batch_runs_on_the_loop_thread_each_unit_on_its_own(db: Database) -> None:
    threads: list[int] = []
    results = await asyncio.gather(
        db.write(_add("a", threads)),
        db.write(_add("a", threads)),  # a duplicate: it fails alone
        db.write(_add("b", threads)),
        return_exceptions=True,
    )
    assert results[0] == "a" and results[2] == "b" and isinstance(results[1], Exception)
    assert set(threads) == {threading.get_ident()}  # one batch, no thread hop
    assert len(threads) == 5  # the duplicate failed: the batch ran again, each unit on its own
    assert _names(Path(db.sync_writer.url.database or "")) == ["a", "b"]


async def test_a_small_batch_whose_commit_fails_inline_runs_again_in_a_thread(
    db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = group_commit._committed
    calls: list[int] = []

    def commit_fails_on_the_loop(conn, tx, works, appends):  # type: ignore[no-untyped-def]
        calls.append(threading.get_ident())
        if threading.get_ident() == loop_thread:  # the units ran, COMMIT failed: rolled back
            with conn, tx:
                for work in works:
                    work(conn)
                tx.rollback()
            raise RuntimeError("disk I/O error at COMMIT")
        return real(conn, tx, works, appends)

    loop_thread = threading.get_ident()
    monkeypatch.setattr(group_commit, "_committed", commit_fails_on_the_loop)
    threads: list[int] = []
    assert await asyncio.gather(db.write(_add("x", threads)), db.write(_add("y", threads))) == [
        "x",
        "y",
    ]
    assert calls[0] == loop_thread and calls[1] != loop_thread
    assert threads[:2] == [loop_thread] * 2 and threads[2:] != [loop_thread] * 2
    assert _names(Path(db.sync_writer.url.database or "")) == ["x", "y"]


async def test_concurrent_units_still_share_one_transaction(db: Database) -> None:
    """Many units at once: one batch, one transaction, on the loop's thread (the lock is free);
    the same batch under a held lock goes to one thread (below)."""
    threads: list[int] = []
    transactions: list[int] = []
    many = 40

    def add(name: str) -> Callable[[Connection], str]:
        def work(conn: Connection) -> str:
            transactions.append(id(conn.get_transaction()))
            return _add(name, threads)(conn)

        return work

    names = await asyncio.gather(*(db.write(add(f"n{i}")) for i in range(many)))
    assert names == [f"n{i}" for i in range(many)]
    assert set(threads) == {threading.get_ident()} and len(set(transactions)) == 1


async def test_a_held_write_lock_sends_the_unit_to_a_thread_without_stalling_the_loop(
    db: Database,
) -> None:
    path = Path(db.sync_writer.url.database or "")
    other = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    other.execute("BEGIN IMMEDIATE")  # another process writing
    ticks: list[float] = []

    async def other_writer() -> None:
        """Hold the lock until the loop has turned 20 times, then commit. The release is paced
        by the loop itself, not by a clock: a unit that waited for the lock ON the loop would
        stall these ticks and never see the lock come free (until its busy timeout, 5 s), and a
        loop paused by the machine (a long GC in a big suite) cannot let the lock go before the
        unit had its try."""
        for _ in range(20):
            ticks.append(time.monotonic())
            await asyncio.sleep(0.01)
        other.execute("COMMIT")

    threads: list[int] = []
    holder = asyncio.create_task(other_writer())
    try:
        assert await db.write(_add("after-lock", threads)) == "after-lock"
    finally:
        await holder
        other.close()
    assert len(ticks) == 20  # the lock came free only after the loop had run on meanwhile ...
    assert threads and threads[0] != threading.get_ident()  # ... the unit waiting in a thread
    gaps = [b - a for a, b in itertools.pairwise(ticks)]
    assert max(gaps) < 1.0, max(gaps)  # never anywhere near the 5 s busy timeout on the loop
    timeouts: list[int] = []
    await db.write(
        lambda conn: timeouts.append(conn.exec_driver_sql("PRAGMA busy_timeout").scalar_one())
    )
    assert timeouts == [5000]  # the writer's busy timeout is its own again
