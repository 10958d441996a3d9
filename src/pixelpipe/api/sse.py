"""SSE streams: subscribe first, then replay from the store, then follow wake-ups."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

import orjson
from fastapi import Request

from pixelpipe.api.schemas import job_payload
from pixelpipe.events.base import ALL
from pixelpipe.jobs.model import Job, JobEvent, JobStatus
from pixelpipe.jobs.snapshots import job_at
from pixelpipe.services import Services

FOLLOW_POLL_S = 5.0  # re-read the store even without a wake-up (lost notifications)


def _encode(ev: JobEvent, job: dict[str, Any] | None) -> dict[str, Any]:
    data = dict(ev.data)
    if job is not None:
        data["job"] = job
    return {"id": str(ev.id), "event": ev.type, "data": orjson.dumps(data).decode()}


async def _rendered(
    svc: Services, ev: JobEvent, current: Job | None, base: str
) -> dict[str, Any] | None:
    """A status event's job as it was at that event (its snapshot completed by the job now)."""
    if ev.type != "status" or current is None:
        return None
    return await job_payload(svc, job_at(current, ev), base)


async def job_event_stream(
    svc: Services, job_id: str, after: int, request: Request, base: str
) -> AsyncIterator[dict[str, Any]]:
    """One job's events from ``after`` on, replayed then live; each status event carries the job
    as it was at that moment (``jobs/snapshots.py``), with absolute URLs on ``base``."""
    async with svc.notifier.subscribe(f"job:{job_id}") as wakeups:
        last = after
        while True:
            events, current = await svc.store.events_with_job(job_id, last)
            for ev in events:
                last = ev.id
                yield _encode(ev, await _rendered(svc, ev, current, base))
                if ev.type == "status" and JobStatus(ev.data["status"]).terminal:
                    return
            if await request.is_disconnected():
                return
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(anext(wakeups), FOLLOW_POLL_S)


async def all_jobs_stream(
    svc: Services, request: Request, after: int | None = None
) -> AsyncIterator[dict[str, Any]]:
    """Every job status change (gallery, cost counter): ``event: job``, data = {id, status}.

    Read from the event log by its global, monotonic id, so nothing is lost when wake-ups are
    dropped or coalesced, and a reconnect with ``Last-Event-ID`` resumes exactly.
    """
    async with svc.notifier.subscribe(ALL) as wakeups:
        last = await svc.store.last_event_id() if after is None else after
        while not await request.is_disconnected():
            for ev in await svc.store.status_events_after(last):
                last = ev.id
                payload = {"id": ev.job_id, "status": ev.data.get("status")}
                yield {"id": str(ev.id), "event": "job", "data": orjson.dumps(payload).decode()}
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(anext(wakeups), FOLLOW_POLL_S)
