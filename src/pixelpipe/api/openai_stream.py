"""``stream=true`` on ``POST /v1/images/generations``: OpenAI's image streaming, as SSE.

What the official SDKs parse (``client.images.generate(..., stream=True, partial_images=N)``)::

    event: image_generation.partial_image
    data: {"type": "image_generation.partial_image", "b64_json": …, "partial_image_index": 0,
           "size": …, "quality": …, "background": …, "output_format": …, "created_at": …}

    event: image_generation.completed
    data: {"type": "image_generation.completed", "b64_json": …, "usage": {…}, …}

The job is submitted exactly like a non-streaming request (intake, safety, cache, budget,
single-flight, ledger); what is refused there is refused before the stream starts, with the usual
status and error envelope. The stream then follows the job's events: each new live preview in a
``progress`` event (a self-hosted server's denoising preview, the offline preview's simulated
partials, OpenAI's own partials) becomes a partial image, up to ``partial_images`` of them, in the
requested output format; the completed event carries the image the pipeline stored and billed. A
cache hit streams its completed event at once. A failure after the stream started is an ``error``
event (``{"type": "error", "error": {message, type, param, code}}``): the SDK raises it as
``openai.APIError``. A reader that goes away stops only its stream; the job runs on. While
nothing happens (a queue, a slow provider) a ``: keep-alive`` comment goes out every
``PIXELPIPE_STREAM_KEEPALIVE_S`` (:mod:`pixelpipe.api.openai_stream_keepalive`). Edits stream the
same way, their events named ``image_edit.*``.
"""

from __future__ import annotations

import asyncio
import base64
import io
import time
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import orjson
from PIL import Image
from starlette.responses import StreamingResponse

from pixelpipe.api.openai_stream_keepalive import with_keepalive
from pixelpipe.api.problems import openai_shape
from pixelpipe.errors import PixelpipeError
from pixelpipe.fetch.datauri import decode_data_uri
from pixelpipe.jobs.model import Job, JobEvent, JobStatus
from pixelpipe.key import CONTENT_TYPES
from pixelpipe.providers.previews import PREVIEW_MAX_BYTES
from pixelpipe.services import Services
from pixelpipe.usecases.events import follow_job
from pixelpipe.usecases.images import image_bytes
from pixelpipe.usecases.jobs import get_job

MAX_PARTIAL_IMAGES = 3
OPENAI_QUALITIES = frozenset({"low", "medium", "high", "xhigh", "max", "auto"})
_PIL_FORMAT = {"webp": "WEBP", "png": "PNG", "jpeg": "JPEG"}
# a partial is re-encoded for each reader: zlib level 1 makes a 256 px PNG in ~2 ms instead of
# ~7 (the same pixels, ~30 % more bytes); JPEG and WebP encode a thumbnail in well under 1 ms
_FAST_ENCODE: dict[str, dict[str, Any]] = {"png": {"compress_level": 1}}
Disconnected = Callable[[], Awaitable[bool]]
TokenUsage = Callable[[list[Job]], dict[str, Any] | None]
ZERO_USAGE: dict[str, Any] = {
    "input_tokens": 0,
    "input_tokens_details": {"text_tokens": 0, "image_tokens": 0},
    "output_tokens": 0,
    "total_tokens": 0,
}


@dataclass(frozen=True, slots=True)
class StreamPlan:
    """One streamed request: how many partials, the event names' prefix, how long to wait."""

    partial_images: int
    timeout_s: float
    quality: str | None = None  # what the client asked for (echoed when the job has no tier)
    prefix: str = "image_generation"  # image_edit for edits
    keepalive_s: float = 0.0  # an SSE comment after this many quiet seconds (0: never)


def stream_response(
    svc: Services,
    job: Job,
    plan: StreamPlan,
    disconnected: Disconnected,
    usage: TokenUsage,
) -> StreamingResponse:
    """The ``text/event-stream`` answer for ``job`` (already submitted)."""
    headers = {
        "cache-control": "no-cache",
        "x-accel-buffering": "no",  # proxies: pass each event on at once
        "x-pixelpipe-generation-ids": job.id,
        "x-pixelpipe-cached": "true" if job.cached else "false",
    }
    return StreamingResponse(
        with_keepalive(_events(svc, job, plan, disconnected, usage), plan.keepalive_s),
        media_type="text/event-stream",
        headers=headers,
    )


async def _events(
    svc: Services, job: Job, plan: StreamPlan, disconnected: Disconnected, usage: TokenUsage
) -> AsyncGenerator[bytes, None]:
    """Partials while the job runs, then its completed (or error) event."""
    try:
        if not job.status.terminal:
            async for event in _partial_events(svc, job, plan, disconnected):
                yield event
            job = await get_job(svc, job.id)
            if not job.status.terminal:
                if await disconnected():
                    return  # the reader left; the job runs on and is billed once, as always
                yield _error_event(
                    "timed_out",
                    f"the image was not ready within {plan.timeout_s:g} s; it keeps running — "
                    f"follow GET /v1/generations/{job.id}",
                )
                return
        yield await _final_event(svc, job, plan, usage)
    except PixelpipeError as exc:  # e.g. the stored image could not be read: say so, in the stream
        yield _error_event(exc.code, f"{exc.detail} (generation {job.id})")


async def _partial_events(
    svc: Services, job: Job, plan: StreamPlan, disconnected: Disconnected
) -> AsyncIterator[bytes]:
    """Follow the job until it ends, the reader leaves or the wait is over."""
    deadline = time.monotonic() + plan.timeout_s

    async def gone() -> bool:
        return time.monotonic() > deadline or await disconnected()

    partials = _Partials(job, plan)
    async for ev, _ in follow_job(svc, job.id, 0, gone):
        event = await partials.take(ev)
        if event is not None:
            yield event


class _Partials:
    """Turns a job's events into partial-image events: each new preview, up to the number asked."""

    def __init__(self, job: Job, plan: StreamPlan) -> None:
        self.job, self.plan = job, plan
        self.sent = 0
        self.last: str | None = None

    async def take(self, ev: JobEvent) -> bytes | None:
        if ev.type != "progress" or self.sent >= self.plan.partial_images:
            return None
        preview = ev.data.get("preview")
        if not isinstance(preview, str) or preview == self.last:
            return None
        self.last = preview
        data = await partial_bytes_async(preview, self.job.request.format)
        if data is None:
            return None
        fields = {
            "b64_json": base64.b64encode(data).decode(),
            "partial_image_index": self.sent,
            **echo_fields(self.job, self.plan),
        }
        self.sent += 1
        return sse(f"{self.plan.prefix}.partial_image", fields)


async def partial_bytes_async(preview: str, fmt: str) -> bytes | None:
    """:func:`partial_bytes`, in a worker thread when it must re-encode (Pillow work, ~2-3 ms
    for a 256 px PNG, must not stall the event loop that serves every other stream)."""
    if preview.startswith(f"data:{CONTENT_TYPES[fmt]};"):
        return partial_bytes(preview, fmt)  # already in that format: only base64
    return await asyncio.to_thread(partial_bytes, preview, fmt)


def partial_bytes(preview: str, fmt: str) -> bytes | None:
    """A preview ``data:`` URL's image, in the requested format ``fmt``; None if unreadable."""
    try:
        data, media_type = decode_data_uri(preview, max_bytes=4 * PREVIEW_MAX_BYTES)
        if media_type == CONTENT_TYPES[fmt]:
            return data
        with Image.open(io.BytesIO(data)) as im:
            picture = im.convert("RGBA" if fmt != "jpeg" and "A" in im.getbands() else "RGB")
        buf = io.BytesIO()
        picture.save(buf, _PIL_FORMAT[fmt], **_FAST_ENCODE.get(fmt, {}))
        return buf.getvalue()
    except Exception:  # a preview is a courtesy: one that cannot be read is skipped
        return None


async def _final_event(svc: Services, job: Job, plan: StreamPlan, usage: TokenUsage) -> bytes:
    if job.status is not JobStatus.SUCCEEDED:
        code = job.error_code or (
            "canceled" if job.status is JobStatus.CANCELED else "provider_failed"
        )
        detail = job.error_detail or f"generation {job.id} {job.status}"
        return _error_event(code, f"{detail} (generation {job.id})")
    fields = {
        "b64_json": base64.b64encode(await image_bytes(svc, job)).decode(),
        **echo_fields(job, plan),
        "usage": usage([job]) or ZERO_USAGE,
    }
    return sse(f"{plan.prefix}.completed", fields)


def echo_fields(job: Job, plan: StreamPlan) -> dict[str, Any]:
    """``size``, ``quality``, ``background``, ``output_format`` and ``created_at``, as OpenAI
    echoes them (``background`` is not forwarded: the model chooses, ``auto``)."""
    quality = job.request.quality
    if quality not in OPENAI_QUALITIES:
        quality = plan.quality if plan.quality in OPENAI_QUALITIES else "auto"
    return {
        "size": job.request.size,
        "quality": quality,
        "background": "auto",
        "output_format": job.request.format,
        "created_at": int(time.time()),
    }


def _error_event(code: str, message: str) -> bytes:
    _, type_, oa_code = openai_shape(code, {})
    error = {
        "message": message,
        "type": type_,
        "param": None,
        "code": oa_code,
        "pixelpipe_code": code,
    }
    return sse("error", {"error": error}, type_="error")


def sse(event: str, fields: dict[str, Any], *, type_: str | None = None) -> bytes:
    """One server-sent event whose data is ``{"type": event, **fields}``."""
    data = orjson.dumps({"type": type_ or event, **fields})
    return b"event: " + event.encode() + b"\ndata: " + data + b"\n\n"
