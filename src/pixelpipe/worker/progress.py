"""Stage 8, beside the submit: the live progress of a run that its submit call holds to the end
(a synchronous server such as AUTOMATIC1111), read from the provider's
:class:`~pixelpipe.providers.base.WatchesProgress` while the call is in flight and written as the
job's ``progress`` events — the shape :mod:`pixelpipe.worker.poll` writes from a poll's or a
webhook's ``ProviderUpdate.progress`` (``state``, ``percent``, ``queue_position`` or ``eta_s``,
``step``, ``steps``, ``preview``).

A raw partial image (a progress's ``partial_image``: OpenAI's, as the upstream sent it) is first
published to the process's :class:`~pixelpipe.events.partials.PartialHub` — the stream readers of
this process send it on at once, full size — then, when its event is written (not throttled),
shrunk to the thumbnail ``preview`` (in a thread) that the stored event carries; the full partial
is never stored.

Written only when it changed, at most one event per :data:`MIN_INTERVAL_S`; a ``preview`` (a small
``data:`` URL) only in the first event that carries it. The watching never fails the job: it stops
when the submit returns or fails, and its own errors are logged and end it.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import functools
import logging
import time
from collections.abc import AsyncGenerator, Callable
from contextlib import aclosing
from typing import Any, cast

from pixelpipe.events.partials import HANDOFF_S, Partial, PartialHub
from pixelpipe.jobs.model import Job
from pixelpipe.jobs.store import JobStore
from pixelpipe.providers.base import Provider, ProviderUpdate, WatchesProgress
from pixelpipe.providers.previews import thumbnail_url
from pixelpipe.worker.context import StepContext
from pixelpipe.worker.provider_run import submit_request

log = logging.getLogger("pixelpipe.worker")

MIN_INTERVAL_S = 0.5  # at most two progress events a second per job


async def submit_watching(ctx: StepContext, provider: Provider, job: Job) -> ProviderUpdate:
    """``provider.submit`` of ``job``'s current attempt; where the provider watches progress, the
    job's progress events are written while the call is in flight."""
    req = await submit_request(ctx.svc, job)
    if not _watches_progress(type(provider)):
        return await provider.submit(req)
    updates = cast(WatchesProgress, provider).watch_progress(job.id)
    watcher = asyncio.create_task(
        write_progress(ctx.svc.store, job.id, updates, hub=ctx.svc.partials)
    )
    try:
        return await provider.submit(req)
    finally:
        watcher.cancel()  # an event being written is still written, before the job moves on
        await asyncio.wait([watcher])


@functools.cache
def _watches_progress(kind: type) -> bool:
    """``isinstance(provider, WatchesProgress)``, asked once per provider class: a Protocol's
    own check walks its members on every call (~15 µs, on every submit)."""
    return issubclass(kind, WatchesProgress)


async def write_progress(
    store: JobStore,
    job_id: str,
    updates: AsyncGenerator[dict[str, Any], None],
    clock: Callable[[], float] = time.monotonic,
    *,
    hub: PartialHub | None = None,
) -> None:
    """Write ``updates`` as ``job_id``'s progress events (see the module docstring) until they
    end or this is cancelled; their raw partial images go to ``hub`` first. Never raises but for
    its cancellation."""
    written: dict[str, Any] | None = None
    shown_preview: Any = None
    next_at = 0.0
    try:
        async with aclosing(updates):
            async for update in updates:
                await _publish(job_id, update, hub)  # every partial: readers get it at once
                now = clock()
                if now < next_at:
                    continue  # no event: its thumbnail is not made either
                progress = await _with_preview(update)
                if progress is None or progress == written:
                    continue
                event = dict(progress)
                if "preview" in event and event["preview"] == shown_preview:
                    del event["preview"]  # written once: it travels with every replay
                shown_preview = progress.get("preview", shown_preview)
                await store.add_event(job_id, "progress", event)
                written, next_at = progress, now + MIN_INTERVAL_S
    except Exception as exc:  # progress is a courtesy: the job goes on without it
        log.info("progress of job %s stopped: %s: %s", job_id, type(exc).__name__, exc)


async def _publish(job_id: str, progress: dict[str, Any], hub: PartialHub | None) -> None:
    """A raw ``partial_image`` to ``hub``'s readers of the job, and their turn to send it."""
    raw = progress.get("partial_image")
    percent = progress.get("percent")
    if hub is None or not isinstance(raw, dict) or not isinstance(percent, int | float):
        return
    partial = Partial(
        str(raw["b64_json"]),
        str(raw["output_format"]),
        int(raw["partial_image_index"]),
        float(percent),
    )
    if hub.publish(job_id, partial):
        await asyncio.sleep(HANDOFF_S)


async def _with_preview(progress: dict[str, Any]) -> dict[str, Any] | None:
    """``progress`` as it is stored: a raw ``partial_image`` becomes a thumbnail ``preview``
    (None: its image cannot be read, nothing to write)."""
    raw = progress.get("partial_image")
    if not isinstance(raw, dict):
        return progress
    preview = await asyncio.to_thread(_thumbnail, str(raw["b64_json"]))
    if preview is None:
        return None
    return {k: v for k, v in progress.items() if k != "partial_image"} | {"preview": preview}


def _thumbnail(b64: str) -> str | None:
    """A base64 picture's thumbnail ``data:`` URL; None when it cannot be read."""
    try:
        return thumbnail_url(base64.b64decode(b64, validate=True))
    except (binascii.Error, OSError, ValueError):
        return None
