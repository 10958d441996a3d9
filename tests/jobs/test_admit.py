"""JobStore.admit: a new request's one write (image lookup, attach, reservation, job row)."""

from __future__ import annotations

import time

import pytest
from sqlalchemy import Connection, func, select

from pixelpipe.errors import BudgetExceeded
from pixelpipe.jobs.model import ImageRecord
from pixelpipe.jobs.store import JobStore
from pixelpipe.jobs.tables import job_events, jobs
from tests.jobs.test_store_contract import make_job


async def _count(store: JobStore, table) -> int:  # type: ignore[no-untyped-def]
    async with store.db.read() as conn:
        return int((await conn.execute(select(func.count()).select_from(table))).scalar() or 0)


async def test_admit_inserts_the_job_with_its_event_and_runs_the_guard_inside(
    store: JobStore,
) -> None:
    seen: list[str] = []

    def guard(conn: Connection) -> None:  # runs in the unit, before the insert
        seen.append("guard")
        assert conn.execute(select(func.count()).select_from(jobs)).scalar() == 0

    job = make_job("admitted")
    admission = await store.admit(job, guard=guard)
    assert admission.created and admission.image is None and seen == ["guard"]
    stored = await store.get(job.id)
    assert stored is not None and stored.status == job.status
    assert await _count(store, job_events) == 1


async def test_a_refusing_guard_leaves_nothing_written(store: JobStore) -> None:
    def refuse(conn: Connection) -> None:
        raise BudgetExceeded("over budget")

    with pytest.raises(BudgetExceeded):
        await store.admit(make_job("refused"), guard=refuse)
    assert await _count(store, jobs) == 0 and await _count(store, job_events) == 0


async def test_a_stored_image_is_returned_and_nothing_is_written(store: JobStore) -> None:
    job = make_job("already drawn")
    rec = ImageRecord(
        job.content_key, "preview/aa/x.png", "image/png", 64, 64, 10, "preview", "gen_x",
        time.time(), "thumbs/x.webp",
    )  # fmt: skip
    await store.save_image(rec)
    calls: list[int] = []
    admission = await store.admit(job, guard=lambda conn: calls.append(1))
    assert not admission.created and admission.image == rec and calls == []
    assert await _count(store, jobs) == 0
    assert store.cached_image(job.content_key) == rec


async def test_an_identical_request_in_flight_attaches_without_running_the_guard(
    store: JobStore,
) -> None:
    first = make_job("twice")
    assert (await store.admit(first)).created
    calls: list[int] = []
    second = await store.admit(make_job("twice"), guard=lambda conn: calls.append(1))
    assert not second.created and second.job.id == first.id and calls == []
    assert await _count(store, jobs) == 1
