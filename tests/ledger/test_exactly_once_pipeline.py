"""Exactly once through the real pipeline: a crash between provider success and the storage write,
and a success reported twice (duplicate webhook), leave one ledger entry for the attempt."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from pixelpipe.bootstrap import build_services
from pixelpipe.intake import GenerationRequest
from pixelpipe.jobs.model import JobStatus
from pixelpipe.ledger.sql import SqlLedger
from pixelpipe.services import Services
from pixelpipe.settings import Settings
from pixelpipe.usecases.submit import submit
from pixelpipe.worker import Worker, provider_request


@pytest.fixture
async def svc(tmp_path: Path) -> AsyncIterator[Services]:
    services = await build_services(Settings(data_dir=tmp_path))  # type: ignore[call-arg]
    yield services
    await services.aclose()


async def test_crash_after_provider_success_bills_once_and_stores_once(svc: Services) -> None:
    job = (await submit(svc, GenerationRequest(prompt="exactly once", seed=1, size="64x64"))).job
    first = Worker(svc, "worker-A")
    claimed = await svc.store.claim(job.id, "worker-A", lease_s=60)
    assert claimed is not None
    moved = await svc.store.transition(
        job.id, JobStatus.QUEUED, JobStatus.SUBMITTING, owner="worker-A", attempt=1
    )
    assert moved is not None
    update = await svc.providers["preview"].submit(provider_request(svc, moved))
    assert await first.accept_success(moved, update) is not None  # billed, outputs persisted
    assert await first.accept_success(moved, update) is None  # a duplicate report changes nothing
    # worker A dies here, before fetching and storing: its lease lapses
    await svc.store.update(job.id, lease_expires_at=time.time() - 1)

    again = await svc.store.claim(job.id, "worker-B", lease_s=60)
    assert again is not None
    assert again.status is JobStatus.FETCHING
    await Worker(svc, "worker-B").run_step(again)

    done = await svc.store.get(job.id)
    assert done is not None
    assert done.status is JobStatus.SUCCEEDED
    assert isinstance(svc.ledger, SqlLedger)
    entries = await svc.ledger.entries(job.id)
    assert [(e.charge.attempt, e.charge.kind) for e in entries] == [(1, "attempt")]
    stored = [p for p in (svc.settings.data_dir / "images" / "preview").rglob("*") if p.is_file()]
    assert len(stored) == 1
    assert svc.providers["preview"].submissions == 1  # type: ignore[attr-defined]
