"""A group commit's status events are queued while its units run and written at the end of the
batch with multi-row INSERTs (compiled_sql.rows_deferred): one statement for the batch, the
events in the order their units ran, and a unit that deletes a job first writes what the batch
queued for it, so that nothing of a deleted job is left behind."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy import event, select

from pixelpipe.db import open_database
from pixelpipe.events.local import LocalNotifier
from pixelpipe.jobs.model import JobStatus
from pixelpipe.jobs.sql import SqlJobStore
from pixelpipe.jobs.tables import job_events
from pixelpipe.migrations.runner import upgrade_async
from tests.jobs.test_store_contract import make_job

S = JobStatus


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[SqlJobStore]:
    url = f"sqlite+aiosqlite:///{tmp_path / 'events.db'}"
    await upgrade_async(url)
    store = SqlJobStore(open_database(url), LocalNotifier())
    yield store
    await store.db.dispose()


def traced(store: SqlJobStore) -> list[str]:
    statements: list[str] = []

    @event.listens_for(store.db.sync_writer, "connect")
    def trace(dbapi_conn, _record) -> None:  # type: ignore[no-untyped-def]
        dbapi_conn.set_trace_callback(statements.append)

    store.db.sync_writer.dispose()  # connections made from here on are traced
    return statements


async def event_rows(store: SqlJobStore) -> list[tuple[int, str, str]]:
    async with store.db.read() as conn:
        query = select(job_events.c.id, job_events.c.job_id, job_events.c.type).order_by(
            job_events.c.id
        )
        return [tuple(r) for r in (await conn.execute(query)).all()]  # type: ignore[misc]


async def test_a_batchs_status_events_are_one_insert_in_the_order_their_units_ran(
    store: SqlJobStore,
) -> None:
    jobs = [make_job(f"deferred {i}") for i in range(16)]
    for job in jobs:
        await store.create(job, single_flight=False)
    statements = traced(store)
    moved = await asyncio.gather(*(store.transition(j.id, S.QUEUED, S.CANCELED) for j in jobs))
    assert all(m is not None and m.status is S.CANCELED for m in moved)
    inserts = [s for s in statements if s.startswith("INSERT INTO job_events")]
    # 16 rows: one statement (a run of n rows is written as power-of-two chunks: 12 is 8 + 4)
    assert len(inserts) == 1 and inserts[0].count("'status'") == 16, inserts
    canceled = [job_id for _, job_id, _ in (await event_rows(store))[16:]]
    assert canceled == [j.id for j in jobs]  # the units ran in the order they were asked
    for job in jobs:
        statuses = [e.data["status"] for e in await store.events_since(job.id)]
        assert statuses == ["queued", "canceled"]


async def test_a_job_deleted_in_the_batch_that_queued_its_event_leaves_none_behind(
    store: SqlJobStore,
) -> None:
    job = make_job("canceled then deleted")
    await store.create(job, single_flight=False)
    other = make_job("canceled and kept")
    await store.create(other, single_flight=False)
    canceled, kept, deleted = await asyncio.gather(  # one batch, in this order
        store.transition(job.id, S.QUEUED, S.CANCELED),
        store.transition(other.id, S.QUEUED, S.CANCELED),
        store.delete(job.id),
    )
    assert canceled is not None and kept is not None and deleted.found
    rows = [(job_id, kind) for _, job_id, kind in await event_rows(store)]
    assert [kind for job_id, kind in rows if job_id == job.id] == ["deleted"]  # no stray event
    assert [kind for job_id, kind in rows if job_id == other.id] == ["status", "status"]
