"""Stage 8's door to a self-hosted backend: the job takes one of its backend's slots, or waits
in the backend's line, or moves to the model's next provider that has room
(:mod:`pixelpipe.jobs.slots` has the rules; the count is read from the jobs, across processes).

A hosted provider has no slots (``Services.slots`` names only the operator's backends): its jobs
move to submitting as before.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from pixelpipe.jobs.model import Job, JobStatus
from pixelpipe.jobs.slots import InLine, SlotRequest
from pixelpipe.worker.context import StepContext
from pixelpipe.worker.failures import LiveGate

log = logging.getLogger("pixelpipe.worker")


async def start_submit(ctx: StepContext, job: Job, **fields: Any) -> Job | None:
    """Move ``job`` (queued, leased here) to submitting with ``fields``; None when it did not
    move (its provider is paused, it waits in line, moved to another provider, or changed
    meanwhile)."""
    store, backend = ctx.svc.store, job.provider or ""
    slots = ctx.svc.slots.get(backend)
    if slots is None:
        if await store.is_paused(backend):
            # paused by an operator (docs/queue.md): the job waits; claims skip it until resumed
            log.debug("job %s waits: %s is paused", job.id, backend)
            return None
        return await store.transition(
            job.id, job.status, JobStatus.SUBMITTING, owner=ctx.owner, **fields
        )
    # a paused backend: start_in_slot answers None in the same write (no await before it, so
    # the jobs reach the line in the order their steps started)
    taken = await store.start_in_slot(job, ctx.owner, SlotRequest(backend, slots), **fields)
    if isinstance(taken, InLine):
        await _overflow(ctx, job, taken, slots)
        return None
    return taken


async def _overflow(ctx: StepContext, job: Job, line: InLine, slots: int) -> None:
    """Every slot is taken: move to the model's next provider if it has room, else stay in line
    (the store put the job there and wakes it when a slot frees)."""
    backend = job.provider or ""
    alt = await _provider_with_room(ctx, job)
    if alt is None:
        log.debug("job %s is #%d in line for %s", job.id, line.position, backend)
        return
    state = {k: v for k, v in job.provider_state.items() if k != "progress"}
    moved = await ctx.svc.store.update(
        job.id,
        owner=ctx.owner,
        provider=alt,
        slot_wait_since=None,
        provider_state=state,
        next_run_at=time.time(),
    )
    if moved:
        reason = f"all {slots} slot(s) of {backend} are taken"
        event = {"failover": {"from": backend, "to": alt}, "reason": reason, "retry_in_s": 0.0}
        await ctx.svc.store.add_event(job.id, "retry", event)


async def _provider_with_room(ctx: StepContext, job: Job) -> str | None:
    """The model's next available provider, when it can take the job now: a hosted one, or a
    backend with a free slot and nobody in line (never one that is full too: no ping-pong)."""
    gate = LiveGate(ctx.svc)
    alt = gate.failover_for(job)
    if alt == job.provider or not gate.available(alt) or gate.paused_for(alt) > 0:
        return None
    alt_slots = ctx.svc.slots.get(alt)
    if alt_slots is None:
        return alt
    use = (await ctx.svc.store.slot_use([alt]))[alt]
    return alt if use.busy + use.waiting < alt_slots else None
