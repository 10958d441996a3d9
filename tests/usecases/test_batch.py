"""submit_many / wait_many / submit_many_and_wait: order, all-or-nothing, timeouts, cache hits."""

from __future__ import annotations

import pytest

from pixelpipe.errors import InvalidRequest
from pixelpipe.jobs.model import JobStatus
from pixelpipe.services import Services
from pixelpipe.usecases.batch import submit_many, submit_many_and_wait, wait_many
from pixelpipe.usecases.jobs import list_jobs
from pixelpipe.usecases.worker_lifecycle import embedded_worker
from tests.usecases.conftest import body


async def test_jobs_come_back_finished_in_the_order_asked(svc: Services) -> None:
    prompts = [f"fox {i}" for i in range(4)]
    async with embedded_worker(svc, grace_s=1.0):
        jobs = await submit_many_and_wait(svc, [body(p) for p in prompts], timeout_s=10)
    assert [j.request.prompt for j in jobs] == prompts
    assert {j.status for j in jobs} == {JobStatus.SUCCEEDED}


async def test_a_refused_request_cancels_the_jobs_started_before_it(svc: Services) -> None:
    started = await submit_many(svc, [body("first")])  # no worker: it stays queued
    with pytest.raises(InvalidRequest):
        await submit_many(svc, [body("second"), body("third", model="no-such-model")])
    jobs, _ = await list_jobs(svc, limit=10)
    by_prompt = {j.request.prompt: j.status for j in jobs}
    # "second" was started by the refused call: canceled; an earlier call's job is left alone
    assert by_prompt == {"first": JobStatus.QUEUED, "second": JobStatus.CANCELED}
    assert started[0].created


async def test_waiting_past_the_timeout_raises_and_the_jobs_keep_running(svc: Services) -> None:
    subs = await submit_many(svc, [body("slow")])
    with pytest.raises(TimeoutError):
        await wait_many(svc, [s.job for s in subs], timeout_s=0.2)
    row = await svc.store.get(subs[0].job.id)
    assert row is not None and row.status is JobStatus.QUEUED


async def test_cache_hits_need_no_worker(svc: Services) -> None:
    async with embedded_worker(svc, grace_s=1.0):
        (first,) = await submit_many_and_wait(svc, [body("twice")], timeout_s=10)
    (again,) = await submit_many_and_wait(svc, [body("twice")], timeout_s=0.1)
    assert again.cached and again.status is JobStatus.SUCCEEDED
    assert again.storage_key == first.storage_key
