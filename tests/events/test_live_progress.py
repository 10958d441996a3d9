"""A job's progress while it waits or runs, in-process on the real SQLite store (no worker): its
``fraction`` and an ``eta_s`` from the service times of the model's finished jobs, in the job JSON
and in its events; the size's own median once it has enough samples; nothing once the job ended."""

from __future__ import annotations

import itertools
import time

from pixelpipe.jobs.model import Job, JobStatus
from pixelpipe.notify.public import job_payload
from pixelpipe.services import Services
from pixelpipe.usecases.events import follow_job
from pixelpipe.usecases.jobs import get_job
from pixelpipe.usecases.submit import submit
from tests.usecases.conftest import body


async def finished(svc: Services, prompt: str, service_s: float, size: str = "64x64") -> None:
    """A job of the preview that ran ``service_s`` seconds at the provider."""
    job = (await submit(svc, body(prompt, size=size))).job
    end = time.time() - 60
    steps = [JobStatus.QUEUED, JobStatus.FETCHING, JobStatus.STORING]
    for was, to in itertools.pairwise(steps):
        assert await svc.store.transition(job.id, was, to) is not None
    moved = await svc.store.transition(
        job.id,
        JobStatus.STORING,
        JobStatus.SUCCEEDED,
        submitted_at=end - service_s,
        finished_at=end,
    )
    assert moved is not None


async def running(svc: Services, prompt: str, for_s: float) -> Job:
    job = (await submit(svc, body(prompt))).job
    assert await svc.store.transition(job.id, JobStatus.QUEUED, JobStatus.SUBMITTING) is not None
    moved = await svc.store.transition(
        job.id, JobStatus.SUBMITTING, JobStatus.WAITING, submitted_at=time.time() - for_s
    )
    assert moved is not None
    return moved


async def test_a_queued_job_shows_the_median_and_a_running_one_what_is_left(
    svc: Services,
) -> None:
    waiting = (await submit(svc, body("a fox in line"))).job
    # nothing finished yet: no ETA (and "nothing measured" is kept a while)
    assert "eta_s" not in (await get_job(svc, waiting.id)).provider_state.get("progress", {})
    for i, seconds in enumerate((2.0, 4.0, 6.0, 8.0, 300.0)):
        await finished(svc, f"fox {i}", seconds)
    assert "eta_s" not in (await get_job(svc, waiting.id)).provider_state.get("progress", {})

    svc2 = svc  # as in a new process (or half a minute later): measured again
    svc2.service_times = type(svc.service_times)()
    job = await get_job(svc2, waiting.id)
    # the median, the outlier ignored; first in its provider's queue (docs/queue.md)
    assert job.provider_state["progress"] == {"queue_position": 1, "eta_s": 6.0}
    payload = await job_payload(svc2, job)
    assert payload["progress"] == {"queue_position": 1, "eta_s": 6.0}

    busy = await running(svc2, "a fox drawing", for_s=2.0)
    progress = (await get_job(svc2, busy.id)).provider_state["progress"]
    assert 3.5 <= progress["eta_s"] <= 4.0  # 6 s median, 2 s in

    await svc2.store.update(
        busy.id, provider_state={"progress": {"percent": 50, "step": 10, "steps": 20}}
    )
    progress = (await get_job(svc2, busy.id)).provider_state["progress"]
    assert progress["fraction"] == 0.5 and (progress["step"], progress["steps"]) == (10, 20)
    assert 1.9 <= progress["eta_s"] <= 2.5  # its own pace: half done in 2 s


async def test_a_size_with_enough_samples_has_its_own_median(svc: Services) -> None:
    for i, seconds in enumerate((1.0, 1.0, 1.0, 1.0)):
        await finished(svc, f"small {i}", seconds, size="64x64")
    for i, seconds in enumerate((9.0, 9.0)):
        await finished(svc, f"big {i}", seconds, size="512x512")
    small = (await submit(svc, body("a small owl"))).job
    assert (await get_job(svc, small.id)).provider_state["progress"]["eta_s"] == 1.0
    big = (await submit(svc, body("a big owl", size="512x512"))).job
    # two samples at 512x512 are too few: the model's median at any size
    assert (await get_job(svc, big.id)).provider_state["progress"]["eta_s"] == 1.0
    await finished(svc, "big 3", 9.0, size="512x512")
    svc.service_times = type(svc.service_times)()
    assert (await get_job(svc, big.id)).provider_state["progress"]["eta_s"] == 9.0


async def test_progress_events_carry_the_eta_until_the_job_ends(svc: Services) -> None:
    for i, seconds in enumerate((5.0, 5.0, 5.0)):
        await finished(svc, f"heron {i}", seconds)
    job = await running(svc, "a heron drawing", for_s=1.0)
    await svc.store.add_event(job.id, "progress", {"percent": 20.0})

    async def no() -> bool:
        return False

    events = []
    async for ev, at in follow_job(svc, job.id, 0, no):
        events.append((ev, at))
        if ev.type == "progress":
            break
    progress = events[-1][0].data
    assert progress["percent"] == 20.0 and progress["fraction"] == 0.2
    assert 3.5 <= progress["eta_s"] <= 4.5  # 1 s for 20 %: 4 s more
    statuses = [a for e, a in events if e.type == "status"]
    assert statuses[0] is not None and statuses[0].status is JobStatus.QUEUED
    assert "eta_s" not in statuses[0].provider_state.get("progress", {})  # not its status now
    assert statuses[-1] is not None and statuses[-1].status is JobStatus.WAITING
    assert "eta_s" in statuses[-1].provider_state["progress"]  # the job as it is now: with it

    await svc.store.transition(job.id, JobStatus.WAITING, JobStatus.FAILED, error_code="x")
    after = [ev async for ev, _ in follow_job(svc, job.id, 0, no)]
    assert all("eta_s" not in ev.data for ev in after)  # it ended: no ETA replayed
    assert "eta_s" not in (await get_job(svc, job.id)).provider_state.get("progress", {})


async def test_in_a_backends_line_the_rounds_ahead_count(svc: Services) -> None:
    for i, seconds in enumerate((3.0, 3.0, 3.0)):
        await finished(svc, f"crane {i}", seconds)
    svc.slots["preview"] = 1  # as if the preview were a backend that runs one job at a time
    first, second = [(await submit(svc, body(f"crane in line {i}"))).job for i in (1, 2)]
    for place, job in enumerate((first, second)):
        await svc.store.update(job.id, slot_wait_since=time.time() - 10 + place)
    progress = (await get_job(svc, second.id)).provider_state["progress"]
    assert progress["queue_position"] == 2  # its live place in line (jobs/slots.py)
    assert progress["eta_s"] == 9.0  # two rounds ahead, then its own: 3 × 3 s
    svc.slots["preview"] = 2
    svc.service_times = type(svc.service_times)()
    assert (await get_job(svc, second.id)).provider_state["progress"]["eta_s"] == 6.0


async def test_a_backends_own_estimate_is_kept(svc: Services) -> None:
    # AUTOMATIC1111 reports its own seconds left (eta_relative): it knows its run best, even
    # before anything finished here to measure
    busy = await running(svc, "a heron", for_s=1.0)
    own = {"percent": 5, "step": 1, "steps": 20, "eta_s": 7.5, "state": "running"}
    await svc.store.update(busy.id, provider_state={"progress": own})
    progress = (await get_job(svc, busy.id)).provider_state["progress"]
    assert progress["eta_s"] == 7.5 and progress["fraction"] == 0.05
    await svc.store.update(busy.id, provider_state={"progress": own | {"eta_s": -0.3}})
    progress = (await get_job(svc, busy.id)).provider_state["progress"]
    assert "eta_s" not in progress  # a negative one (A1111's last step) is not an estimate
