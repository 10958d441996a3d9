"""A job's events, and every job's status changes: replayed from the store, then followed live.

Subscribe first, then replay from the store, then follow wake-ups: nothing between the replay
and the subscription is lost; a lost or coalesced wake-up costs at most ``FOLLOW_POLL_S``.
Live previews (``progress`` events' ``preview``) are left out of what is read after the job ended.
While the job has not ended, its progress (its ``progress`` events, and the job a status event
carries) is shown with ``fraction`` (of ``percent``) and ``eta_s`` (:mod:`pixelpipe.events.eta`,
from the model's measured service times) added: :func:`live_progress`.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

from pixelpipe.events.base import ALL
from pixelpipe.events.eta import MIN_SAMPLES, SAMPLE, Where, eta_s, median_s
from pixelpipe.jobs.model import Job, JobEvent, JobStatus
from pixelpipe.jobs.snapshots import job_at
from pixelpipe.jobs.watched import Moves
from pixelpipe.services import Services
from pixelpipe.usecases.queue_place import capacity, queue_eta_s, with_live_place
from pixelpipe.usecases.queue_watch import watching

FOLLOW_POLL_S = 5.0  # re-read the store even without a wake-up (lost notifications)
# an event that is not in the store (a waiting job's place moved): it has no id of its own, so a
# stream sends it without one and a reader's Last-Event-ID stays on the last stored event
UNSTORED_EVENT_ID = 0
Disconnected = Callable[[], Awaitable[bool]]  # the reader went away: stop following


async def follow_job(
    svc: Services, job_id: str, after: int, disconnected: Disconnected
) -> AsyncIterator[tuple[JobEvent, Job | None]]:
    """One job's events from ``after`` on, until its terminal status event. A status event comes
    with the job as it was at that moment (``jobs/snapshots.py``), other events with None."""
    async with (
        svc.notifier.subscribe(f"job:{job_id}") as wakeups,
        watching(svc, job_id) as moves,  # its place in the queue, live (usecases/queue_watch)
    ):
        last = after
        while True:
            events, current = await svc.store.events_with_job(job_id, last)
            ended = current is not None and current.status.terminal
            live = current
            if live is None and any(ev.type == "progress" for ev in events):
                live = await svc.store.get(job_id)  # no status event read: the job, for its ETA
            for ev in events:
                last = ev.id
                at = job_at(current, ev) if ev.type == "status" and current is not None else None
                if ended:
                    yield without_preview(ev), at
                else:
                    shown = await _live(svc, ev, live), await _live_at(svc, at, current)
                    _shown_place(moves, *shown)
                    yield shown
                if ev.type == "status" and JobStatus(ev.data["status"]).terminal:
                    return
            moved = None if ended else moves.take()
            if moved is not None:  # its place moved: a progress event (no id of its own)
                progress = moved.provider_state.get("progress") or {}
                data = await live_progress(svc, moved, progress)
                yield JobEvent(UNSTORED_EVENT_ID, job_id, "progress", data, time.time()), None
            if await disconnected():
                return
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(_woken(wakeups, moves), FOLLOW_POLL_S)


def _shown_place(moves: Moves, ev: JobEvent, at: Job | None) -> None:
    """The place a reader was shown by an event of the store (none: unchanged)."""
    progress = ev.data if ev.type == "progress" else None
    if at is not None:
        progress = at.provider_state.get("progress") or {}
    position = (progress or {}).get("queue_position")
    if isinstance(position, int):
        moves.show(position)


async def _woken(wakeups: AsyncIterator[str], moves: Moves) -> None:
    """Until the store has news for the job, or its place moved."""
    if moves.changed.is_set():
        return
    waits = {asyncio.ensure_future(anext(wakeups)), asyncio.ensure_future(moves.changed.wait())}
    try:
        await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for wait in waits:
            wait.cancel()


def without_preview(ev: JobEvent) -> JobEvent:
    """A live preview is not replayed once its job has ended (the image is there)."""
    if ev.type != "progress" or "preview" not in ev.data:
        return ev
    data = {k: v for k, v in ev.data.items() if k != "preview"}
    return dataclasses.replace(ev, data=data)


async def follow_all(
    svc: Services, after: int | None, disconnected: Disconnected
) -> AsyncIterator[JobEvent]:
    """Every job's status events after the global event id ``after`` (None: from now on).

    Read from the event log by its global, monotonic id, so nothing is lost when wake-ups are
    dropped or coalesced, and a reconnect resumes exactly."""
    async with svc.notifier.subscribe(ALL) as wakeups:
        last = await svc.store.last_event_id() if after is None else after
        while not await disconnected():
            for ev in await svc.store.status_events_after(last):
                last = ev.id
                yield ev
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(anext(wakeups), FOLLOW_POLL_S)


async def _live(svc: Services, ev: JobEvent, current: Job | None) -> JobEvent:
    """A progress event of a job still running, with its ``fraction`` and ``eta_s``."""
    if ev.type != "progress" or current is None or current.status.terminal:
        return ev
    return dataclasses.replace(ev, data=await live_progress(svc, current, ev.data))


async def _live_at(svc: Services, at: Job | None, current: Job | None) -> Job | None:
    """The job a status event carries, with its ETA when that status is still the job's."""
    if at is None or current is None or at.status is not current.status:
        return at
    return await with_progress(svc, await with_live_place(svc, at))


async def with_progress(svc: Services, job: Job) -> Job:
    """``job`` with :func:`live_progress` as its progress (a job that ended: unchanged)."""
    if job.status.terminal:
        return job
    progress = await live_progress(svc, job, job.provider_state.get("progress") or {})
    return dataclasses.replace(job, provider_state={**job.provider_state, "progress": progress})


async def live_progress(svc: Services, job: Job, progress: dict[str, Any]) -> dict[str, Any]:
    """``progress`` with ``fraction`` (0-1, where a percent is known) and ``eta_s`` (seconds,
    where it can be estimated) for ``job`` as it is now. A backend that reports its own
    estimate (AUTOMATIC1111's ``eta_relative``) keeps it: it knows its run best."""
    out = {k: v for k, v in progress.items() if k != "fraction"}
    percent = progress.get("percent")
    fraction = None
    if isinstance(percent, int | float) and not isinstance(percent, bool):
        fraction = round(min(max(float(percent) / 100, 0.0), 1.0), 3)
        out["fraction"] = fraction
    running = job.status is not JobStatus.QUEUED
    position = progress.get("queue_position") if not running else None
    started = job.submitted_at if running else None
    where = Where(
        running=running,
        position=position if isinstance(position, int) else None,
        slots=svc.slots.get(job.provider or "", 1),
        elapsed_s=max(0.0, time.time() - started) if started else 0.0,
        fraction=fraction,
    )
    own = progress.get("eta_s")
    if isinstance(own, int | float) and not isinstance(own, bool) and own >= 0:
        return out
    out.pop("eta_s", None)
    service = await service_time_s(svc, job.provider, job.model, job.request.size)
    if where.position is not None and job.slot_wait_since is None:  # the provider's queue
        eta = queue_eta_s(service, where.position, capacity(svc, job.provider or ""))
    else:
        eta = eta_s(service, where)
    if eta is not None:
        out["eta_s"] = eta
    return out


async def service_time_s(
    svc: Services, provider: str | None, model: str, size: str | None
) -> float | None:
    """The median service time of ``model`` on ``provider`` (None: any) at ``size`` (or at any
    size with too few samples at this one); None when nothing finished yet. Kept a while."""
    key = (provider, model, size)
    fresh, median = svc.service_times.get(key)
    if fresh:
        return median
    recent = await svc.store.list_jobs(model=model, status="succeeded", limit=5 * SAMPLE)
    times = [
        (j.request.size, j.finished_at - j.submitted_at)
        for j in recent
        if not j.cached
        and j.submitted_at is not None
        and j.finished_at is not None
        and (provider is None or j.provider == provider)
    ]
    same_size = [d for s, d in times if s == size]
    median = (
        median_s(same_size) if len(same_size) >= MIN_SAMPLES else median_s([d for _, d in times])
    )
    svc.service_times.put(key, median)
    return median
