"""The provider request for a job's current attempt (with an edit's input bytes, for a submit),
and a best-effort cancel of a run."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import replace

from pixelpipe.inputs import load_input
from pixelpipe.jobs.model import Job
from pixelpipe.providers.base import ProviderRequest
from pixelpipe.providers.run_tag import RunRef, run_webhook_url
from pixelpipe.services import Services

log = logging.getLogger("pixelpipe.worker")


def provider_request(svc: Services, job: Job) -> ProviderRequest:
    provider = svc.providers[job.provider or ""]
    spec = svc.catalog.get(job.model)
    webhook = None
    if svc.settings.public_url and provider.supports_webhooks:
        base = f"{svc.settings.public_url.rstrip('/')}/v1/webhooks/{provider.name}"
        run = RunRef(job.id, job.attempt)
        webhook = run_webhook_url(base, provider.name, run, svc.settings.signing_key())
    return ProviderRequest(
        job_id=job.id,
        attempt=job.attempt,
        request=job.request,
        model_id=spec.provider_ids[provider.name],
        webhook_url=webhook,
        workflow=spec.workflow,
    )


async def submit_request(svc: Services, job: Job) -> ProviderRequest:
    """:func:`provider_request` with an edit's input images and mask loaded from storage (the
    bytes a provider sends; the other calls — poll, cancel, lookups — do without them)."""
    req = provider_request(svc, job)
    wanted = job.request
    if not wanted.images and wanted.mask is None:
        return req
    images = await asyncio.gather(*(load_input(svc.storage, d) for d in wanted.images))
    mask = await load_input(svc.storage, wanted.mask) if wanted.mask is not None else None
    return replace(req, images=tuple(images), mask=mask)


async def cancel_run(svc: Services, job: Job, provider_job_id: str) -> None:
    """Best effort: ask ``job``'s provider to stop a run we no longer need (a canceled job, a run
    superseded by an adopted one). What it already cost stays in the ledger either way."""
    provider = svc.providers.get(job.provider or "")
    if provider is None:
        return
    try:
        await provider.cancel(provider_job_id, provider_request(svc, job))
    except Exception as exc:
        log.info(
            "provider cancel of run %s (job %s) failed: %s",
            provider_job_id,
            job.id,
            type(exc).__name__,
        )
