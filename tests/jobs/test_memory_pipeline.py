"""The in-memory job store and the in-memory ledger run the real pipeline together: submit,
dispatch, generate, bill, serve a cache hit, delete."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from pixelpipe.bootstrap import build_services
from pixelpipe.intake import GenerationRequest
from pixelpipe.jobs.memory import MemoryJobStore
from pixelpipe.jobs.model import Job, JobStatus
from pixelpipe.ledger import MemoryLedger
from pixelpipe.services import Services
from pixelpipe.settings import Settings
from pixelpipe.usecases.jobs import delete
from pixelpipe.usecases.submit import submit
from tests.jobs.conftest import dispatching


@pytest.fixture
async def svc(tmp_path: Path) -> AsyncIterator[Services]:
    settings = Settings(_env_file=None, data_dir=tmp_path)  # type: ignore[call-arg]
    services = await build_services(settings)
    services.store = MemoryJobStore(services.notifier)
    services.ledger = MemoryLedger(settings)
    async with dispatching(services):
        yield services


async def _finished(svc: Services, job_id: str) -> Job:
    for _ in range(200):
        job = await svc.store.get(job_id)
        if job is not None and job.status.terminal:
            return job
        await asyncio.sleep(0.02)
    raise AssertionError(f"{job_id} did not finish")


async def test_a_request_runs_and_is_then_served_from_the_cache(svc: Services) -> None:
    body = GenerationRequest(prompt="in memory", seed=3, size="64x64")
    first = await submit(svc, body)
    assert first.created
    done = await _finished(svc, first.job.id)
    assert done.status is JobStatus.SUCCEEDED and done.storage_key
    assert isinstance(svc.ledger, MemoryLedger)
    assert [e.charge.kind for e in await svc.ledger.entries(done.id)] == ["attempt"]
    assert await svc.ledger.reserved_micros() == 0  # settled

    hit = await submit(svc, body)
    assert hit.job.cached and hit.job.status is JobStatus.SUCCEEDED
    assert [e.charge.kind for e in await svc.ledger.entries(hit.job.id)] == ["cache_hit"]

    await delete(svc, done.id)
    assert await svc.store.get(done.id) is None
    assert await svc.store.find_image(done.content_key) is not None  # the hit still shows it
