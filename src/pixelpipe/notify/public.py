"""A job's public representation as plain JSON data: what ``GET /v1/generations/{id}`` answers
(``api/schemas.GenerationPublic`` is its documented model) and what a completion webhook carries.

It lives below the API so that the engine (:mod:`pixelpipe.notify`) renders webhook bodies
without importing an adapter.
"""

from __future__ import annotations

import functools
import math
from datetime import UTC, datetime
from typing import Any, Protocol

from pixelpipe.delivery.delivery import Delivery
from pixelpipe.errors import ERROR_CODES, NotFound
from pixelpipe.inputs import find_input, render_inputs
from pixelpipe.jobs.model import Job
from pixelpipe.ledger.policy import decimal_usd
from pixelpipe.settings import Settings


class Renders(Protocol):
    """What rendering reads (``Services`` has both; so do the completion hooks)."""

    @property
    def settings(self) -> Settings: ...

    @property
    def delivery(self) -> Delivery: ...


def iso(ts: float | None) -> str | None:
    """``2026-11-21T23:50:38.123Z``, exactly as ``datetime.isoformat(timespec="milliseconds")``
    gives it (microseconds rounded half-even, then truncated to ms) at a fraction of the cost."""
    if ts is None:
        return None
    frac, whole = math.modf(ts)
    us = round(frac * 1e6)
    seconds = int(whole)
    if us >= 1_000_000:
        seconds, us = seconds + 1, us - 1_000_000
    elif us < 0:
        seconds, us = seconds - 1, us + 1_000_000
    return f"{_iso_seconds(seconds)}.{us // 1000:03d}Z"


@functools.lru_cache(maxsize=1024)
def _iso_seconds(seconds: int) -> str:
    return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M:%S")


def usd(micros: int | None) -> str | None:
    """Exact decimal dollars ("0.003", "10.50"); None stays None (unpriced or pending)."""
    return None if micros is None else decimal_usd(micros)


async def job_payload(svc: Renders, job: Job, base: str | None = None) -> dict[str, Any]:
    """The job resource as plain JSON data (the shape of :class:`GenerationPublic`).

    ``base``: the absolute base URL of the request being answered
    (:func:`pixelpipe.api.urls.request_base`); every URL in the answer is absolute on it. None
    in a process with no server (``Pipeline``, an in-process CLI run): image URLs then name the
    stored file itself (:meth:`~pixelpipe.delivery.Delivery.local_url`) and links are paths
    (absolute only under ``PIXELPIPE_PUBLIC_URL``). The hot POST answers it without building
    the pydantic model (see ``api/fast_lane.py``); tests check that the two renderings agree
    field for field."""
    image = None
    if job.storage_key and job.content_type:
        image = {
            "url": await _image_url(svc, job.storage_key, base),
            "thumbnail_url": await _image_url(svc, job.thumb_key, base) if job.thumb_key else None,
            "content_type": job.content_type,
            "width": job.width or 0,
            "height": job.height or 0,
            "bytes": job.bytes or 0,
        }
    error = None
    if job.error_code and job.status.terminal and job.status.value != "succeeded":
        cls = ERROR_CODES.get(job.error_code)
        error = {
            "code": job.error_code,
            "title": cls.title if cls else job.error_code,
            "detail": job.error_detail,
        }
    root = svc.settings.public_url.rstrip("/") if base is None else base
    self_url = f"{root}/v1/generations/{job.id}"
    return {
        "id": job.id,
        "object": "generation",
        "status": str(job.status),
        "model": job.model,
        "provider": job.provider,
        "request": job.request.to_dict(),
        "key": job.content_key,
        "image": image,
        "cached": job.cached,
        "cost": {
            "usd": usd(job.cost_micros),
            "micros": job.cost_micros,
            "status": job.cost_status,
            "estimate_usd": usd(job.estimate_micros),
        },
        "timings": {
            "created_at": iso(job.created_at) or "",
            "finished_at": iso(job.finished_at),
            "duration_s": job.duration_s,
        },
        "attempt": job.attempt,
        "error": error,
        "progress": _progress(job),
        "group": job.group_id,
        "revised_prompt": job.revised_prompt,
        "retry_of": job.retry_of,
        "priority": job.priority,
        "moderation": job.provider_state.get("moderation"),  # blurred/flagged/unchecked marks
        "inputs": await _inputs(svc, job, base) if _edit(job) else [],
        "links": {"self": self_url, "events": f"{self_url}/events", "cancel": f"{self_url}/cancel"},
    }


def _progress(job: Job) -> dict[str, Any]:
    """The run's progress; a live preview only while the job runs (then the image is there)."""
    progress: dict[str, Any] = job.provider_state.get("progress") or {}
    if job.status.terminal and "preview" in progress:
        return {k: v for k, v in progress.items() if k != "preview"}
    return progress


def _edit(job: Job) -> bool:
    return bool(job.request.images) or job.request.mask is not None


async def _inputs(svc: Renders, job: Job, base: str | None) -> list[dict[str, Any]]:
    """The job's inputs (lineage) with each one's URL, delivered like the image (None when the
    stored input is gone): what the page shows as "before"."""
    rows = await render_inputs(svc.delivery.storage, job.request)
    for row in rows:
        try:
            stored = await find_input(svc.delivery.storage, row["digest"])
        except NotFound:
            row["url"] = None
            continue
        row["url"] = await _image_url(svc, stored.key, base)
    return rows


async def _image_url(svc: Renders, storage_key: str, base: str | None) -> str:
    if base is None:
        return await svc.delivery.local_url(storage_key)
    url = await svc.delivery.url_for(storage_key)
    return base + url if url.startswith("/") else url
