"""Provider webhook handling: verify, deduplicate, advance the row, hand the next step on.

The receiver never does slow work: a verified completion moves the job to ``fetching`` (billing
the attempt exactly once) and enqueues it; a worker fetches and stores. Duplicates, deliveries for
unknown runs and anything after a terminal state (or for a run the job has left) are acknowledged
and ignored. A completion that finds a worker's step holding the job waits briefly for it, then
answers 503 so that the provider delivers again.
"""

from __future__ import annotations

import asyncio
import logging
import time

from pixelpipe.bootstrap import Services
from pixelpipe.errors import PixelpipeError
from pixelpipe.jobs.model import Job, JobStatus
from pixelpipe.providers.base import ProviderUpdate, RunState
from pixelpipe.worker import Worker

log = logging.getLogger("pixelpipe.webhooks")
# How long a completion waits for a worker's step on the same job to end (providers want an
# answer "within a few seconds"; after that, a 503 makes them deliver again).
CLAIM_WAIT_S = 3.0


class WebhookDeferred(PixelpipeError):
    """503: a worker holds the job for longer than a webhook may wait; the provider redelivers."""

    code = "webhook_deferred"
    status = 503
    title = "Busy with this job; deliver again"
    retryable = True


async def handle_provider_webhook(
    svc: Services, provider_name: str, headers: dict[str, str], body: bytes
) -> str:
    update = await svc.providers[provider_name].parse_webhook(headers, body)  # 401 on bad sig
    job = await svc.store.find_by_provider_job(provider_name, update.provider_job_id)
    if job is None:
        # an orphan of an ambiguous submit, or a completion that raced the submit answer (the
        # sweeper polls that job): acknowledged, and not recorded so a redelivery still counts
        return "unknown_run"
    delivery = update.delivery_id or f"{update.provider_job_id}:{update.state}"
    if not await svc.store.record_delivery(provider_name, delivery, job.id):
        return "duplicate"
    if not _current(job, update):
        return "ignored"  # after a terminal state, or for a run the job has moved away from
    if not update.state.terminal:
        if update.progress:
            await svc.store.add_event(job.id, "progress", update.progress)
        return "progress"
    owner = f"{svc.instance}:webhook"
    claimed = await _claim(svc, job.id, owner)
    if claimed is None:
        current = await svc.store.get(job.id)
        if current is None or not _current(current, update):
            return "ignored"
        # a worker still holds the job: make it due (its next step polls and sees the end) and
        # have the provider deliver again (both Replicate and fal retry on a 5xx)
        await svc.store.forget_delivery(provider_name, delivery)
        await svc.store.update(job.id, next_run_at=0.0)
        raise WebhookDeferred(f"job {job.id} is busy; deliver again")
    worker = Worker(svc, owner)
    try:
        if not _current(claimed, update):
            return "ignored"  # moved on while we waited for the lease (e.g. a poll saw the end)
        if update.state is RunState.SUCCEEDED:
            await worker.accept_success(claimed, update)
        else:
            await worker.apply(claimed, update)
    except PixelpipeError as exc:
        await worker.fail_or_retry(claimed, exc)
    except Exception:
        await svc.store.forget_delivery(provider_name, delivery)
        raise
    finally:
        await svc.store.release(job.id, owner)
    await svc.queue.enqueue(job.id)
    return "applied"


def _current(job: Job, update: ProviderUpdate) -> bool:
    """True while ``update`` may still move ``job``: same provider run, not yet past waiting."""
    settled = job.status.terminal or job.status in (JobStatus.FETCHING, JobStatus.STORING)
    return not settled and job.provider_job_id == update.provider_job_id


async def _claim(svc: Services, job_id: str, owner: str) -> Job | None:
    """Lease the job, waiting up to CLAIM_WAIT_S while a worker's step holds it.

    Taking over while a worker polls would race it: its step would schedule the job's next poll
    after this completion had made it due, and the completion would wait for the sweeper.
    """
    give_up = time.monotonic() + CLAIM_WAIT_S
    pause = 0.02
    while True:
        claimed = await svc.store.claim(job_id, owner, lease_s=svc.settings.lease_s)
        if claimed is not None or time.monotonic() >= give_up:
            return claimed
        current = await svc.store.get(job_id)
        if current is None or current.status.terminal:
            return None
        await asyncio.sleep(pause)
        pause = min(0.25, pause * 2)
