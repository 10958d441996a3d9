"""A waiting job's place: in its backend's line (jobs/slots.py), else among its provider's
waiting jobs in the queue's order (jobs/order.py). Shown as its ``progress.queue_position`` (its
ETA: :func:`queue_eta_s`), on the job body, its status events and the page."""

from __future__ import annotations

import dataclasses

from pixelpipe.jobs.model import Job, JobStatus
from pixelpipe.jobs.slots import in_line, line_progress
from pixelpipe.services import Services


def capacity(svc: Services, target: str) -> int:
    """Runs at once on ``target``: a backend's slots, else the workers' concurrency."""
    return svc.slots.get(target) or svc.settings.worker_concurrency


async def queue_position(svc: Services, job: Job) -> int | None:
    """``job``'s place among its provider's waiting jobs now (1 = next); None when it is not
    waiting for its turn (claimed, running, finished, quarantined)."""
    if job.status is not JobStatus.QUEUED or job.held_at is not None:
        return None
    place = 0
    for waiting in await svc.store.waiting_order():
        if waiting.provider == job.provider:
            place += 1
            if waiting.id == job.id:
                return place
    return None


async def with_live_place(svc: Services, job: Job) -> Job:
    """``job`` with its place as it is now (the stored one, if any, is the place it was last
    told); unchanged when it does not wait."""
    if job.status is not JobStatus.QUEUED or job.held_at is not None:
        return job
    told = job.provider_state.get("progress") or {}
    if in_line(job):
        position = await svc.store.line_position(job)
        if position is None or told.get("queue_position") == position:
            return job
        state = line_progress(job.provider_state, job.provider or "", position)
        return dataclasses.replace(job, provider_state=state)
    position = await queue_position(svc, job)
    if position is None:
        return job
    progress = {**told, "queue_position": position}
    return dataclasses.replace(job, provider_state={**job.provider_state, "progress": progress})


def queue_eta_s(service_s: float | None, position: int, runs: int) -> float | None:
    """When a job ``position`` places from the front of its provider's queue is likely done.
    Unlike a backend's line (all slots taken: :func:`~pixelpipe.events.eta.eta_s`) the capacity
    may be free: the full rounds of ``runs`` jobs ahead of it, then its own run,
    ``T × (⌊(position - 1) / runs⌋ + 1)`` — ``T`` for the next one."""
    if service_s is None:
        return None
    return round(service_s * ((position - 1) // max(1, runs) + 1), 1)


async def with_places(svc: Services, jobs: list[Job]) -> list[Job]:
    """The waiting ones of ``jobs``, each with its place as it is now: one read of the queue's
    order for all of them, and one of each backend's line that one of them is in."""
    waiting = [j for j in jobs if j.status is JobStatus.QUEUED and j.held_at is None]
    order: dict[str, int] = {}
    if any(not in_line(j) for j in waiting):
        seen: dict[str | None, int] = {}
        for w in await svc.store.waiting_order():
            seen[w.provider] = order[w.id] = seen.get(w.provider, 0) + 1
    lines: dict[str, int] = {}
    for backend in sorted({j.provider or "" for j in waiting if in_line(j)}):
        ids = await svc.store.line_ids(backend)
        lines.update((job_id, place) for place, job_id in enumerate(ids, 1))
    out = []
    for job in waiting:
        position = (lines if in_line(job) else order).get(job.id)
        if position is None:
            continue
        if in_line(job):
            state = line_progress(job.provider_state, job.provider or "", position)
        else:
            told = job.provider_state.get("progress") or {}
            state = {**job.provider_state, "progress": {**told, "queue_position": position}}
        out.append(dataclasses.replace(job, provider_state=state))
    return out
