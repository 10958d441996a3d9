"""Submit one generation: stages 1–7 in order — intake → safety → content key → cache → budget →
job (single-flight) → queue. Stages 8–12 run in the worker (:mod:`pixelpipe.worker`)."""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass

import orjson

from pixelpipe.errors import Conflict
from pixelpipe.intake import CanonicalRequest, GenerationRequest, resolve_priority
from pixelpipe.jobs.ids import new_job_id
from pixelpipe.jobs.model import ImageRecord, Job, JobStatus
from pixelpipe.key import content_key
from pixelpipe.ledger.base import Charge
from pixelpipe.pricing.price import Price
from pixelpipe.queue.base import Handoff
from pixelpipe.security.caller import Caller
from pixelpipe.services import Services
from pixelpipe.usecases.inputs import resolve_inputs
from pixelpipe.usecases.prepare import prepare_checked


@dataclass(frozen=True, slots=True)
class Submission:
    job: Job
    created: bool  # False: attached to an earlier job (idempotency key or single-flight)

    @property
    def cached(self) -> bool:
        return self.job.cached


def _fingerprint(body: GenerationRequest) -> str:
    raw = orjson.dumps(body.model_dump(exclude_none=True), option=orjson.OPT_SORT_KEYS)
    return hashlib.sha256(raw).hexdigest()


def _new_job(
    svc: Services,
    req: CanonicalRequest,
    body: GenerationRequest,
    caller: Caller,
    idem: str | None,
    retry_of: str | None = None,
    priority: int = 6,
) -> Job:
    now = time.time()
    return Job(
        id=new_job_id(now),
        status=JobStatus.QUEUED,
        model=req.model,
        request=req,
        content_key=content_key(req),
        created_at=now,
        updated_at=now,
        deadline_at=now + svc.settings.job_deadline_s,
        max_attempts=svc.settings.max_attempts,
        next_run_at=now,
        api_key_id=caller.key_id,
        idempotency_key=f"{caller.key_id or '-'}:{idem}" if idem else None,
        group_id=body.group,
        webhook_url=body.webhook or caller.webhook_url,
        retry_of=retry_of,
        priority=priority,
        share=svc.settings.queue_share(caller.key_id),
    )


async def submit(
    svc: Services,
    body: GenerationRequest,
    *,
    caller: Caller = Caller(),
    idempotency_key: str | None = None,
    retry_of: str | None = None,
    kind: str = "interactive",
) -> Submission:
    """``retry_of``: the failed or canceled job this submission retries (usecases/retry.py).
    ``kind``: ``interactive`` or ``batch``, the default priority (docs/queue.md)."""
    ceiling = svc.settings.queue_ceiling(caller.key_id, admin=caller.admin)
    priority = resolve_priority(body.priority, kind, ceiling)
    inputs = await resolve_inputs(svc, body)
    req = await prepare_checked(svc, body, inputs.digests, caller.key_id)
    for _ in range(3):  # a cache hit whose image is deleted meanwhile goes round again
        done = await _submit_once(svc, req, body, caller, idempotency_key, retry_of, priority)
        if done is not None:
            return done
    raise Conflict("the stored image of this request was deleted while it was served; retry")


async def _submit_once(
    svc: Services,
    req: CanonicalRequest,
    body: GenerationRequest,
    caller: Caller,
    idempotency_key: str | None,
    retry_of: str | None,
    priority: int,
) -> Submission | None:
    job = _new_job(svc, req, body, caller, idempotency_key, retry_of, priority)
    fingerprint = _fingerprint(body) if idempotency_key else None
    image = svc.store.cached_image(job.content_key)
    if image is not None:
        served = await _serve_from_cache(svc, job, image, fingerprint)
        if served is not None:
            return served
        job = _new_job(svc, req, body, caller, idempotency_key, retry_of, priority)  # image went
    spec = svc.catalog.get(req.model)
    job.provider = svc.gate.choose(spec, preferred=body.provider)
    price = svc.prices.estimate(req, job.provider)
    job.estimate_micros = price.amount_micros
    # stages 4-6 in one commit: image lookup, attach, budget reservation, job row
    amount = price.amount_micros or 0
    guard = svc.ledger.reservation(job.id, caller.key_id, amount)
    if guard is None:  # a ledger with books of its own: reserve first, release if unused
        await svc.ledger.reserve(job.id, caller.key_id, amount)
    handoff = _local_slot(svc, job)
    try:
        opening = None if handoff is None else await handoff.opening(job)
        admitted = await svc.store.admit(job, fingerprint=fingerprint, guard=guard, opening=opening)
    except BaseException:
        if handoff is not None:
            handoff.give_slot(None)
        raise
    if handoff is not None:
        handoff.give_slot(admitted.job if admitted.created else None)
    if not admitted.created and guard is None:
        await svc.ledger.release(job.id)
    if admitted.image is not None:
        job.estimate_micros = job.lease_owner = job.lease_expires_at = None
        return await _serve_from_cache(svc, job, admitted.image, fingerprint)
    if not admitted.created:
        svc.metrics.request_outcome["attached"].inc()
        return Submission(admitted.job, created=False)
    svc.metrics.request_outcome["queued"].inc()
    if handoff is None:
        await svc.queue.enqueue(job.id)
    return Submission(admitted.job, created=True)


def _local_slot(svc: Services, job: Job) -> Handoff | None:
    """A slot of this process's dispatcher, if it has one free: ``job`` is then inserted leased
    to it and handed over in memory (see :mod:`pixelpipe.queue.local`), moved on to submitting
    in the same commit when its provider can take it now (``Handoff.opening``)."""
    handoff = svc.queue.handoff
    if handoff is None or not handoff.take_slot():
        return None
    job.lease_owner = handoff.owner
    job.lease_expires_at = job.created_at + svc.settings.lease_s
    return handoff


async def _serve_from_cache(
    svc: Services, job: Job, image: ImageRecord, fingerprint: str | None
) -> Submission | None:
    """Stage 5: the image exists — a succeeded, $0 job that records what was saved. None when
    the image was deleted before the job could reference it (nothing was written)."""
    job.status = JobStatus.SUCCEEDED
    job.cached = True
    job.finished_at = job.created_at
    job.next_run_at = None
    job.provider = "cache"
    job.storage_key, job.thumb_key = image.storage_key, image.thumb_key
    job.content_type, job.width, job.height = image.content_type, image.width, image.height
    job.bytes = image.bytes
    job.cost_micros, job.cost_status = 0, "free"
    # the job goes in only while its image is indexed (a delete may race it), with its $0 entry
    # in the same commit where the ledger shares the store's database (else just after it)
    charge = _cache_hit_charge(svc, job)
    entry = svc.ledger.entry_values(charge)
    inserted = await svc.store.create_cache_hit(job, fingerprint=fingerprint, entry=entry)
    if inserted is None:
        return None
    stored, created = inserted
    svc.metrics.request_outcome["cache_hit"].inc()
    if created:
        if entry is None:
            await svc.ledger.record(charge)
        if stored.webhook_url:
            await announce_finished(svc, stored)
    return Submission(stored, created=created)


def _cache_hit_charge(svc: Services, job: Job) -> Charge:
    """$0, with what the same image would have cost at the provider it would have gone to."""
    spec = svc.catalog.get(job.model)
    saved = svc.prices.estimate(job.request, svc.gate.choose(spec, preferred=None))
    return Charge(
        job_id=job.id,
        attempt=0,
        provider="cache",
        provider_job_id="cache",
        model=job.model,
        kind="cache_hit",
        price=Price(0, saved.version, "cache"),
        saved_micros=saved.amount_micros,
        api_key_id=job.api_key_id,
    )


async def announce_finished(svc: Services, job: Job) -> None:
    """A job became terminal outside the worker: completion webhooks and waiters hear of it."""
    await svc.completion_hooks.job_finished(job)
