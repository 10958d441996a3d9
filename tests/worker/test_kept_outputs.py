"""A large inline output (a provider's base64 answer) is kept as an object of the job's before the
row moves to fetching, so the row names it instead of holding MBs of base64 — and a crash between
billing and storing still finishes from it, bills once, and leaves no garbage behind."""

from __future__ import annotations

import dataclasses
import io
import os
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from PIL import Image

from pixelpipe.bootstrap import build_services
from pixelpipe.intake import GenerationRequest
from pixelpipe.jobs.model import JobStatus
from pixelpipe.ledger.sql import SqlLedger
from pixelpipe.providers.base import Output
from pixelpipe.services import Services
from pixelpipe.settings import Settings
from pixelpipe.usecases.jobs import cancel
from pixelpipe.usecases.submit import submit
from pixelpipe.worker import Worker, provider_request
from pixelpipe.worker.kept import KEPT_OUTPUT_BYTES, KEPT_OUTPUT_PREFIX


@pytest.fixture
async def svc(tmp_path: Path) -> AsyncIterator[Services]:
    services = await build_services(Settings(data_dir=tmp_path))  # type: ignore[call-arg]
    yield services
    await services.aclose()


def noisy_png() -> bytes:
    """A PNG that does not compress: well over the size kept as an object."""
    out = io.BytesIO()
    Image.frombytes("RGB", (256, 256), os.urandom(256 * 256 * 3)).save(out, "PNG")
    assert out.tell() > KEPT_OUTPUT_BYTES
    return out.getvalue()


def kept_objects(svc: Services) -> list[Path]:
    root = svc.settings.data_dir / "images" / KEPT_OUTPUT_PREFIX
    return [p for p in root.rglob("*") if p.is_file()] if root.exists() else []


async def test_a_large_output_is_kept_as_an_object_and_survives_a_crash(svc: Services) -> None:
    job = (await submit(svc, GenerationRequest(prompt="kept output", seed=3, size="64x64"))).job
    claimed = await svc.store.claim(job.id, "worker-A", lease_s=60)
    assert claimed is not None
    moved = await svc.store.transition(
        job.id, JobStatus.QUEUED, JobStatus.SUBMITTING, owner="worker-A", attempt=1
    )
    assert moved is not None
    update = await svc.providers["preview"].submit(provider_request(svc, moved))
    png = noisy_png()
    update = dataclasses.replace(update, outputs=(Output(data=png, content_type="image/png"),))

    fetching = await Worker(svc, "worker-A").accept_success(moved, update)
    assert fetching is not None and fetching.status is JobStatus.FETCHING
    saved = fetching.provider_state["outputs"]
    assert [set(o) for o in saved] == [{"kept", "content_type"}]  # a key, no base64
    assert [p.read_bytes() for p in kept_objects(svc)] == [png]
    # worker A dies before fetching and storing: its lease lapses, worker B finishes the job
    await svc.store.update(job.id, lease_expires_at=time.time() - 1)
    again = await svc.store.claim(job.id, "worker-B", lease_s=60)
    assert again is not None and again.status is JobStatus.FETCHING
    await Worker(svc, "worker-B").run_step(again)

    done = await svc.store.get(job.id)
    assert done is not None and done.status is JobStatus.SUCCEEDED, done
    assert done.width == 256 and done.height == 256  # the kept bytes were the image stored
    assert "kept" not in done.provider_state["outputs"][0]
    assert kept_objects(svc) == []  # garbage once the image is stored
    assert isinstance(svc.ledger, SqlLedger)
    entries = await svc.ledger.entries(job.id)
    assert [(e.charge.attempt, e.charge.kind) for e in entries] == [(1, "attempt")]


async def test_a_small_output_stays_in_the_row(svc: Services) -> None:
    job = (await submit(svc, GenerationRequest(prompt="inline output", seed=4, size="64x64"))).job
    claimed = await svc.store.claim(job.id, "worker-A", lease_s=60)
    assert claimed is not None
    moved = await svc.store.transition(
        job.id, JobStatus.QUEUED, JobStatus.SUBMITTING, owner="worker-A", attempt=1
    )
    assert moved is not None
    update = await svc.providers["preview"].submit(provider_request(svc, moved))
    assert all(len(o.data or b"") <= KEPT_OUTPUT_BYTES for o in update.outputs)
    fetching = await Worker(svc, "worker-A").accept_success(moved, update)
    assert fetching is not None
    assert all("kept" not in o for o in fetching.provider_state["outputs"])
    assert kept_objects(svc) == []


async def _fetching_with_kept(svc: Services, prompt: str, data: bytes) -> str:
    """A job billed and at fetching, its (large) output kept as an object; its id."""
    job = (await submit(svc, GenerationRequest(prompt=prompt, seed=5, size="64x64"))).job
    assert await svc.store.claim(job.id, "worker-A", lease_s=60) is not None
    moved = await svc.store.transition(
        job.id, JobStatus.QUEUED, JobStatus.SUBMITTING, owner="worker-A", attempt=1
    )
    assert moved is not None
    update = await svc.providers["preview"].submit(provider_request(svc, moved))
    update = dataclasses.replace(update, outputs=(Output(data=data, content_type="image/png"),))
    assert await Worker(svc, "worker-A").accept_success(moved, update) is not None
    assert len(kept_objects(svc)) == 1
    return job.id


async def test_a_job_that_fails_for_good_leaves_no_kept_output(svc: Services) -> None:
    job_id = await _fetching_with_kept(svc, "kept, then invalid", os.urandom(100_000))
    worker = Worker(svc, "worker-A")
    for _ in range(10):  # the bytes never verify: retried from the kept object, then failed
        job = await svc.store.get(job_id)
        assert job is not None
        if job.status.terminal:
            break
        await svc.store.update(job_id, lease_expires_at=time.time() - 1, next_run_at=time.time())
        claimed = await svc.store.claim(job_id, "worker-A", lease_s=60)
        assert claimed is not None
        await worker.run_step(claimed)
    assert job.status is JobStatus.FAILED, job
    assert kept_objects(svc) == []


async def test_a_canceled_job_leaves_no_kept_output(svc: Services) -> None:
    job_id = await _fetching_with_kept(svc, "kept, then canceled", noisy_png())
    await svc.store.release(job_id, "worker-A")
    canceled = await cancel(svc, job_id)
    assert canceled.status is JobStatus.CANCELED
    assert kept_objects(svc) == []
