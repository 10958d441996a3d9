"""Stage 8, beside the submit: the live progress of a run that its submit call holds to the end
(a synchronous server such as AUTOMATIC1111), read from the provider's
:class:`~pixelpipe.providers.base.WatchesProgress` while the call is in flight and written as the
job's ``progress`` events — the shape :mod:`pixelpipe.worker.poll` writes from a poll's or a
webhook's ``ProviderUpdate.progress`` (``state``, ``percent``, ``queue_position`` or ``eta_s``,
``step``, ``steps``, ``preview``).

Written only when it changed, at most one event per :data:`MIN_INTERVAL_S`; a ``preview`` (a small
``data:`` URL) only in the first event that carries it. The watching never fails the job: it stops
when the submit returns or fails, and its own errors are logged and end it.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncGenerator, Callable
from contextlib import aclosing
from typing import Any

from pixelpipe.jobs.model import Job
from pixelpipe.jobs.store import JobStore
from pixelpipe.providers.base import Provider, ProviderUpdate, WatchesProgress
from pixelpipe.worker.context import StepContext
from pixelpipe.worker.provider_run import submit_request

log = logging.getLogger("pixelpipe.worker")

MIN_INTERVAL_S = 0.5  # at most two progress events a second per job


async def submit_watching(ctx: StepContext, provider: Provider, job: Job) -> ProviderUpdate:
    """``provider.submit`` of ``job``'s current attempt; where the provider watches progress, the
    job's progress events are written while the call is in flight."""
    req = await submit_request(ctx.svc, job)
    if not isinstance(provider, WatchesProgress):
        return await provider.submit(req)
    updates = provider.watch_progress(job.id)
    watcher = asyncio.create_task(write_progress(ctx.svc.store, job.id, updates))
    try:
        return await provider.submit(req)
    finally:
        watcher.cancel()  # an event being written is still written, before the job moves on
        await asyncio.wait([watcher])


async def write_progress(
    store: JobStore,
    job_id: str,
    updates: AsyncGenerator[dict[str, Any], None],
    clock: Callable[[], float] = time.monotonic,
) -> None:
    """Write ``updates`` as ``job_id``'s progress events (see the module docstring) until they
    end or this is cancelled. Never raises but for its cancellation."""
    written: dict[str, Any] | None = None
    shown_preview: Any = None
    next_at = 0.0
    try:
        async with aclosing(updates):
            async for progress in updates:
                now = clock()
                if progress == written or now < next_at:
                    continue
                event = dict(progress)
                if "preview" in event and event["preview"] == shown_preview:
                    del event["preview"]  # written once: it travels with every replay
                shown_preview = progress.get("preview", shown_preview)
                await store.add_event(job_id, "progress", event)
                written, next_at = progress, now + MIN_INTERVAL_S
    except Exception as exc:  # progress is a courtesy: the job goes on without it
        log.info("progress of job %s stopped: %s: %s", job_id, type(exc).__name__, exc)
