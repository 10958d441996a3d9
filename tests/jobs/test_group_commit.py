"""Group commit: units are isolated by savepoints; a failed COMMIT falls back to one by one."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from sqlalchemy import (
    Column,
    Connection,
    Integer,
    MetaData,
    String,
    Table,
    create_engine,
    event,
    insert,
    select,
)

from pixelpipe.group_commit import GroupCommitter

meta = MetaData()
things = Table(
    "things", meta, Column("id", Integer, primary_key=True), Column("name", String, unique=True)
)


@pytest.fixture
def engine(tmp_path: Path):  # type: ignore[no-untyped-def]
    eng = create_engine(f"sqlite:///{tmp_path / 'g.db'}", connect_args={"check_same_thread": False})
    meta.create_all(eng)
    yield eng
    eng.dispose()


def _add(name: str):  # type: ignore[no-untyped-def]
    def work(conn: Connection) -> str:
        conn.execute(insert(things).values(name=name))
        return name

    return work


def _names(engine) -> list[str]:  # type: ignore[no-untyped-def]
    with engine.connect() as conn:
        return sorted(r[0] for r in conn.execute(select(things.c.name)))


async def test_a_failing_unit_rolls_back_alone(engine) -> None:  # type: ignore[no-untyped-def]
    gc = GroupCommitter(engine)
    results = await asyncio.gather(
        gc.run(_add("a")), gc.run(_add("a")), gc.run(_add("b")), return_exceptions=True
    )
    assert results[0] == "a" and results[2] == "b"
    assert isinstance(results[1], Exception)  # the duplicate, and only it
    assert _names(engine) == ["a", "b"]


async def test_appends_are_bulk_inserted_and_fail_together(engine) -> None:  # type: ignore[no-untyped-def]
    gc = GroupCommitter(engine)
    await asyncio.gather(*(gc.append([(things, {"name": f"n{i}"})]) for i in range(50)))
    assert len(_names(engine)) == 50
    outcome = await asyncio.gather(
        gc.append([(things, {"name": "n1"})]),
        gc.append([(things, {"name": "fresh"})]),
        return_exceptions=True,
    )
    assert all(isinstance(o, Exception) for o in outcome)
    assert "fresh" not in _names(engine)


async def test_failed_commit_falls_back_to_one_transaction_per_unit(engine, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    gc = GroupCommitter(engine)
    real = gc._flush
    calls = []

    def flaky(works, appends):  # type: ignore[no-untyped-def]
        calls.append(len(works) + len(appends))
        if len(calls) == 1:
            raise RuntimeError("deadlock detected")
        return real(works, appends)

    monkeypatch.setattr(gc, "_flush", flaky)
    results = await asyncio.gather(gc.run(_add("x")), gc.run(_add("y")))
    assert results == ["x", "y"]
    assert calls[0] == 2 and calls[1:] == [1, 1]
    assert _names(engine) == ["x", "y"]


async def test_a_unit_alone_commits_without_a_savepoint_and_fails_cleanly(engine) -> None:  # type: ignore[no-untyped-def]
    gc = GroupCommitter(engine)
    assert await gc.run(_add("solo")) == "solo"

    def half_then_fail(conn: Connection) -> None:
        conn.execute(insert(things).values(name="half"))
        raise RuntimeError("the unit failed after writing")

    with pytest.raises(RuntimeError):
        await gc.run(half_then_fail)  # alone in its batch: its transaction rolls back
    assert _names(engine) == ["solo"]


def _traced(engine) -> list[str]:  # type: ignore[no-untyped-def]
    """Every statement the engine's connections run, from SQLite's own trace."""
    statements: list[str] = []

    @event.listens_for(engine, "connect")
    def trace(dbapi_conn, _record) -> None:  # type: ignore[no-untyped-def]
        dbapi_conn.set_trace_callback(statements.append)

    engine.dispose()  # the connections made before are not traced: new ones
    return statements


async def test_a_batch_that_succeeds_shares_one_savepoint(engine) -> None:  # type: ignore[no-untyped-def]
    statements = _traced(engine)
    gc = GroupCommitter(engine)
    assert await asyncio.gather(*(gc.run(_add(f"s{i}")) for i in range(20))) == [
        f"s{i}" for i in range(20)
    ]
    savepoints = [s for s in statements if s.startswith("SAVEPOINT")]
    assert savepoints == ["SAVEPOINT pixelpipe_batch"]  # not one per unit
    assert _names(engine) == sorted(f"s{i}" for i in range(20))


async def test_a_unit_failing_after_writing_takes_back_only_its_own_rows(engine) -> None:  # type: ignore[no-untyped-def]
    statements = _traced(engine)
    gc = GroupCommitter(engine)
    ran: list[str] = []

    def counted(name: str):  # type: ignore[no-untyped-def]
        add = _add(name)

        def work(conn: Connection) -> str:
            ran.append(name)
            return add(conn)  # type: ignore[no-any-return]

        return work

    def half_then_fail(conn: Connection) -> None:
        conn.execute(insert(things).values(name="half"))
        raise RuntimeError("the unit failed after writing")

    results = await asyncio.gather(
        gc.run(counted("before")),
        gc.run(half_then_fail),
        gc.run(counted("after")),
        return_exceptions=True,
    )
    assert results[0] == "before" and results[2] == "after"
    assert isinstance(results[1], RuntimeError)
    assert _names(engine) == ["after", "before"]  # each once; nothing of the failed unit
    assert ran == ["before", "before", "after"]  # the batch ran again, unit by unit
    assert "ROLLBACK TO SAVEPOINT pixelpipe_batch" in statements
    assert statements.count("SAVEPOINT pixelpipe_unit") == 3
