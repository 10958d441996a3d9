"""SSE streams: the events use case (:mod:`pixelpipe.usecases.events`) as ``text/event-stream``."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import orjson
from fastapi import Request

from pixelpipe.jobs.model import JobEvent
from pixelpipe.notify.public import job_payload
from pixelpipe.services import Services
from pixelpipe.usecases.events import UNSTORED_EVENT_ID, follow_all, follow_job


def _encode(ev: JobEvent, job: dict[str, Any] | None) -> dict[str, Any]:
    data = dict(ev.data)
    if job is not None:
        data["job"] = job
    encoded = {"event": ev.type, "data": orjson.dumps(data).decode()}
    if ev.id != UNSTORED_EVENT_ID:  # a live-only event: no id (Last-Event-ID stays put)
        encoded["id"] = str(ev.id)
    return encoded


async def job_event_stream(
    svc: Services, job_id: str, after: int, request: Request, base: str
) -> AsyncIterator[dict[str, Any]]:
    """One job's events from ``after`` on, replayed then live; each status event carries the job
    as it was at that moment, with absolute URLs on ``base``."""
    async for ev, at in follow_job(svc, job_id, after, request.is_disconnected):
        yield _encode(ev, None if at is None else await job_payload(svc, at, base))


async def all_jobs_stream(
    svc: Services, request: Request, after: int | None = None
) -> AsyncIterator[dict[str, Any]]:
    """Every job status change (gallery, cost counter): ``event: job``, data = {id, status}."""
    async for ev in follow_all(svc, after, request.is_disconnected):
        payload = {"id": ev.job_id, "status": ev.data.get("status")}
        yield {"id": str(ev.id), "event": "job", "data": orjson.dumps(payload).decode()}
