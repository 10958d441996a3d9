"""compiled_sql stores and returns rows exactly as SQLAlchemy's own execution does (SQLite)."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import Engine, create_engine, func, insert, select

from pixelpipe.compiled_sql import first_row, insert_row, insert_rows
from pixelpipe.db import metadata
from pixelpipe.jobs.rows import job_to_row, row_to_job
from pixelpipe.jobs.sql.statements import transition_stmt
from pixelpipe.jobs.tables import job_events, jobs
from tests.jobs.test_store_contract import make_job


@pytest.fixture
def engine(tmp_path: Path) -> Engine:
    eng = create_engine(f"sqlite:///{tmp_path / 'c.db'}")
    metadata.create_all(eng)
    return eng


def _row(prompt: str) -> dict:  # type: ignore[type-arg]
    job = make_job(prompt)
    job.provider_state = {"outputs": [{"url": "https://x/y.png"}], "n": 1}
    job.cached = True
    return {**job_to_row(job), "request_fingerprint": None, "inflight_key": None}


def test_inserted_rows_read_back_as_sqlalchemy_inserted_ones(engine: Engine) -> None:
    ours, theirs = _row("ours"), _row("theirs")
    many = [_row(f"many {i}") for i in range(3)]
    with engine.begin() as conn:
        insert_row(conn, jobs, ours)
        insert_rows(conn, jobs, many)
        conn.execute(insert(jobs), theirs)
        insert_row(
            conn,
            job_events,
            {"job_id": ours["id"], "type": "status", "data": {"a": [1]}, "created_at": 1.5},
        )
    with engine.connect() as conn:
        read = {r.id: r._mapping for r in conn.execute(select(jobs))}
        event = conn.execute(select(job_events)).one()
    for row in (ours, theirs, *many):
        got = dict(read[row["id"]])
        assert got == {**row, "cached": True}, row["id"]
    assert event.data == {"a": [1]} and event.created_at == 1.5


def test_update_returning_matches_sqlalchemy(engine: Engine) -> None:
    row = _row("moved")
    with engine.begin() as conn:
        conn.execute(insert(jobs), row)
    params = {
        "w_id": row["id"],
        "w_status0": "queued",
        "status": "submitting",
        "provider_state": {"progress": {"pct": 40}},
        "updated_at": 9.0,
    }
    with engine.begin() as conn:
        ours = first_row(conn, transition_stmt(1, False), jobs, params)
        assert first_row(conn, transition_stmt(1, False), jobs, params) is None  # moved
    with engine.begin() as conn:
        again = {**params, "w_status0": "submitting", "status": "submitting"}
        theirs = conn.execute(transition_stmt(1, False), again).first()
    assert ours is not None and theirs is not None
    assert ours == dict(theirs._mapping)
    assert row_to_job(ours) == row_to_job(theirs)
    assert ours["provider_state"] == {"progress": {"pct": 40}} and ours["cached"] is True
    with engine.connect() as conn:  # the statement left nothing pending: the commit went through
        assert conn.execute(select(jobs.c.status)).scalar() == "submitting"


def test_selects_and_deletes_match_sqlalchemy(engine: Engine) -> None:
    from sqlalchemy import bindparam, delete

    from pixelpipe.compiled_sql import all_rows, execute, first_row

    rows = [_row(f"sel {i}") for i in range(3)]
    with engine.begin() as conn:
        conn.execute(insert(jobs), rows)
    by_id = select(jobs).where(jobs.c.id == bindparam("w_id"))
    everything = select(jobs).order_by(jobs.c.id)
    with engine.begin() as conn:
        ours = first_row(conn, by_id, jobs, {"w_id": rows[1]["id"]})
        theirs = conn.execute(by_id, {"w_id": rows[1]["id"]}).one()
        assert ours == dict(theirs._mapping)
        assert first_row(conn, by_id, jobs, {"w_id": "gen_missing"}) is None
        assert all_rows(conn, everything, jobs, {}) == [
            dict(r._mapping) for r in conn.execute(everything)
        ]
        gone = execute(
            conn, delete(jobs).where(jobs.c.id == bindparam("w_id")), jobs, {"w_id": rows[0]["id"]}
        )
        assert gone == 1
    with engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(jobs)).scalar() == 2
