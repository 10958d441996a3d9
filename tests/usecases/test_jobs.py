"""get / list / cancel / delete and a job's events, through the use cases."""

from __future__ import annotations

import asyncio

import pytest

from pixelpipe.errors import Conflict, Forbidden, NotFound
from pixelpipe.jobs.model import JobStatus
from pixelpipe.security.caller import Caller
from pixelpipe.services import Services
from pixelpipe.usecases.events import follow_job
from pixelpipe.usecases.jobs import cancel, delete, get_job, list_jobs
from pixelpipe.usecases.submit import submit
from tests.usecases.conftest import body


async def _never_disconnected() -> bool:
    return False


async def test_list_pages_newest_first_with_a_cursor(svc: Services) -> None:
    ids = []
    for i in range(3):  # ids sort by their millisecond, then by 80 random bits (unguessable)
        ids.append((await submit(svc, body(f"page {i}"))).job.id)
        await asyncio.sleep(0.002)
    first, cursor = await list_jobs(svc, limit=2)
    assert [j.id for j in first] == ids[:0:-1] and cursor == ids[1]
    rest, end = await list_jobs(svc, before=cursor, limit=2)
    assert [j.id for j in rest] == [ids[0]] and end is None


async def test_cancel_ends_the_job_once_and_its_events_say_so(svc: Services) -> None:
    job = (await submit(svc, body("to cancel"))).job
    canceled = await cancel(svc, job.id)
    assert canceled.status is JobStatus.CANCELED
    with pytest.raises(Conflict):
        await cancel(svc, job.id)
    seen = [(ev.type, at) async for ev, at in follow_job(svc, job.id, 0, _never_disconnected)]
    statuses = [at.status for kind, at in seen if kind == "status" and at is not None]
    assert statuses[-1] is JobStatus.CANCELED  # the stream ends at the terminal status


async def test_delete_checks_the_owner_then_forgets_the_job(svc: Services) -> None:
    job = (await submit(svc, body("mine"), caller=Caller(key_id="key_a"))).job
    await cancel(svc, job.id)
    with pytest.raises(Forbidden):
        await delete(svc, job.id, caller=Caller(key_id="key_b"))
    await delete(svc, job.id, caller=Caller(key_id="key_a"))
    with pytest.raises(NotFound):
        await get_job(svc, job.id)
    with pytest.raises(NotFound):
        await get_job(svc, "not-a-job-id")
