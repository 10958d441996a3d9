"""Public resource shapes (``XPublic``) and their rendering from domain objects."""

from __future__ import annotations

import functools
import math
from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel, Field

from pixelpipe.errors import ERROR_CODES
from pixelpipe.jobs.model import Job
from pixelpipe.ledger.policy import decimal_usd
from pixelpipe.services import Services


class ImagePublic(BaseModel):
    url: str
    thumbnail_url: str | None = Field(
        None,
        description="A WebP of at most 320 px a side (the image's own URL when it is one already)",
    )
    content_type: str
    width: int
    height: int
    bytes: int


class CostPublic(BaseModel):
    usd: str | None = Field(
        None, description="Actual cost in USD (string, exact); null = unpriced/pending"
    )
    micros: int | None = None
    status: str = Field(description="pending | priced | unpriced | free")
    estimate_usd: str | None = None


class ErrorPublic(BaseModel):
    code: str
    title: str
    detail: str | None = None


class TimingsPublic(BaseModel):
    created_at: str
    finished_at: str | None = None
    duration_s: float | None = None


class GenerationPublic(BaseModel):
    id: str
    object: str = "generation"
    status: str
    model: str
    provider: str | None
    request: dict[str, Any]
    key: str
    image: ImagePublic | None = None
    cached: bool
    cost: CostPublic
    timings: TimingsPublic
    attempt: int
    error: ErrorPublic | None = None
    progress: dict[str, Any] = Field(default_factory=dict)
    group: str | None = None
    revised_prompt: str | None = None
    links: dict[str, str]


class GenerationList(BaseModel):
    object: str = "list"
    data: list[GenerationPublic]
    next_cursor: str | None = None


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


async def render_job(svc: Services, job: Job, base: str | None = None) -> GenerationPublic:
    return GenerationPublic.model_validate(await job_payload(svc, job, base))


async def job_payload(svc: Services, job: Job, base: str | None = None) -> dict[str, Any]:
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
        "progress": job.provider_state.get("progress") or {},
        "group": job.group_id,
        "revised_prompt": job.revised_prompt,
        "links": {"self": self_url, "events": f"{self_url}/events", "cancel": f"{self_url}/cancel"},
    }


async def _image_url(svc: Services, storage_key: str, base: str | None) -> str:
    if base is None:
        return await svc.delivery.local_url(storage_key)
    url = await svc.delivery.url_for(storage_key)
    return base + url if url.startswith("/") else url
