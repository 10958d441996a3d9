"""Provider webhook handling: verify, deduplicate, advance the row, hand the next step on.

The receiver never does slow work: a verified completion moves the job to ``fetching`` (billing
the attempt exactly once) and enqueues it; a worker fetches and stores. Duplicates, deliveries for
unknown runs and anything after a terminal state are acknowledged and ignored.
"""

from __future__ import annotations

import logging

from pixelpipe.bootstrap import Services
from pixelpipe.jobs.model import JobStatus
from pixelpipe.providers.base import RunState
from pixelpipe.worker import Worker

log = logging.getLogger("pixelpipe.webhooks")


async def handle_provider_webhook(
    svc: Services, provider_name: str, headers: dict[str, str], body: bytes
) -> str:
    update = await svc.providers[provider_name].parse_webhook(headers, body)  # 401 on bad sig
    job = await svc.store.find_by_provider_job(provider_name, update.provider_job_id)
    delivery = update.delivery_id or f"{update.provider_job_id}:{update.state}"
    if not await svc.store.record_delivery(provider_name, delivery, job.id if job else None):
        return "duplicate"
    if job is None:
        return "unknown_run"
    if job.status.terminal or job.status in (JobStatus.FETCHING, JobStatus.STORING):
        return "ignored"
    if not update.state.terminal:
        if update.progress:
            await svc.store.add_event(job.id, "progress", update.progress)
        return "progress"
    owner = f"{svc.instance}:webhook"
    claimed = await svc.store.claim(job.id, owner, lease_s=svc.settings.lease_s)
    if claimed is None:
        # a worker holds the job right now: make it due so that worker's next poll sees the end
        await svc.store.update(job.id, next_run_at=0.0)
        return "deferred"
    worker = Worker(svc, owner)
    try:
        if update.state is RunState.SUCCEEDED:
            await worker.accept_success(claimed, update)
        else:
            await worker.apply(claimed, update)
    except Exception as exc:
        from pixelpipe.errors import PixelpipeError

        if isinstance(exc, PixelpipeError):
            await worker.fail_or_retry(claimed, exc)
        else:
            await svc.store.forget_delivery(provider_name, delivery)
            raise
    finally:
        await svc.store.release(job.id, owner)
    await svc.queue.enqueue(job.id)
    return "applied"
