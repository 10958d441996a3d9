"""Job-store contract, backend slots (pixelpipe/jobs/slots.py): never more runs in flight on a
backend than its slots, first come first served, the line's places shown as progress, and a
freed slot waking the first job in line — on every store."""

from __future__ import annotations

import asyncio
import dataclasses
import time

import pytest

from pixelpipe.db import open_database
from pixelpipe.events.local import LocalNotifier
from pixelpipe.jobs.model import Job, JobStatus
from pixelpipe.jobs.slots import FRONT_RECHECK_S, InLine, SlotRequest, SlotUse
from pixelpipe.jobs.sql import SqlJobStore
from pixelpipe.jobs.store import JobStore
from pixelpipe.migrations.runner import upgrade_async
from tests.jobs.test_store_contract import make_job

S = JobStatus
GPU = "gpu_a"


async def queued(store: JobStore, n: int, backend: str = GPU) -> list[Job]:
    """``n`` queued jobs on ``backend``, each leased by an owner named after it."""
    out = []
    for i in range(n):
        job = dataclasses.replace(make_job(f"slot {i} {time.monotonic()}"), provider=backend)
        await store.create(job, single_flight=False)
        claimed = await store.claim(job.id, f"w-{job.id}", lease_s=60)
        assert claimed is not None
        out.append(claimed)
    return out


async def start(store: JobStore, job: Job, slots: int = 1) -> Job | InLine | None:
    """Try to submit ``job`` (as its owner) with the job as the store has it now."""
    current = await store.get(job.id)
    assert current is not None
    return await store.start_in_slot(
        current, f"w-{job.id}", SlotRequest(GPU, slots), attempt=current.attempt + 1
    )


async def test_one_slot_one_run_the_rest_in_line_in_order(store: JobStore) -> None:
    a, b, c = await queued(store, 3)
    first = await start(store, a)
    assert isinstance(first, Job) and first.status is S.SUBMITTING and first.attempt == 1
    assert await start(store, b) == InLine(1, pytest.approx(time.time(), abs=5))
    assert isinstance(placed := await start(store, c), InLine) and placed.position == 2
    again = await start(store, b)  # looking again keeps its place, and no new progress event
    assert isinstance(again, InLine) and again.position == 1
    b_now = await store.get(b.id)
    assert b_now is not None and b_now.status is S.QUEUED
    assert b_now.provider_state["progress"] == {"queue_position": 1, "backend": GPU}
    assert b_now.next_run_at is not None and b_now.next_run_at > time.time() + 1
    progress = [e for e in await store.events_since(b.id) if e.type == "progress"]
    assert [e.data for e in progress] == [{"queue_position": 1, "backend": GPU}]
    assert await store.slot_use([GPU, "idle"]) == {GPU: SlotUse(1, 2), "idle": SlotUse(0, 0)}


async def test_leaving_the_slot_wakes_the_first_in_line_only(store: JobStore) -> None:
    a, b, c = await queued(store, 3)
    assert isinstance(await start(store, a), Job)
    assert isinstance(await start(store, b), InLine)
    assert isinstance(await start(store, c), InLine)
    waiting = await store.transition(a.id, S.SUBMITTING, S.WAITING)
    assert waiting is not None  # still holding its slot: nobody wakes
    b_now = await store.get(b.id)
    assert b_now is not None and (b_now.next_run_at or 0) > time.time() + 1
    before = time.time()
    assert await store.transition(a.id, S.WAITING, S.FETCHING) is not None
    b_now, c_now = await store.get(b.id), await store.get(c.id)
    assert b_now is not None and c_now is not None
    assert (b_now.next_run_at or 0) <= time.time() and (b_now.next_run_at or 0) >= before
    assert (c_now.next_run_at or 0) > time.time() + 1  # the second waits for the next slot
    moved = await start(store, b)
    assert isinstance(moved, Job) and moved.status is S.SUBMITTING
    assert moved.slot_wait_since is None and "progress" not in moved.provider_state
    assert await start(store, c) == InLine(1, pytest.approx(c_now.slot_wait_since))


async def test_a_newcomer_never_jumps_the_line(store: JobStore) -> None:
    a, b, newcomer = await queued(store, 3)
    assert isinstance(await start(store, a), Job)
    assert isinstance(await start(store, b), InLine)
    assert await store.transition(a.id, S.SUBMITTING, S.FAILED) is not None  # a slot is free
    placed = await start(store, newcomer)  # ... but b was here first
    assert isinstance(placed, InLine) and placed.position == 2
    assert isinstance(await start(store, b), Job)


async def test_several_slots(store: JobStore) -> None:
    jobs = await queued(store, 4)
    results = [await start(store, j, slots=3) for j in jobs]
    assert [type(r).__name__ for r in results] == ["Job", "Job", "Job", "InLine"]
    other = dataclasses.replace(make_job("elsewhere"), provider="gpu_b")  # its own slots
    await store.create(other, single_flight=False)
    assert await store.claim(other.id, "w-other", lease_s=60) is not None
    assert isinstance(await store.start_in_slot(other, "w-other", SlotRequest("gpu_b", 1)), Job)
    assert (await store.slot_use([GPU]))[GPU] == SlotUse(3, 1)


async def test_a_job_not_queued_or_not_ours_is_left_alone(store: JobStore) -> None:
    [a] = await queued(store, 1)
    assert await store.start_in_slot(a, "someone-else", SlotRequest(GPU, 1)) is None
    assert await store.transition(a.id, S.QUEUED, S.CANCELED) is not None
    assert await start(store, a) is None
    canceled = await store.get(a.id)
    assert canceled is not None and canceled.slot_wait_since is None


async def test_the_front_of_the_line_looks_again_soon_in_case_a_wake_up_was_spent(
    store: JobStore,
) -> None:
    a, b = await queued(store, 2)
    assert isinstance(await start(store, a), Job)
    assert isinstance(await start(store, b), InLine)
    b_now = await store.get(b.id)
    assert b_now is not None and b_now.next_run_at is not None
    assert b_now.next_run_at <= time.time() + FRONT_RECHECK_S


async def test_concurrent_starts_never_exceed_the_slots(sql_store: SqlJobStore) -> None:
    """One process: twelve jobs started at once on three slots (group-committed writes)."""
    jobs = await queued(sql_store, 12)
    results = await asyncio.gather(*(start(sql_store, j, slots=3) for j in jobs))
    assert sum(isinstance(r, Job) for r in results) == 3
    lines = sorted(r.position for r in results if isinstance(r, InLine))
    assert lines == list(range(1, 10))
    assert (await sql_store.slot_use([GPU]))[GPU] == SlotUse(3, 9)


@pytest.mark.servers
async def test_processes_racing_for_slots_on_postgresql_never_exceed_them(
    postgres_url: str, notifier: LocalNotifier
) -> None:
    """Six "processes" (a database pool and group committer each), four jobs each, all started
    at once on two slots, several rounds: READ COMMITTED alone would let two transactions count
    the same free slot; the advisory lock per backend serialises them."""
    await upgrade_async(postgres_url)
    stores = [SqlJobStore(open_database(postgres_url), notifier) for _ in range(6)]
    try:
        for _ in range(3):
            per_store = [await queued(store, 4) for store in stores]
            tries = [
                start(store, j, slots=2)
                for store, js in zip(stores, per_store, strict=True)
                for j in js
            ]
            results = await asyncio.gather(*tries)
            use = (await stores[0].slot_use([GPU]))[GPU]
            assert use.busy == 2 and sum(isinstance(r, Job) for r in results) <= 2, results
            for job in [
                r for r in results if isinstance(r, Job)
            ]:  # end the runs for the next round
                assert await stores[0].transition(job.id, S.SUBMITTING, S.FAILED) is not None
            for store, js in zip(stores, per_store, strict=True):  # and clear the line
                for j in js:
                    await store.transition(j.id, S.QUEUED, S.CANCELED)
    finally:
        for store in stores:
            await store.db.dispose()


async def test_the_next_in_line_are_told_their_new_places(store: JobStore) -> None:
    a, b, c, d = await queued(store, 4)
    assert isinstance(await start(store, a), Job)
    for job in (b, c, d):
        assert isinstance(await start(store, job), InLine)
    assert [await store.line_position(j) for j in (a, b, c, d)] == [None, 1, 2, 3]
    assert await store.transition(a.id, S.SUBMITTING, S.FETCHING) is not None
    assert isinstance(await start(store, b), Job)  # b leaves the line: c and d move up
    for job, place in ((c, 1), (d, 2)):
        now = await store.get(job.id)
        assert now is not None and now.provider_state["progress"]["queue_position"] == place
        assert await store.line_position(now) == place
        told = [
            e.data["queue_position"]
            for e in await store.events_since(job.id)
            if e.type == "progress"
        ]
        assert told == [place + 1, place]
    assert await store.line_position(b) is None  # b is no longer in line
