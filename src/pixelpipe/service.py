"""The pipeline, as the adapters (API, web, CLI, Python API) see it.

``submit`` runs stages 1–7 in order: intake → safety → content key → cache → budget → job
(single-flight) → queue. Stages 8–12 run in the worker (:mod:`pixelpipe.worker`).
"""

from __future__ import annotations

import hashlib
import logging
import time
from dataclasses import dataclass

import orjson

from pixelpipe.errors import Conflict, Forbidden, NotFound, PixelpipeError
from pixelpipe.intake import CanonicalRequest, GenerationRequest, canonicalize
from pixelpipe.jobs.ids import is_job_id, new_job_id
from pixelpipe.jobs.model import ImageRecord, Job, JobStatus
from pixelpipe.key import content_key
from pixelpipe.ledger.base import Charge, Price
from pixelpipe.notify.destinations import check_webhook_url
from pixelpipe.queue.local import Handoff, LocalQueue
from pixelpipe.safety import check_prompt
from pixelpipe.security.caller import Caller
from pixelpipe.services import Services

log = logging.getLogger("pixelpipe.service")


@dataclass(frozen=True, slots=True)
class Submission:
    job: Job
    created: bool  # False: attached to an earlier job (idempotency key or single-flight)

    @property
    def cached(self) -> bool:
        return self.job.cached


@dataclass(frozen=True, slots=True)
class Estimate:
    request: CanonicalRequest
    provider: str
    price: Price


def prepare(svc: Services, body: GenerationRequest) -> CanonicalRequest:
    """Stages 1–2: intake and safety. Raises before anything is written or spent."""
    req = canonicalize(body, svc.catalog, max_prompt_chars=svc.settings.max_prompt_chars)
    check_prompt(req.prompt, svc.rules)
    if req.negative_prompt:
        check_prompt(req.negative_prompt, svc.rules, field="negative_prompt")
    if body.webhook is not None:
        check_webhook_url(body.webhook, svc.settings)  # the rule its delivery will apply
    return req


def estimate(svc: Services, body: GenerationRequest) -> Estimate:
    req = prepare(svc, body)
    provider = svc.gate.choose(svc.catalog.get(req.model), preferred=body.provider)
    return Estimate(req, provider, svc.prices.estimate(req, provider))


def _fingerprint(body: GenerationRequest) -> str:
    raw = orjson.dumps(body.model_dump(exclude_none=True), option=orjson.OPT_SORT_KEYS)
    return hashlib.sha256(raw).hexdigest()


def _new_job(
    svc: Services, req: CanonicalRequest, body: GenerationRequest, caller: Caller, idem: str | None
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
    )


async def submit(
    svc: Services,
    body: GenerationRequest,
    *,
    caller: Caller = Caller(),
    idempotency_key: str | None = None,
) -> Submission:
    req = prepare(svc, body)
    for _ in range(3):  # a cache hit whose image is deleted meanwhile goes round again
        done = await _submit_once(svc, req, body, caller, idempotency_key)
        if done is not None:
            return done
    raise Conflict("the stored image of this request was deleted while it was served; retry")


async def _submit_once(
    svc: Services,
    req: CanonicalRequest,
    body: GenerationRequest,
    caller: Caller,
    idempotency_key: str | None,
) -> Submission | None:
    job = _new_job(svc, req, body, caller, idempotency_key)
    fingerprint = _fingerprint(body) if idempotency_key else None
    image = svc.store.cached_image(job.content_key)
    if image is not None:
        served = await _serve_from_cache(svc, job, image, fingerprint)
        if served is not None:
            return served
        job = _new_job(svc, req, body, caller, idempotency_key)  # the image was deleted
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
        admitted = await svc.store.admit(job, fingerprint=fingerprint, guard=guard)
    except BaseException:
        if handoff is not None:
            handoff.give_slot(None)
        raise
    if handoff is not None:
        handoff.give_slot(job if admitted.created else None)
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
    to it and handed over in memory (see :mod:`pixelpipe.queue.local`)."""
    handoff = svc.queue.handoff if isinstance(svc.queue, LocalQueue) else None
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
    # the job goes in only while its image is indexed (a delete may race it), then its $0 entry
    inserted = await svc.store.create_cache_hit(job, fingerprint=fingerprint)
    if inserted is None:
        return None
    stored, created = inserted
    svc.metrics.request_outcome["cache_hit"].inc()
    if created:
        await svc.ledger.record(_cache_hit_charge(svc, job))
        if stored.webhook_url:
            await _finished(svc, stored)
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


async def _finished(svc: Services, job: Job) -> None:
    """A job became terminal outside the worker: completion webhooks and waiters hear of it."""
    if svc.completion_hooks is not None:
        await svc.completion_hooks.job_finished(job)


async def get_job(svc: Services, job_id: str) -> Job:
    job = await svc.store.get(job_id) if is_job_id(job_id) else None
    if job is None:
        raise NotFound(f"no generation with id {job_id!r}")
    return job


def check_owner(job: Job, caller: Caller) -> None:
    """A keyed caller acts only on its own key's jobs (an admin key on any). Jobs started with
    auth off belong to no key: only an admin key may act on them once keys exist."""
    if caller.key_id is None or caller.admin or job.api_key_id == caller.key_id:
        return
    started = "with another API key" if job.api_key_id else "without a key (before keys were on)"
    only = "that key or an admin key" if job.api_key_id else "an admin key"
    raise Forbidden(
        f"generation {job.id} was started {started}; only {only} may delete it",
        required_scope="admin",
    )


async def delete(svc: Services, job_id: str, *, caller: Caller = Caller()) -> None:
    """Delete a finished job. Its image is deleted from storage only when no other job (a
    cache hit, a repeat) shares it. Ledger entries stay: what was spent stays spent. Deleting
    again is a no-op; an id that never existed raises NotFound."""
    job = await svc.store.get(job_id) if is_job_id(job_id) else None
    if job is not None:
        check_owner(job, caller)
    done = await svc.store.delete(job_id) if is_job_id(job_id) else None
    if done is None or not done.found:
        raise NotFound(f"no generation with id {job_id!r}")
    for key in done.orphaned:
        try:
            await svc.storage.delete(key)
        except PixelpipeError as exc:  # the index row is gone: a leftover object is harmless
            log.warning("deleting stored object %s failed: %s", key, type(exc).__name__)
    if not done.already:
        log.info("deleted %s (%d stored objects freed)", job_id, len(done.orphaned))


async def cancel(svc: Services, job_id: str) -> Job:
    moved = None
    for _ in range(5):  # a worker may move the job between our read and our guarded write
        job = await get_job(svc, job_id)
        if job.status.terminal:
            raise Conflict(f"generation {job_id} already {job.status}; nothing to cancel")
        moved = await svc.store.transition(
            job_id, job.status, JobStatus.CANCELED, error_code="canceled", error_detail="canceled"
        )
        if moved is not None:
            break
    if moved is None:
        return await get_job(svc, job_id)  # it kept moving: report where it is
    await svc.ledger.release(job_id)
    await _finished(svc, moved)
    if job.provider_job_id:  # best effort: the job is canceled on our side anyway
        from pixelpipe.worker import cancel_run

        await cancel_run(svc, job, job.provider_job_id)
    return moved
