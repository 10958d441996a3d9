"""Capacity through the worker (worker/slots.py): a job whose backend has every slot taken waits
in its line — or moves to the model's next provider when that one has room, never to one that is
full too — and a hosted provider has no slots at all."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest

from pixelpipe.backend_health import check_once
from pixelpipe.bootstrap import build_services
from pixelpipe.intake import CanonicalRequest
from pixelpipe.jobs.ids import new_job_id
from pixelpipe.jobs.model import Job, JobStatus
from pixelpipe.key import content_key
from pixelpipe.services import Services
from pixelpipe.settings import load_settings
from pixelpipe.usecases.jobs import get_job
from pixelpipe.worker import Worker

pytestmark = pytest.mark.usefixtures("gpukind")
S = JobStatus
OWNER = "slots-test"

FILE = """\
[backends.gpu_a]
kind = "gpukind"
url = "http://10.1.2.3:5000"
usd_per_gpu_hour = 3.6

[backends.gpu_b]
kind = "gpukind"
url = "http://10.1.2.4:5000"
slots = 2
usd_per_gpu_hour = 3.6

[models.house]
label = "House"
formats = ["png"]
aspect_ratios = { "1:1" = [256, 256] }
backends = ["gpu_a"]

[models.house-or-preview]
label = "House, else the preview"
formats = ["png"]
aspect_ratios = { "1:1" = [256, 256] }
backends = ["gpu_a", "preview"]
ids = { preview = "preview" }

[models.two-gpus]
label = "Two GPU boxes"
formats = ["png"]
aspect_ratios = { "1:1" = [256, 256] }
backends = ["gpu_a", "gpu_b"]
"""


@pytest.fixture
async def svc(tmp_path: Path, catalog_file: Callable[[str], Path]) -> AsyncIterator[Services]:
    settings = load_settings(data_dir=tmp_path / "data", catalog_path=catalog_file(FILE))
    services = await build_services(settings)
    yield services
    await services.aclose()


async def add_job(
    svc: Services, model: str, provider: str, status: S = S.QUEUED, prompt: str = "x"
) -> Job:
    req = CanonicalRequest(model=model, prompt=prompt, seed=1, width=256, height=256, format="png")
    now = time.time()
    job = Job(
        id=new_job_id(),
        status=status,
        model=model,
        request=req,
        content_key=content_key(req),
        created_at=now,
        updated_at=now,
        deadline_at=now + 600,
        next_run_at=now,
        provider=provider,
    )
    stored, _ = await svc.store.create(job, single_flight=False)
    return stored


async def step(svc: Services, job: Job) -> Job:
    """One worker step of ``job`` (leased first, as the dispatcher does); the job after it."""
    claimed = await svc.store.claim(job.id, OWNER, lease_s=60)
    assert claimed is not None
    await Worker(svc, OWNER).run_step(claimed)
    after = await svc.store.get(job.id)
    assert after is not None
    return after


async def test_the_services_know_each_backends_slots(svc: Services) -> None:
    assert svc.slots == {"gpu_a": 1, "gpu_b": 2}  # the hosted preview has none


async def test_a_full_backend_puts_the_job_in_line(svc: Services) -> None:
    await add_job(svc, "house", "gpu_a", S.WAITING, prompt="running")  # holds gpu_a's slot
    job = await step(svc, await add_job(svc, "house", "gpu_a"))
    assert (job.status, job.provider, job.attempt) == (S.QUEUED, "gpu_a", 0)
    assert job.provider_state["progress"] == {"queue_position": 1, "backend": "gpu_a"}
    assert job.slot_wait_since is not None and (job.next_run_at or 0) > time.time()
    pending = await svc.store.events_since(job.id)
    assert not [e for e in pending if e.type == "status" and e.data["status"] == "submitting"]


async def test_a_free_slot_runs_the_job(svc: Services) -> None:
    job = await step(svc, await add_job(svc, "house", "gpu_a"))
    assert job.status in (S.FETCHING, S.STORING, S.SUCCEEDED) and job.provider == "gpu_a"


async def test_a_full_backend_moves_the_job_to_a_provider_with_room(svc: Services) -> None:
    await add_job(svc, "house", "gpu_a", S.SUBMITTING, prompt="running")
    job = await step(svc, await add_job(svc, "house-or-preview", "gpu_a"))
    assert (job.status, job.provider) == (S.QUEUED, "preview")
    assert job.slot_wait_since is None and "progress" not in job.provider_state
    assert (job.next_run_at or 0) <= time.time()  # at once, on the preview
    (retry,) = [e.data for e in await svc.store.events_since(job.id) if e.type == "retry"]
    assert retry["failover"] == {"from": "gpu_a", "to": "preview"}
    assert "all 1 slot(s) of gpu_a are taken" in retry["reason"]


async def test_never_to_a_backend_that_is_full_too(svc: Services) -> None:
    await add_job(svc, "house", "gpu_a", S.WAITING, prompt="a1")
    for i in range(2):
        await add_job(svc, "two-gpus", "gpu_b", S.WAITING, prompt=f"b{i}")
    job = await step(svc, await add_job(svc, "two-gpus", "gpu_a"))
    assert (job.status, job.provider) == (S.QUEUED, "gpu_a")  # waits where it is: no ping-pong
    assert job.provider_state["progress"]["queue_position"] == 1


async def test_a_hosted_provider_has_no_line(svc: Services) -> None:
    for i in range(3):  # many in flight on the preview: it takes them all
        await add_job(svc, "house-or-preview", "preview", S.WAITING, prompt=f"p{i}")
    job = await step(svc, await add_job(svc, "house-or-preview", "preview"))
    assert job.status is not S.QUEUED and job.provider == "preview"


async def test_a_reader_sees_the_place_in_line_as_it_is_now(svc: Services) -> None:
    await add_job(svc, "house", "gpu_a", S.WAITING, prompt="running")
    first = await step(svc, await add_job(svc, "house", "gpu_a", prompt="first"))
    second = await step(svc, await add_job(svc, "house", "gpu_a", prompt="second"))
    assert second.provider_state["progress"]["queue_position"] == 2  # as it was told
    assert await svc.store.transition(first.id, S.QUEUED, S.CANCELED) is not None
    shown = await get_job(svc, second.id)  # the line moved: the reader sees it now
    assert shown.provider_state["progress"] == {"queue_position": 1, "backend": "gpu_a"}


async def test_metrics_count_busy_slots_and_the_line_from_the_jobs(svc: Services) -> None:
    await add_job(svc, "house", "gpu_a", S.WAITING, prompt="running")
    await step(svc, await add_job(svc, "house", "gpu_a", prompt="in line"))
    await check_once(svc)
    busy, line = svc.metrics.backend_busy, svc.metrics.backend_queue
    assert busy.labels("gpu_a")._value.get() == 1 and line.labels("gpu_a")._value.get() == 1
    assert busy.labels("gpu_b")._value.get() == 0 and line.labels("gpu_b")._value.get() == 0
    assert 'pixelpipe_backend_queue_depth{backend="gpu_a"} 1.0' in svc.metrics.render().decode()
