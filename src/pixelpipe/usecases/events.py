"""A job's events, and every job's status changes: replayed from the store, then followed live.

Subscribe first, then replay from the store, then follow wake-ups: nothing between the replay
and the subscription is lost; a lost or coalesced wake-up costs at most ``FOLLOW_POLL_S``.
Live previews (``progress`` events' ``preview``) are left out of what is read after the job ended.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
from collections.abc import AsyncIterator, Awaitable, Callable

from pixelpipe.events.base import ALL
from pixelpipe.jobs.model import Job, JobEvent, JobStatus
from pixelpipe.jobs.snapshots import job_at
from pixelpipe.services import Services

FOLLOW_POLL_S = 5.0  # re-read the store even without a wake-up (lost notifications)
Disconnected = Callable[[], Awaitable[bool]]  # the reader went away: stop following


async def follow_job(
    svc: Services, job_id: str, after: int, disconnected: Disconnected
) -> AsyncIterator[tuple[JobEvent, Job | None]]:
    """One job's events from ``after`` on, until its terminal status event. A status event comes
    with the job as it was at that moment (``jobs/snapshots.py``), other events with None."""
    async with svc.notifier.subscribe(f"job:{job_id}") as wakeups:
        last = after
        while True:
            events, current = await svc.store.events_with_job(job_id, last)
            ended = current is not None and current.status.terminal
            for ev in events:
                last = ev.id
                at = job_at(current, ev) if ev.type == "status" and current is not None else None
                yield (without_preview(ev) if ended else ev), at
                if ev.type == "status" and JobStatus(ev.data["status"]).terminal:
                    return
            if await disconnected():
                return
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(anext(wakeups), FOLLOW_POLL_S)


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
