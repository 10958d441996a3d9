"""Finished generations written straight into a job store (and their images into storage): the
gallery tests need many jobs with chosen models, costs and dates, not 1,000 real runs."""

from __future__ import annotations

import time
from dataclasses import replace

from pixelpipe.intake import CanonicalRequest
from pixelpipe.jobs.ids import new_job_id
from pixelpipe.jobs.model import Job, JobStatus
from pixelpipe.jobs.store import JobStore
from pixelpipe.key import content_key
from pixelpipe.storage.base import Storage

DAY = 86_400.0


def finished_job(
    prompt: str,
    *,
    at: float | None = None,
    model: str = "preview",
    provider: str = "preview",
    cost: int | None = 0,
    status: JobStatus = JobStatus.SUCCEEDED,
    key_id: str | None = None,
    size: int = 0,
) -> Job:
    created = time.time() if at is None else at
    req = CanonicalRequest(model=model, prompt=prompt, seed=7, width=64, height=64, format="png")
    job_id = new_job_id(created)
    done = status is JobStatus.SUCCEEDED
    return Job(
        id=job_id,
        status=status,
        model=model,
        request=req,
        content_key=content_key(req),
        created_at=created,
        updated_at=created,
        deadline_at=created + 600,
        finished_at=created + 1,
        provider=provider,
        storage_key=f"images/{job_id}.png" if done else None,
        content_type="image/png" if done else None,
        width=64 if done else None,
        height=64 if done else None,
        bytes=size if done else None,
        cost_micros=cost,
        cost_status="priced" if cost is not None else "unpriced",
        api_key_id=key_id,
        error_code=None if done else "provider_failed",
    )


async def seed(store: JobStore, job: Job, storage: Storage | None = None, data: bytes = b"") -> Job:
    if storage is not None and job.storage_key is not None:
        await storage.put(job.storage_key, data, content_type="image/png")
        job = replace(job, bytes=len(data))
    stored, created = await store.create(job, single_flight=False)
    assert created
    return stored
