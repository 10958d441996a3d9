"""In-process hand-over: a submit inserts its job leased to this process's dispatcher when it has
a free slot, and the dispatcher runs it without claiming it from the table."""

from __future__ import annotations

import asyncio
import dataclasses
import time
from pathlib import Path
from typing import Any

from pixelpipe.dispatcher import Dispatcher
from pixelpipe.intake import GenerationRequest
from pixelpipe.jobs.ids import new_job_id
from pixelpipe.jobs.model import Job, JobStatus
from pixelpipe.jobs.store import Opening
from pixelpipe.key import content_key
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


async def test_a_handed_over_job_is_submitting_from_its_admission_and_sent_at_once(
    tmp_path: Path,
) -> None:
    async with running_app(tmp_path) as app:
        svc = app.svc
        moves: list[str] = []
        real_transition = svc.store.transition

        async def transition(job_id: str, expected: Any, target: Any, **kw: Any) -> Job | None:
            moves.append(str(target))
            return await real_transition(job_id, expected, target, **kw)

        svc.store.transition = transition  # type: ignore[method-assign]
        sub = await submit(svc, _body("sent at once"))
        assert sub.created and sub.job.status is JobStatus.SUBMITTING and sub.job.attempt == 1
        done = await wait_finished(svc, sub.job.id, timeout_s=10)
        assert done.status is JobStatus.SUCCEEDED and done.attempt == 1
        assert "submitting" not in moves  # the admission made that move, in its own commit
        events = await svc.store.events_since(sub.job.id)
        statuses = [e.data["status"] for e in events if e.type == "status"]
        assert statuses[:2] == ["queued", "submitting"] and statuses[-1] == "succeeded"
        dispatcher = svc.queue.handoff
        assert isinstance(dispatcher, Dispatcher) and not dispatcher.worker.ctx.opened


async def test_an_opened_job_whose_process_died_before_sending_is_run_again(
    tmp_path: Path,
) -> None:
    """The process that admitted it died between the commit and the provider's call: once its
    lease lapses the job is an interrupted submit — attempt 1 closed, run again as attempt 2."""
    async with running_app(tmp_path, lease_s=1.0) as app:
        svc = app.svc
        job = (await submit(svc, _body("orphaned at its admission"))).job  # runs: a reference
        request = dataclasses.replace(job.request, prompt="orphaned at its admission, too")
        orphan = dataclasses.replace(
            job,
            id=new_job_id(),
            request=request,
            content_key=content_key(request),
            lease_owner="a-process-that-died",
            lease_expires_at=time.time() + 0.5,
            status=JobStatus.QUEUED,
            attempt=0,
        )
        opening = Opening(fields={"attempt": 1, "submitted_at": time.time()})
        admitted = await svc.store.admit(orphan, opening=opening)
        assert admitted.created and admitted.job.status is JobStatus.SUBMITTING
        done = await wait_finished(svc, orphan.id, timeout_s=15)
        assert done.status is JobStatus.SUCCEEDED and done.attempt == 2
        recovered = [e.data.get("recovered") for e in await svc.store.events_since(orphan.id)]
        assert "submit interrupted; submitting again" in recovered
