"""In-process hand-over: a submit inserts its job leased to this process's dispatcher when it has
a free slot, and the dispatcher runs it without claiming it from the table."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from pixelpipe.intake import GenerationRequest
from pixelpipe.jobs.model import Job
from pixelpipe.notify.hooks import wait_finished
from pixelpipe.queue.local import LocalQueue
from pixelpipe.usecases.submit import submit
from tests.security.conftest import running_app


def _body(prompt: str) -> GenerationRequest:
    return GenerationRequest.model_validate({"prompt": prompt, "size": "64x64", "seed": 3})


async def test_a_job_is_handed_over_leased_and_never_claimed(tmp_path: Path) -> None:
    async with running_app(tmp_path) as app:
        svc = app.svc
        assert isinstance(svc.queue, LocalQueue) and svc.queue.handoff is not None
        claimed: list[str] = []
        real_claim_due = svc.store.claim_due

        async def claim_due(owner: str, **kw: Any) -> list[Job]:
            jobs = await real_claim_due(owner, **kw)
            claimed.extend(j.id for j in jobs)
            return jobs

        svc.store.claim_due = claim_due  # type: ignore[method-assign]
        released: list[str] = []
        real_release = svc.store.release

        async def release(job_id: str, owner: str, **fields: Any) -> None:
            released.append(job_id)
            await real_release(job_id, owner, **fields)

        svc.store.release = release  # type: ignore[method-assign]
        sub = await submit(svc, _body("handed over"))
        assert sub.created and sub.job.lease_owner == svc.queue.handoff.owner
        done = await wait_finished(svc, sub.job.id, timeout_s=10)
        assert done.status.value == "succeeded"
        assert sub.job.id not in claimed
        await asyncio.sleep(0.05)  # the step's own end, after the waiters heard of it
        stored = await svc.store.get(sub.job.id)
        assert stored is not None and stored.lease_owner is None  # cleared by the transition
        assert released == []  # so the step's end had nothing to release


async def test_a_full_dispatcher_takes_no_handover_and_the_table_scan_runs_the_job(
    tmp_path: Path,
) -> None:
    async with running_app(tmp_path, worker_concurrency=1) as app:
        svc = app.svc
        assert isinstance(svc.queue, LocalQueue) and svc.queue.handoff is not None
        dispatcher = svc.queue.handoff
        # hold the only slot (a step of 300 ms would free it while waiting on its provider,
        # which made this a race): the submit finds no room
        assert dispatcher.take_slot() and not dispatcher.take_slot()
        queued = await submit(svc, _body("waits for the slot"))
        assert queued.job.lease_owner is None  # queued unleased: claimed when a slot frees
        stored = await svc.store.get(queued.job.id)
        assert stored is not None and stored.status.value == "queued"
        dispatcher.give_slot(None)  # the slot frees: the table scan claims and runs the job
        done = await wait_finished(svc, queued.job.id, timeout_s=10)
        assert done.status.value == "succeeded"
