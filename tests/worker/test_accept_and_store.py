"""A run's image is fetched, verified and thumbnailed while its bill commits — the two overlap —
yet nothing is stored before that commit: a job that moved on meanwhile gets no object, and an
output that does not verify fails the job after its run was billed, as in sequence."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from pixelpipe.bootstrap import build_services
from pixelpipe.errors import PixelpipeError
from pixelpipe.intake import GenerationRequest
from pixelpipe.jobs.model import Job, JobStatus
from pixelpipe.providers.base import Output, ProviderUpdate
from pixelpipe.services import Services
from pixelpipe.settings import Settings
from pixelpipe.usecases.submit import submit
from pixelpipe.worker import output, provider_request
from pixelpipe.worker.context import StepContext


@pytest.fixture
async def svc(tmp_path: Path) -> AsyncIterator[Services]:
    services = await build_services(Settings(data_dir=tmp_path))  # type: ignore[call-arg]
    yield services
    await services.aclose()


async def submitted(svc: Services, prompt: str) -> tuple[Job, ProviderUpdate]:
    job = (await submit(svc, GenerationRequest(prompt=prompt, seed=9, size="64x64"))).job
    assert await svc.store.claim(job.id, "w", lease_s=60) is not None
    moved = await svc.store.transition(
        job.id, JobStatus.QUEUED, JobStatus.SUBMITTING, owner="w", attempt=1
    )
    assert moved is not None
    return moved, await svc.providers["preview"].submit(provider_request(svc, moved))


def objects(svc: Services) -> list[Path]:
    root = svc.settings.data_dir / "images"
    return [p for p in root.rglob("*") if p.is_file() and not p.name.startswith(".")]


async def test_the_image_is_prepared_while_the_bill_commits(
    svc: Services, monkeypatch: pytest.MonkeyPatch
) -> None:
    job, update = await submitted(svc, "overlap")
    order: list[str] = []
    real_accept, real_ready = output.accept_success, output._ready_output

    async def slow_accept(*args: Any, **kw: Any) -> Job | None:
        order.append("bill starts")
        await asyncio.sleep(0.05)  # a slow commit
        moved = await real_accept(*args, **kw)
        order.append("bill committed")
        return moved

    async def ready(*args: Any, **kw: Any) -> Any:
        prepared = await real_ready(*args, **kw)
        order.append("image prepared")
        return prepared

    monkeypatch.setattr(output, "accept_success", slow_accept)
    monkeypatch.setattr(output, "_ready_output", ready)
    await output.accept_and_store(StepContext(svc, "w"), job, update)
    assert order == ["bill starts", "image prepared", "bill committed"]
    done = await svc.store.get(job.id)
    assert done is not None and done.status is JobStatus.SUCCEEDED
    assert objects(svc)  # stored after the commit


async def test_a_job_that_moved_on_meanwhile_gets_nothing_stored(svc: Services) -> None:
    job, update = await submitted(svc, "moved on")
    canceled = await svc.store.transition(job.id, JobStatus.SUBMITTING, JobStatus.CANCELED)
    assert canceled is not None
    await output.accept_and_store(StepContext(svc, "w"), job, update)
    after = await svc.store.get(job.id)
    assert after is not None and after.status is JobStatus.CANCELED
    assert objects(svc) == []


async def test_an_output_that_does_not_verify_fails_after_the_bill(svc: Services) -> None:
    job, update = await submitted(svc, "garbage")
    bad = dataclasses.replace(update, outputs=(Output(data=b"no image", content_type="image/png"),))
    with pytest.raises(PixelpipeError):
        await output.accept_and_store(StepContext(svc, "w"), job, bad)
    after = await svc.store.get(job.id)
    assert after is not None and after.status is JobStatus.FETCHING  # billed, then failed
    assert objects(svc) == []
