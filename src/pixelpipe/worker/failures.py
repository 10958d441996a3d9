"""Applies the retry/failover policy's decisions (:mod:`.policy`): gate, ledger, row, events."""

from __future__ import annotations

import asyncio
import dataclasses
import time
from typing import Any

from pixelpipe.catalog import Catalog
from pixelpipe.errors import PixelpipeError, ProviderJobLost
from pixelpipe.jobs.model import Job, JobStatus
from pixelpipe.jobs.order import lost_run_reason
from pixelpipe.jobs.slots import out_of_line
from pixelpipe.providers.gate import ProviderGate
from pixelpipe.services import Services
from pixelpipe.worker.context import StepContext
from pixelpipe.worker.policy import Decision, Next, decide

_S = JobStatus


class LiveGate:
    """The policy's view of the process's provider gate (read only)."""

    def __init__(self, svc: Services) -> None:
        self._gate: ProviderGate = svc.gate
        self._catalog: Catalog = svc.catalog

    def paused_for(self, provider: str) -> float:
        return self._gate.paused_for(provider)

    def available(self, provider: str) -> bool:
        return self._gate.available(provider)

    def failover_for(self, job: Job) -> str:
        spec = self._catalog.get(job.model)
        return self._gate.choose(spec, preferred=None, exclude=job.provider)


async def wait_for_gate(ctx: StepContext, job: Job) -> bool:
    """True when ``job``'s provider is paused after a 429 and the job was rescheduled."""
    decision = decide(job, None, LiveGate(ctx.svc))
    if decision.next is Next.SUBMIT:
        return False
    await follow(ctx, job, decision, owner=ctx.owner)
    return True


async def poll_later(ctx: StepContext, job: Job, error: PixelpipeError) -> None:
    """The status call failed (429, 5xx, timeout): ask again later; the run is still ours."""
    ctx.svc.metrics.provider_errors.labels(job.provider or "", error.code).inc()
    await follow(ctx, job, decide(job, error, LiveGate(ctx.svc), polling=True), owner=ctx.owner)


async def fail_or_retry(ctx: StepContext, job: Job, error: PixelpipeError) -> None:
    """A step of ``job`` failed with ``error``: retry, fail over, or fail (the job as stored now;
    nothing when it is gone or already finished)."""
    ctx.svc.metrics.provider_errors.labels(job.provider or "", error.code).inc()
    current = await ctx.svc.store.get(job.id)
    if current is None or current.status.terminal:
        return
    decision = decide(current, error, LiveGate(ctx.svc))
    if decision.next is Next.REQUEUE and _lost_by_backend(ctx, current, error):
        decision = _crash_counted(ctx, current, decision)
    await follow(ctx, current, decision, owner=None)


def _lost_by_backend(ctx: StepContext, job: Job, error: PixelpipeError) -> bool:
    """Did the operator's backend lose the job's run (it crashed or restarted mid-run)?"""
    return isinstance(error, ProviderJobLost) and (job.provider or "") in ctx.svc.slots


def _crash_counted(ctx: StepContext, job: Job, decision: Decision) -> Decision:
    """A run lost by its backend counts a crash of the job (docs/queue.md, poison jobs): at
    ``queue_poison_after`` crashes it is queued again held (quarantined) instead of due."""
    crashes = job.crashes + 1
    fields: dict[str, Any] = {**decision.fields, "crashes": crashes}
    poison_after = ctx.svc.settings.queue_poison_after
    if poison_after > 0 and crashes >= poison_after:
        reason = lost_run_reason(job.provider, crashes)
        fields.update(held_at=time.time(), held_reason=reason, next_run_at=None)
    return dataclasses.replace(decision, fields=fields)


async def follow(ctx: StepContext, job: Job, decision: Decision, *, owner: str | None) -> None:
    """Do what ``decision`` says for ``job``; ``owner``: write only while holding its lease."""
    svc = ctx.svc
    if decision.pause_s is not None and job.provider:
        svc.gate.pause(job.provider, decision.pause_s)
    if decision.outage_s is not None and job.provider:
        svc.gate.mark_outage(job.provider, decision.outage_s)
    if decision.next is Next.SUBMIT:
        return
    next_run_at = time.time() + decision.delay_s
    fields = _leaving_line(job, decision.fields)
    if decision.next is Next.WAIT:
        await svc.store.update(job.id, owner=owner, next_run_at=next_run_at, **fields)
        await svc.store.add_event(job.id, "retry", decision.event)
        return
    if decision.close_attempt:
        await svc.ledger.close_attempt(job.id, job.attempt, charged=decision.charged)
    if decision.next is Next.REQUEUE:
        await _requeue(ctx, job, decision, next_run_at)
    else:
        await _fail(ctx, job, decision)


def _leaving_line(job: Job, fields: dict[str, Any]) -> dict[str, Any]:
    """A job in a backend's line that moves to another provider gives its place up."""
    if job.slot_wait_since is None or fields.get("provider", job.provider) == job.provider:
        return fields
    state = fields.get("provider_state", job.provider_state)
    return {**fields, "slot_wait_since": None, "provider_state": out_of_line(state)}


async def _requeue(ctx: StepContext, job: Job, decision: Decision, next_run_at: float) -> None:
    values = {
        "next_run_at": next_run_at,
        "provider_job_id": None,
        "webhook_deadline_at": None,
        **decision.fields,  # a held job: no next_run_at (_crash_counted)
    }
    store = ctx.svc.store
    moved = await store.transition(job.id, job.status, _S.QUEUED, event=decision.event, **values)
    if moved is not None:
        await store.add_event(job.id, "retry", {**decision.event, "attempt": job.attempt})
        if moved.held_at is not None:
            held = {"reason": moved.held_reason, "crashes": moved.crashes}
            await store.add_event(job.id, "quarantined", held)


async def _fail(ctx: StepContext, job: Job, decision: Decision) -> None:
    done, _ = await asyncio.gather(  # one group commit: no reservation outlives the job
        ctx.svc.store.transition(job.id, job.status, _S.FAILED, **decision.fields),
        ctx.svc.ledger.release(job.id),
    )
    if done is not None:
        await ctx.finished(done)
