"""Provider webhook handling: verify, deduplicate, advance the row, hand the next step on.

The receiver never does slow work: a verified completion moves the job to ``fetching`` (billing
the attempt exactly once) and enqueues it; a worker fetches and stores. Duplicates and progress for
runs the job has left are acknowledged and ignored. A completion that finds a worker's step holding
the job waits briefly for it, then answers 503 so that the provider delivers again.

Orphans: a run whose id was never saved (the process died during the create call, or its answer
was lost) is named by the signed ``run`` parameter of its webhook URL (:mod:`.providers.run_tag`).
Its completion is adopted: its cost is recorded once, on its own attempt's ledger row, and when it
succeeded while the job still has no image, the job takes its outputs (a later attempt's run, if
one is in flight, is canceled best-effort and stays in the ledger). A terminal delivery for a run
the job has moved away from is still recorded in the ledger: the provider bills it either way.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import time
from collections.abc import Mapping

from pixelpipe.errors import NotFound, PixelpipeError
from pixelpipe.jobs.model import Job, JobStatus
from pixelpipe.providers.base import ProviderUpdate, RunState
from pixelpipe.providers.run_tag import RUN_PARAM, RunRef, parse_run
from pixelpipe.services import Services
from pixelpipe.worker import Worker, cancel_run

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
    svc: Services,
    provider_name: str,
    headers: dict[str, str],
    body: bytes,
    query: Mapping[str, str] | None = None,
) -> str:
    provider = svc.providers.get(provider_name)
    if provider is None or not provider.supports_webhooks:
        raise NotFound(f"no webhook receiver for {provider_name!r}")
    update = await provider.parse_webhook(headers, body)  # 401 on bad sig
    run = _run(svc, provider_name, query)
    job = await svc.store.find_by_provider_job(provider_name, update.provider_job_id)
    if job is None:
        if run is None or not update.state.terminal:
            # nothing of ours names this run (or it is only progress): acknowledged, and not
            # recorded, so that a redelivery still counts
            return "unknown_run"
        return await _adopt(svc, provider_name, update, run)
    delivery = _delivery_id(update)
    if not await svc.store.record_delivery(provider_name, delivery, job.id):
        return "duplicate"
    if not _current(job, update):
        # after a terminal state, or for a run the job has moved away from: nothing moves, but
        # a finished run is billed by the provider, so its attempt is in the ledger (once)
        if update.state.terminal and (attempt := _attempt_of(job, update, run)) is not None:
            await _record_run(svc, job, provider_name, update, attempt)
        return "ignored"
    if not update.state.terminal:
        if update.progress:
            await svc.store.add_event(job.id, "progress", update.progress)
        return "progress"
    owner = _owner(svc)
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
    # a provider error goes to the retry policy; a crash makes the provider deliver again
    async with worker.leased_step(
        claimed, on_crash=lambda: svc.store.forget_delivery(provider_name, delivery)
    ):
        if not _current(claimed, update):
            return "ignored"  # moved on while we waited for the lease (e.g. a poll saw the end)
        if update.state is RunState.SUCCEEDED:
            await worker.accept_success(claimed, update)
        else:
            await worker.apply(claimed, update)
    await svc.queue.enqueue(job.id)
    return "applied"


def _run(svc: Services, provider_name: str, query: Mapping[str, str] | None) -> RunRef | None:
    value = (query or {}).get(RUN_PARAM)
    return parse_run(value, provider_name, svc.settings.signing_key()) if value else None


def _attempt_of(job: Job, update: ProviderUpdate, run: RunRef | None) -> int | None:
    if run is not None and run.job_id == job.id:
        return run.attempt
    return job.attempt if job.provider_job_id == update.provider_job_id else None


async def _adopt(svc: Services, provider_name: str, update: ProviderUpdate, run: RunRef) -> str:
    """A finished run whose id we never saved: record it, and give its image to its job."""
    delivery = _delivery_id(update)
    if not await svc.store.record_delivery(provider_name, delivery, run.job_id):
        return "duplicate"
    try:
        job = await svc.store.get(run.job_id)
        if job is None:
            return "unknown_run"
        if update.state is RunState.SUCCEEDED and _needs_image(job):
            return await _adopt_image(svc, provider_name, update, run, delivery)
        await _record_run(svc, job, provider_name, update, run.attempt)
    except BaseException:
        await svc.store.forget_delivery(provider_name, delivery)  # the redelivery decides
        raise
    _log_orphan("recorded", provider_name, update, run)
    return "adopted"


async def _adopt_image(
    svc: Services, provider_name: str, update: ProviderUpdate, run: RunRef, delivery: str
) -> str:
    owner = _owner(svc)
    claimed = await _claim(svc, run.job_id, owner)
    if claimed is None:
        current = await svc.store.get(run.job_id)
        if current is not None and _needs_image(current):
            raise WebhookDeferred(f"job {run.job_id} is busy; deliver again")  # forgotten above
        if current is not None:
            await _record_run(svc, current, provider_name, update, run.attempt)
        return "adopted"
    worker = Worker(svc, owner)
    try:
        if not _needs_image(claimed):
            await _record_run(svc, claimed, provider_name, update, run.attempt)
            return "adopted"
        superseded = claimed.provider_job_id if claimed.provider else None
        adopted = dataclasses.replace(claimed, provider=provider_name)
        moved = await worker.accept_success(adopted, update, attempt=run.attempt)
        if moved is not None and superseded and superseded != update.provider_job_id:
            await cancel_run(svc, claimed, superseded)
    finally:
        await svc.store.release(run.job_id, owner)
    await svc.queue.enqueue(run.job_id)
    _log_orphan("adopted", provider_name, update, run)
    return "adopted"


def _log_orphan(what: str, provider_name: str, update: ProviderUpdate, run: RunRef) -> None:
    log.info(
        "orphaned %s run %s of job %s (attempt %d) %s",
        provider_name,
        update.provider_job_id,
        run.job_id,
        run.attempt,
        what,
    )


async def _record_run(
    svc: Services, job: Job, provider_name: str, update: ProviderUpdate, attempt: int
) -> None:
    """A finished run's charge on its own attempt's row, once: every run the provider made is
    in the ledger (one it does not charge, e.g. canceled before it started, at $0)."""
    worker = Worker(svc, _owner(svc))
    await worker.record_attempt(dataclasses.replace(job, provider=provider_name), update, attempt)


def _needs_image(job: Job) -> bool:
    settled = job.status.terminal or job.status in (JobStatus.FETCHING, JobStatus.STORING)
    return not settled


def _current(job: Job, update: ProviderUpdate) -> bool:
    """True while ``update`` may still move ``job``: same provider run, not yet past waiting."""
    return _needs_image(job) and job.provider_job_id == update.provider_job_id


def _delivery_id(update: ProviderUpdate) -> str:
    """What makes a delivery a duplicate: the provider's id for it, or the run and its state."""
    return update.delivery_id or f"{update.provider_job_id}:{update.state}"


def _owner(svc: Services) -> str:
    return f"{svc.instance}:webhook"


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
