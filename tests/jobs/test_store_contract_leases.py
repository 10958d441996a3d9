"""Job-store contract, leases: claims, renewal by a running worker (from the fault-injection run,
docs/reliability.md), hand-back, and the sweeper's and scheduler's queries."""

from __future__ import annotations

import asyncio
import time

import pytest

from pixelpipe.jobs.ids import new_job_id
from pixelpipe.jobs.model import JobStatus
from pixelpipe.jobs.store import JobStore
from tests.jobs.test_store_contract import make_job

S = JobStatus


async def test_renewing_keeps_a_running_steps_lease_from_expiring(store: JobStore) -> None:
    job = make_job("renew")
    await store.create(job, single_flight=False)
    [claimed] = await store.claim_due("w1", limit=5, lease_s=0.2)
    assert claimed.id == job.id
    await asyncio.sleep(0.3)  # the lease has lapsed: another worker could claim it now ...
    assert await store.renew_leases([job.id], "w1", 30.0) == 1  # ... unless the owner renews
    assert await store.claim_due("w2", limit=5, lease_s=30.0) == []
    assert await store.renew_leases([job.id], "w2", 30.0) == 0  # only the holder renews
    renewed = await store.get(job.id)
    assert renewed is not None and renewed.lease_owner == "w1"
    assert (renewed.lease_expires_at or 0) > time.time() + 20


async def test_claims_are_exclusive_across_owners(store: JobStore) -> None:
    ids = {(await store.create(make_job(f"p{i}"), single_flight=True))[0].id for i in range(20)}
    a, b = await asyncio.gather(
        store.claim_due("A", limit=20, lease_s=30), store.claim_due("B", limit=20, lease_s=30)
    )
    assert {j.id for j in a} | {j.id for j in b} == ids
    assert not {j.id for j in a} & {j.id for j in b}
    assert await store.claim_due("C", limit=20, lease_s=30) == []


async def test_future_jobs_are_not_due_and_expired_leases_are(store: JobStore) -> None:
    later, _ = await store.create(make_job("later", due=time.time() + 60), single_flight=True)
    now_job, _ = await store.create(make_job("now"), single_flight=True)
    claimed = await store.claim_due("A", limit=10, lease_s=0.01)
    assert [j.id for j in claimed] == [now_job.id]
    await asyncio.sleep(0.05)
    again = await store.claim_due("B", limit=10, lease_s=30)
    assert [j.id for j in again] == [now_job.id]  # A's lease expired (A "crashed")
    assert later.id not in {j.id for j in again}
    assert await store.claim(now_job.id, "C", lease_s=30) is None  # B holds it


async def test_release_all_hands_leases_back(store: JobStore) -> None:
    job, _ = await store.create(make_job(), single_flight=True)
    assert await store.claim_due("A", limit=1, lease_s=300)
    assert await store.release_all("A") == 1
    assert [j.id for j in await store.claim_due("B", limit=1, lease_s=300)] == [job.id]


async def test_overdue_finds_late_and_silent_jobs(store: JobStore) -> None:
    job, _ = await store.create(make_job(), single_flight=True)
    await store.transition(job.id, S.QUEUED, S.SUBMITTING)
    await store.transition(
        job.id,
        S.SUBMITTING,
        S.WAITING,
        webhook_deadline_at=time.time() - 1,
        next_run_at=time.time() + 300,
    )
    late, silent = await store.overdue(time.time())
    assert [j.id for j in silent] == [job.id] and late == []
    late, _ = await store.overdue(time.time() + 10_000)
    assert [j.id for j in late] == [job.id]


async def test_a_job_is_claimed_by_id_while_runnable_and_free(store: JobStore) -> None:
    job, _ = await store.create(make_job("by id", due=time.time() + 600), single_flight=True)
    claimed = await store.claim(job.id, "A", lease_s=30)  # a queue delivery: due or not
    assert claimed is not None and claimed.lease_owner == "A"
    assert (claimed.lease_expires_at or 0) > time.time() + 20
    assert await store.claim(job.id, "B", lease_s=30) is None
    await store.release(job.id, "B")  # not B's to release
    assert await store.claim(job.id, "B", lease_s=30) is None
    await store.release(job.id, "A", next_run_at=time.time() + 900)
    released = await store.get(job.id)
    assert released is not None and released.lease_owner is None
    assert (released.next_run_at or 0) > time.time() + 800
    await store.transition(job.id, JobStatus.QUEUED, JobStatus.CANCELED)
    assert await store.claim(job.id, "B", lease_s=30) is None  # finished: not runnable
    assert await store.claim(new_job_id(), "B", lease_s=30) is None


async def test_claims_take_the_most_overdue_first(store: JobStore) -> None:
    now = time.time()
    ids = [
        (await store.create(make_job(f"d{i}", due=now - i), single_flight=True))[0].id
        for i in range(3)
    ]
    claimed = await store.claim_due("A", limit=2, lease_s=30)
    assert {j.id for j in claimed} == {ids[2], ids[1]}
    assert all(j.lease_owner == "A" for j in claimed)


async def test_the_next_due_time_waits_for_a_lease_to_end(store: JobStore) -> None:
    assert await store.next_due_at() is None
    due = time.time() + 100
    job, _ = await store.create(make_job("scheduled", due=due), single_flight=True)
    assert await store.next_due_at() == pytest.approx(due, abs=0.001)
    await store.claim(job.id, "A", lease_s=300)  # leased until after it is due
    leased = await store.get(job.id)
    assert leased is not None
    assert await store.next_due_at() == pytest.approx(leased.lease_expires_at, abs=0.001)
    await store.transition(job.id, JobStatus.QUEUED, JobStatus.CANCELED)
    assert await store.next_due_at() is None  # finished jobs are never due
