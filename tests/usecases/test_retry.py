"""Retry a failed or canceled generation: a new job with the same request, ``retry_of`` the old
one, through every stage again; refused for a job that succeeded, runs, or is another key's."""

from __future__ import annotations

import pytest

from pixelpipe.errors import Conflict, Forbidden, NotFound
from pixelpipe.inputs import InputLimits, store_input
from pixelpipe.jobs.model import JobStatus
from pixelpipe.security.caller import Caller
from pixelpipe.services import Services
from pixelpipe.usecases.batch import wait_many
from pixelpipe.usecases.jobs import cancel, get_job
from pixelpipe.usecases.retry import retry
from pixelpipe.usecases.submit import submit
from pixelpipe.usecases.worker_lifecycle import embedded_worker
from tests.inputs.images import picture
from tests.usecases.conftest import body


async def test_a_canceled_job_retries_as_a_new_job_with_the_same_request(svc: Services) -> None:
    first = (await submit(svc, body("a lighthouse", seed=11), caller=Caller("key_a"))).job
    await cancel(svc, first.id)
    again = await retry(svc, first.id, caller=Caller("key_a"))
    assert again.created and again.job.id != first.id
    assert again.job.retry_of == first.id
    assert again.job.request == first.request and again.job.content_key == first.content_key
    assert again.job.api_key_id == "key_a"
    stored = await get_job(svc, again.job.id)
    assert stored.retry_of == first.id  # the lineage is kept in the job store
    assert (await get_job(svc, first.id)).status is JobStatus.CANCELED  # the old one unchanged


async def test_an_edit_retries_with_its_stored_inputs(svc: Services) -> None:
    limits = InputLimits.from_settings(svc.settings)
    up = await store_input(svc.storage, picture("PNG", (32, 32), "teal"), limits)
    first = (await submit(svc, body("dusk", images=[up.id], strength=0.4))).job
    await cancel(svc, first.id)
    async with embedded_worker(svc, grace_s=1.0):
        again = (await retry(svc, first.id)).job
        assert again.request.images == (up.digest,) and again.request.strength == 0.4
        assert again.content_key == first.content_key and again.content_key.startswith("k2:")
        (done,) = await wait_many(svc, [again], timeout_s=10)
    assert done.status is JobStatus.SUCCEEDED and done.retry_of == first.id


async def test_only_failed_or_canceled_jobs_of_the_callers_key_retry(svc: Services) -> None:
    running = (await submit(svc, body("still queued"), caller=Caller("key_a"))).job
    with pytest.raises(Conflict, match="has not finished"):
        await retry(svc, running.id, caller=Caller("key_a"))
    await cancel(svc, running.id)
    with pytest.raises(Forbidden, match="may retry it"):
        await retry(svc, running.id, caller=Caller("key_b"))
    assert (await retry(svc, running.id, caller=Caller("key_z", admin=True))).job.retry_of
    with pytest.raises(NotFound):
        await retry(svc, "gen_nosuchjob")
