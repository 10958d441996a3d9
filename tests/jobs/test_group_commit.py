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
