"""The dispatcher always yields (even when queue deliveries overfilled its slots), and never keeps a
lease with no step behind it."""

from __future__ import annotations

import asyncio
from pathlib import Path

from pixelpipe.bootstrap import build_services
from pixelpipe.dispatcher import Dispatcher
from pixelpipe.jobs.model import Job
from pixelpipe.settings import Settings
from pixelpipe.usecases.submit import submit
from tests.usecases.conftest import body


async def test_round_sleeps_when_slots_are_overfilled(tmp_path: Path) -> None:
    svc = await build_services(Settings(data_dir=tmp_path, worker_concurrency=1))  # type: ignore[call-arg]
    try:
        d = Dispatcher(svc, asyncio.Event())
        blockers = [asyncio.create_task(asyncio.sleep(10)) for _ in range(2)]
        d.running.update(blockers)  # two steps running, capacity one: free = -1
        # a round must wait (for a wake-up or the idle timeout), not return at once
        round_task = asyncio.create_task(d._round())
        await asyncio.sleep(0.2)
        assert not round_task.done()
        d.wakeup.set()
        await asyncio.wait_for(round_task, 2)
        for t in blockers:
            t.cancel()
    finally:
        await svc.aclose()


async def test_a_job_claimed_again_as_its_step_ends_is_handed_back_not_left_leased(
    tmp_path: Path,
) -> None:
    # the step's last write makes the job due at once, and a round claims it before the step's
    # task is over: the claim must not leave the job leased to nobody until the lease expires
    svc = await build_services(Settings(data_dir=tmp_path, storage_url="memory://"))  # type: ignore[call-arg]
    try:
        d = Dispatcher(svc, asyncio.Event(), owner="test-dispatcher")
        job = (await submit(svc, body("claimed twice"))).job
        claimed = await svc.store.claim(job.id, d.owner, lease_s=60)
        assert claimed is not None
        step_may_end = asyncio.Event()
        steps: list[str] = []

        async def step(j: Job) -> None:
            steps.append(j.id)
            await step_may_end.wait()

        d.worker.run_step = step  # type: ignore[method-assign]
        d._start(claimed)
        await asyncio.sleep(0)
        d._start(claimed)  # the round's claim, while the step still runs
        assert steps == [job.id]  # never two steps of one job at once
        d.wakeup.clear()
        step_may_end.set()
        await asyncio.wait_for(d.wakeup.wait(), 2)
        for _ in range(50):
            if not d.running:
                break
            await asyncio.sleep(0.02)
        row = await svc.store.get(job.id)
        assert row is not None and row.lease_owner is None  # handed back: the next round runs it
        again = await svc.store.claim_due(d.owner, limit=5, lease_s=60)
        assert [j.id for j in again] == [job.id]
    finally:
        await svc.aclose()


async def test_a_step_that_ends_its_job_does_not_make_the_loop_scan_again(tmp_path: Path) -> None:
    # a job handed over in memory runs to the end: nothing new is due, so the loop is not woken
    # for a claim and a read it does not need; with rows left unclaimed (a full round) it is
    svc = await build_services(Settings(data_dir=tmp_path, storage_url="memory://"))  # type: ignore[call-arg]
    try:
        d = Dispatcher(svc, svc.queue.wakeup, owner="test-dispatcher")
        for behind, prompt in ((False, "ends quietly"), (True, "ends with rows waiting")):
            d._behind = behind
            d.wakeup.clear()
            job = (await submit(svc, body(prompt))).job
            assert list(d.active) == [job.id]  # handed over in memory, no claim
            await asyncio.wait_for(asyncio.gather(*d.running), 30)
            done = await svc.store.get(job.id)
            assert done is not None and done.status.terminal
            assert d.wakeup.is_set() is behind
    finally:
        await d.stop()
        await svc.aclose()
